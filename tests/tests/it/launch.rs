//! Launching units through the real webhook handler, on the dry-run cluster
//! and forge: what lands under the data dir is what a cluster and GitHub
//! would have been asked for.

use std::path::{Path, PathBuf};

use ferry_tests::webhook::Harness;
use serde_json::{Value, json};

const SECRET: &str = "launch-secret";
const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";
const SHA3: &str = "3333333333333333333333333333333333333333";

const UNITS: &str = r#"
[repositories."acme/api"]
units = '''
[api]
on = ["push", "pull_request", "release"]
branches = ["main", "release/*"]
paths = ["api/**"]
[api.pipeline]
namespace = "ci"
ref = "build-and-deploy"
params = { revision = "{{ git.sha }}", url = "{{ repo.clone_url }}", branch = "{{ git.branch }}" }
[api.preview]
image = "ghcr.io/acme/api:{{ git.short_sha }}"
port = 8080
host = "api-{% if pr %}pr-{{ pr.number }}{% elif release %}{{ release.tag }}{% endif %}.preview.example.com"

[docs]
on = ["push"]
paths = ["docs/**"]
[docs.task]
namespace = "ci"
ref = "publish-docs"
'''
"#;

async fn harness() -> Harness {
    let mut harness = Harness::embedded(SECRET).await;
    harness.set_operator(UNITS);
    harness
}

fn repository() -> Value {
    json!({"full_name": "acme/api", "clone_url": "https://github.com/acme/api.git"})
}

fn push(branch: &str, before: &str, after: &str, paths: &[&str]) -> String {
    json!({
        "ref": format!("refs/heads/{branch}"), "before": before, "after": after,
        "commits": [{"added": paths, "modified": [], "removed": []}],
        "repository": repository(), "installation": {"id": 5}, "sender": {"login": "octocat"}
    })
    .to_string()
}

fn pull_request(action: &str, number: u64, head: &str, association: &str, extra: Value) -> String {
    let mut pr = json!({
        "number": number, "draft": false, "merged": false, "labels": [],
        "author_association": association, "user": {"login": "someone"},
        "head": {"sha": head, "ref": "feature", "repo": {"full_name": "someone/api"}},
        "base": {"ref": "main", "sha": SHA1, "repo": {"full_name": "acme/api"}}
    });
    pr.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!({"action": action, "number": number, "pull_request": pr,
           "repository": repository(), "installation": {"id": 5}, "sender": {"login": "someone"}})
    .to_string()
}

fn comment(number: u64, body: &str, association: &str, author: &str) -> String {
    comment_with(number, body, association, author, json!({}))
}

/// A comment with more fields (`id`, `created_at`).
fn comment_with(number: u64, body: &str, association: &str, author: &str, extra: Value) -> String {
    let mut comment = json!({"body": body, "author_association": association, "user": {"login": author}});
    comment.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!({
        "action": "created",
        "issue": {"number": number, "pull_request": {"url": "x"}},
        "comment": comment,
        "repository": repository(), "installation": {"id": 5}, "sender": {"login": author}
    })
    .to_string()
}

/// A push GitHub says happened at `pushed_at` (Unix seconds, as push payloads have it).
fn push_at(branch: &str, before: &str, after: &str, paths: &[&str], pushed_at: i64) -> String {
    let mut body: Value = serde_json::from_str(&push(branch, before, after, paths)).unwrap();
    body["repository"]["pushed_at"] = pushed_at.into();
    body.to_string()
}

/// An RFC 3339 time `seconds` after a fixed moment.
fn at(seconds: i64) -> String {
    format!("2026-11-22T10:{:02}:{:02}Z", seconds / 60, seconds % 60)
}

fn release(action: &str, tag: &str, prerelease: bool) -> String {
    json!({
        "action": action,
        "release": {"tag_name": tag, "prerelease": prerelease, "draft": false, "target_commitish": SHA3},
        "repository": repository(), "installation": {"id": 5}, "sender": {"login": "octocat"}
    })
    .to_string()
}

/// Every YAML file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn runs(harness: &Harness) -> Vec<Value> {
    files(&harness.data_dir().join("cluster"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("pipelinerun") || p.to_string_lossy().contains("taskrun"))
        .map(|p| serde_yaml_ng::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn commit_status(harness: &Harness, sha: &str, context: &str) -> Option<Value> {
    let path = harness
        .data_dir()
        .join("forge/acme/api/statuses")
        .join(sha)
        .join(format!("{}.json", context.replace('/', "_")));
    std::fs::read_to_string(path).ok().map(|t| serde_json::from_str(&t).unwrap())
}

fn kinds(body: &Value) -> Vec<String> {
    body["actions"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_push_to_a_matching_branch_writes_one_pipeline_run_and_its_redelivery_none() {
    let harness = harness().await;
    let body = push("main", SHA1, SHA2, &["api/src/lib.rs"]);
    let (status, reply) = harness.deliver("push", "p-1", SECRET, &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(kinds(&reply), ["pipelinerun.created", "status.pending"]);
    assert_eq!(reply["reason"], "docs: no changed path matches docs/**");
    let runs_now = runs(&harness);
    assert_eq!(runs_now.len(), 1);
    let run = &runs_now[0];
    assert_eq!(run["kind"], "PipelineRun");
    assert_eq!(run["metadata"]["namespace"], "ci");
    assert_eq!(run["spec"]["pipelineRef"]["name"], "build-and-deploy");
    let params: Vec<(String, String)> = run["spec"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["value"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        params,
        [
            ("branch".to_owned(), "main".to_owned()),
            ("revision".to_owned(), SHA2.to_owned()),
            ("url".to_owned(), "https://github.com/acme/api.git".to_owned())
        ]
    );
    let pending = commit_status(&harness, SHA2, "ferry/api").expect("a pending status");
    assert_eq!(pending["state"], "pending");

    // The same body under a new delivery id is a replay: nothing at all.
    let (status, reply) = harness.deliver("push", "p-1-replayed", SECRET, &body).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("duplicate")), "{reply}");
    // The same event again (another body: a retry acts on it again): no
    // second run, but whatever an earlier attempt may have left undone
    // (here: the status, as if the first attempt had stopped before it) is done.
    std::fs::remove_dir_all(harness.data_dir().join("forge/acme/api/statuses")).unwrap();
    let (status, reply) = harness.deliver("push", "p-1-again", SECRET, &format!("{body} ")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(kinds(&reply), ["pipelinerun.exists", "status.pending"]);
    assert_eq!(runs(&harness).len(), 1);
    assert_eq!(commit_status(&harness, SHA2, "ferry/api").expect("posted again")["state"], "pending");
    // The same delivery id: nothing at all.
    let (_, reply) = harness.deliver("push", "p-1", SECRET, &body).await;
    assert_eq!(reply["outcome"], "duplicate");
}

#[tokio::test]
async fn a_push_that_touches_no_unit_path_writes_nothing_and_says_why() {
    let harness = harness().await;
    let (status, reply) = harness.deliver("push", "p-2", SECRET, &push("main", SHA1, SHA2, &["README.md"])).await;
    assert_eq!(status, 200);
    assert!(kinds(&reply).is_empty());
    assert_eq!(reply["reason"], "api: no changed path matches api/**; docs: no changed path matches docs/**");
    assert!(runs(&harness).is_empty());
    let (_, reply) = harness.deliver("push", "p-3", SECRET, &push("feature/x", SHA1, SHA2, &["api/a.rs"])).await;
    assert_eq!(
        reply["reason"],
        "api: branch feature/x matches none of main, release/*; docs: no changed path matches docs/**"
    );
}

#[tokio::test]
async fn a_newer_push_to_the_branch_cancels_the_superseded_run() {
    let harness = harness().await;
    harness.deliver("push", "c-1", SECRET, &push("main", SHA1, SHA2, &["api/a.rs"])).await;
    let (_, reply) = harness.deliver("push", "c-2", SECRET, &push("main", SHA2, SHA3, &["api/b.rs"])).await;
    assert_eq!(kinds(&reply), ["pipelinerun.created", "run.cancelled", "status.pending"], "{reply}");
    let all = runs(&harness);
    assert_eq!(all.len(), 2);
    let old = all.iter().find(|r| r["metadata"]["labels"]["ferry.dev/sha"] == SHA2).unwrap();
    let new = all.iter().find(|r| r["metadata"]["labels"]["ferry.dev/sha"] == SHA3).unwrap();
    assert_eq!(old["spec"]["status"], "Cancelled");
    assert!(new["spec"].get("status").is_none());
}

#[tokio::test]
async fn an_outsiders_pull_request_runs_nothing_until_a_member_says_ok_to_test() {
    let harness = harness().await;
    let opened = pull_request("opened", 7, SHA2, "CONTRIBUTOR", json!({}));
    let (status, reply) = harness.deliver("pull_request", "f-1", SECRET, &opened).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(kinds(&reply), ["status.pending"]);
    assert!(reply["reason"].as_str().unwrap().contains("waits for a trusted user's /ok-to-test"));
    assert!(runs(&harness).is_empty());
    assert!(status_of(&harness, SHA2, "ferry/ok-to-test").contains("/ok-to-test"));

    // The outsider approving themselves does nothing.
    let (_, reply) =
        harness.deliver("issue_comment", "f-2", SECRET, &comment(7, "/ok-to-test", "CONTRIBUTOR", "someone")).await;
    assert!(kinds(&reply).is_empty());
    assert!(runs(&harness).is_empty());

    // A member's approval runs the units and opens the preview.
    let (_, reply) =
        harness.deliver("issue_comment", "f-3", SECRET, &comment(7, "/ok-to-test", "MEMBER", "maintainer")).await;
    assert_eq!(
        kinds(&reply),
        [
            "approval.recorded",
            "pipelinerun.created",
            "status.pending",
            "preview.applied",
            "deployment.created",
            "comment.preview"
        ],
        "{reply}"
    );
    assert_eq!(runs(&harness).len(), 1);
    assert!(status_of(&harness, SHA2, "ferry/ok-to-test").contains("Approved by maintainer"));

    // A new push lapses the approval: nothing runs for it.
    let (_, reply) = harness
        .deliver("pull_request", "f-4", SECRET, &pull_request("synchronize", 7, SHA3, "CONTRIBUTOR", json!({})))
        .await;
    assert_eq!(kinds(&reply), ["status.pending"]);
    assert_eq!(runs(&harness).len(), 1);
}

fn status_of(harness: &Harness, sha: &str, context: &str) -> String {
    commit_status(harness, sha, context).map(|s| s["description"].as_str().unwrap().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn a_members_pull_request_gets_a_preview_that_closing_removes() {
    let harness = harness().await;
    let (_, reply) =
        harness.deliver("pull_request", "m-1", SECRET, &pull_request("opened", 9, SHA2, "MEMBER", json!({}))).await;
    assert!(kinds(&reply).contains(&"preview.applied".to_owned()), "{reply}");
    let namespace_name = ferry::cluster::manifests::preview_namespace(
        &ferry_tests::builders::repo("acme/api"),
        &ferry::domain::UnitName::parse("api").unwrap(),
        &ferry::cluster::manifests::PreviewOf::PullRequest(ferry::domain::PrNumber::new(9)),
    );
    let namespace = harness.data_dir().join("cluster").join(&namespace_name);
    let preview: Vec<String> =
        files(&namespace).iter().map(|p| p.strip_prefix(&namespace).unwrap().display().to_string()).collect();
    assert_eq!(
        preview,
        [
            "deployment/api.yaml",
            "ingress/api.yaml",
            format!("namespace/{namespace_name}.yaml").as_str(),
            "rolebinding/ferry-preview-reader.yaml",
            "service/api.yaml"
        ]
    );
    let ingress: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(namespace.join("ingress/api.yaml")).unwrap()).unwrap();
    assert_eq!(ingress["spec"]["rules"][0]["host"], "api-pr-9.preview.example.com");
    let deployment =
        std::fs::read_to_string(harness.data_dir().join("forge/acme/api/deployments/preview_api_pr-9.json")).unwrap();
    assert!(deployment.contains("https://api-pr-9.preview.example.com"));
    assert!(deployment.contains("in_progress"), "reported up only once it is: {deployment}");
    let comment = harness.data_dir().join("forge/acme/api/comments/pr-9-preview-api.json");
    assert!(std::fs::read_to_string(&comment).unwrap().contains("<!-- ferry:preview-api -->"));

    // A push to the pull request rolls the image; still one comment.
    harness.deliver("pull_request", "m-2", SECRET, &pull_request("synchronize", 9, SHA3, "MEMBER", json!({}))).await;
    let deployment = std::fs::read_to_string(namespace.join("deployment/api.yaml")).unwrap();
    assert!(deployment.contains("ghcr.io/acme/api:3333333"), "{deployment}");
    assert_eq!(files(&harness.data_dir().join("forge/acme/api/comments")).len(), 1);

    let (_, reply) =
        harness.deliver("pull_request", "m-3", SECRET, &pull_request("closed", 9, SHA3, "MEMBER", json!({}))).await;
    // Its runs without a result, of every head it had, are cancelled.
    assert_eq!(kinds(&reply), ["preview.removed", "run.cancelled", "run.cancelled"], "{reply}");
    assert!(!namespace.exists(), "closing the pull request removes the preview");
    for head in ["ferry-api-2222222-pr9-", "ferry-api-3333333-pr9-"] {
        assert!(reply.to_string().contains(head), "{head}: {reply}");
    }
}

#[tokio::test]
async fn drafts_and_skip_labels_run_nothing_and_say_why() {
    let harness = harness().await;
    let (_, reply) = harness
        .deliver("pull_request", "d-1", SECRET, &pull_request("opened", 3, SHA2, "OWNER", json!({"draft": true})))
        .await;
    assert!(kinds(&reply).is_empty());
    assert!(reply["reason"].as_str().unwrap().contains("api: the pull request is a draft"), "{reply}");
    let labelled = pull_request("labeled", 3, SHA2, "OWNER", json!({"labels": [{"name": "ferry/skip"}]}));
    let (_, reply) = harness.deliver("pull_request", "d-2", SECRET, &labelled).await;
    assert!(reply["reason"].as_str().unwrap().contains("api: the pull request is labelled ferry/skip"), "{reply}");
    assert!(runs(&harness).is_empty());
}

#[tokio::test]
async fn releases_run_release_units_and_a_prerelease_gets_a_preview() {
    let harness = harness().await;
    let (_, reply) = harness.deliver("release", "r-1", SECRET, &release("published", "v1.0.0", false)).await;
    assert_eq!(kinds(&reply), ["pipelinerun.created", "status.pending"], "{reply}");
    let run = &runs(&harness)[0];
    assert_eq!(run["metadata"]["labels"]["ferry.dev/sha"], SHA3);
    let (_, reply) = harness.deliver("release", "r-2", SECRET, &release("prereleased", "v1.1.0-rc.1", true)).await;
    assert!(kinds(&reply).contains(&"preview.applied".to_owned()), "{reply}");
    let host = std::fs::read_to_string(
        harness
            .data_dir()
            .join("cluster")
            .join(ferry::cluster::manifests::preview_namespace(
                &ferry_tests::builders::repo("acme/api"),
                &ferry::domain::UnitName::parse("api").unwrap(),
                &ferry::cluster::manifests::PreviewOf::Release("v1.1.0-rc.1".into()),
            ))
            .join("ingress/api.yaml"),
    )
    .unwrap();
    assert!(host.contains("api-v1.1.0-rc.1.preview.example.com"), "{host}");
    let (_, reply) = harness.deliver("release", "r-3", SECRET, &release("deleted", "v1.1.0-rc.1", true)).await;
    assert_eq!(kinds(&reply), ["preview.removed"]);
    let recorded = harness
        .state()
        .query(&ferry::store::Collection::Releases(ferry_tests::builders::repo("acme/api")))
        .await
        .unwrap();
    assert_eq!(recorded.len(), 2, "releases are recorded");
}

#[tokio::test]
async fn a_broken_ferry_toml_fails_the_commit_naming_the_line_and_launches_nothing() {
    let harness = harness().await;
    let files = harness.data_dir().join("forge/acme/api/files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join(".ferry.toml"), "[api.pipeline]\nref = \"build\"\n\n[api.pipeline]\nref = \"again\"\n")
        .unwrap();
    let (status, reply) = harness.deliver("push", "b-1", SECRET, &push("main", SHA1, SHA2, &["api/a.rs"])).await;
    assert_eq!(status, 200, "a user's mistake is not a failed delivery: {reply}");
    assert_eq!(kinds(&reply), ["status.failure"]);
    let failure = commit_status(&harness, SHA2, "ferry/config").expect("a failure status");
    assert_eq!(failure["state"], "failure");
    let description = failure["description"].as_str().unwrap();
    assert!(description.starts_with(".ferry.toml: line 4: TOML: "), "{description}");
    assert!(runs(&harness).is_empty());

    // Fixed in the repository: it wins over the operator's units.
    std::fs::write(files.join(".ferry.toml"), "[web.task]\nref = \"lint\"\nnamespace = \"ci\"\n").unwrap();
    let (_, reply) = harness.deliver("push", "b-2", SECRET, &push("main", SHA2, SHA3, &["web/a.ts"])).await;
    assert_eq!(kinds(&reply), ["taskrun.created", "status.pending"], "{reply}");
}

#[tokio::test]
async fn retest_from_a_member_runs_again_only_the_units_that_failed() {
    let harness = harness().await;
    let (_, reply) =
        harness.deliver("pull_request", "t-1", SECRET, &pull_request("opened", 11, SHA2, "MEMBER", json!({}))).await;
    assert!(kinds(&reply).contains(&"pipelinerun.created".to_owned()), "{reply}");
    // The run failed (what the reconciler records from its Succeeded condition).
    let key = ferry::store::Key::Run(
        ferry_tests::builders::repo("acme/api"),
        ferry::domain::UnitName::parse("api").unwrap(),
        ferry::domain::Sha::parse(SHA2).unwrap(),
    );
    let mut run = harness.state().load::<ferry::domain::Run>(&key).await.unwrap().unwrap();
    run.record.status = ferry::domain::RunStatus::Failure;
    harness.state().update(&run.record.into(), run.version).await.unwrap();

    let (_, reply) =
        harness.deliver("issue_comment", "t-2", SECRET, &comment(11, "/retest", "CONTRIBUTOR", "someone")).await;
    assert!(kinds(&reply).is_empty(), "an outsider's /retest does nothing: {reply}");
    let (_, reply) =
        harness.deliver("issue_comment", "t-3", SECRET, &comment(11, "/retest", "MEMBER", "maintainer")).await;
    assert_eq!(kinds(&reply), ["pipelinerun.created", "run.cancelled", "status.pending"], "{reply}");
    let retried =
        runs(&harness).into_iter().filter(|r| r["metadata"]["name"].as_str().unwrap().contains("retry")).count();
    assert_eq!(retried, 1);
    assert_eq!(reply["reason"], "docs: it did not fail on this commit");
}

#[tokio::test]
async fn each_retest_starts_its_own_run_and_its_redelivery_none() {
    let harness = harness().await;
    harness.deliver("pull_request", "e-1", SECRET, &pull_request("opened", 13, SHA2, "MEMBER", json!({}))).await;
    let key = ferry::store::Key::Run(
        ferry_tests::builders::repo("acme/api"),
        ferry::domain::UnitName::parse("api").unwrap(),
        ferry::domain::Sha::parse(SHA2).unwrap(),
    );
    let fail = || async {
        let mut run = harness.state().load::<ferry::domain::Run>(&key).await.unwrap().unwrap();
        run.record.status = ferry::domain::RunStatus::Failure;
        harness.state().update(&run.record.into(), run.version).await.unwrap();
    };
    let retest = |id: u64| comment_with(13, "/retest", "MEMBER", "maintainer", json!({"id": id}));
    fail().await;
    let (_, reply) = harness.deliver("issue_comment", "e-2", SECRET, &retest(501)).await;
    assert!(kinds(&reply).contains(&"pipelinerun.created".to_owned()), "{reply}");
    fail().await;
    let (_, reply) = harness.deliver("issue_comment", "e-3", SECRET, &retest(502)).await;
    assert!(kinds(&reply).contains(&"pipelinerun.created".to_owned()), "the second /retest is a new run: {reply}");
    fail().await;
    let (_, reply) = harness.deliver("issue_comment", "e-3-replayed", SECRET, &retest(502)).await;
    assert_eq!(reply["outcome"], "duplicate", "a replayed /retest starts nothing: {reply}");
    let (_, reply) = harness.deliver("issue_comment", "e-3-again", SECRET, &format!("{} ", retest(502))).await;
    assert_eq!(kinds(&reply)[0], "pipelinerun.exists", "the same /retest acted on again starts nothing: {reply}");
    let names: Vec<String> = runs(&harness)
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap().to_owned())
        .filter(|n| n.contains("retry"))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test]
async fn one_commit_on_two_branches_runs_once_in_each() {
    let harness = harness().await;
    harness.deliver("push", "b2-1", SECRET, &push("main", SHA1, SHA2, &["api/a.rs"])).await;
    let (_, reply) = harness.deliver("push", "b2-2", SECRET, &push("release/1.x", SHA1, SHA2, &["api/a.rs"])).await;
    assert_eq!(kinds(&reply), ["pipelinerun.created", "status.pending"], "{reply}");
    let all = runs(&harness);
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r["spec"].get("status").is_none()), "neither cancels the other");
}

#[tokio::test]
async fn a_late_older_push_neither_runs_nor_cancels_the_newer_one() {
    let harness = harness().await;
    let (_, reply) = harness.deliver("push", "o-2", SECRET, &push_at("main", SHA2, SHA3, &["api/b.rs"], 2_000)).await;
    assert_eq!(kinds(&reply), ["pipelinerun.created", "status.pending"], "{reply}");
    // GitHub delivered the earlier push last.
    let (status, reply) =
        harness.deliver("push", "o-1", SECRET, &push_at("main", SHA1, SHA2, &["api/a.rs"], 1_000)).await;
    assert_eq!(status, 200);
    assert_eq!(kinds(&reply), ["run.superseded"], "{reply}");
    assert!(reply["reason"].as_str().unwrap().contains("superseded by"), "{reply}");
    let all = runs(&harness);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["metadata"]["labels"]["ferry.dev/sha"], SHA3);
    assert!(all[0]["spec"].get("status").is_none(), "the newer run still runs");
    assert!(commit_status(&harness, SHA2, "ferry/api").is_none());
}

#[tokio::test]
async fn a_late_older_pull_request_update_changes_nothing() {
    let harness = harness().await;
    let update = |action: &str, head: &str, seconds: i64| {
        pull_request(action, 20, head, "MEMBER", json!({"updated_at": at(seconds)}))
    };
    harness.deliver("pull_request", "u-1", SECRET, &update("opened", SHA2, 10)).await;
    harness.deliver("pull_request", "u-3", SECRET, &update("synchronize", SHA3, 30)).await;
    let before = runs(&harness);
    // The synchronize to SHA2's successor arrives before an older one.
    let (_, reply) = harness.deliver("pull_request", "u-2", SECRET, &update("synchronize", SHA2, 20)).await;
    assert!(kinds(&reply).is_empty(), "{reply}");
    assert!(reply["reason"].as_str().unwrap().contains("changed after this event"), "{reply}");
    assert_eq!(runs(&harness), before, "nothing launched, nothing cancelled");
    let pr = harness
        .state()
        .load::<ferry::domain::PullRequest>(&ferry::store::Key::PullRequest(
            ferry_tests::builders::repo("acme/api"),
            ferry::domain::PrNumber::new(20),
        ))
        .await
        .unwrap()
        .unwrap()
        .record;
    assert_eq!(pr.head_sha.as_str(), SHA3, "the head is not rolled back");
    // A late `opened` after `closed` does not bring the preview back either.
    harness.deliver("pull_request", "u-5", SECRET, &update("closed", SHA3, 50)).await;
    let (_, reply) = harness.deliver("pull_request", "u-4", SECRET, &update("reopened", SHA3, 40)).await;
    assert!(kinds(&reply).is_empty(), "{reply}");
}

#[tokio::test]
async fn an_ok_to_test_covers_only_the_code_its_author_could_have_seen() {
    let harness = harness().await;
    let update = |action: &str, head: &str, seconds: i64| {
        pull_request(action, 21, head, "CONTRIBUTOR", json!({"updated_at": at(seconds)}))
    };
    let ok = |body: &str, seconds: i64| {
        comment_with(21, body, "MEMBER", "maintainer", json!({"id": seconds, "created_at": at(seconds)}))
    };
    harness.deliver("pull_request", "s-1", SECRET, &update("opened", SHA2, 10)).await;
    // The outsider pushes again (at 30) after the member read the code and
    // before their comment (written at 20) is processed.
    harness.deliver("pull_request", "s-2", SECRET, &update("synchronize", SHA3, 30)).await;
    let (_, reply) = harness.deliver("issue_comment", "s-3", SECRET, &ok("/ok-to-test", 20)).await;
    assert!(kinds(&reply).is_empty(), "{reply}");
    assert!(reply["reason"].as_str().unwrap().contains("was pushed after the /ok-to-test comment"), "{reply}");
    assert!(runs(&harness).is_empty());
    // Naming a commit that is no longer the head approves nothing either.
    let (_, reply) = harness.deliver("issue_comment", "s-4", SECRET, &ok("/ok-to-test 222222222222", 40)).await;
    assert!(reply["reason"].as_str().unwrap().contains("nothing approved"), "{reply}");
    assert!(runs(&harness).is_empty());
    // Nor does a prefix short enough to be found by pushing until one matches,
    let (_, reply) = harness.deliver("issue_comment", "s-6", SECRET, &ok("/ok-to-test 3333333", 41)).await;
    assert!(reply["reason"].as_str().unwrap().contains("at least 12 hex digits"), "{reply}");
    // nor 12 digits of a head pushed after the comment.
    let (_, reply) = harness.deliver("issue_comment", "s-7", SECRET, &ok("/ok-to-test 333333333333", 26)).await;
    assert!(reply["reason"].as_str().unwrap().contains("was pushed after"), "{reply}");
    assert!(runs(&harness).is_empty());
    // The head's full SHA approves it, whenever the comment is processed.
    let (_, reply) = harness.deliver("issue_comment", "s-5", SECRET, &ok(&format!("/ok-to-test {SHA3}"), 25)).await;
    assert_eq!(kinds(&reply)[0], "approval.recorded", "{reply}");
    assert_eq!(runs(&harness).len(), 1);
    assert_eq!(runs(&harness)[0]["metadata"]["labels"]["ferry.dev/sha"], SHA3);
}

#[tokio::test]
async fn an_organisation_member_who_cannot_push_is_not_trusted() {
    let harness = harness().await;
    let repo_dir = harness.data_dir().join("forge/acme/api");
    std::fs::create_dir_all(&repo_dir).unwrap();
    std::fs::write(repo_dir.join("permissions.json"), r#"{"maintainer": "maintain", "reader": "read"}"#).unwrap();
    let (_, reply) =
        harness.deliver("pull_request", "v-1", SECRET, &pull_request("opened", 22, SHA2, "MEMBER", json!({}))).await;
    assert_eq!(kinds(&reply), ["status.pending"], "a member without write access waits for approval: {reply}");
    let (_, reply) =
        harness.deliver("issue_comment", "v-2", SECRET, &comment(22, "/ok-to-test", "MEMBER", "reader")).await;
    assert!(kinds(&reply).is_empty(), "{reply}");
    assert!(runs(&harness).is_empty());
    let (_, reply) =
        harness.deliver("issue_comment", "v-3", SECRET, &comment(22, "/ok-to-test", "MEMBER", "maintainer")).await;
    assert_eq!(kinds(&reply)[0], "approval.recorded", "{reply}");
    assert_eq!(runs(&harness).len(), 1);
}

#[tokio::test]
async fn commands_on_a_closed_pull_request_do_nothing() {
    let harness = harness().await;
    harness.deliver("pull_request", "k-1", SECRET, &pull_request("opened", 12, SHA2, "CONTRIBUTOR", json!({}))).await;
    harness.deliver("pull_request", "k-2", SECRET, &pull_request("closed", 12, SHA2, "CONTRIBUTOR", json!({}))).await;
    let (_, reply) =
        harness.deliver("issue_comment", "k-3", SECRET, &comment(12, "/ok-to-test", "MEMBER", "maintainer")).await;
    assert!(kinds(&reply).is_empty(), "{reply}");
    assert!(runs(&harness).is_empty());
    assert!(!files(&harness.data_dir().join("cluster")).iter().any(|p| p.to_string_lossy().contains("preview-")));
}
