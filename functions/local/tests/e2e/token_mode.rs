//! Repository-token mode through `ferry serve` with no GitHub App: the
//! repository's own token reaches GitHub (the fake) for its webhook, its
//! `.ferry.toml` and its statuses.

use crate::common;

use std::io::Write;
use std::process::Stdio;

use common::{client, ferry_command, serve_with};
use ferry::domain::signature::{WebhookSecret, sign};
use ferry_tests::github::FakeGithub;
use secrecy::SecretString;
use serde_json::json;

const TOKEN: &str = "ghp_acmewebrepositorytoken";
const ADMIN: &str = "admin-token-for-the-test";
const PUBLIC_URL: &str = "https://ferry.example.com/webhook";
const PUSHED: &str = "3c5e7a9c1e3a5c7e9a1c3e5a7c9e1a3c5e7a9c1e";

#[tokio::test]
async fn a_repository_tracked_with_its_token_talks_to_github_without_an_app() {
    let fake = FakeGithub::start(std::sync::Arc::new(ferry::domain::SystemClock)).await;
    fake.repos(|r| {
        r.pats.push(TOKEN.into());
        r.files.insert(
            ("acme/web".into(), ".ferry.toml".into()),
            "[web.task]\nnamespace = \"ci\"\nref = \"lint\"\n".into(),
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let api = fake.url().to_string();
    let variables =
        [("FERRY_GITHUB_API_URL", api.as_str()), ("FERRY_PUBLIC_URL", PUBLIC_URL), ("FERRY_ADMIN_TOKEN", ADMIN)];
    let server = serve_with(dir.path(), &variables);

    // Tracked through the running server's management API, the token on stdin.
    let mut track = ferry_command(dir.path(), &["track", "acme/web", "--token", "--url", &server.url], &variables)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(track.stdin.take().unwrap(), "{TOKEN}").unwrap();
    let output = track.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // The fake accepts no token but TOKEN: the webhook was created with it.
    let hooks = fake.reported().hooks.get("acme/web").cloned().unwrap_or_default();
    assert_eq!(
        hooks.len(),
        1,
        "one webhook on GitHub: {hooks:?}; ferry track said {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(hooks[0]["config"]["url"], PUBLIC_URL, "delivering to FERRY_PUBLIC_URL");
    let hook_secret = hooks[0]["config"]["secret"].as_str().expect("the webhook's secret").to_owned();
    assert!(!dir.path().join(".ferry/forge/acme/web").exists(), "nothing went to the dry-run forge");

    // A delivery from that webhook: signed with its secret, no installation.
    let push = json!({
        "ref": "refs/heads/main", "before": "1".repeat(40), "after": PUSHED,
        "commits": [{"added": ["a.rs"], "modified": [], "removed": []}],
        "repository": {"full_name": "acme/web", "clone_url": "https://github.com/acme/web.git"},
        "sender": {"login": "octocat"}
    })
    .to_string();
    let signature = sign(&WebhookSecret::new(SecretString::from(hook_secret)), push.as_bytes());
    let reply = client()
        .post(format!("{}/webhook", server.url))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", "token-mode-1")
        .header("x-hub-signature-256", signature)
        .body(push)
        .send()
        .await
        .unwrap();
    let status = reply.status();
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["actions"][0]["kind"], "taskrun.created", "the unit from .ferry.toml on GitHub: {body}");

    let statuses = fake.reported().statuses;
    assert_eq!(statuses.len(), 1, "the pending status, posted to GitHub with the token: {statuses:?}");
    assert_eq!((statuses[0].0.as_str(), statuses[0].1.as_str()), ("acme/web", PUSHED));
    assert_eq!(statuses[0].2["context"], "ferry/web");
    assert_eq!(statuses[0].2["state"], "pending");
    assert_eq!(fake.violations(), Vec::<String>::new());
}
