//! The reconciler, one scenario per repair: through the real webhook
//! handler and the dry-run cluster, with the fake GitHub (every request
//! checked against GitHub's API description) where GitHub is asked, and the
//! store on the AWS API emulator where the listing of unfinished
//! deliveries matters.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry::domain::{Delivery, DeliveryId, InstallationId, Outcome, PullRequest, Repository, Timestamp};
use ferry::forge::github::{GithubApi, GithubForge};
use ferry::store::{Key, StateStore};
use ferry::usecase::tokens::TokenSource;
use ferry_tests::builders::{repo, repository};
use ferry_tests::github::{FakeGithub, SimClock, app_keys};
use ferry_tests::webhook::Harness;
use serde_json::{Value, json};

const SECRET: &str = "reconcile-secret";
const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";
const SHA3: &str = "3333333333333333333333333333333333333333";
const SHA4: &str = "4444444444444444444444444444444444444444";

const UNITS: &str = r#"
[reconciler]
max_preview_removals = 1

[repositories."acme/api"]
units = '''
[api]
on = ["push", "pull_request", "release"]
branches = ["main"]
[api.pipeline]
namespace = "ci"
ref = "build-and-deploy"
[api.preview]
image = "ghcr.io/acme/api:{{ git.short_sha }}"
port = 8080
host = "api-{% if pr %}pr-{{ pr.number }}{% else %}x{% endif %}.preview.example.com"
'''
"#;

/// A harness with the units above and `acme/api` tracked through installation 5 since `since`.
async fn harness_on(mut harness: Harness, since: Timestamp) -> Harness {
    harness.set_operator(UNITS);
    let tracked =
        Repository { installation: Some(InstallationId::new(5)), tracked_since: Some(since), ..repository("acme/api") };
    harness.state().create(&tracked.into()).await.unwrap();
    harness
}

async fn harness(since: Timestamp) -> Harness {
    harness_on(Harness::embedded(SECRET).await, since).await
}

fn push(before: &str, after: &str) -> String {
    json!({
        "ref": "refs/heads/main", "before": before, "after": after,
        "commits": [{"added": ["api/a.rs"], "modified": [], "removed": []}],
        "repository": {"full_name": "acme/api", "clone_url": "https://github.com/acme/api.git"},
        "installation": {"id": 5}, "sender": {"login": "octocat"}
    })
    .to_string()
}

fn pull_request(action: &str, number: u64, head: &str) -> String {
    json!({
        "action": action, "number": number,
        "pull_request": pr_item(number, head, "2026-11-22T10:00:00Z"),
        "repository": {"full_name": "acme/api"}, "installation": {"id": 5}, "sender": {"login": "someone"}
    })
    .to_string()
}

/// A pull request as GitHub lists it (the fields Ferry reads).
fn pr_item(number: u64, head: &str, updated_at: &str) -> Value {
    json!({
        "number": number, "draft": false, "labels": [], "updated_at": updated_at,
        "author_association": "MEMBER", "user": {"login": "someone"},
        "head": {"sha": head, "ref": "feature", "repo": {"full_name": "acme/api"}},
        "base": {"ref": "main", "sha": SHA1, "repo": {"full_name": "acme/api"}}
    })
}

fn runs_dir(harness: &Harness) -> PathBuf {
    harness.data_dir().join("cluster/ci/pipelinerun")
}

/// The one run of `sha` the dry-run cluster holds.
fn run_file(harness: &Harness, sha: &str) -> PathBuf {
    std::fs::read_dir(runs_dir(harness))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).unwrap().contains(sha))
        .unwrap_or_else(|| panic!("no run of {sha}"))
}

/// Writes what Tekton would into a run's status.
fn set_run(path: &PathBuf, change: impl FnOnce(&mut Value)) {
    let mut run: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    change(&mut run);
    std::fs::write(path, serde_yaml_ng::to_string(&run).unwrap()).unwrap();
}

fn succeeded(status: &str, reason: &str, message: &str) -> impl FnOnce(&mut Value) {
    let condition = json!([{"type": "Succeeded", "status": status, "reason": reason, "message": message}]);
    move |run| run["status"] = json!({ "conditions": condition })
}

fn commit_status(harness: &Harness, sha: &str, context: &str) -> Option<Value> {
    let path = harness
        .data_dir()
        .join("forge/acme/api/statuses")
        .join(sha)
        .join(format!("{}.json", context.replace('/', "_")));
    std::fs::read_to_string(path).ok().map(|t| serde_json::from_str(&t).unwrap())
}

#[tokio::test]
async fn run_results_become_commit_statuses_once_and_never_go_back() {
    let harness = harness(Timestamp::now()).await;
    let clock = SimClock::at(Timestamp::now());
    harness.deliver("push", "r-1", SECRET, &push(SHA1, SHA2)).await;
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!((report.statuses, report.failed.len()), (0, 0), "still running: {report:?}");
    assert_eq!(commit_status(&harness, SHA2, "ferry/api").unwrap()["state"], "pending");

    set_run(&run_file(&harness, SHA2), succeeded("True", "Succeeded", "All Tasks have completed executing"));
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!(report.statuses, 1, "{report:?}");
    let status = commit_status(&harness, SHA2, "ferry/api").unwrap();
    assert_eq!(status["state"], "success");
    assert!(status["description"].as_str().unwrap().ends_with("succeeded"), "{status}");
    assert_eq!(harness.reconcile(clock.as_ref()).await.statuses, 0, "reported once");
    // A result that changes later never moves a reported status.
    set_run(&run_file(&harness, SHA2), succeeded("False", "Failed", "late"));
    assert_eq!(harness.reconcile(clock.as_ref()).await.statuses, 0);
    assert_eq!(commit_status(&harness, SHA2, "ferry/api").unwrap()["state"], "success");

    // A failure names Tekton's reason and message.
    harness.deliver("push", "r-2", SECRET, &push(SHA2, SHA3)).await;
    set_run(&run_file(&harness, SHA3), succeeded("False", "Failed", "step build exited 1"));
    // A run that is gone, and one stuck past the timeout (two hours by default).
    harness.deliver("push", "r-3", SECRET, &push(SHA3, SHA4)).await;
    std::fs::remove_file(run_file(&harness, SHA4)).unwrap();
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!(report.statuses, 2, "{report:?}");
    let failed = commit_status(&harness, SHA3, "ferry/api").unwrap();
    assert_eq!(failed["state"], "failure");
    assert!(failed["description"].as_str().unwrap().ends_with("Failed: step build exited 1"), "{failed}");
    let check: Value = serde_json::from_str(
        &std::fs::read_to_string(harness.data_dir().join("forge/acme/api/checks").join(SHA3).join("ferry_api.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (check["conclusion"].as_str(), check["output"]["title"].as_str()),
        (Some("failure"), Some("api failed"))
    );
    assert!(check["output"]["summary"].as_str().unwrap().contains("> Failed: step build exited 1"), "{check}");
    assert!(!harness.data_dir().join("forge/acme/api/checks").join(SHA2).exists(), "a success needs no check run");
    let gone = commit_status(&harness, SHA4, "ferry/api").unwrap();
    assert_eq!(
        (gone["state"].as_str(), gone["description"].as_str().unwrap().ends_with("gone from the cluster")),
        (Some("error"), true)
    );

    let sha5 = "5555555555555555555555555555555555555555";
    harness.deliver("push", "r-4", SECRET, &push(SHA4, sha5)).await;
    let created = Timestamp::now().minus(Duration::from_secs(3 * 3600));
    set_run(&run_file(&harness, sha5), |run| run["metadata"]["creationTimestamp"] = created.to_rfc3339().into());
    assert_eq!(harness.reconcile(clock.as_ref()).await.statuses, 1);
    let stuck = commit_status(&harness, sha5, "ferry/api").unwrap();
    assert_eq!(stuck["state"], "error");
    assert!(stuck["description"].as_str().unwrap().contains("no result 120 minutes after"), "{stuck}");
}

/// A run written before Ferry listed pending runs (no `listed_as` on its
/// item, as a table from an earlier version holds) is still reported: a
/// repository's first repair writes its pending records again.
#[tokio::test]
async fn a_run_from_before_the_listing_is_listed_again_and_reported_on_dynamodb() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let store = ferry_tests::emulator::dynamo_store().await;
    let table = store.table().to_string();
    let state: Arc<dyn StateStore> = Arc::new(store);
    let harness = harness_on(Harness::with_state(state, SECRET).await, Timestamp::now()).await;
    harness.deliver("push", "old-1", SECRET, &push(SHA1, SHA2)).await;
    let runs = harness.state().runs(&repo("acme/api")).await.unwrap();
    let key = ferry::store::Record::from(runs[0].record.clone()).key();
    let dynamodb = aws_sdk_dynamodb::Client::new(&ferry_tests::emulator::sdk_config().await);
    dynamodb
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(key.pk()))
        .key("sk", AttributeValue::S(key.sk()))
        .update_expression("REMOVE listed_as")
        .send()
        .await
        .unwrap();
    let pending = harness.state().query(&ferry::store::Collection::PendingRuns(repo("acme/api"))).await.unwrap();
    assert!(pending.is_empty(), "as an earlier version left it: not listed");

    set_run(&run_file(&harness, SHA2), succeeded("True", "Succeeded", "All Tasks have completed executing"));
    let clock = SimClock::at(Timestamp::now());
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!((report.statuses, report.failed.len()), (1, 0), "{report:?}");
    assert_eq!(commit_status(&harness, SHA2, "ferry/api").unwrap()["state"], "success");
}

/// Makes the dry-run cluster unable to write runs in `ci` (a file where its directory goes).
fn break_cluster(harness: &Harness) {
    let namespace = harness.data_dir().join("cluster/ci");
    std::fs::create_dir_all(namespace.parent().unwrap()).unwrap();
    std::fs::write(&namespace, "not a directory").unwrap();
}

fn heal_cluster(harness: &Harness) {
    std::fs::remove_file(harness.data_dir().join("cluster/ci")).unwrap();
}

async fn delivery(harness: &Harness, id: &str) -> Delivery {
    let key = Key::Delivery(DeliveryId::parse(id).unwrap());
    harness.state().load::<Delivery>(&key).await.unwrap().unwrap().record
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_backoff_until_it_succeeds_on_dynamodb() {
    let state: Arc<dyn StateStore> = Arc::new(ferry_tests::emulator::dynamo_store().await);
    let harness = harness_on(Harness::with_state(state, SECRET).await, Timestamp::now()).await;
    break_cluster(&harness);
    let (status, reply) = harness.deliver("push", "f-1", SECRET, &push(SHA1, SHA2)).await;
    assert_eq!((status, reply["outcome"].as_str()), (202, Some("failed")), "{reply}");

    let clock = SimClock::at(Timestamp::now());
    assert_eq!(harness.reconcile(clock.as_ref()).await.retried, 0, "backing off");
    clock.advance(Duration::from_secs(61));
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!((report.retried, report.recovered), (1, 0), "{report:?}");
    assert_eq!(delivery(&harness, "f-1").await.attempts, 2);

    heal_cluster(&harness);
    clock.advance(Duration::from_secs(60));
    assert_eq!(harness.reconcile(clock.as_ref()).await.retried, 0, "the second wait is two minutes");
    clock.advance(Duration::from_secs(61));
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!((report.retried, report.recovered), (1, 1), "{report:?}");
    assert_eq!(delivery(&harness, "f-1").await.outcome, Outcome::Processed);
    assert!(run_file(&harness, SHA2).is_file());
    clock.advance(Duration::from_secs(3600));
    assert_eq!(harness.reconcile(clock.as_ref()).await.retried, 0, "done with: no longer listed");
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_given_up_and_reported_on_its_commit() {
    let harness = harness(Timestamp::now()).await;
    break_cluster(&harness);
    harness.deliver("push", "d-1", SECRET, &push(SHA1, SHA2)).await;
    let clock = SimClock::at(Timestamp::now());
    let mut retried = 0;
    let mut dead = 0;
    for _ in 0..10 {
        clock.advance(Duration::from_secs(2 * 3600));
        let report = harness.reconcile(clock.as_ref()).await;
        retried += report.retried;
        dead += report.dead;
    }
    assert_eq!((retried, dead), (5, 1), "six attempts in all, then given up once");
    let given_up = delivery(&harness, "d-1").await;
    assert_eq!((given_up.outcome, given_up.attempts), (Outcome::Dead, 6));
    let status = commit_status(&harness, SHA2, "ferry/delivery").expect("an error status on the commit");
    assert_eq!(status["state"], "error");
    assert!(status["description"].as_str().unwrap().starts_with("Ferry gave up on the push delivery d-1"), "{status}");
}

/// An attempt in GitHub's webhook log, as `GET /app/hook/deliveries` lists it.
fn attempt(id: u64, guid: &str, status_code: u16, redelivery: bool) -> Value {
    json!({
        "id": id, "guid": guid, "delivered_at": Timestamp::now().minus(Duration::from_secs(600)).to_rfc3339(),
        "redelivery": redelivery, "duration": 0.5,
        "status": if status_code == 0 { "timed out".to_owned() } else { status_code.to_string() },
        "status_code": status_code, "event": "push", "action": null,
        "installation_id": 5, "repository_id": 70001
    })
}

#[tokio::test]
async fn exactly_the_deliveries_github_could_not_make_are_redelivered_once() {
    let mut harness = harness(Timestamp::now()).await;
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    harness.set_app_hooks(Arc::new(fake.app(&app_keys().pkcs1_pem, clock.clone())));
    // Ten deliveries, newest first; three failed at GitHub (a 502, a timeout,
    // a 500), one of which Ferry nonetheless recorded (it answered late).
    let failed = [3u64, 6, 9];
    fake.repos(|r| {
        r.hook_deliveries = (1..=10u64)
            .rev()
            .map(|id| {
                attempt(
                    id,
                    &format!("guid-{id}"),
                    if failed.contains(&id) { [502, 0, 500][(id / 3 - 1) as usize] } else { 202 },
                    false,
                )
            })
            .collect();
        r.hook_deliveries.insert(0, attempt(11, "guid-11", 503, false));
    });
    let recorded = ferry_tests::builders::delivery("guid-11", Timestamp::now());
    harness.state().create(&recorded.into()).await.unwrap();

    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!((report.redelivered, report.failed.len()), (3, 0), "{report:?}");
    let mut asked = fake.reported().redelivered;
    asked.sort_unstable();
    assert_eq!(asked, failed);

    // GitHub logs the redeliveries as new attempts; nothing is asked twice.
    fake.repos(|r| {
        for (n, id) in failed.iter().enumerate() {
            r.hook_deliveries.insert(0, attempt(12 + n as u64, &format!("guid-{id}"), 202, true));
        }
    });
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!(report.redelivered, 0, "{report:?}");
    assert_eq!(fake.reported().redelivered.len(), 3);
    // Nothing new since: the log answers 304 to the ETag the cursor keeps.
    let before = fake.reported().not_modified;
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!((report.redelivered, report.failed.len()), (0, 0), "{report:?}");
    assert_eq!(fake.reported().not_modified, before + 1);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// A forge on the fake GitHub, as a process builds it at start: it keeps
/// nothing of earlier cycles but what the store holds.
pub(crate) fn github_forge(harness: &Harness, fake: &FakeGithub) -> Arc<GithubForge> {
    Arc::new(GithubForge::new(
        GithubApi::new(&fake.url()),
        Arc::new(TokenSource { tokens: harness.context().tokens.clone(), state: harness.context().state.clone() }),
    ))
}

pub(crate) async fn github_harness(fake: &FakeGithub, clock: &Arc<SimClock>, operator: &str) -> Harness {
    let mut harness = Harness::with_minter(SECRET, Arc::new(fake.app(&app_keys().pkcs1_pem, clock.clone()))).await;
    for id in [5, 6] {
        let installation = ferry::domain::Installation::new(InstallationId::new(id), "acme", "all");
        harness.state().create(&installation.into()).await.unwrap();
    }
    harness.set_forge(github_forge(&harness, fake));
    let mut harness = harness_on(harness, Timestamp::now()).await;
    harness.set_operator(operator);
    harness
}

/// An unchanged cycle costs no rate limit, in a warm process and in a cold
/// one: the listings' ETags live in the store.
#[tokio::test]
async fn an_unchanged_cycle_asks_only_conditionally_also_after_a_cold_start() {
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    let mut harness = github_harness(&fake, &clock, UNITS).await;
    fake.repos(|r| {
        r.permissions.insert(("acme/api".into(), "someone".into()), "write".into());
        r.open_pulls.insert("acme/api".into(), vec![pr_item(8, SHA2, "2026-11-22T10:00:00Z")]);
    });
    let first = harness.reconcile(clock.as_ref()).await;
    assert_eq!((first.repositories, first.unchanged_listings, first.missed_pull_requests), (1, 0, 1), "{first:?}");
    let second = harness.reconcile(clock.as_ref()).await;
    assert_eq!((second.unchanged_listings, second.failed.len()), (2, 0), "{second:?}");
    assert_eq!(fake.reported().not_modified, 2);
    // A cold process: a new forge, the same store.
    harness.set_forge(github_forge(&harness, &fake));
    let cold = harness.reconcile(clock.as_ref()).await;
    assert_eq!((cold.unchanged_listings, cold.missed_pull_requests), (2, 0), "{cold:?}");
    assert_eq!(fake.reported().not_modified, 4, "both listings asked again, both 304");
    // A change is seen at once, and acted on.
    fake.repos(|r| r.open_pulls.get_mut("acme/api").unwrap().push(pr_item(9, SHA3, "2026-11-22T11:00:00Z")));
    let changed = harness.reconcile(clock.as_ref()).await;
    assert_eq!((changed.unchanged_listings, changed.missed_pull_requests), (1, 1), "{changed:?}");
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// A listing unchanged since it was saved shows what it showed: a pull
/// request opened and closed meanwhile, its close lost, is not taken for
/// listed; two such cycles remove its preview, as any unlisted one's.
#[tokio::test]
async fn an_unchanged_listing_shows_only_what_it_showed() {
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    let harness = github_harness(&fake, &clock, UNITS).await;
    fake.repos(|r| {
        r.permissions.insert(("acme/api".into(), "someone".into()), "write".into());
        r.open_pulls.insert("acme/api".into(), vec![pr_item(8, SHA2, "2026-11-22T10:00:00Z")]);
    });
    let first = harness.reconcile(clock.as_ref()).await;
    assert_eq!(first.missed_pull_requests, 1, "{first:?}");
    // #9 opens (its webhook heard) and closes (its webhook lost): GitHub's
    // listing is as it was, and answers 304.
    let (_, reply) = harness.deliver("pull_request", "p-9", SECRET, &pull_request("opened", 9, SHA3)).await;
    assert!(reply["actions"].to_string().contains("preview.applied"), "{reply}");
    for removed in [0, 1] {
        let report = harness.reconcile(clock.as_ref()).await;
        assert_eq!((report.unchanged_listings, report.previews_removed), (2, removed), "{report:?}");
    }
    let pr = harness
        .state()
        .load::<PullRequest>(&Key::PullRequest(repo("acme/api"), ferry::domain::PrNumber::new(9)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pr.record.state, ferry::domain::PrState::Closed);
    assert!(pr.record.retain_until.is_some(), "closed: kept for the retention only");
}

/// The repositories of one cycle: `in_flight` at once, none started past the
/// deadline, and a rate-limited installation's others wait for the next
/// cycle while other installations go on.
#[tokio::test]
async fn a_rate_limited_installation_waits_while_the_others_go_on() {
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    let harness = github_harness(&fake, &clock, "[reconciler]\nin_flight = 1\n").await;
    // acme/api (installation 5) is tracked already; two more of 5, one of 6.
    for (name, id) in [("acme/b", 5), ("acme/c", 5), ("other/x", 6)] {
        let tracked = Repository {
            installation: Some(InstallationId::new(id)),
            tracked_since: Some(Timestamp::now()),
            ..repository(name)
        };
        harness.state().create(&tracked.into()).await.unwrap();
    }
    fake.repos(|r| {
        r.rate_limited.insert("acme/api".into(), 120);
    });
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!(
        (report.repositories, report.left),
        (2, 2),
        "acme/api and other/x ran; acme/b and acme/c wait: {report:?}"
    );
    assert_eq!(report.rate_limited.get("installation 5"), Some(&Some(Duration::from_secs(120))));
    assert_eq!(report.failed, Vec::<String>::new(), "a rate limit is no failure");
    let asked: Vec<String> = fake.reported().calls.into_iter().map(|(call, _)| call).collect();
    assert!(asked.iter().any(|c| c.contains("other/x/pulls")), "{asked:?}");
    assert!(!asked.iter().any(|c| c.contains("acme/b/") || c.contains("acme/c/")), "{asked:?}");

    // Past the deadline, nothing starts: all of them are left.
    let ports = ferry::usecase::reconcile::Ports::of(harness.context());
    let shared = ferry::usecase::reconcile::Shared::new(ports);
    let versioned = |name| ferry::store::Versioned { record: repository(name), version: ferry::store::Version(1) };
    let repositories = vec![versioned("acme/b"), versioned("acme/c")];
    let past = tokio::time::Instant::now();
    let report = ferry::usecase::reconcile::repair_all(ports, &shared, repositories, Some(past)).await;
    assert_eq!((report.repositories, report.left), (0, 2), "{report:?}");
}

#[tokio::test]
async fn missed_releases_and_pull_requests_are_launched_once() {
    let since = Timestamp::now().minus(Duration::from_secs(24 * 3600));
    let harness = harness(since).await;
    let listings = harness.data_dir().join("forge/acme/api");
    std::fs::create_dir_all(&listings).unwrap();
    let published = |hours_ago: u64| Timestamp::now().minus(Duration::from_secs(hours_ago * 3600)).to_rfc3339();
    std::fs::write(
        listings.join("releases.json"),
        json!([
            {"tag_name": "v2.0.0", "prerelease": false, "draft": false, "target_commitish": SHA3, "published_at": published(1)},
            {"tag_name": "v2.1.0", "prerelease": false, "draft": true, "target_commitish": SHA3, "published_at": null},
            {"tag_name": "v1.0.0", "prerelease": false, "draft": false, "target_commitish": SHA2, "published_at": published(48)}
        ])
        .to_string(),
    )
    .unwrap();
    std::fs::write(listings.join("pulls.json"), json!([pr_item(5, SHA4, "2026-11-22T10:00:00Z")]).to_string()).unwrap();
    let clock = SimClock::at(Timestamp::now());
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!((report.missed_releases, report.missed_pull_requests), (1, 1), "{report:?}");
    let runs: Vec<String> = std::fs::read_dir(runs_dir(&harness))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().any(|r| r.contains("-release-")) && runs.iter().any(|r| r.contains("-pr5-")), "{runs:?}");
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!((report.missed_releases, report.missed_pull_requests), (0, 0), "{report:?}");

    // Closed (heard), then reopened (lost): GitHub's newer listing brings it back.
    let closed = json!({
        "action": "closed", "number": 5, "pull_request": pr_item(5, SHA4, "2026-11-22T10:30:00Z"),
        "repository": {"full_name": "acme/api"}, "installation": {"id": 5}, "sender": {"login": "someone"}
    });
    harness.deliver("pull_request", "x-closed", SECRET, &closed.to_string()).await;
    assert_eq!(harness.reconcile(clock.as_ref()).await.missed_pull_requests, 0, "the listing is older than the close");
    std::fs::write(listings.join("pulls.json"), json!([pr_item(5, SHA4, "2026-11-22T11:00:00Z")]).to_string()).unwrap();
    assert_eq!(harness.reconcile(clock.as_ref()).await.missed_pull_requests, 1, "a lost reopen is repaired");
    assert_eq!(harness.reconcile(clock.as_ref()).await.missed_pull_requests, 0);
}

#[tokio::test]
async fn previews_go_after_two_listings_agree_never_in_an_outage_and_a_few_per_cycle() {
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    let mut harness = Harness::with_minter(SECRET, Arc::new(fake.app(&app_keys().pkcs1_pem, clock.clone()))).await;
    harness
        .state()
        .create(&ferry::domain::Installation::new(InstallationId::new(5), "acme", "all").into())
        .await
        .unwrap();
    let forge = GithubForge::new(
        GithubApi::new(&fake.url()),
        Arc::new(TokenSource { tokens: harness.context().tokens.clone(), state: harness.context().state.clone() }),
    );
    harness.set_forge(Arc::new(forge));
    let harness = harness_on(harness, Timestamp::now()).await;
    fake.repos(|r| {
        r.permissions.insert(("acme/api".into(), "someone".into()), "write".into());
        r.open_pulls.insert(
            "acme/api".into(),
            vec![pr_item(8, SHA2, "2026-11-22T10:00:00Z"), pr_item(9, SHA3, "2026-11-22T10:00:00Z")],
        );
    });
    for (number, head) in [(8, SHA2), (9, SHA3)] {
        let (_, reply) = harness
            .deliver("pull_request", &format!("p-{number}"), SECRET, &pull_request("opened", number, head))
            .await;
        assert!(reply["actions"].to_string().contains("preview.applied"), "{reply}");
    }
    let previews = || -> usize {
        std::fs::read_dir(harness.data_dir().join("cluster"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("preview-"))
            .count()
    };
    assert_eq!(previews(), 2);
    assert_eq!(harness.reconcile(clock.as_ref()).await.previews_removed, 0, "both listed open");

    // Both are closed while the webhooks are lost, and GitHub is down for three cycles.
    fake.repos(|r| {
        r.open_pulls.insert("acme/api".into(), Vec::new());
        r.fail_listings = usize::MAX;
    });
    for _ in 0..3 {
        let report = harness.reconcile(clock.as_ref()).await;
        assert_eq!(report.previews_removed, 0);
        assert!(report.failed.iter().any(|f| f.contains("pull requests")), "{report:?}");
    }
    assert_eq!(previews(), 2, "an outage deletes nothing");

    fake.repos(|r| r.fail_listings = 0);
    assert_eq!(harness.reconcile(clock.as_ref()).await.previews_removed, 0, "one listing is not enough");
    assert_eq!(previews(), 2);
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!(report.previews_removed, 1, "at most one per cycle here: {report:?}");
    assert_eq!(previews(), 1);
    assert_eq!(harness.reconcile(clock.as_ref()).await.previews_removed, 1);
    assert_eq!(previews(), 0);
    assert_eq!(harness.reconcile(clock.as_ref()).await.previews_removed, 0, "nothing left to do");
    let pr = harness
        .state()
        .load::<PullRequest>(&Key::PullRequest(repo("acme/api"), ferry::domain::PrNumber::new(8)))
        .await
        .unwrap()
        .unwrap()
        .record;
    assert_eq!(pr.state, ferry::domain::PrState::Closed);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

fn preview_deployment(harness: &Harness, number: u64) -> PathBuf {
    let namespace = ferry::cluster::manifests::preview_namespace(
        &repo("acme/api"),
        &ferry::domain::UnitName::parse("api").unwrap(),
        &ferry::cluster::manifests::PreviewOf::PullRequest(ferry::domain::PrNumber::new(number)),
    );
    harness.data_dir().join("cluster").join(namespace).join("deployment/api.yaml")
}

fn github_deployment(harness: &Harness, number: u64) -> Value {
    let path = harness.data_dir().join(format!("forge/acme/api/deployments/preview_api_pr-{number}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_preview_is_reported_up_with_its_url_or_failing_with_the_reason() {
    let harness = harness(Timestamp::now()).await;
    let clock = SimClock::at(Timestamp::now());
    for (number, head) in [(21, SHA2), (22, SHA3), (23, SHA4)] {
        harness.deliver("pull_request", &format!("h-{number}"), SECRET, &pull_request("opened", number, head)).await;
        assert_eq!(github_deployment(&harness, number)["state"], "in_progress");
    }
    assert_eq!(harness.reconcile(clock.as_ref()).await.previews_reported, 0, "all still coming up");

    // #21 rolls out; #22's image cannot be pulled; #23 never becomes available.
    set_run(&preview_deployment(&harness, 21), |d| {
        d["status"] = json!({"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1,
                             "conditions": [{"type": "Available", "status": "True"}]});
    });
    set_run(&preview_deployment(&harness, 22), |d| {
        d["status"] = json!({"pods": [{"status": {"containerStatuses": [{"state": {"waiting": {
            "reason": "ImagePullBackOff", "message": "Back-off pulling image \"ghcr.io/acme/api:3333333\""}}}]}}]});
    });
    let report = harness.reconcile(clock.as_ref()).await;
    assert_eq!(report.previews_reported, 2, "{report:?}");
    let up = github_deployment(&harness, 21);
    assert_eq!(
        (up["state"].as_str(), up["environment_url"].as_str()),
        (Some("success"), Some("https://api-pr-21.preview.example.com"))
    );
    let failing = github_deployment(&harness, 22);
    assert_eq!(failing["state"], "failure");
    assert!(
        failing["description"].as_str().unwrap().starts_with("ImagePullBackOff: Back-off pulling image"),
        "{failing}"
    );
    assert_eq!(github_deployment(&harness, 23)["state"], "in_progress");

    clock.advance(Duration::from_secs(11 * 60));
    assert_eq!(harness.reconcile(clock.as_ref()).await.previews_reported, 1);
    let late = github_deployment(&harness, 23);
    assert_eq!(late["state"], "failure");
    assert!(late["description"].as_str().unwrap().contains("not available 10 minutes after"), "{late}");
    assert_eq!(harness.reconcile(clock.as_ref()).await.previews_reported, 0, "each reported once");

    // Closing removes the preview and marks its deployment inactive.
    harness.deliver("pull_request", "h-close", SECRET, &pull_request("closed", 21, SHA2)).await;
    assert_eq!(github_deployment(&harness, 21)["state"], "inactive");
}
