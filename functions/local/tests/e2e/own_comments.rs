//! "Ferry edits only its own comments" (`SECURITY.md`), end to end: the real
//! `ferry serve`, configured as a GitHub App, against the fake GitHub (which
//! checks every request and answer against GitHub's OpenAPI description).
//! A stranger planted Ferry's marker on the pull request before it was
//! opened; Ferry's preview comment is its own, and only its own is edited.

use crate::common;

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Arc;

use common::{Server, demo_config, sample, send_with, serve_logging};
use ferry_tests::github::{APP_ID, FakeGithub, app_keys, app_login};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

const HEAD: &str = "1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f";
const PUSHED: &str = "2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a6c8e0a";
const SECRET: &str = "own-comments-webhook-secret";
const REPO: &str = "acme/api";
const NUMBER: u64 = 42;
/// The stranger's comment, already on the pull request.
const PLANTED: u64 = 7;

/// The sample pull request #42 by the member monalisa, `action` at `head`.
fn pull_request(action: &str, head: &str, updated_at: &str) -> Value {
    let mut payload = sample("pull_request.opened.json");
    payload["action"] = json!(action);
    payload["pull_request"]["head"]["sha"] = json!(head);
    payload["pull_request"]["updated_at"] = json!(updated_at);
    assert_eq!(payload["number"], NUMBER);
    assert_eq!(payload["pull_request"]["user"]["login"], "monalisa");
    assert_eq!(payload["pull_request"]["author_association"], "MEMBER");
    payload
}

/// The App's key, as the operator keeps it: a file only its owner reads.
fn write_key(path: &Path) {
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).expect("create the key file");
    file.write_all(app_keys().pkcs1_pem.expose_secret().as_bytes()).unwrap();
}

/// Signs and posts one delivery with the server's webhook secret: what it answered.
fn deliver(dir: &Path, server: &Server, delivery: &str, payload: &Value) -> String {
    send_with(dir, &server.url, "pull_request", delivery, &payload.to_string(), &[("FERRY_WEBHOOK_SECRET", SECRET)])
}

/// The comments on #42, `(id, author, body)`, as the fake holds them.
fn comments(fake: &FakeGithub) -> Vec<(u64, String, String)> {
    let held = fake.reported();
    held.comments
        .iter()
        .filter(|c| c.0 == REPO && c.1 == NUMBER)
        .map(|c| (c.2, held.comment_authors.get(&c.2).cloned().unwrap_or_else(app_login), c.3.clone()))
        .collect()
}

// Multi-threaded, so the fake (in this process) answers while the test
// waits on `ferry serve` and `ferry replay` (child processes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferry_serve_leaves_a_strangers_marked_comment_alone_and_edits_only_its_own() {
    let fake = FakeGithub::start(Arc::new(ferry::domain::SystemClock)).await;
    let marker = ferry::forge::comment_marker("preview-api");
    let planted = format!("{marker}\n**Preview `api`** is live at https://api-pr-42.preview.evil.example");
    fake.repos(|r| {
        // No `.ferry.toml` in the repository (404): the operator's units apply.
        r.permissions.insert((REPO.into(), "monalisa".into()), "write".into());
        r.pr_files.insert((REPO.into(), NUMBER), vec!["api/src/body.rs".into()]);
        r.comments.push((REPO.into(), NUMBER, PLANTED, planted.clone()));
        r.comment_authors.insert(PLANTED, "mallory".into());
    });

    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("ferry.toml"), demo_config()).unwrap();
    write_key(&dir.join("app.pem"));
    let api = fake.url().as_str().trim_end_matches('/').to_owned();
    let app_id = APP_ID.to_string();
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let server = serve_logging(
        dir,
        &[
            ("FERRY_CONFIG", "ferry.toml"),
            ("FERRY_WEBHOOK_SECRET", SECRET),
            ("FERRY_GITHUB_API_URL", &api),
            ("FERRY_GITHUB_APP_ID", &app_id),
            ("FERRY_GITHUB_APP_PRIVATE_KEY_FILE", "app.pem"),
        ],
        log,
    );
    let log = || std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();

    let opened = deliver(dir, &server, "own-1", &pull_request("opened", HEAD, "2026-11-20T11:00:00Z"));
    assert!(
        opened.contains("preview.applied") && opened.contains("comment.preview"),
        "{opened}\n--- ferry serve ---\n{}",
        log()
    );
    let after_open = comments(&fake);
    assert_eq!(after_open[0], (PLANTED, "mallory".to_owned(), planted.clone()), "the stranger's comment is unchanged");
    let [_, (ours, author, body)] = &after_open[..] else {
        panic!("Ferry posted exactly one comment of its own: {after_open:#?}\n--- ferry serve ---\n{}", log())
    };
    assert_eq!(author, &app_login(), "written by the App's bot");
    assert!(body.starts_with(&marker) && body.contains(&HEAD[..7]), "{body}");

    let pushed = deliver(dir, &server, "own-2", &pull_request("synchronize", PUSHED, "2026-11-20T11:10:00Z"));
    assert!(pushed.contains("comment.preview"), "{pushed}\n--- ferry serve ---\n{}", log());
    let after_push = comments(&fake);
    assert_eq!(after_push.len(), 2, "still the stranger's and one of Ferry's: {after_push:#?}");
    assert_eq!(after_push[0], (PLANTED, "mallory".to_owned(), planted), "the stranger's comment is unchanged");
    let (id, author, body) = &after_push[1];
    assert_eq!((id, author), (ours, &app_login()), "Ferry edited its own comment");
    assert!(body.starts_with(&marker) && body.contains(&PUSHED[..7]) && !body.contains(&HEAD[..7]), "{body}");

    assert_eq!(fake.refused(), Vec::<String>::new(), "every App JWT was accepted");
    assert_eq!(fake.violations(), Vec::<String>::new(), "every call is one GitHub describes");
    drop(server);
}
