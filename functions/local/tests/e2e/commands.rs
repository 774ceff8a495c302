//! Pull request comment commands through `ferry serve`: `/test`, `/test
//! <unit>`, `/retest <unit>`, `/cancel [unit]`, and unknown ones, each
//! answered in one line on the pull request.

use crate::common;

use std::path::Path;

use common::{Server, comment, sample, send, serve_demo};
use serde_json::{Value, json};

/// The one line Ferry answers commands with on #42.
fn answer(dir: &Path) -> String {
    let path = dir.join(".ferry/forge/acme/api/comments/pr-42-command.json");
    let Ok(text) = std::fs::read_to_string(path) else { return String::new() };
    let body: Value = serde_json::from_str(&text).unwrap();
    body["body"].as_str().unwrap().lines().last().unwrap().to_owned()
}

/// Every run on the dry-run cluster: `(kind, name, spec.status)`.
fn runs(dir: &Path) -> Vec<(String, String, Option<String>)> {
    let mut found = Vec::new();
    for kind in ["pipelinerun", "taskrun"] {
        let Ok(entries) = std::fs::read_dir(dir.join(".ferry/cluster/ci").join(kind)) else { continue };
        for entry in entries {
            let object: Value =
                serde_yaml_ng::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            found.push((kind.to_owned(), name, object["spec"]["status"].as_str().map(str::to_owned)));
        }
    }
    found.sort();
    found
}

fn start(dir: &Path) -> Server {
    let server = serve_demo(dir, &[]);
    send(dir, &server, "installation", "installed", &sample("installation.created.json"));
    // monalisa may push: she may give commands.
    let forge = dir.join(".ferry/forge/acme/api");
    std::fs::create_dir_all(&forge).unwrap();
    std::fs::write(forge.join("permissions.json"), json!({"monalisa": "write"}).to_string()).unwrap();
    send(dir, &server, "pull_request", "opened", &sample("pull_request.opened.json"));
    server
}

#[test]
fn test_and_retest_name_a_unit_and_unknown_ones_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = start(dir);
    let opened = runs(dir);
    assert!(!opened.is_empty(), "the pull request ran its units");

    let reply = send(dir, &server, "issue_comment", "c-1", &comment(1, "/test docs", "monalisa", "MEMBER"));
    assert!(reply.contains("taskrun.created"), "{reply}");
    assert!(answer(dir).starts_with("`/test docs` from @monalisa: started ferry-docs-"), "{}", answer(dir));
    assert_eq!(runs(dir).len(), opened.len() + 1, "a new run of docs, whatever ran before");

    send(dir, &server, "issue_comment", "c-2", &comment(2, "/retest apii", "monalisa", "MEMBER"));
    assert_eq!(answer(dir), "`/retest apii` from @monalisa: there is no unit `apii`; units that run: api, docs");

    send(dir, &server, "issue_comment", "c-3", &comment(3, "/retest api", "monalisa", "MEMBER"));
    assert!(answer(dir).starts_with("`/retest api` from @monalisa: started ferry-api-"), "{}", answer(dir));

    send(dir, &server, "issue_comment", "c-4", &comment(4, "/tset", "monalisa", "MEMBER"));
    assert_eq!(
        answer(dir),
        "`/tset` from @monalisa: unknown command `/tset`; Ferry knows /test [unit], /retest [unit], /cancel [unit], /ok-to-test [sha]"
    );
    // A stranger's commands do nothing and get no answer: strangers cannot make Ferry write.
    let before = runs(dir).len();
    for (id, body) in [(5, "/tset"), (6, "/test"), (7, "/cancel")] {
        let reply = send(dir, &server, "issue_comment", &format!("c-{id}"), &comment(id, body, "stranger", "NONE"));
        assert!(reply.contains("commands count only from"), "{reply}");
        assert!(answer(dir).starts_with("`/tset` from @monalisa"), "unchanged: {}", answer(dir));
    }
    assert_eq!(runs(dir).len(), before);
    // Other bots' commands are theirs; a quoted command is not given.
    send(dir, &server, "issue_comment", "c-8", &comment(8, "/lgtm", "monalisa", "MEMBER"));
    send(dir, &server, "issue_comment", "c-9", &comment(9, "run\n```\n/test\n```", "monalisa", "MEMBER"));
    assert!(answer(dir).starts_with("`/tset` from @monalisa"), "unchanged: {}", answer(dir));
    assert_eq!(runs(dir).len(), before);
}

#[test]
fn cancel_stops_the_pull_request_s_runs_or_one_unit_s() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = start(dir);
    // The pull request ran api; docs runs on pushes only, so ask for it.
    send(dir, &server, "issue_comment", "x-0", &comment(10, "/test docs", "monalisa", "MEMBER"));
    let running = runs(dir);
    let docs: Vec<&String> =
        running.iter().filter(|(_, name, _)| name.starts_with("ferry-docs-")).map(|r| &r.1).collect();
    assert_eq!((docs.len(), running.len()), (1, 2), "{running:?}");

    send(dir, &server, "issue_comment", "x-1", &comment(11, "/cancel docs", "monalisa", "MEMBER"));
    assert_eq!(answer(dir), format!("`/cancel docs` from @monalisa: cancelled {}", docs[0]));
    let after = runs(dir);
    for (kind, name, status) in &after {
        let cancelled = status.as_deref().is_some_and(|s| s.ends_with("Cancelled"));
        assert_eq!(cancelled, name.starts_with("ferry-docs-"), "{kind} {name} {status:?}");
    }

    send(dir, &server, "issue_comment", "x-2", &comment(12, "/cancel web", "monalisa", "MEMBER"));
    assert_eq!(answer(dir), "`/cancel web` from @monalisa: no run of unit `web` is running; running: api, docs");

    send(dir, &server, "issue_comment", "x-3", &comment(13, "/cancel", "monalisa", "MEMBER"));
    assert!(answer(dir).contains("cancelled ferry-api-"), "{}", answer(dir));
    assert!(runs(dir).iter().all(|(_, _, status)| status.as_deref().is_some_and(|s| s.ends_with("Cancelled"))));
}

#[test]
fn closing_the_pull_request_cancels_its_running_runs() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = start(dir);
    assert!(runs(dir).iter().all(|(_, _, status)| status.is_none()), "running: {:?}", runs(dir));
    let reply = send(dir, &server, "pull_request", "closed", &sample("pull_request.closed.json"));
    assert!(reply.contains("run.cancelled"), "{reply}");
    assert!(runs(dir).iter().all(|(_, _, status)| status.as_deref() == Some("Cancelled")), "{:?}", runs(dir));
}

/// A stranger's command on a closed pull request gets no answer either:
/// Ferry asks whether they may command before anything else.
#[test]
fn a_stranger_s_command_on_a_closed_pull_request_gets_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = start(dir);
    send(dir, &server, "pull_request", "closed", &sample("pull_request.closed.json"));
    let reply = send(dir, &server, "issue_comment", "s-1", &comment(1, "/retest", "stranger", "NONE"));
    assert!(reply.contains("commands count only from"), "{reply}");
    assert_eq!(answer(dir), "", "no comment written");
}
