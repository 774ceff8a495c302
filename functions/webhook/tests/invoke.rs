//! `ferry-webhook` as Lambda runs it: the real binary against the Lambda
//! Runtime API, given the signed samples from `events/`.

use ferry_tests::lambda::{Answer, invoke, sample};

async fn deliver(front: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/ferry.toml");
    let env = [
        ("FERRY_WEBHOOK_SECRET", "ferry-sample-secret"),
        ("FERRY_DATA_DIR", dir.path().to_str().unwrap()),
        ("FERRY_CONFIG", config.to_str().unwrap()),
    ];
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
