//! The management API through the real Lambda handler: tracking and
//! untracking repositories, App and repository-token modes, against the fake
//! GitHub (every request checked against GitHub's API description).

use std::sync::Arc;

use ferry::forge::github::{GithubApi, GithubForge};
use ferry::usecase::tokens::TokenSource;
use ferry_tests::github::{FakeGithub, SimClock, app_keys};
use ferry_tests::webhook::Harness;
use serde_json::{Value, json};

const SECRET: &str = "management-webhook-secret";
const ADMIN: &str = "admin-token-for-the-management-api";
const PAT: &str = "ghp_repositorytokenforacmeapi000000000";
const PUBLIC: &str = "https://ferry.example.com/webhook";

/// An HTTP API (payload 2.0) request, optionally authorised by API Gateway with IAM.
fn request(method: &str, path: &str, bearer: Option<&str>, body: Option<Value>, iam: bool) -> Value {
    let mut headers = json!({"content-type": "application/json", "user-agent": "curl/8"});
    if let Some(token) = bearer {
        headers["authorization"] = format!("Bearer {token}").into();
    }
    let mut context = json!({
        "accountId": "123456789012", "apiId": "a1b2c3d4e5",
        "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com", "domainPrefix": "a1b2c3d4e5",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "curl/8"},
        "requestId": "id", "routeKey": "ANY /api/{proxy+}", "stage": "$default",
        "time": "22/Nov/2026:08:00:00 +0000", "timeEpoch": 1_795_000_000_000_u64
    });
    if iam {
        context["authorizer"] = json!({"iam": {
            "accessKey": "AKIAEXAMPLE", "accountId": "123456789012", "callerId": "AIDAEXAMPLE",
            "principalOrgId": null, "userArn": "arn:aws:iam::123456789012:user/ops", "userId": "AIDAEXAMPLE"
        }});
    }
    json!({
        "version": "2.0", "routeKey": "ANY /api/{proxy+}", "rawPath": path, "rawQueryString": "",
        "headers": headers, "requestContext": context,
        "body": body.map(|b| b.to_string()), "isBase64Encoded": false
    })
}

struct Setup {
    harness: Harness,
    fake: FakeGithub,
}

async fn setup(admin: bool) -> Setup {
    let clock = SimClock::at(ferry::domain::Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    let api = fake.url().to_string();
    let mut variables = vec![
        ("FERRY_PUBLIC_URL", PUBLIC),
        ("FERRY_GITHUB_API_URL", api.as_str()),
        ("FERRY_GITHUB_OAUTH_CLIENT_ID", "Iv1.ferry"),
    ];
    if admin {
        variables.push(("FERRY_ADMIN_TOKEN", ADMIN));
    }
    let mut harness = Harness::embedded_with(SECRET, &variables).await;
    let forge = GithubForge::new(
        GithubApi::new(&fake.url()),
        Arc::new(TokenSource { tokens: harness.context().tokens.clone(), state: harness.context().state.clone() }),
    );
    harness.set_forge(Arc::new(forge));
    fake.repos(|r| r.pats.push(PAT.into()));
    let _ = app_keys();
    Setup { harness, fake }
}

async fn call(setup: &Setup, method: &str, path: &str, bearer: Option<&str>, body: Option<Value>) -> (u16, Value) {
    setup.harness.invoke(&request(method, path, bearer, body, false)).await
}

async fn tracked(setup: &Setup) -> Vec<Value> {
    let (status, list) = call(setup, "GET", "/api/v0/repositories", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{list}");
    list["repositories"].as_array().unwrap().clone()
}

#[tokio::test]
async fn without_the_admin_token_nothing_is_answered_or_changed() {
    let setup = setup(true).await;
    for bearer in [None, Some("wrong")] {
        let (status, reply) =
            call(&setup, "POST", "/api/v0/repositories/acme/api", bearer, Some(json!({"mode": "token", "token": PAT})))
                .await;
        assert_eq!(status, 401, "{reply}");
        assert_eq!(call(&setup, "GET", "/api/v0/repositories", bearer, None).await.0, 401);
    }
    assert!(tracked(&setup).await.is_empty());
    assert!(setup.fake.reported().hooks.is_empty(), "no call reached GitHub");
    // Without FERRY_ADMIN_TOKEN only API Gateway's IAM authorisation lets a call in.
    let iam_only = self::setup(false).await;
    assert_eq!(iam_only.harness.invoke(&request("GET", "/api/v0/repositories", None, None, false)).await.0, 401);
    assert_eq!(iam_only.harness.invoke(&request("GET", "/api/v0/repositories", None, None, true)).await.0, 200);
}

#[tokio::test]
async fn tracking_with_a_token_creates_one_webhook_and_untracking_removes_everything() {
    let setup = setup(true).await;
    let body = json!({"mode": "token", "token": PAT});
    let (status, reply) = call(&setup, "POST", "/api/v0/repositories/acme/api", Some(ADMIN), Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    let hooks = setup.fake.reported().hooks["acme/api"].clone();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["config"]["url"], PUBLIC);
    assert_eq!(hooks[0]["config"]["content_type"], "json");
    assert_eq!(hooks[0]["config"]["secret"], SECRET);
    assert_eq!(hooks[0]["events"], json!(["push", "pull_request", "release", "issue_comment"]));
    assert_eq!(reply["repository"]["mode"], "token");
    assert_eq!(reply["repository"]["hook_id"], hooks[0]["id"]);
    assert!(!reply.to_string().contains(PAT), "the token is never echoed");

    // Tracking again (the token is stored now) leaves one webhook.
    let (status, _) =
        call(&setup, "POST", "/api/v0/repositories/acme/api", Some(ADMIN), Some(json!({"mode": "token"}))).await;
    assert_eq!(status, 200);
    assert_eq!(setup.fake.reported().hooks["acme/api"].len(), 1);
    assert_eq!(tracked(&setup).await.len(), 1);

    let (status, reply) = call(&setup, "DELETE", "/api/v0/repositories/acme/api", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{reply}");
    assert!(setup.fake.reported().hooks["acme/api"].is_empty(), "the webhook is deleted");
    assert!(tracked(&setup).await.is_empty());
    let token = ferry::secrets::SecretName::repository(&ferry_tests::builders::repo("acme/api")).unwrap();
    assert!(setup.harness.context().secrets.get(&token).await.unwrap().is_none(), "and the token");
    assert_eq!(call(&setup, "DELETE", "/api/v0/repositories/acme/api", Some(ADMIN), None).await.0, 404);
    assert_eq!(setup.fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn app_mode_records_the_repository_and_bad_input_changes_nothing() {
    let setup = setup(true).await;
    assert_eq!(call(&setup, "POST", "/api/v0/repositories/acme/web", Some(ADMIN), None).await.0, 201);
    assert_eq!(call(&setup, "POST", "/api/v0/repositories/acme/web", Some(ADMIN), None).await.0, 200);
    let listed = tracked(&setup).await;
    assert_eq!((listed[0]["repository"].as_str(), listed[0]["mode"].as_str()), (Some("acme/web"), Some("app")));

    // An invalid name is refused before any call.
    let (status, _) = call(&setup, "POST", "/api/v0/repositories/acme/we%20b", Some(ADMIN), None).await;
    assert_eq!(status, 400);
    let (status, _) =
        call(&setup, "POST", "/api/v0/repositories/acme/api", Some(ADMIN), Some(json!({"mode": "owner"}))).await;
    assert_eq!(status, 400);
    // GitHub refuses the webhook (no admin right): its message, and nothing kept.
    setup.fake.repos(|r| r.hooks_forbidden = true);
    let (status, reply) = call(
        &setup,
        "POST",
        "/api/v0/repositories/acme/api",
        Some(ADMIN),
        Some(json!({"mode": "token", "token": PAT})),
    )
    .await;
    assert_eq!(status, 502, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("Not Found"), "{reply}");
    assert_eq!(tracked(&setup).await.len(), 1, "only acme/web");
    let token = ferry::secrets::SecretName::repository(&ferry_tests::builders::repo("acme/api")).unwrap();
    assert!(setup.harness.context().secrets.get(&token).await.unwrap().is_none(), "the token stored for it went again");
    // A repository already tracked with a token keeps it when tracking it
    // again with another fails.
    let web = ferry::secrets::SecretName::repository(&ferry_tests::builders::repo("acme/web")).unwrap();
    let before = secrecy::SecretString::from("ghp_thetokenthatworks".to_owned());
    setup.harness.context().secrets.put(&web, &before).await.unwrap();
    let (status, _) = call(
        &setup,
        "POST",
        "/api/v0/repositories/acme/web",
        Some(ADMIN),
        Some(json!({"mode": "token", "token": "ghp_anothertoken"})),
    )
    .await;
    assert_eq!(status, 502);
    let kept = setup.harness.context().secrets.get(&web).await.unwrap().expect("the earlier token is back");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&kept), "ghp_thetokenthatworks");
    assert_eq!(setup.fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn healthz_says_which_server_answered_and_deep_checks_each_dependency() {
    let setup = setup(true).await;
    let (status, public) = call(&setup, "GET", "/healthz", None, None).await;
    assert_eq!((status, public["server"].as_str(), public["ok"].as_bool()), (200, Some("public"), Some(true)));
    assert_eq!(public["version"], env!("CARGO_PKG_VERSION"));
    let (status, _) = call(&setup, "GET", "/healthz?deep=1", None, None).await;
    assert_eq!(status, 401, "a deep check is for authorised callers");
    let mut deep = request("GET", "/healthz", Some(ADMIN), None, false);
    deep["rawQueryString"] = "deep=1".into();
    let (status, report) = setup.harness.invoke(&deep).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["server"], "private");
    for check in ["state", "secrets", "cluster"] {
        assert_eq!(report["checks"][check]["ok"], true, "{check}: {report}");
        assert!(report["checks"][check]["ms"].is_u64(), "{report}");
    }
}

#[tokio::test]
async fn the_github_login_stores_the_user_s_token_once_and_refuses_a_replayed_state() {
    let setup = setup(true).await;
    let secret = ferry::secrets::SecretName::parse("oauth-client-secret").unwrap();
    setup
        .harness
        .context()
        .secrets
        .put(&secret, &secrecy::SecretString::from("client-secret".to_owned()))
        .await
        .unwrap();
    setup.fake.repos(|r| {
        r.oauth_client = Some(("Iv1.ferry".into(), "client-secret".into()));
        r.oauth_codes.insert("code-1".into(), "octocat".into());
    });
    assert_eq!(call(&setup, "GET", "/api/v0/github/login_url", None, None).await.0, 401);
    let (status, reply) = call(&setup, "GET", "/api/v0/github/login_url", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{reply}");
    let url = url::Url::parse(reply["url"].as_str().unwrap()).unwrap();
    assert_eq!(url.path(), "/login/oauth/authorize");
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "Iv1.ferry");
    let state = query["state"].clone();
    assert_eq!(state.len(), 32);

    let callback = |code: &str, state: &str| {
        let mut event = request("GET", "/api/v0/github/oauth_callback", None, None, false);
        event["rawQueryString"] = format!("code={code}&state={state}").into();
        event
    };
    let (status, reply) = setup.harness.invoke(&callback("code-1", &state)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"ok": true, "login": "octocat", "stored_as": "oauth/octocat"}));
    let stored = ferry::secrets::SecretName::parse("oauth/octocat").unwrap();
    let token = setup.harness.context().secrets.get(&stored).await.unwrap().expect("the token is stored");
    use secrecy::ExposeSecret;
    assert!(setup.fake.reported().oauth_tokens.contains_key(token.expose_secret()));

    // The same state again, an unknown one, and a bad code: 400, nothing stored.
    assert_eq!(setup.harness.invoke(&callback("code-1", &state)).await.0, 400, "a state works once");
    assert_eq!(setup.harness.invoke(&callback("code-1", &"0".repeat(32))).await.0, 400);
    let (_, fresh) = call(&setup, "GET", "/api/v0/github/login_url", Some(ADMIN), None).await;
    let fresh_url = url::Url::parse(fresh["url"].as_str().unwrap()).unwrap();
    let fresh_state = fresh_url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let (status, reply) = setup.harness.invoke(&callback("not-a-code", &fresh_state)).await;
    assert_eq!(status, 400);
    assert!(reply["error"].as_str().unwrap().contains("incorrect or expired"), "{reply}");
    assert_eq!(setup.fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_repository_tracked_with_its_token_launches_from_its_own_webhook() {
    let setup = setup(true).await;
    setup.fake.repos(|r| {
        r.files.insert(
            ("acme/api".into(), ".ferry.toml".into()),
            "[api.pipeline]\nnamespace = \"ci\"\nref = \"build\"\nparams = { revision = \"{{ git.sha }}\" }\n".into(),
        );
    });
    let body = json!({"mode": "token", "token": PAT});
    assert_eq!(call(&setup, "POST", "/api/v0/repositories/acme/api", Some(ADMIN), Some(body)).await.0, 201);
    // A repository webhook's delivery carries no installation.
    let push = json!({
        "ref": "refs/heads/main", "before": "1".repeat(40), "after": "2".repeat(40),
        "commits": [{"added": ["a.rs"], "modified": [], "removed": []}],
        "repository": {"full_name": "acme/api", "clone_url": "https://github.com/acme/api.git"},
        "sender": {"login": "octocat"}
    });
    let (status, reply) = setup.harness.deliver("push", "t-1", SECRET, &push.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["actions"][0]["kind"], "pipelinerun.created", "{reply}");
    let statuses = setup.fake.reported().statuses;
    assert_eq!(statuses.len(), 1, "the pending status, posted with the repository's token");
    assert_eq!(statuses[0].2["state"], "pending");
    assert_eq!(setup.fake.violations(), Vec::<String>::new());
}

/// Logs `login` in through the OAuth flow (the fake knows `code`): the token stored.
async fn log_in(setup: &Setup, code: &str, login: &str) -> String {
    setup.fake.repos(|r| {
        r.oauth_client = Some(("Iv1.ferry".into(), "client-secret".into()));
        r.oauth_codes.insert(code.into(), login.into());
    });
    let (status, reply) = call(setup, "GET", "/api/v0/github/login_url", Some(ADMIN), None).await;
    assert_eq!((status, &reply["ok"]), (200, &json!(true)), "{reply}");
    let url = url::Url::parse(reply["login_url"].as_str().unwrap()).unwrap();
    let state = url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let mut callback = request("GET", "/api/v0/github/oauth_callback", None, None, false);
    callback["rawQueryString"] = format!("code={code}&state={state}").into();
    let (status, reply) = setup.harness.invoke(&callback).await;
    assert_eq!(status, 200, "{reply}");
    let stored = ferry::secrets::SecretName::parse(format!("oauth/{login}")).unwrap();
    let token = setup.harness.context().secrets.get(&stored).await.unwrap().expect("the login's token");
    use secrecy::ExposeSecret;
    token.expose_secret().to_owned()
}

/// The tokens the fake saw on calls `METHOD path`.
fn tokens_on(setup: &Setup, call: &str) -> Vec<String> {
    setup.fake.reported().calls.into_iter().filter(|(c, _)| c == call).map(|(_, token)| token).collect()
}

#[tokio::test]
async fn kube_git_deploy_s_flow_tracks_with_the_logged_in_user_s_token_and_keeps_using_it() {
    let setup = setup(true).await;
    let client_secret = ferry::secrets::SecretName::parse("oauth-client-secret").unwrap();
    let value = secrecy::SecretString::from("client-secret".to_owned());
    setup.harness.context().secrets.put(&client_secret, &value).await.unwrap();
    setup.fake.repos(|r| {
        r.files.insert(
            ("acme/web".into(), ".ferry.toml".into()),
            "[web.pipeline]\nnamespace = \"ci\"\nref = \"build\"\n".into(),
        );
    });
    // No login yet: a clear error, nothing asked of GitHub.
    let (status, reply) = call(&setup, "POST", "/api/v0/github/repositories/acme/web", Some(ADMIN), None).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["ok"], false);
    assert!(reply["error"].as_str().unwrap().contains("no GitHub login is stored"), "{reply}");
    assert!(setup.fake.reported().calls.is_empty());

    let octocat = log_in(&setup, "code-1", "octocat").await;
    let (status, reply) = call(&setup, "POST", "/api/v0/github/repositories/acme/web", Some(ADMIN), None).await;
    assert_eq!((status, reply), (200, json!({"ok": true})));
    let hooks = setup.fake.reported().hooks["acme/web"].clone();
    assert_eq!(hooks.len(), 1);
    assert_eq!((&hooks[0]["config"]["url"], &hooks[0]["config"]["secret"]), (&json!(PUBLIC), &json!(SECRET)));
    assert_eq!(
        tokens_on(&setup, "POST /repos/acme/web/hooks"),
        std::slice::from_ref(&octocat),
        "created with the login's token"
    );
    let (status, listed) = call(&setup, "GET", "/api/v0/github/repositories/tracked", Some(ADMIN), None).await;
    assert_eq!((status, listed), (200, json!({"ok": true, "repositories": [{"owner": "acme", "name": "web"}]})));

    // A push to the repository reads its file and reports with the same token.
    let push = json!({
        "ref": "refs/heads/main", "before": "1".repeat(40), "after": "2".repeat(40),
        "commits": [{"added": ["a.rs"], "modified": [], "removed": []}],
        "repository": {"full_name": "acme/web", "clone_url": "https://github.com/acme/web.git"},
        "sender": {"login": "octocat"}
    });
    let (status, reply) = setup.harness.deliver("push", "kgd-1", SECRET, &push.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["actions"][0]["kind"], "pipelinerun.created", "{reply}");
    assert_eq!(tokens_on(&setup, "GET /repos/acme/web/contents/.ferry.toml"), std::slice::from_ref(&octocat));
    let statuses = format!("POST /repos/acme/web/statuses/{}", "2".repeat(40));
    assert_eq!(tokens_on(&setup, &statuses), std::slice::from_ref(&octocat));

    // Two logins: the request names one, or is refused saying so.
    let hubot = log_in(&setup, "code-2", "hubot").await;
    let (status, reply) = call(&setup, "POST", "/api/v0/github/repositories/acme/api", Some(ADMIN), None).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("several GitHub logins are stored (hubot, octocat)"), "{reply}");
    let body = Some(json!({"login": "hubot"}));
    let (status, reply) = call(&setup, "POST", "/api/v0/github/repositories/acme/api", Some(ADMIN), body).await;
    assert_eq!((status, reply), (200, json!({"ok": true})));
    assert_eq!(tokens_on(&setup, "POST /repos/acme/api/hooks"), [hubot]);
    let body = Some(json!({"login": "mona"}));
    let (status, reply) = call(&setup, "POST", "/api/v0/github/repositories/acme/api", Some(ADMIN), body).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("no token is stored for GitHub login mona"), "{reply}");

    // Untracking deletes the webhook with the repository's token.
    let (status, reply) = call(&setup, "DELETE", "/api/v0/github/repositories/acme/web", Some(ADMIN), None).await;
    assert_eq!((status, reply), (200, json!({"ok": true})));
    assert!(setup.fake.reported().hooks["acme/web"].is_empty());
    let (status, reply) = call(&setup, "DELETE", "/api/v0/github/repositories/acme/web", Some(ADMIN), None).await;
    assert_eq!((status, reply["ok"].clone()), (404, json!(false)));
    // Without the admin token the seed's private routes answer nothing.
    assert_eq!(call(&setup, "GET", "/api/v0/github/repositories/tracked", None, None).await.0, 401);
    assert_eq!(call(&setup, "POST", "/api/v0/github/repositories/acme/x", None, None).await.0, 401);
    assert_eq!(setup.fake.violations(), Vec::<String>::new());
}
