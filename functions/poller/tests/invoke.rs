//! `ferry-poller` as Lambda runs it: the real binary against the Lambda
//! Runtime API, given EventBridge's scheduled event from `events/`.

use ferry_tests::lambda::{Answer, invoke, sample};

#[tokio::test]
async fn a_scheduled_event_runs_one_cycle_and_answers_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("FERRY_DATA_DIR", dir.path().to_str().unwrap())];
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ferry-poller"));
    match invoke(binary, &sample("eventbridge/poller.json"), &env).await {
        Answer::Response(report) => {
            assert_eq!(report["delivered"], 0, "no [[poll]] refs: nothing polled: {report}");
            assert_eq!(report["failed"], serde_json::json!([]), "{report}");
        }
        Answer::Error(error) => panic!("{error}"),
    }
}

/// A ref that cannot be polled makes the invocation an error (so Lambda's
/// error metric and the template's alarm see it), naming the ref; the
/// cycle itself still ran to its end.
#[tokio::test]
async fn a_cycle_with_failures_is_an_invocation_error_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: the poll fails at once.
    let config = "[[poll]]\ntype = \"git\"\nurl = \"http://127.0.0.1:1/acme/api.git\"\nref = \"main\"\nendpoint = \"http://127.0.0.1:1/events\"\n";
    std::fs::write(dir.path().join("ferry.toml"), config).unwrap();
    let config = dir.path().join("ferry.toml");
    let env = [("FERRY_DATA_DIR", dir.path().to_str().unwrap()), ("FERRY_CONFIG", config.to_str().unwrap())];
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ferry-poller"));
    match invoke(binary, &sample("eventbridge/poller.json"), &env).await {
        Answer::Error(error) => {
            assert_eq!(error["errorType"], "CycleFailures", "{error}");
            let message = error["errorMessage"].as_str().unwrap();
            assert!(message.starts_with("polling: 1 failed"), "{message}");
            assert!(message.contains("127.0.0.1:1/acme/api.git main"), "{message}");
        }
        Answer::Response(report) => panic!("a failed poll answered as a success: {report}"),
    }
}
