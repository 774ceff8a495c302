//! Tekton's event through `ferry serve` on a Kubernetes API server (the
//! fake one: kube-fake-client behind HTTP): the push creates the run
//! there, a forged event for the unfinished run posts nothing, and once
//! the cluster says the run succeeded, its event posts the status before
//! the reply.

use crate::common;

use std::path::Path;

use common::{client, demo_config, sample, send, serve_with};
use ferry_tests::kube_api::FakeApiServer;
use serde_json::{Value, json};

const TOKEN: &str = "tekton-sink-token-for-the-kube-test";
const SHA: &str = "9c2a4b7e1d3f5a6c8e0b2d4f6a8c0e2b4d6f8a0c";

fn status(dir: &Path) -> Value {
    let path = dir.join(format!(".ferry/forge/acme/api/statuses/{SHA}/ferry_api.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn event(url: &str, run: &Value) -> (u16, Value) {
    let reply = client()
        .post(format!("{url}/tekton/events?token={TOKEN}"))
        .header("ce-specversion", "1.0")
        .header("ce-type", "dev.tekton.event.pipelinerun.successful.v1")
        .header("ce-source", "/apis///namespaces/ci//run")
        .header("ce-id", "kube-1")
        .body(json!({ "pipelineRun": run }).to_string())
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_reports_what_the_kubernetes_api_says_of_the_run() {
    let api = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("kubeconfig"), api.kubeconfig()).unwrap();
    std::fs::write(dir.join("ferry.toml"), demo_config()).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let server = serve_with(
        dir,
        &[
            ("FERRY_CONFIG", "ferry.toml"),
            ("FERRY_CLUSTER", "kube"),
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("FERRY_TEKTON_TOKEN", TOKEN),
        ],
    );
    send(dir, &server, "installation", "installed", &sample("installation.created.json"));
    let reply = send(dir, &server, "push", "kube-push", &sample("push.json"));
    assert!(reply.contains("pipelinerun.created"), "{reply}");
    let runs = api.runs("ci", "PipelineRun").await;
    assert_eq!(runs.len(), 1, "the run is on the API server: {runs:?}");
    let run = runs[0].clone();
    assert_eq!(run["metadata"]["labels"]["app.kubernetes.io/managed-by"], "ferry");
    assert!(run["spec"]["status"].is_null(), "started: {}", run["spec"]);
    assert_eq!(status(dir)["state"], "pending");

    // Forged: the cluster says the run has not ended.
    let (code, body) = event(&server.url, &run).await;
    assert_eq!((code, body["reason"].as_str()), (202, Some("the run has not ended")), "{body}");
    assert_eq!(status(dir)["state"], "pending");

    // Tekton ends it; its event reports it.
    let name = run["metadata"]["name"].as_str().unwrap();
    api.set_status(
        "ci",
        "PipelineRun",
        name,
        json!({"conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}]}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // past the one-read-a-second limit
    let (code, body) = event(&server.url, &run).await;
    assert_eq!((code, body["reported"].clone()), (200, json!(true)), "{body}");
    assert_eq!(status(dir)["state"], "success", "posted before the reply");
}
