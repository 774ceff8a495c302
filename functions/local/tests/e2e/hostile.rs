//! `ferry serve` against the attacks `SECURITY.md` names, through the real
//! binary: an outsider's pull request, a stranger pushing to a trusted
//! fork, a short approval, replayed bodies, late installation events and an
//! installation too large for one item.

use crate::common;

use std::path::Path;

use common::{Server, comment, demo_config, sample, send, send_text, send_to, serve_with};
use serde_json::{Value, json};

const HEAD: &str = "1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f";
const PUSHED: &str = "2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a6c8e0a";
const UPDATED: &str = "3f5b7d9f1b3d5f7b9d1f3b5d7f9b1d3f5b7d9f1b";
const NEXT: &str = "4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a6c8e0a2c";

fn forge(dir: &Path) -> std::path::PathBuf {
    dir.join(".ferry/forge/acme/api")
}

/// Who may push to acme/api, as the dry-run forge answers it.
fn permissions(dir: &Path, of: Value) {
    std::fs::create_dir_all(forge(dir)).unwrap();
    std::fs::write(forge(dir).join("permissions.json"), of.to_string()).unwrap();
}

fn status(dir: &Path, sha: &str, context: &str) -> Option<Value> {
    let path = forge(dir).join("statuses").join(sha).join(format!("{context}.json"));
    std::fs::read_to_string(path).ok().map(|text| serde_json::from_str(&text).unwrap())
}

/// The sample pull request #42, as `author` (`association`) sent it from
/// the fork `head_repo`, by `sender`, at `updated_at`.
fn pull_request(action: &str, head: &str, author: &str, association: &str, sender: &str, updated_at: &str) -> Value {
    let mut payload = sample("pull_request.opened.json");
    payload["action"] = json!(action);
    let pr = &mut payload["pull_request"];
    pr["head"]["sha"] = json!(head);
    pr["head"]["repo"]["full_name"] = json!(format!("{author}/api"));
    pr["user"]["login"] = json!(author);
    pr["author_association"] = json!(association);
    pr["updated_at"] = json!(updated_at);
    payload["sender"]["login"] = json!(sender);
    payload
}

fn runs(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(".ferry/cluster/ci/pipelinerun")).map(|entries| entries.count()).unwrap_or(0)
}

fn start(dir: &Path, config: Option<&str>) -> Server {
    match config {
        Some(config) => {
            std::fs::write(dir.join("ferry.toml"), config).unwrap();
            serve_with(dir, &[("FERRY_CONFIG", "ferry.toml")])
        }
        None => serve_with(dir, &[]),
    }
}

#[test]
fn an_outsiders_head_is_read_on_no_path_until_a_trusted_user_approves_it() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    permissions(dir, json!({"monalisa": "write"}));
    // Broken on line 2: any read of it posts a ferry/config failure naming the line.
    std::fs::create_dir_all(forge(dir).join("files")).unwrap();
    std::fs::write(forge(dir).join("files/.ferry.toml"), "[api]\non = [\"push\"\n").unwrap();
    let server = start(dir, None);
    let at = "2026-11-20T11:00:00Z";

    let event = pull_request("opened", HEAD, "stranger", "CONTRIBUTOR", "stranger", at);
    let opened = send(dir, &server, "pull_request", "o-1", &event);
    assert!(opened.contains("waits for a trusted user's /ok-to-test"), "{opened}");
    assert_eq!(status(dir, HEAD, "ferry_ok-to-test").unwrap()["state"], "pending");
    let by_author = send(dir, &server, "issue_comment", "o-2", &comment(1, "/retest", "stranger", "CONTRIBUTOR"));
    assert!(by_author.contains("commands count only from"), "{by_author}");
    let by_member = send(dir, &server, "issue_comment", "o-3", &comment(2, "/retest", "monalisa", "MEMBER"));
    assert!(by_member.contains("waits for a trusted user's /ok-to-test"), "{by_member}");
    let event = pull_request("closed", HEAD, "stranger", "CONTRIBUTOR", "stranger", "2026-11-20T11:30:00Z");
    let closed = send(dir, &server, "pull_request", "o-4", &event);
    assert!(closed.contains("\"processed\""), "{closed}");
    assert!(status(dir, HEAD, "ferry_config").is_none(), "the outsider's .ferry.toml was read");

    // Reopened and approved by its full SHA: now, and only now, it is read.
    let event = pull_request("reopened", HEAD, "stranger", "CONTRIBUTOR", "stranger", "2026-11-20T11:40:00Z");
    send(dir, &server, "pull_request", "o-5", &event);
    assert!(status(dir, HEAD, "ferry_config").is_none());
    let approved =
        send(dir, &server, "issue_comment", "o-6", &comment(3, &format!("/ok-to-test {HEAD}"), "monalisa", "MEMBER"));
    assert!(approved.contains("status.failure"), "{approved}");
    let config = status(dir, HEAD, "ferry_config").expect("read once approved");
    assert!(config["description"].as_str().unwrap().contains("line 2"), "{config}");
}

#[test]
fn a_stranger_pushing_to_a_trusted_fork_needs_a_new_approval_that_names_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    permissions(dir, json!({"monalisa": "write"}));
    let server = start(dir, Some(&demo_config()));

    let event = pull_request("opened", HEAD, "monalisa", "MEMBER", "monalisa", "2026-11-20T11:00:00Z");
    let opened = send(dir, &server, "pull_request", "f-1", &event);
    assert!(opened.contains("preview.applied"), "a member's fork runs: {opened}");
    let before = runs(dir);

    let pushed = pull_request("synchronize", PUSHED, "monalisa", "MEMBER", "stranger", "2026-11-20T11:10:00Z");
    let pushed = send(dir, &server, "pull_request", "f-2", &pushed);
    assert!(pushed.contains("pushed to a fork by someone who cannot push here"), "{pushed}");
    assert_eq!(status(dir, PUSHED, "ferry_ok-to-test").unwrap()["state"], "pending");
    assert_eq!(runs(dir), before, "nothing ran for the stranger's push");

    // A maintainer's "Update branch" on top of it: the stranger's commits are still there.
    let updated = pull_request("synchronize", UPDATED, "monalisa", "MEMBER", "monalisa", "2026-11-20T11:20:00Z");
    let updated = send(dir, &server, "pull_request", "f-2b", &updated);
    assert!(updated.contains("pushed to a fork by someone who cannot push here"), "{updated}");
    assert_eq!(runs(dir), before, "nothing ran for the head on top of it either");

    let short = comment(4, &format!("/ok-to-test {}", &UPDATED[..7]), "monalisa", "MEMBER");
    let short = send(dir, &server, "issue_comment", "f-3", &short);
    assert!(short.contains("at least 12 hex digits"), "{short}");
    assert_eq!(runs(dir), before, "a 7-digit prefix approves nothing");

    let full = comment(5, &format!("/ok-to-test {UPDATED}"), "monalisa", "MEMBER");
    let full = send(dir, &server, "issue_comment", "f-4", &full);
    assert!(full.contains("approval.recorded"), "{full}");
    assert_eq!(status(dir, UPDATED, "ferry_ok-to-test").unwrap()["state"], "success");

    // Approved, the author's next push runs as before.
    let next = pull_request("synchronize", NEXT, "monalisa", "MEMBER", "monalisa", "2026-11-20T12:30:00Z");
    let next = send(dir, &server, "pull_request", "f-5", &next);
    assert!(next.contains("preview.applied"), "{next}");
}

#[test]
fn a_replayed_body_and_a_late_installation_event_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = start(dir, Some(&demo_config()));
    let push = sample("push.json");
    assert!(send(dir, &server, "push", "r-1", &push).contains("pipelinerun.created"));
    let replayed = send(dir, &server, "push", "r-2", &push);
    assert!(
        replayed.contains("\"duplicate\"") && replayed.contains("the same body came as delivery r-1"),
        "{replayed}"
    );
    assert_eq!(runs(dir), 1);

    let installation = |action: &str, updated_at: &str, suspended_at: Value| {
        let mut payload = sample("installation.created.json");
        payload["action"] = json!(action);
        payload["installation"]["updated_at"] = json!(updated_at);
        payload["installation"]["suspended_at"] = suspended_at;
        payload
    };
    let suspend = installation("suspend", "2026-11-21T09:00:00Z", json!("2026-11-21T09:00:00Z"));
    let unsuspend = installation("unsuspend", "2026-11-21T10:00:00Z", Value::Null);
    assert!(send(dir, &server, "installation", "i-1", &suspend).contains("installation.suspended"));
    assert!(send(dir, &server, "installation", "i-2", &unsuspend).contains("installation.recorded"));
    // The suspension again, as someone who kept its body would send it:
    // as itself, and altered only in whitespace (a new body, same time).
    let again = send(dir, &server, "installation", "i-3", &suspend);
    assert!(again.contains("\"duplicate\""), "{again}");
    let late = send_text(dir, &server, "installation", "i-4", &format!("{suspend} "));
    assert!(late.contains("changes nothing"), "{late}");

    let mut next = push.clone();
    next["after"] = json!(PUSHED);
    next["head_commit"]["id"] = json!(PUSHED);
    let launched = send(dir, &server, "push", "r-3", &next);
    assert!(launched.contains("pipelinerun.created"), "the installation is not suspended: {launched}");
}

#[test]
fn an_installation_too_large_for_one_item_is_kept_whole() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = start(dir, None);
    let mut payload = sample("installation.created.json");
    let names: Vec<Value> =
        (0..4000).map(|i| json!({"id": i, "full_name": format!("acme/{}-{i:05}", "r".repeat(90))})).collect();
    payload["repositories"] = json!(names);
    let reply = send(dir, &server, "installation", "big-1", &payload);
    assert!(reply.contains("installation big-1: 200") || reply.contains("installation big-1: 202"), "{reply}");
    assert_eq!(reply.matches("repository.recorded").count(), 4000, "every repository is recorded");
    let again = send(dir, &server, "installation", "big-1", &payload);
    assert!(again.contains("\"duplicate\""), "the delivery itself was recorded: {again}");
}

/// Opens the store `ferry` keeps in `dir` (while no `ferry` has it open)
/// for `work` on delivery `id`.
fn with_delivery<T>(
    dir: &Path,
    id: &str,
    work: impl AsyncFnOnce(&dyn ferry::store::StateStore, ferry::store::Key) -> T,
) -> T {
    use ferry::store::{EmbeddedStore, Key};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = EmbeddedStore::open(&dir.join(".ferry").join(EmbeddedStore::FILE), Default::default()).unwrap();
    runtime.block_on(work(&store, Key::Delivery(ferry::domain::DeliveryId::parse(id).unwrap())))
}

fn delivery(dir: &Path, id: &str) -> Option<ferry::domain::Delivery> {
    with_delivery(dir, id, async |store, key| store.load(&key).await.unwrap().map(|found| found.record))
}

fn attempts(dir: &Path, id: &str) -> u32 {
    delivery(dir, id).map_or(0, |d| d.attempts)
}

/// Moves delivery `id` two hours into the past, as if the wait before its
/// next attempt had passed.
fn rewind(dir: &Path, id: &str) {
    with_delivery(dir, id, async |store, key| {
        let mut found = store.load::<ferry::domain::Delivery>(&key).await.unwrap().expect("recorded");
        let past = ferry::domain::Timestamp::now().minus(std::time::Duration::from_secs(2 * 3600));
        found.record.received_at = past;
        found.record.last_attempt_at = found.record.last_attempt_at.map(|_| past);
        store.update(&found.record.into(), found.version).await.unwrap();
    })
}

/// Runs `child` until `done` or 20 s, then kills it as a crash would.
fn kill_when(mut child: std::process::Child, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Every attempt at this delivery hangs on its `.ferry.toml` (a FIFO no one
/// writes) until the process is killed: the first in `ferry serve`, the
/// next five in `ferry reconcile`. Counted before each acts, it is given up
/// after the sixth, and its commit says so.
#[test]
fn a_delivery_that_kills_every_attempt_is_given_up_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir_all(forge(dir).join("files")).unwrap();
    let fifo = forge(dir).join("files/.ferry.toml");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let push = sample("push.json");
    let sha = push["after"].as_str().unwrap().to_owned();

    let server = start(dir, None);
    let body = dir.join("poison.json");
    std::fs::write(&body, push.to_string()).unwrap();
    let url = format!("{}/webhook", server.url);
    let replay = common::ferry_command(
        dir,
        &["replay", body.to_str().unwrap(), "--event", "push", "--delivery", "poison", "--url", &url],
        &[],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    kill_when(replay, || attempts(dir, "poison") == 1);
    drop(server);

    for attempt in 2..=6 {
        let before = delivery(dir, "poison").unwrap();
        assert_eq!((before.attempts, before.is_unfinished()), (attempt - 1, true), "{before:?}");
        rewind(dir, "poison");
        let cycle = common::ferry_command(dir, &["reconcile"], &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        kill_when(cycle, || attempts(dir, "poison") == attempt);
    }
    rewind(dir, "poison");
    let last = common::ferry_command(dir, &["reconcile"], &[]).output().unwrap();
    assert!(last.status.success(), "{}", String::from_utf8_lossy(&last.stderr));
    let given_up = delivery(dir, "poison").unwrap();
    assert_eq!((given_up.outcome, given_up.attempts), (ferry::domain::Outcome::Dead, 6), "{given_up:?}");
    let said = status(dir, &sha, "ferry_delivery").expect("an error status on the commit");
    assert_eq!(said["state"], "error", "{said}");
}

/// The sample push, made new by `after` so it is not taken for a replay.
fn push_of(after: &str) -> Value {
    let mut push = sample("push.json");
    push["after"] = json!(after);
    push["head_commit"]["id"] = json!(after);
    push
}

/// The peak resident memory of `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test]
async fn a_hostile_template_ends_in_a_config_failure_naming_the_limit_while_healthz_answers() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_owned();
    std::fs::create_dir_all(forge(&dir).join("files")).unwrap();
    let server = start(&dir, None);
    // reqwest brings no crypto provider of its own (rustls has two to choose from here).
    ferry::telemetry::install_crypto_provider();
    let kilobyte = "x".repeat(1100);
    let separator = "x".repeat(60);
    let bombs = [
        ("{% set x = \"x\" * 100000000 %}[api]\non = [\"push\"]\n".to_owned(), "`*` is not allowed"),
        (
            format!("{{% set a = \"{kilobyte}\" %}}{{% for i in range(1000) %}}{{{{ a }}}}{{% endfor %}}"),
            "1 MiB), the limit",
        ),
        ("{% for i in range(1000000000) %}{% endfor %}".to_owned(), "over the limit of 1000"),
        (format!("{{{{ range(900) | join(\"{separator}\") }}}}"), "bytes, the limit"),
    ];
    for (i, (template, names)) in bombs.iter().enumerate() {
        std::fs::write(forge(&dir).join("files/.ferry.toml"), template).unwrap();
        let after = format!("{:040x}", i + 1);
        let (dir2, url) = (dir.clone(), server.url.clone());
        let pushed = tokio::task::spawn_blocking(move || {
            send_to(&dir2, &url, "push", &format!("bomb-{i}"), &push_of(&after).to_string())
        });
        // While it renders, the server still answers at once.
        let health = common::client().get(format!("{}/healthz", server.url)).send().await.unwrap();
        assert!(health.status().is_success());
        let reply = pushed.await.unwrap();
        assert!(reply.contains("status.failure"), "{template}: {reply}");
        let said = status(&dir, &format!("{:040x}", i + 1), "ferry_config").unwrap();
        let description = said["description"].as_str().unwrap();
        assert!(description.contains(names), "{template}: {description}");
    }
    assert!(peak_rss(server.child.id()) < 256 << 20, "peak RSS {} bytes", peak_rss(server.child.id()));
}

#[test]
fn units_claiming_what_the_operator_policy_forbids_launch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let config =
        format!("[policy]\nnamespaces = [\"ci\"]\npreview_hosts = [\".preview.example.com\"]\n\n{}", demo_config());
    let server = start(dir, Some(&config));
    assert!(
        send(dir, &server, "push", "p-1", &sample("push.json")).contains("pipelinerun.created"),
        "within the policy"
    );
    std::fs::create_dir_all(forge(dir).join("files")).unwrap();
    std::fs::write(
        forge(dir).join("files/.ferry.toml"),
        "[api]\non = [\"push\"]\n[api.pipeline]\nnamespace = \"kube-system\"\nref = \"build\"\n",
    )
    .unwrap();
    let reply = send(dir, &server, "push", "p-2", &push_of(PUSHED));
    assert!(reply.contains("status.failure") && !reply.contains("pipelinerun.created"), "{reply}");
    let said = status(dir, PUSHED, "ferry_config").unwrap();
    assert!(said["description"].as_str().unwrap().contains("kube-system"), "{said}");
}
