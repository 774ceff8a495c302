//! `ferry-token-rotator` as Lambda runs it: the real binary against the
//! Lambda Runtime API, given EventBridge's scheduled event from `events/`.

#[tokio::test]
async fn a_scheduled_event_runs_one_rotation_and_answers_its_report() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ferry-token-rotator"));
    let report = ferry_tests::lambda::scheduled(binary, "token-rotator", &[]).await.unwrap_or_else(|e| panic!("{e}"));
    // No installations: nothing minted, nothing failed.
    assert_eq!((&report["minted"], &report["failed"]), (&serde_json::json!([]), &serde_json::json!([])), "{report}");
}
