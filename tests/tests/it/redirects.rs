//! A credential goes only to the host it was made for: every client Ferry
//! builds refuses a redirect to another origin, so a second server never
//! sees the credential, whatever header carries it; a redirect within the
//! origin is followed.

use ferry::domain::Sha;
use ferry::forge::github::GithubApi;
use ferry::forge::github::api::ApiCall;
use ferry::forge::{CommitStatus, StatusState};
use ferry::poll::source::{Polled, Sources};
use ferry::poll::{SourceKind, TrackedRef};
use ferry::report::{HostRepo, Provider, host};
use http::Method;
use secrecy::SecretString;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

const TOKEN: &str = "tok_mustnotleave0000";

/// `from` answers everything with `status`, pointing at `location`.
async fn redirecting(status: u16, location: &str) -> MockServer {
    ferry::telemetry::install_crypto_provider();
    let from = MockServer::start().await;
    Mock::given(matchers::any())
        .respond_with(ResponseTemplate::new(status).insert_header("location", location))
        .mount(&from)
        .await;
    from
}

/// A server that answers anything 200, and remembers what it was asked.
async fn elsewhere() -> MockServer {
    let to = MockServer::start().await;
    Mock::given(matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .mount(&to)
        .await;
    to
}

/// Every header value of every request `server` received that holds [`TOKEN`].
async fn tokens_seen(server: &MockServer) -> Vec<String> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .flat_map(|r| r.headers.values().filter_map(|v| v.to_str().ok().map(str::to_owned)).collect::<Vec<_>>())
        .filter(|v| v.contains(TOKEN) || decoded_basic(v).contains(TOKEN))
        .collect()
}

fn decoded_basic(value: &str) -> String {
    use base64::Engine;
    let encoded = value.strip_prefix("Basic ").unwrap_or_default();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap_or_default()).unwrap_or_default()
}

fn token() -> SecretString {
    SecretString::from(TOKEN.to_owned())
}

#[tokio::test]
async fn the_github_client_never_takes_a_token_to_another_host() {
    let to = elsewhere().await;
    for status in [301, 302, 307, 308] {
        let from = redirecting(status, &format!("{}/repos/acme/api", to.uri())).await;
        let api = GithubApi::new(&url::Url::parse(&from.uri()).unwrap());
        let answer = api.send(&token(), &ApiCall::new(Method::GET, "/repos/acme/api", None)).await.unwrap();
        assert_eq!(answer.status, status, "the redirect comes back unfollowed");
        assert_eq!(tokens_seen(&from).await.len(), 1, "the API itself got the token");
    }
    assert_eq!(to.received_requests().await.unwrap().len(), 0, "nothing reached the other host");

    // The same port under another name is another host too.
    let from = MockServer::start().await;
    let port = from.address().port();
    Mock::given(matchers::path("/repos/acme/api"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", format!("http://localhost:{port}/stolen")))
        .mount(&from)
        .await;
    let api = GithubApi::new(&url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap());
    assert_eq!(api.send(&token(), &ApiCall::new(Method::GET, "/repos/acme/api", None)).await.unwrap().status, 307);
    let paths: Vec<String> = from.received_requests().await.unwrap().iter().map(|r| r.url.path().to_owned()).collect();
    assert_eq!(paths, ["/repos/acme/api"]);
}

#[tokio::test]
async fn the_github_client_follows_a_renamed_repository_on_its_own_host() {
    ferry::telemetry::install_crypto_provider();
    let github = MockServer::start().await;
    Mock::given(matchers::path("/repos/acme/old-name"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "/repositories/42"))
        .mount(&github)
        .await;
    Mock::given(matchers::path("/repositories/42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"full_name": "acme/new-name"})))
        .mount(&github)
        .await;
    let api = GithubApi::new(&url::Url::parse(&github.uri()).unwrap());
    let answer = api.send(&token(), &ApiCall::new(Method::GET, "/repos/acme/old-name", None)).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(tokens_seen(&github).await, [format!("Bearer {TOKEN}"), format!("Bearer {TOKEN}")]);
}

#[tokio::test]
async fn no_host_adapter_takes_its_token_to_another_host() {
    let sha = Sha::parse("a".repeat(40)).unwrap();
    let status = CommitStatus::new("ferry/api", StatusState::Success, "built");
    let cases = [
        (Provider::Gitlab, "group/project", "private-token"),
        (Provider::Bitbucket, "workspace/repo", "authorization"),
        (Provider::AzureDevops, "org/project/repo", "authorization"),
        (Provider::Gitea, "owner/repo", "authorization"),
    ];
    for (provider, path, header) in cases {
        let to = elsewhere().await;
        let from = redirecting(307, &format!("{}/collect", to.uri())).await;
        let base = url::Url::parse(&from.uri()).unwrap();
        let http = ferry::net::client_builder().build().unwrap();
        let adapter = host(provider, base, token(), http);
        let answer = adapter.report(&HostRepo::new(path), &sha, &status).await;
        assert!(answer.is_err(), "{provider:?}: a refused redirect is a failed report");
        let read = adapter.file(&HostRepo::new(path), &sha, ".ferry.toml").await;
        assert!(read.is_err(), "{provider:?}: and a failed read, not a missing file");
        let sent = from.received_requests().await.unwrap();
        assert!(sent.iter().all(|r| r.headers.contains_key(header)), "{provider:?} sends its token in {header}");
        assert_eq!(tokens_seen(&from).await.len(), 2, "{provider:?}");
        assert_eq!(to.received_requests().await.unwrap().len(), 0, "{provider:?}: nothing reached the other host");
    }
}

#[tokio::test]
async fn reqwests_own_policy_would_have_leaked_private_token() {
    // Why Ferry's rule is needed: reqwest drops Authorization on a cross-host
    // redirect but carries a custom header like GitLab's along.
    let to = elsewhere().await;
    let from = redirecting(307, &format!("{}/collect", to.uri())).await;
    let sha = Sha::parse("a".repeat(40)).unwrap();
    let status = CommitStatus::new("ferry/api", StatusState::Success, "built");
    let base = url::Url::parse(&from.uri()).unwrap();
    let plain = host(Provider::Gitlab, base, token(), reqwest::Client::new());
    plain.report(&HostRepo::new("group/project"), &sha, &status).await.unwrap();
    assert_eq!(tokens_seen(&to).await, [TOKEN]);
}

#[tokio::test]
async fn the_poller_never_takes_a_token_to_another_host() {
    let to = elsewhere().await;
    let from = redirecting(302, &format!("{}/api/v4/projects/group%2Fproject/repository/commits/main", to.uri())).await;
    let sources = Sources::new(&url::Url::parse("https://api.github.com").unwrap());
    for kind in [SourceKind::Gitlab, SourceKind::Github, SourceKind::Git] {
        let tracked = TrackedRef {
            api_url: Some(from.uri()),
            token_secret: Some("gitlab-token".into()),
            ..ferry_tests::builders::tracked_ref(&format!("{}/group/project", from.uri()), kind)
        };
        let polled = sources.fetch(&tracked, Some(&token()), None).await;
        assert!(matches!(polled, Polled::Failed(_)), "{kind:?}: {polled:?}");
    }
    assert_eq!(tokens_seen(&from).await.len(), 3);
    assert_eq!(to.received_requests().await.unwrap().len(), 0, "nothing reached the other host");
}

#[tokio::test]
async fn the_shared_client_refuses_a_change_of_host_too() {
    // The client the composition root builds for OAuth, mirrors and event delivery.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let config = ferry::Config::from_lookup(|name| (name == "FERRY_DATA_DIR").then(|| data_dir.clone())).unwrap();
    let context = ferry::Context::connect(config).await.unwrap();
    assert!(!context.http.is_built(), "starting builds no client: it would read the root certificates at init");
    let to = elsewhere().await;
    let from = redirecting(308, &to.uri()).await;
    let sent =
        context.http.get().unwrap().post(from.uri()).header("private-token", TOKEN).bearer_auth(TOKEN).send().await;
    assert!(sent.is_err(), "a redirect to another host is refused");
    assert_eq!(to.received_requests().await.unwrap().len(), 0);
}
