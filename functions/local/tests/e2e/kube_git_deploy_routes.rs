//! Kube Git Deploy's routes through `ferry serve`: the tracked list, track
//! and untrack with a stored GitHub login's token, the login URL, and the
//! per-repository webhook, which takes only its own repository's deliveries.

use crate::common;

use std::path::Path;

use common::{Server, client, sample, serve_demo};
use ferry::domain::signature::{WebhookSecret, sign};
use secrecy::SecretString;
use serde_json::{Value, json};

const ADMIN: &str = "kgd-admin-token";
const SECRET: &str = "kgd-webhook-secret";
const PUBLIC: &str = "https://ferry.example.com/webhook";

fn start(dir: &Path) -> Server {
    start_with(dir, "https://api.github.com")
}

/// `ferry serve` with no App, asking GitHub at `api` for repositories it
/// holds a token for.
fn start_with(dir: &Path, api: &str) -> Server {
    serve_demo(
        dir,
        &[
            ("FERRY_ADMIN_TOKEN", ADMIN),
            ("FERRY_WEBHOOK_SECRET", SECRET),
            ("FERRY_PUBLIC_URL", PUBLIC),
            ("FERRY_GITHUB_OAUTH_CLIENT_ID", "Iv1.kgd"),
            ("FERRY_GITHUB_API_URL", api),
        ],
    )
}

/// `method path` with the admin token (or none): the status and the JSON.
async fn call(server: &Server, method: &str, path: &str, admin: bool, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client().request(method, format!("{}{path}", server.url));
    if admin {
        request = request.bearer_auth(ADMIN);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("ferry serve answers");
    (response.status().as_u16(), response.json().await.expect("a JSON reply"))
}

/// A push signed with `secret`, posted to `path` as GitHub would.
async fn push_to(server: &Server, path: &str, delivery: &str, secret: &str) -> (u16, Value) {
    let body = sample("push.json").to_string();
    let signature = sign(&WebhookSecret::new(SecretString::from(secret.to_owned())), body.as_bytes());
    let response = client()
        .post(format!("{}{path}", server.url))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .expect("ferry serve answers");
    (response.status().as_u16(), response.json().await.expect("a JSON reply"))
}

fn pipeline_runs(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(".ferry/cluster/ci/pipelinerun")).map(|entries| entries.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_s_private_routes_track_list_and_untrack_with_a_logged_in_user_s_token() {
    let fake = ferry_tests::github::FakeGithub::start(std::sync::Arc::new(ferry::domain::SystemClock)).await;
    fake.repos(|r| {
        r.oauth_tokens.insert("gho_octocatstoken".into(), "octocat".into());
    });
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), fake.url().as_str());
    assert_eq!(call(&server, "GET", "/api/v0/github/repositories/tracked", false, None).await.0, 401);
    let (status, listed) = call(&server, "GET", "/api/v0/github/repositories/tracked", true, None).await;
    assert_eq!((status, listed), (200, json!({"ok": true, "repositories": []})));

    // No login stored yet: refused, saying how to log in.
    let (status, reply) = call(&server, "POST", "/api/v0/github/repositories/acme/web", true, None).await;
    assert_eq!((status, &reply["ok"]), (400, &json!(false)), "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("log in with GitHub first"), "{reply}");

    // What the OAuth callback would have stored for octocat.
    let secrets = ferry::secrets::EmbeddedSecrets::open(&dir.path().join(".ferry/secrets.json")).unwrap();
    let name = ferry::secrets::SecretName::parse("oauth/octocat").unwrap();
    use ferry::secrets::SecretStore;
    secrets.put(&name, &SecretString::from("gho_octocatstoken".to_owned())).await.unwrap();

    let body = Some(json!({"login": "octocat"}));
    let (status, reply) = call(&server, "POST", "/api/v0/github/repositories/acme/web", true, body).await;
    assert_eq!((status, reply), (200, json!({"ok": true})));
    // Created on GitHub, with the login's token.
    let hooks = fake.reported().hooks["acme/web"].clone();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["config"]["url"], PUBLIC, "the webhook goes where every token-mode webhook goes");
    let tokens: Vec<String> = fake
        .reported()
        .calls
        .into_iter()
        .filter(|(call, _)| call == "POST /repos/acme/web/hooks")
        .map(|(_, token)| token)
        .collect();
    assert_eq!(tokens, ["gho_octocatstoken"]);
    let repository = ferry::secrets::SecretName::parse("repositories/acme/web").unwrap();
    assert!(secrets.get(&repository).await.unwrap().is_some(), "the login's token is the repository's now");
    let (status, listed) = call(&server, "GET", "/api/v0/github/repositories/tracked", true, None).await;
    assert_eq!((status, listed), (200, json!({"ok": true, "repositories": [{"owner": "acme", "name": "web"}]})));

    let (status, reply) = call(&server, "DELETE", "/api/v0/github/repositories/acme/web", true, None).await;
    assert_eq!((status, reply), (200, json!({"ok": true})));
    assert!(fake.reported().hooks["acme/web"].is_empty(), "the webhook is deleted");
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    let (status, listed) = call(&server, "GET", "/api/v0/github/repositories/tracked", true, None).await;
    assert_eq!((status, listed), (200, json!({"ok": true, "repositories": []})));
    let (status, reply) = call(&server, "DELETE", "/api/v0/github/repositories/acme/web", true, None).await;
    assert_eq!((status, &reply["ok"]), (404, &json!(false)), "{reply}");
}

#[tokio::test]
async fn the_login_url_carries_a_single_use_state() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    assert_eq!(call(&server, "GET", "/api/v0/github/login_url", false, None).await.0, 401);
    let (status, reply) = call(&server, "GET", "/api/v0/github/login_url", true, None).await;
    assert_eq!((status, &reply["ok"]), (200, &json!(true)), "{reply}");
    let url = url_of(&reply["login_url"]);
    assert_eq!(url.path(), "/login/oauth/authorize");
    let state = url.query_pairs().find(|(k, _)| k == "state").expect("a state").1.into_owned();
    assert_eq!(state.len(), 32);
    let (_, again) = call(&server, "GET", "/api/v0/github/login_url", true, None).await;
    assert_ne!(url_of(&again["login_url"]), url, "a fresh state each time");
    // The callback without the state Ferry handed out is refused.
    let (status, reply) = call(&server, "GET", "/api/v0/github/oauth_callback?code=c-1", false, None).await;
    assert_eq!((status, &reply["ok"]), (400, &json!(false)), "{reply}");
}

fn url_of(value: &Value) -> reqwest::Url {
    reqwest::Url::parse(value.as_str().expect("a URL")).unwrap()
}

#[tokio::test]
async fn a_repository_s_web_hook_takes_its_own_signed_pushes_and_refuses_others_unrecorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    // The sample push is for acme/api: acme/web's URL refuses it, records nothing, runs nothing.
    let (status, reply) = push_to(&server, "/api/v0/github/repositories/acme/web/web_hook", "kgd-1", SECRET).await;
    assert_eq!((status, &reply["outcome"]), (400, &json!("rejected")), "{reply}");
    assert!(reply["reason"].as_str().unwrap().contains("for acme/api"), "{reply}");
    assert_eq!(pipeline_runs(dir.path()), 0);
    // Wrongly signed, to the right URL: 401, as /webhook answers.
    let (status, _) = push_to(&server, "/api/v0/github/repositories/acme/api/web_hook", "kgd-2", "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(pipeline_runs(dir.path()), 0);

    // The same delivery id again, to its repository's URL: not a duplicate, so nothing was kept of it.
    let (status, reply) = push_to(&server, "/api/v0/github/repositories/acme/api/web_hook", "kgd-1", SECRET).await;
    assert_eq!((status, &reply["outcome"]), (200, &json!("processed")), "{reply}");
    assert_eq!(reply["actions"][0]["kind"], "pipelinerun.created", "{reply}");
    assert_eq!(pipeline_runs(dir.path()), 1);
    // And it is one delivery with /webhook: the same id there is a duplicate.
    let (status, reply) = push_to(&server, "/webhook", "kgd-1", SECRET).await;
    assert_eq!((status, &reply["outcome"]), (200, &json!("duplicate")), "{reply}");
    assert_eq!(pipeline_runs(dir.path()), 1);
}
