//! `ferry-webhook` as Lambda runs it: the real binary against the Lambda
//! Runtime API, given the signed samples from `events/`.

use ferry_tests::lambda::{Answer, invoke, sample};

/// What the signed samples need: their secret, a data directory, and the
/// operator config that gives `acme/api` units.
fn sample_env(dir: &std::path::Path) -> [(&'static str, String); 3] {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/ferry.toml");
    [
        ("FERRY_WEBHOOK_SECRET", "ferry-sample-secret".to_owned()),
        ("FERRY_DATA_DIR", dir.to_str().unwrap().to_owned()),
        ("FERRY_CONFIG", config.to_str().unwrap().to_owned()),
    ]
}

async fn deliver(front: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let env = sample_env(dir.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let event = sample(&format!("{front}/push.json"));
    match invoke(std::path::Path::new(env!("CARGO_BIN_EXE_ferry-webhook")), &event, &env).await {
        Answer::Response(response) => {
            assert_eq!(response["statusCode"], 200, "{front}: {response}");
            assert!(dir.path().join("cluster/ci/pipelinerun").read_dir().unwrap().count() == 1, "{front}: one run");
            serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
        }
        Answer::Error(error) => panic!("{front}: {error}"),
    }
}

#[tokio::test]
async fn the_sample_push_launches_through_each_front_door() {
    for front in ["apigw-v1", "apigw-v2", "function-url"] {
        let body = deliver(front).await;
        assert_eq!(body["outcome"], "processed", "{front}: {body}");
        assert_eq!(body["actions"][0]["kind"], "pipelinerun.created", "{front}: {body}");
    }
}

/// Each invocation ends with its metrics as CloudWatch Embedded Metric
/// Format lines on stdout, each as the format's specification requires
/// (namespace `Ferry`): the push counted by outcome and by event, its run
/// counted by kind, and how long it took. A forged delivery is counted
/// `rejected` and never by the event name it claimed.
#[tokio::test]
async fn each_invocation_ends_with_its_metrics_in_embedded_metric_format() {
    use ferry_tests::emf;
    use ferry_tests::lambda::invoke_with_output;

    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ferry-webhook"));
    let dir = tempfile::tempdir().unwrap();
    let env = sample_env(dir.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (answer, output) = invoke_with_output(binary, &sample("apigw-v2/push.json"), &env).await;
    assert!(matches!(answer, Answer::Response(ref r) if r["statusCode"] == 200), "{answer:?}");
    let documents = emf::documents(&output);
    assert!(documents.iter().all(|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Ferry"), "{output}");
    assert_eq!(emf::sum(&documents, "ferry_deliveries", &[("outcome", "processed")]), 1.0, "{output}");
    let by_event = [("event", "push"), ("outcome", "processed")];
    assert_eq!(emf::sum(&documents, "ferry_deliveries_by_event", &by_event), 1.0, "{output}");
    assert_eq!(emf::sum(&documents, "ferry_actions", &[("kind", "pipelinerun.created")]), 1.0, "{output}");
    let took = documents.iter().find_map(|d| d["ferry_intake_duration"].as_array().cloned()).expect("a duration");
    assert!(took.len() == 1 && took[0].as_f64().unwrap() > 0.0, "{output}");

    let mut forged = sample("apigw-v2/push.json");
    forged["headers"]["x-hub-signature-256"] = format!("sha256={}", "0".repeat(64)).into();
    let (answer, output) = invoke_with_output(binary, &forged, &env).await;
    assert!(matches!(answer, Answer::Response(ref r) if r["statusCode"] == 401), "{answer:?}");
    let documents = emf::documents(&output);
    assert_eq!(emf::sum(&documents, "ferry_deliveries", &[("outcome", "rejected")]), 1.0, "{output}");
    let names = emf::names(&documents);
    assert!(!names.iter().any(|n| n == "ferry_deliveries_by_event"), "a refusal names no event: {output}");
    assert!(!names.iter().any(|n| n == "ferry_intake_duration"), "nor times one: {output}");
}
