//! `ferry-poller` as Lambda runs it: the real binary against the Lambda
//! Runtime API, given EventBridge's scheduled event from `events/`.

fn binary() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_ferry-poller"))
}

#[tokio::test]
async fn a_scheduled_event_runs_one_cycle_and_answers_its_report() {
    let report = ferry_tests::lambda::scheduled(binary(), "poller", &[]).await.unwrap_or_else(|e| panic!("{e}"));
    // No [[poll]] refs: nothing polled.
    assert_eq!((&report["delivered"], &report["failed"]), (&0.into(), &serde_json::json!([])), "{report}");
}

/// A ref that cannot be polled makes the invocation an error (so Lambda's
/// error metric and the template's alarm see it), naming the ref; the
/// cycle itself still ran to its end.
#[tokio::test]
async fn a_cycle_with_failures_is_an_invocation_error_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    // Nothing listens on port 1: the poll fails at once.
    let entry = "[[poll]]\ntype = \"git\"\nurl = \"http://127.0.0.1:1/acme/api.git\"\nref = \"main\"\n";
    std::fs::write(&config, format!("{entry}endpoint = \"http://127.0.0.1:1/events\"\n")).unwrap();
    match ferry_tests::lambda::scheduled(binary(), "poller", &[("FERRY_CONFIG", config.to_str().unwrap())]).await {
        Err(error) => {
            assert_eq!(error["errorType"], "CycleFailures", "{error}");
            let message = error["errorMessage"].as_str().unwrap();
            assert!(message.starts_with("polling: 1 failed"), "{message}");
            assert!(message.contains("127.0.0.1:1/acme/api.git main"), "{message}");
        }
        Ok(report) => panic!("a failed poll answered as a success: {report}"),
    }
}
