//! The GitHub forge against the fake GitHub: every request checked against
//! GitHub's OpenAPI description, made with an installation token the fake
//! issued, and a revoked token replaced once.

use std::sync::Arc;

use ferry::domain::tokens::Credential;
use ferry::domain::{Installation, InstallationId, PrNumber, Sha, Timestamp};
use ferry::forge::github::{GithubApi, GithubForge};
use ferry::forge::{CheckRun, CommitStatus, Forge, Listed, StatusState, Target};
use ferry::secrets::SecretStore;
use ferry::store::StateStore;
use ferry::usecase::tokens::{TokenSource, Tokens};
use ferry_tests::builders::repo;
use ferry_tests::github::{FakeGithub, SimClock, app_keys, app_login};
use ferry_tests::logs;

struct Setup {
    _dir: tempfile::TempDir,
    fake: FakeGithub,
    forge: GithubForge,
    secrets: Arc<dyn SecretStore>,
}

async fn setup() -> Setup {
    logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(ferry_tests::embedded::state_in(dir.path()));
    let secrets: Arc<dyn SecretStore> = Arc::new(ferry_tests::embedded::secrets_in(dir.path()));
    state.create(&Installation::new(InstallationId::new(5), "acme", "all").into()).await.unwrap();
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    let app = Arc::new(fake.app(&app_keys().pkcs1_pem, clock.clone()));
    let tokens = Arc::new(Tokens::new(secrets.clone(), app, clock));
    let forge = GithubForge::new(GithubApi::new(&fake.url()), Arc::new(TokenSource { tokens, state }));
    Setup { _dir: dir, fake, forge, secrets }
}

fn target() -> Target {
    Target { repo: repo("acme/api"), credential: Credential::Installation(InstallationId::new(5)) }
}

fn sha(digit: char) -> Sha {
    Sha::parse(digit.to_string().repeat(40)).unwrap()
}

fn clean(setup: &Setup) {
    assert_eq!(setup.fake.violations(), Vec::<String>::new(), "requests outside GitHub's API description");
    let secrets: Vec<String> = setup.fake.minted().into_iter().map(|m| m.token).collect();
    logs::assert_no_secrets(&secrets);
}

#[tokio::test]
async fn files_pull_request_changes_and_commits_are_read_with_an_installation_token() {
    let setup = setup().await;
    setup.fake.repos(|r| {
        r.files.insert(("acme/api".into(), ".ferry.toml".into()), "[api.task]\nref = \"x\"\n".into());
        r.files.insert(("acme/api".into(), "deploy/values dev.yaml".into()), "a: 1\n".into());
        let many: Vec<String> = (0..250).map(|i| format!("src/f{i}.rs")).collect();
        r.pr_files.insert(("acme/api".into(), 7), many);
        r.pr_files.insert(("acme/api".into(), 8), (0..3000).map(|i| format!("f{i}")).collect());
        r.commits.insert(("acme/api".into(), "v1.0.0".into()), "a".repeat(40));
    });
    let forge = &setup.forge;
    let at = target();
    assert_eq!(forge.file(&at, &sha('1'), ".ferry.toml").await.unwrap().as_deref(), Some("[api.task]\nref = \"x\"\n"));
    assert_eq!(forge.file(&at, &sha('1'), "deploy/values dev.yaml").await.unwrap().as_deref(), Some("a: 1\n"));
    assert_eq!(forge.file(&at, &sha('1'), "missing.toml").await.unwrap(), None);
    let files = forge.pull_request_files(&at, PrNumber::new(7)).await.unwrap().unwrap();
    assert_eq!((files.len(), files[249].as_str()), (250, "src/f249.rs"), "three pages read");
    assert_eq!(forge.pull_request_files(&at, PrNumber::new(8)).await.unwrap(), None, "past GitHub's 3000: unknown");
    assert_eq!(forge.commit_of(&at, "v1.0.0").await.unwrap(), Some(Sha::parse("a".repeat(40)).unwrap()));
    assert_eq!(forge.commit_of(&at, "nope").await.unwrap(), None);
    assert_eq!(setup.fake.mints_for(5), 1, "one token, cached, for every call");
    clean(&setup);
}

#[tokio::test]
async fn who_may_run_code_is_the_repository_s_write_permission() {
    let setup = setup().await;
    setup.fake.repos(|r| {
        for (login, role) in
            [("admin", "admin"), ("maint", "maintain"), ("writer", "write"), ("triager", "triage"), ("reader", "read")]
        {
            r.permissions.insert(("acme/api".into(), login.into()), role.into());
        }
    });
    let at = target();
    let mut answers = Vec::new();
    for login in ["admin", "maint", "writer", "triager", "reader", "stranger", "not a login"] {
        answers.push((login, setup.forge.can_push(&at, login).await.unwrap()));
    }
    assert_eq!(
        answers,
        [
            ("admin", Some(true)),
            ("maint", Some(true)),
            ("writer", Some(true)),
            ("triager", Some(false)),
            ("reader", Some(false)),
            ("stranger", Some(false)),
            ("not a login", Some(false)),
        ]
    );
    clean(&setup);
}

#[tokio::test]
async fn listings_are_asked_again_with_their_etag_and_an_unchanged_one_costs_a_304() {
    let setup = setup().await;
    let release = serde_json::json!({"tag_name": "v1", "prerelease": false, "draft": false,
        "target_commitish": "main", "published_at": "2026-11-22T10:00:00Z"});
    setup.fake.repos(|r| {
        r.releases.insert("acme/api".into(), vec![release.clone()]);
    });
    let at = target();
    let Listed::Changed { items, etag: Some(etag) } = setup.forge.releases(&at, None).await.unwrap() else {
        panic!("a first listing with its ETag")
    };
    assert_eq!(items.len(), 1);
    // Asked with its ETag (by this process or a cold one: the ETag is all it needs).
    assert_eq!(setup.forge.releases(&at, Some(&etag)).await.unwrap(), Listed::Unchanged);
    assert_eq!(setup.fake.reported().not_modified, 1, "the second listing was a 304");
    // A change is seen at once.
    setup.fake.repos(|r| {
        let mut newer = release.clone();
        newer["tag_name"] = "v2".into();
        r.releases.get_mut("acme/api").unwrap().insert(0, newer);
    });
    let Listed::Changed { items, .. } = setup.forge.releases(&at, Some(&etag)).await.unwrap() else {
        panic!("a changed listing")
    };
    assert_eq!(items.len(), 2);
    let Listed::Changed { items, etag: Some(etag) } = setup.forge.open_pull_requests(&at, None).await.unwrap() else {
        panic!("a listing of open pull requests with its ETag")
    };
    assert!(items.is_empty());
    assert_eq!(setup.forge.open_pull_requests(&at, Some(&etag)).await.unwrap(), Listed::Unchanged);
    assert_eq!(setup.fake.reported().not_modified, 2);
    clean(&setup);
}

fn check<'a>(title: &'a str, summary: &'a str) -> CheckRun<'a> {
    CheckRun { name: "ferry/api", conclusion: "failure", title, summary }
}

#[tokio::test]
async fn a_failure_gets_a_check_run_with_its_summary_unless_the_app_may_not() {
    let setup = setup().await;
    let at = target();
    setup.forge.check_run(&at, &sha('3'), &check("api failed", "**PipelineRun** failed")).await.unwrap();
    let checks = setup.fake.reported().check_runs;
    assert_eq!(checks.len(), 1);
    let (_, body) = &checks[0];
    assert_eq!(
        (body["name"].as_str(), body["conclusion"].as_str(), body["status"].as_str()),
        (Some("ferry/api"), Some("failure"), Some("completed"))
    );
    assert_eq!(body["head_sha"], "3".repeat(40));
    assert_eq!(body["output"]["summary"], "**PipelineRun** failed");
    // Installed without `checks: write`: a 403, taken quietly (the status stands).
    setup.fake.repos(|r| r.no_checks_permission = true);
    setup.forge.check_run(&at, &sha('3'), &check("t", "s")).await.unwrap();
    assert_eq!(setup.fake.reported().check_runs.len(), 1);
    clean(&setup);
}

#[tokio::test]
async fn statuses_deployments_and_one_edited_comment_are_reported() {
    let setup = setup().await;
    let forge = &setup.forge;
    let at = target();
    let mut status = CommitStatus::new("ferry/api", StatusState::Pending, "x".repeat(300));
    status.target_url = Some("https://tekton.example.com/run".into());
    forge.status(&at, &sha('2'), &status).await.unwrap();
    forge.deployment(&at, &sha('2'), "preview/api/pr-7", "https://api-pr-7.preview.example.com").await.unwrap();
    forge.comment(&at, PrNumber::new(7), "preview-api", "first").await.unwrap();
    forge.comment(&at, PrNumber::new(7), "preview-api", "second").await.unwrap();
    forge.comment(&at, PrNumber::new(7), "preview-web", "other").await.unwrap();

    let reported = setup.fake.reported();
    let (_, posted_sha, body) = &reported.statuses[0];
    assert_eq!(posted_sha, &"2".repeat(40));
    assert_eq!(body["state"], "pending");
    assert_eq!(body["context"], "ferry/api");
    assert_eq!(body["description"].as_str().unwrap().len(), 140, "cut to GitHub's limit");
    assert_eq!(body["target_url"], "https://tekton.example.com/run");
    assert_eq!(reported.deployments[0].1["environment"], "preview/api/pr-7");
    assert_eq!(reported.deployment_statuses[0].2["environment_url"], "https://api-pr-7.preview.example.com");
    let comments: Vec<&str> = reported.comments.iter().map(|c| c.3.as_str()).collect();
    assert_eq!(comments, ["<!-- ferry:preview-api -->\nsecond", "<!-- ferry:preview-web -->\nother"]);
    clean(&setup);
}

#[tokio::test]
async fn a_strangers_comment_with_ferrys_marker_is_left_alone() {
    let setup = setup().await;
    let marker = ferry::forge::comment_marker("preview-api");
    let planted = format!("{marker}\nPreview ready: https://phish.example.com");
    setup.fake.repos(|r| {
        r.comments.push(("acme/api".into(), 7, 1, planted.clone()));
        r.comment_authors.insert(1, "mallory".into());
    });
    setup.forge.comment(&target(), PrNumber::new(7), "preview-api", "first").await.unwrap();
    setup.forge.comment(&target(), PrNumber::new(7), "preview-api", "second").await.unwrap();

    let reported = setup.fake.reported();
    let comments: Vec<(u64, &str)> = reported.comments.iter().map(|c| (c.2, c.3.as_str())).collect();
    let ours = comments.iter().find(|c| c.0 != 1).expect("Ferry posted its own comment").0;
    assert_eq!(comments, [(1, planted.as_str()), (ours, &*format!("{marker}\nsecond"))], "one of Ferry's, edited");
    assert_eq!(reported.comment_authors.get(&ours), Some(&app_login()), "written by the App's bot");
    clean(&setup);
}

#[tokio::test]
async fn with_a_repository_token_ferrys_comment_is_the_tokens_users() {
    const PAT: &str = "ghp_ferryrepositorytoken000000000000000";
    let setup = setup().await;
    let name = ferry::secrets::SecretName::repository(&repo("acme/api")).unwrap();
    setup.secrets.put(&name, &secrecy::SecretString::from(PAT.to_owned())).await.unwrap();
    let marker = ferry::forge::comment_marker("preview-api");
    setup.fake.repos(|r| {
        r.pats.push(PAT.into());
        r.pat_logins.insert(PAT.into(), "acme-ci".into());
        r.comments.push(("acme/api".into(), 7, 1, format!("{marker}\nfrom someone else")));
        r.comment_authors.insert(1, "mallory".into());
        r.comments.push(("acme/api".into(), 7, 2, format!("{marker}\nold")));
        r.comment_authors.insert(2, "acme-ci".into());
    });
    let at = Target { repo: repo("acme/api"), credential: Credential::Repository(repo("acme/api")) };
    setup.forge.comment(&at, PrNumber::new(7), "preview-api", "new").await.unwrap();

    let bodies: Vec<String> = setup.fake.reported().comments.into_iter().map(|c| c.3).collect();
    assert_eq!(bodies, [format!("{marker}\nfrom someone else"), format!("{marker}\nnew")]);
    assert_eq!(setup.fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_and_the_call_goes_through() {
    let setup = setup().await;
    let at = target();
    setup.forge.status(&at, &sha('3'), &CommitStatus::new("ferry/a", StatusState::Success, "ok")).await.unwrap();
    setup.fake.repos(|r| r.refuse_next = 1);
    setup.forge.status(&at, &sha('3'), &CommitStatus::new("ferry/b", StatusState::Success, "ok")).await.unwrap();
    assert_eq!(setup.fake.mints_for(5), 2, "the refused token was replaced");
    setup.fake.repos(|r| r.refuse_next = 2);
    let refused = setup.forge.status(&at, &sha('3'), &CommitStatus::new("ferry/c", StatusState::Success, "ok")).await;
    assert!(matches!(refused, Err(ferry::forge::ForgeError::Unauthorized)), "{refused:?}");
    assert_eq!(setup.fake.reported().statuses.len(), 2);
    clean(&setup);
}
