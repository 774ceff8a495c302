//! `ferry-reconciler` as Lambda runs it: the real binary against the
//! Lambda Runtime API, given EventBridge's scheduled event from `events/`.

#[tokio::test]
async fn a_scheduled_event_runs_one_cycle_and_answers_its_report() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ferry-reconciler"));
    let report = ferry_tests::lambda::scheduled(binary, "reconciler", &[]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((&report["statuses"], &report["failed"]), (&0.into(), &serde_json::json!([])), "{report}");
}
