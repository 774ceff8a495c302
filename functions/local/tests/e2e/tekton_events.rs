//! `POST /tekton/events` through `ferry serve`: Tekton's word that a run
//! ended makes Ferry read the run and report it at once, not at the next
//! reconciliation; a forged or early event reports nothing.

use crate::common;

use std::path::{Path, PathBuf};

use common::{Server, client, sample, send, serve_demo, serve_with};
use serde_json::{Value, json};

const TOKEN: &str = "tekton-sink-token-for-the-test";
const SHA: &str = "9c2a4b7e1d3f5a6c8e0b2d4f6a8c0e2b4d6f8a0c";

fn start(dir: &Path, token: Option<&str>) -> Server {
    let token: Vec<(&str, &str)> = token.map(|token| ("FERRY_TEKTON_TOKEN", token)).into_iter().collect();
    let server = serve_demo(dir, &token);
    // The installation that tracks acme/api, as the reconciler knows it too.
    send(dir, &server, "installation", "installed", &sample("installation.created.json"));
    server
}

fn the_run(dir: &Path) -> PathBuf {
    let runs = dir.join(".ferry/cluster/ci/pipelinerun");
    let mut found: Vec<PathBuf> = std::fs::read_dir(runs).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

fn status(dir: &Path) -> Value {
    let path = dir.join(format!(".ferry/forge/acme/api/statuses/{SHA}/ferry_api.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Tekton finishing the run: its `Succeeded` condition, as the controller writes it.
fn finish(run: &Path, succeeded: bool) {
    let mut object: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(run).unwrap()).unwrap();
    object["status"] = json!({"conditions": [{
        "type": "Succeeded",
        "status": if succeeded { "True" } else { "False" },
        "reason": if succeeded { "Succeeded" } else { "Failed" },
        "message": if succeeded { "Tasks Completed: 2" } else { "Tasks Completed: 2 (Failed: 1)" },
    }]});
    std::fs::write(run, serde_yaml_ng::to_string(&object).unwrap()).unwrap();
}

/// The event Tekton's controller sends (binary mode): `(status, reply)`.
async fn event(server: &Server, query: &str, ce_type: &str, run: &Value) -> (u16, Value) {
    let body = json!({ "pipelineRun": run });
    let reply = client()
        .post(format!("{}/tekton/events{query}", server.url))
        .header("ce-specversion", "1.0")
        .header("ce-type", ce_type)
        .header("ce-source", "/apis///namespaces/ci//ferry-api")
        .header("ce-id", "b3a1e7c4-0000-4000-8000-000000000001")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

fn object(run: &Path) -> Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(run).unwrap()).unwrap()
}

#[tokio::test]
async fn tekton_s_event_reports_the_run_s_end_before_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(TOKEN));
    let reply = send(dir.path(), &server, "push", "tekton-push-1", &sample("push.json"));
    assert!(reply.contains("pipelinerun.created"), "{reply}");
    let run = the_run(dir.path());
    assert_eq!(status(dir.path())["state"], "pending");
    let ended = "dev.tekton.event.pipelinerun.successful.v1";
    let query = format!("?token={TOKEN}");

    // Forged: the run has not ended. Nothing is reported.
    let (code, body) = event(&server, &query, ended, &object(&run)).await;
    assert_eq!((code, body["reported"].clone()), (202, json!(false)), "{body}");
    assert_eq!(body["reason"], "the run has not ended");
    assert_eq!(status(dir.path())["state"], "pending");

    // The run ends; the event arrives. Within the reply, the status is there.
    finish(&run, true);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // past the one-read-a-second limit
    let (code, body) = event(&server, &query, ended, &object(&run)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["reported"], true);
    assert_eq!(status(dir.path())["state"], "success", "posted before the reply");

    // Replayed: once only.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (code, body) = event(&server, &query, ended, &object(&run)).await;
    assert_eq!((code, body["reason"].as_str()), (202, Some("its result was reported already")), "{body}");
}

#[tokio::test]
async fn an_event_is_refused_without_the_token_and_believed_in_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(TOKEN));
    send(dir.path(), &server, "push", "tekton-push-2", &sample("push.json"));
    let run = the_run(dir.path());
    finish(&run, false);
    let failed = "dev.tekton.event.pipelinerun.failed.v1";

    for query in ["", "?token=wrong", "?token="] {
        let (code, _) = event(&server, query, failed, &object(&run)).await;
        assert_eq!(code, 401, "{query:?}");
    }
    // A run Ferry did not launch, and one that does not exist: nothing read into a status.
    let mut stranger = object(&run);
    stranger["metadata"]["name"] = "someone-elses-run".into();
    let (code, body) = event(&server, &format!("?token={TOKEN}"), failed, &stranger).await;
    assert_eq!((code, body["reason"].as_str()), (202, Some("the cluster has no such run")), "{body}");
    let (code, body) =
        event(&server, &format!("?token={TOKEN}"), "dev.tekton.event.pipelinerun.started.v1", &stranger).await;
    assert_eq!(code, 202, "a start is not an end: {body}");
    let (code, _) = event(&server, &format!("?token={TOKEN}"), "com.example.other", &stranger).await;
    assert_eq!(code, 400);
    assert_eq!(status(dir.path())["state"], "pending", "nothing was reported");

    // The bearer form, then the same run again within a second.
    let bearer = client()
        .post(format!("{}/tekton/events", server.url))
        .bearer_auth(TOKEN)
        .header("ce-type", failed)
        .body(json!({ "pipelineRun": object(&run) }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status().as_u16(), 200);
    assert_eq!(status(dir.path())["state"], "failure");
    let (code, _) = event(&server, &format!("?token={TOKEN}"), failed, &object(&run)).await;
    assert_eq!(code, 429, "one read of a run per second");
}

#[tokio::test]
async fn the_route_is_closed_without_a_token_configured() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None);
    let (code, body) =
        event(&server, "?token=anything", "dev.tekton.event.pipelinerun.successful.v1", &json!({})).await;
    assert_eq!(code, 404, "{body}");
}

/// Tekton failing the run as it does: the PipelineRun lists its TaskRuns,
/// the failed one names its pod and the step that exited non-zero, and the
/// step's container wrote a log (with a token in it).
fn fail_in_a_step(dir: &Path, run: &Path) -> String {
    let name = object(run)["metadata"]["name"].as_str().unwrap().to_owned();
    let mut pipeline_run = object(run);
    pipeline_run["status"] = json!({
        "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed", "message": "Tasks Completed: 2 (Failed: 1)"}],
        "childReferences": [
            {"kind": "TaskRun", "name": format!("{name}-clone"), "pipelineTaskName": "clone"},
            {"kind": "TaskRun", "name": format!("{name}-build"), "pipelineTaskName": "build"},
        ],
    });
    std::fs::write(run, serde_yaml_ng::to_string(&pipeline_run).unwrap()).unwrap();
    let task_runs = dir.join(".ferry/cluster/ci/taskrun");
    std::fs::create_dir_all(&task_runs).unwrap();
    for (task, code) in [("clone", 0), ("build", 2)] {
        let task_run = json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": format!("{name}-{task}"), "namespace": "ci"},
            "status": {
                "podName": format!("{name}-{task}-pod"),
                "conditions": [{"type": "Succeeded", "status": if code == 0 { "True" } else { "False" }}],
                "steps": [{"name": task, "container": format!("step-{task}"), "terminated": {"exitCode": code}}],
            },
        });
        std::fs::write(task_runs.join(format!("{name}-{task}.yaml")), serde_yaml_ng::to_string(&task_run).unwrap())
            .unwrap();
    }
    let pod = dir.join(format!(".ferry/cluster/ci/pod/{name}-build-pod"));
    std::fs::create_dir_all(&pod).unwrap();
    let mut log: String = (1..=40).map(|i| format!("compiling module {i}\n")).collect();
    log.push_str("pushing with GITHUB_TOKEN=ghs_16C7e42F292c6912E7710c838347Ae178B4a\n");
    log.push_str("```\nerror: the build failed\n");
    std::fs::write(pod.join("step-build.log"), log).unwrap();
    name
}

#[tokio::test]
async fn a_failed_run_s_check_run_carries_its_failed_step_s_last_lines_masked() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(TOKEN));
    send(dir.path(), &server, "push", "tekton-push-3", &sample("push.json"));
    let run = the_run(dir.path());
    let name = fail_in_a_step(dir.path(), &run);

    let (code, body) =
        event(&server, &format!("?token={TOKEN}"), "dev.tekton.event.pipelinerun.failed.v1", &object(&run)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(status(dir.path())["state"], "failure");
    let check = dir.path().join(format!(".ferry/forge/acme/api/checks/{SHA}/ferry_api.json"));
    let check: Value = serde_json::from_str(&std::fs::read_to_string(check).unwrap()).unwrap();
    let summary = check["output"]["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("Step `build` of TaskRun `{name}-build` failed; its last 30 lines:")),
        "{summary}"
    );
    assert!(summary.contains("compiling module 40") && !summary.contains("compiling module 12\n"), "the last 30 lines");
    assert!(summary.contains("error: the build failed"), "{summary}");
    assert!(summary.contains("GITHUB_TOKEN=***") && !summary.contains("ghs_16C7"), "masked: {summary}");
    assert!(summary.contains("\n````text\n"), "a fence the log's own ``` cannot close: {summary}");
}

/// Runs on the dry-run cluster, by name: whether each waits (created pending).
fn waiting(dir: &Path) -> Vec<(String, bool)> {
    let runs = dir.join(".ferry/cluster/ci/pipelinerun");
    let mut found: Vec<(String, bool)> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| {
            let object: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            (name, object["spec"]["status"] == "PipelineRunPending")
        })
        .collect();
    found.sort();
    found
}

/// A Ferry whose acme/api has one unit `api` with `unit_settings`
/// (`max_running = 1`…) and the repository's `repository_settings`.
fn serve_api(dir: &Path, repository_settings: &str, unit_settings: &str) -> Server {
    let config = format!(
        "[repositories.\"acme/api\"]\n{repository_settings}units = '''\n[api]\n{unit_settings}\
         [api.pipeline]\nnamespace = \"ci\"\nref = \"build\"\n'''\n"
    );
    std::fs::write(dir.join("ferry.toml"), config).unwrap();
    let server = serve_with(dir, &[("FERRY_CONFIG", "ferry.toml"), ("FERRY_TEKTON_TOKEN", TOKEN)]);
    send(dir, &server, "installation", "installed", &sample("installation.created.json"));
    server
}

/// Ferry on acme/api with these settings, and three pushes to it, of the
/// commits `<pair>` × 20.
fn three_pushes(dir: &Path, repository_settings: &str, unit_settings: &str, pairs: [&str; 3]) -> (Server, [String; 3]) {
    let server = serve_api(dir, repository_settings, unit_settings);
    let shas = pairs.map(|pair| pair.repeat(20));
    push_on_branches(dir, &server, &shas);
    (server, shas)
}

/// One push per commit, each to a branch of its own: lanes of their own,
/// so none supersedes another.
fn push_on_branches(dir: &Path, server: &Server, shas: &[String]) {
    for (i, sha) in shas.iter().enumerate() {
        let mut push = sample("push.json");
        push["ref"] = json!(format!("refs/heads/b{i}"));
        push["after"] = json!(sha);
        push["repository"]["pushed_at"] = json!(1_790_000_000 + i as i64);
        let reply = send(dir, server, "push", &format!("push-{sha}"), &push);
        assert!(reply.contains("pipelinerun.created"), "{reply}");
    }
}

#[tokio::test]
async fn past_max_running_runs_wait_and_start_in_order_as_each_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (server, shas) = three_pushes(dir, "max_running = 1\n", "", ["a1", "b2", "c3"]);
    let name_of = |sha: &str| format!("ferry-api-{}", &sha[..7]);
    let state = |dir: &Path| -> Vec<(bool, String)> {
        let runs = waiting(dir);
        shas.iter()
            .map(|sha| runs.iter().find(|(n, _)| n.starts_with(&name_of(sha))).map(|(n, w)| (*w, n.clone())).unwrap())
            .collect()
    };
    let at_first = state(dir);
    assert_eq!(
        at_first.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
        [false, true, true],
        "one runs, two wait: {at_first:?}"
    );
    let queued = serde_json::from_str::<Value>(
        &std::fs::read_to_string(dir.join(format!(".ferry/forge/acme/api/statuses/{}/ferry_api.json", shas[1])))
            .unwrap(),
    )
    .unwrap();
    assert!(
        queued["description"].as_str().unwrap().ends_with("queued: 1 runs of the repository running (max_running = 1)"),
        "{queued}"
    );

    for (finished, expected) in [(0, [false, false, true]), (1, [false, false, false])] {
        let run = dir.join(format!(".ferry/cluster/ci/pipelinerun/{}.yaml", at_first[finished].1));
        finish(&run, true);
        let (code, body) =
            event(&server, &format!("?token={TOKEN}"), "dev.tekton.event.pipelinerun.successful.v1", &object(&run))
                .await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(state(dir).iter().map(|(w, _)| *w).collect::<Vec<_>>(), expected, "after run {finished} finished");
    }
    let started = serde_json::from_str::<Value>(
        &std::fs::read_to_string(dir.join(format!(".ferry/forge/acme/api/statuses/{}/ferry_api.json", shas[2])))
            .unwrap(),
    )
    .unwrap();
    assert!(started["description"].as_str().unwrap().ends_with("started"), "{started}");
}

#[tokio::test]
async fn finished_runs_beyond_keep_runs_are_deleted_once_a_result_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (server, shas) = three_pushes(dir, "", "keep_runs = 2\n", ["d4", "e5", "f6"]);
    let names: Vec<String> = waiting(dir).into_iter().map(|(name, _)| name).collect();
    assert_eq!(names.len(), 3);
    let ordered: Vec<String> = shas
        .iter()
        .map(|sha| names.iter().find(|n| n.starts_with(&format!("ferry-api-{}", &sha[..7]))).unwrap().clone())
        .collect();
    // Tekton copies a PipelineRun's labels to its TaskRuns: a finished child stays with its run.
    let mut child = object(&dir.join(format!(".ferry/cluster/ci/pipelinerun/{}.yaml", ordered[2])));
    child["kind"] = json!("TaskRun");
    child["metadata"]["name"] = json!(format!("{}-build", ordered[2]));
    child["metadata"]["labels"]["tekton.dev/pipelineRun"] = json!(ordered[2]);
    child["status"] = json!({"conditions": [{"type": "Succeeded", "status": "True"}]});
    let children = dir.join(".ferry/cluster/ci/taskrun");
    std::fs::create_dir_all(&children).unwrap();
    let child_file = children.join(format!("{}-build.yaml", ordered[2]));
    std::fs::write(&child_file, serde_yaml_ng::to_string(&child).unwrap()).unwrap();
    for (i, name) in ordered.iter().enumerate() {
        let run = dir.join(format!(".ferry/cluster/ci/pipelinerun/{name}.yaml"));
        finish(&run, true);
        let (code, body) =
            event(&server, &format!("?token={TOKEN}"), "dev.tekton.event.pipelinerun.successful.v1", &object(&run))
                .await;
        assert_eq!(code, 200, "run {i}: {body}");
    }
    let left: Vec<String> = waiting(dir).into_iter().map(|(name, _)| name).collect();
    let mut newest_two = ordered[1..].to_vec();
    newest_two.sort();
    assert_eq!(left, newest_two, "the oldest finished run went");
    assert!(child_file.exists(), "a kept run's TaskRun is not pruned as a run of its own");
}

#[tokio::test]
async fn a_run_s_event_also_reports_a_preview_that_came_up() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = start(dir, Some(TOKEN));
    let reply = send(dir, &server, "pull_request", "pr-opened", &sample("pull_request.opened.json"));
    assert!(reply.contains("preview.applied"), "{reply}");
    let deployments = dir.join(".ferry/forge/acme/api/deployments");
    let environment = std::fs::read_dir(&deployments).unwrap().next().unwrap().unwrap().path();
    let state = |path: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap() };
    assert_eq!(state(&environment)["state"], "in_progress");

    // The preview's Deployment rolls out, and the pull request's run ends.
    let cluster = dir.join(".ferry/cluster");
    let namespace = std::fs::read_dir(&cluster)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("preview-"))
        .unwrap();
    let deployment = namespace.join("deployment/api.yaml");
    let mut rolled_out: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&deployment).unwrap()).unwrap();
    rolled_out["status"] = json!({"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1,
                              "conditions": [{"type": "Available", "status": "True"}]});
    std::fs::write(&deployment, serde_yaml_ng::to_string(&rolled_out).unwrap()).unwrap();
    let run = the_run(dir);
    finish(&run, true);
    let (code, body) =
        event(&server, &format!("?token={TOKEN}"), "dev.tekton.event.pipelinerun.successful.v1", &object(&run)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(state(&environment)["state"], "success", "the preview's health, with the run's result");
}
