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
