//! Commit statuses and file reads on GitLab, Bitbucket Cloud, Azure DevOps
//! and Gitea, each against a fake built from that host's API documentation.

use ferry::domain::Sha;
use ferry::forge::{CommitStatus, ForgeError, StatusState};
use ferry::report::{FILE_LIMIT, Host, HostRepo, Provider, host};
use ferry_tests::logs;
use ferry_tests::providers::ProviderFake;
use secrecy::SecretString;

const TOKEN: &str = "glpat-provider-token-do-not-log-0123456789";

fn sha() -> Sha {
    Sha::parse("9".repeat(40)).unwrap()
}

fn repo_for(provider: Provider) -> HostRepo {
    HostRepo::new(match provider {
        Provider::Gitlab => "acme/platform/api",
        Provider::Bitbucket => "acme/api",
        Provider::AzureDevops => "acme/platform/api",
        Provider::Gitea => "acme/api",
    })
}

async fn setup(provider: Provider, token: &str) -> (ProviderFake, std::sync::Arc<dyn Host>) {
    logs::capture();
    ferry::telemetry::install_crypto_provider();
    let fake = ProviderFake::start(provider, TOKEN).await;
    let reporter = host(provider, fake.url(), SecretString::from(token.to_owned()), reqwest::Client::new());
    (fake, reporter)
}

const ALL: [Provider; 4] = [Provider::Gitlab, Provider::Bitbucket, Provider::AzureDevops, Provider::Gitea];

#[tokio::test]
async fn a_run_s_statuses_reach_each_host_in_its_own_terms() {
    for provider in ALL {
        let (fake, reporter) = setup(provider, TOKEN).await;
        let repo = repo_for(provider);
        let mut pending =
            CommitStatus::new("ferry/api", StatusState::Pending, "PipelineRun ferry-api-9999999-push started");
        pending.target_url = Some("https://tekton.example.com/#/namespaces/ci/pipelineruns/x".into());
        reporter.report(&repo, &sha(), &pending).await.unwrap_or_else(|e| panic!("{provider:?}: {e}"));
        // Again, as a redelivery would: GitLab refuses the same state twice, and Ferry takes that as done.
        reporter.report(&repo, &sha(), &pending).await.unwrap_or_else(|e| panic!("{provider:?} again: {e}"));
        let success = CommitStatus::new("ferry/api", StatusState::Success, "succeeded");
        reporter.report(&repo, &sha(), &success).await.unwrap_or_else(|e| panic!("{provider:?}: {e}"));
        let failure = CommitStatus::new(
            "ferry/prod-eu-west-1-cluster-of-the-platform-team/api",
            StatusState::Failure,
            "x".repeat(300),
        );
        reporter.report(&repo, &sha(), &failure).await.unwrap_or_else(|e| panic!("{provider:?}: {e}"));
        let error = CommitStatus::new("ferry/docs", StatusState::Error, "cancelled (Cancelled)");
        reporter.report(&repo, &sha(), &error).await.unwrap_or_else(|e| panic!("{provider:?}: {e}"));

        assert_eq!(fake.violations(), Vec::<String>::new(), "{provider:?}");
        let states: Vec<String> = fake.accepted().iter().map(|b| b["state"].as_str().unwrap().to_owned()).collect();
        let expected: &[&str] = match provider {
            Provider::Gitlab => &["pending", "success", "failed", "failed"],
            Provider::Bitbucket => &["INPROGRESS", "INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"],
            Provider::AzureDevops => &["pending", "pending", "succeeded", "failed", "error"],
            Provider::Gitea => &["pending", "pending", "success", "failure", "error"],
        };
        assert_eq!(states, expected, "{provider:?}");
        let first = &fake.accepted()[0];
        let url = first.get("target_url").or(first.get("targetUrl")).or(first.get("url"));
        assert_eq!(url.and_then(|u| u.as_str()), pending.target_url.as_deref(), "{provider:?}: the link");
    }
}

#[tokio::test]
async fn each_host_keeps_one_status_per_context() {
    // Bitbucket: the key (at most 40) stays stable for a long context.
    let (fake, reporter) = setup(Provider::Bitbucket, TOKEN).await;
    let long = "ferry/prod-eu-west-1-cluster-of-the-platform-team/api";
    for state in [StatusState::Pending, StatusState::Success] {
        reporter.report(&repo_for(Provider::Bitbucket), &sha(), &CommitStatus::new(long, state, "s")).await.unwrap();
    }
    let keys: Vec<String> = fake.accepted().iter().map(|b| b["key"].as_str().unwrap().to_owned()).collect();
    assert_eq!(keys[0], keys[1]);
    assert!(keys[0].len() <= 40, "{}", keys[0]);
    assert!(
        fake.accepted()[0]["url"].as_str().unwrap().starts_with("https://bitbucket.org/acme/api/commits/"),
        "a URL is required"
    );
    // Azure DevOps: the context splits into genre and name.
    let (fake, reporter) = setup(Provider::AzureDevops, TOKEN).await;
    reporter
        .report(
            &repo_for(Provider::AzureDevops),
            &sha(),
            &CommitStatus::new("ferry/prod/api", StatusState::Pending, "s"),
        )
        .await
        .unwrap();
    assert_eq!(fake.accepted()[0]["context"], serde_json::json!({"genre": "ferry/prod", "name": "api"}));
}

#[tokio::test]
async fn a_bitbucket_app_password_arrives_as_http_basic() {
    logs::capture();
    ferry::telemetry::install_crypto_provider();
    let app_password = "ci-bot:app-password-do-not-log-0123";
    let fake = ProviderFake::start(Provider::Bitbucket, app_password).await;
    let status = CommitStatus::new("ferry/api", StatusState::Pending, "started");
    let as_given =
        host(Provider::Bitbucket, fake.url(), SecretString::from(app_password.to_owned()), reqwest::Client::new());
    as_given.report(&repo_for(Provider::Bitbucket), &sha(), &status).await.unwrap();
    assert_eq!(fake.accepted().len(), 1, "the fake accepts only Basic base64(user:app-password)");
    // The password alone is a bearer token, which the fake refuses.
    let password_only = host(
        Provider::Bitbucket,
        fake.url(),
        SecretString::from("app-password-do-not-log-0123".to_owned()),
        reqwest::Client::new(),
    );
    let refused = password_only.report(&repo_for(Provider::Bitbucket), &sha(), &status).await.unwrap_err();
    assert!(matches!(refused, ForgeError::Unauthorized), "{refused:?}");
    assert_eq!(fake.accepted().len(), 1);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    logs::assert_no_secrets(&[app_password.to_owned()]);
}

#[tokio::test]
async fn a_refused_token_or_an_outage_is_an_error_that_never_shows_the_token() {
    for provider in ALL {
        let wrong = "wrong-token-that-must-not-leak-abcdef";
        let (fake, reporter) = setup(provider, wrong).await;
        let status = CommitStatus::new("ferry/api", StatusState::Pending, "started");
        let refused = reporter.report(&repo_for(provider), &sha(), &status).await.unwrap_err();
        assert!(matches!(refused, ForgeError::Unauthorized), "{provider:?}: {refused:?}");
        let (fake_ok, reporter_ok) = setup(provider, TOKEN).await;
        fake_ok.fail_next(503);
        let outage = reporter_ok.report(&repo_for(provider), &sha(), &status).await.unwrap_err();
        assert!(matches!(outage, ForgeError::Unavailable(_)), "{provider:?}: {outage:?}");
        for error in [refused.to_string(), outage.to_string(), format!("{refused:?}"), format!("{outage:?}")] {
            assert!(!error.contains(wrong) && !error.contains(TOKEN), "{provider:?}: {error}");
        }
        // A repository named in the wrong shape is refused before any request
        // (GitLab takes a project's numeric id as well as its path).
        if provider != Provider::Gitlab {
            let shape = reporter_ok.report(&HostRepo::new("just-one"), &sha(), &status).await.unwrap_err();
            assert!(shape.to_string().contains("is not"), "{shape}");
        }
        assert!(fake.violations().is_empty() && fake_ok.violations().is_empty(), "{provider:?}");
    }
    logs::assert_no_secrets(&[TOKEN.to_owned(), "wrong-token-that-must-not-leak-abcdef".to_owned()]);
}

#[tokio::test]
async fn each_host_gives_a_file_at_a_commit_and_none_where_there_is_none() {
    for provider in ALL {
        let (fake, host) = setup(provider, TOKEN).await;
        let repo = repo_for(provider);
        fake.put_file(&sha().to_string(), ".ferry.toml", "[api.task]\nref = \"lint\"\n");
        fake.put_file(&sha().to_string(), "deploy/kube-git-deploy.toml", "[api]\n");
        let read = host.file(&repo, &sha(), ".ferry.toml").await.unwrap_or_else(|e| panic!("{provider:?}: {e}"));
        assert_eq!(read.as_deref(), Some("[api.task]\nref = \"lint\"\n"), "{provider:?}");
        let nested = host.file(&repo, &sha(), "deploy/kube-git-deploy.toml").await.unwrap();
        assert_eq!(nested.as_deref(), Some("[api]\n"), "{provider:?}: a path below the root");
        let other = Sha::parse("8".repeat(40)).unwrap();
        assert_eq!(host.file(&repo, &other, ".ferry.toml").await.unwrap(), None, "{provider:?}: not at that commit");
        assert_eq!(fake.violations(), Vec::<String>::new(), "{provider:?}");

        // Too large, refused, or failing: an error without the token.
        fake.put_file(&other.to_string(), "big", &"x".repeat(FILE_LIMIT + 1));
        let big = host.file(&repo, &other, "big").await.unwrap_err();
        assert!(big.to_string().contains("larger than"), "{provider:?}: {big}");
        let (_kept, wrong) = setup(provider, "not-the-token").await;
        let refused = wrong.file(&repo, &sha(), ".ferry.toml").await;
        assert!(matches!(refused, Err(ForgeError::Unauthorized)), "{provider:?}: {refused:?}");
        fake.fail_next(503);
        let down = host.file(&repo, &sha(), ".ferry.toml").await.unwrap_err();
        assert!(matches!(down, ForgeError::Unavailable(_)), "{provider:?}: {down}");
        assert!(!down.to_string().contains(TOKEN));
    }
}

#[tokio::test]
async fn a_repository_s_statuses_also_reach_the_hosts_the_operator_names() {
    let fake = ProviderFake::start(Provider::Gitea, TOKEN).await;
    let mut harness = ferry_tests::webhook::Harness::embedded("mirror-secret").await;
    harness.set_operator(&format!(
        r#"
[repositories."acme/api"]
units = '''
[api.pipeline]
namespace = "ci"
ref = "build"
'''
[[repositories."acme/api".report_to]]
provider = "gitea"
url = "{}"
repository = "acme/api-mirror"
token_secret = "gitea/acme"
"#,
        fake.url()
    ));
    harness.mirror_statuses();
    let name = ferry::secrets::SecretName::parse("gitea/acme").unwrap();
    harness.context().secrets.put(&name, &SecretString::from(TOKEN.to_owned())).await.unwrap();
    let tracked = ferry::domain::Repository {
        installation: Some(ferry::domain::InstallationId::new(5)),
        tracked_since: Some(ferry::domain::Timestamp::now()),
        ..ferry_tests::builders::repository("acme/api")
    };
    harness.state().create(&tracked.into()).await.unwrap();
    let push = serde_json::json!({
        "ref": "refs/heads/main", "before": "1".repeat(40), "after": "2".repeat(40),
        "commits": [{"added": ["a.rs"], "modified": [], "removed": []}],
        "repository": {"full_name": "acme/api"}, "installation": {"id": 5}, "sender": {"login": "octocat"}
    });
    let (status, reply) = harness.deliver("push", "m-1", "mirror-secret", &push.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    // The run succeeds; the reconciler reports it, to GitHub (dry run) and the mirror.
    let runs = harness.data_dir().join("cluster/ci/pipelinerun");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let mut object: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&run).unwrap()).unwrap();
    object["status"] = serde_json::json!({"conditions": [{"type": "Succeeded", "status": "True"}]});
    std::fs::write(&run, serde_yaml_ng::to_string(&object).unwrap()).unwrap();
    let clock = ferry_tests::github::SimClock::at(ferry::domain::Timestamp::now());
    assert_eq!(harness.reconcile(clock.as_ref()).await.statuses, 1);
    let mirrored: Vec<(String, String)> = fake
        .accepted()
        .iter()
        .map(|b| (b["context"].as_str().unwrap().to_owned(), b["state"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        mirrored,
        [("ferry/api".to_owned(), "pending".to_owned()), ("ferry/api".to_owned(), "success".to_owned())]
    );
    assert_eq!(fake.violations(), Vec::<String>::new());
}
