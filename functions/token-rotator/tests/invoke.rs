//! `ferry-token-rotator` as Lambda runs it: the real binary against the
//! Lambda Runtime API, given EventBridge's scheduled event from `events/`.

#[tokio::test]
async fn a_scheduled_event_runs_one_rotation_and_answers_its_report() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ferry-token-rotator"));
    let report = ferry_tests::lambda::scheduled(binary, "token-rotator", &[]).await.unwrap_or_else(|e| panic!("{e}"));
    // No installations: nothing minted, nothing failed.
    assert_eq!((&report["minted"], &report["failed"]), (&serde_json::json!([]), &serde_json::json!([])), "{report}");
}

/// With a queue, a scheduled event plans (one item per installation onto
/// the queue) and the queue's event is the refreshes, answered with the
/// items that failed: here the unreadable one only.
#[tokio::test]
async fn with_a_queue_the_schedule_plans_and_the_queue_s_events_refresh() {
    use ferry::domain::{Installation, InstallationId};
    use ferry::store::StateStore;
    use ferry_tests::lambda::{Answer, failed_items, sample, sqs_event};

    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ferry-token-rotator"));
    let (sqs, url, _) = ferry_tests::emulator::work_queue(30, 3).await;
    let store = ferry_tests::emulator::dynamo_store().await;
    store.create(&Installation::new(InstallationId::new(42), "acme", "all").into()).await.unwrap();
    let table = store.table().to_string();
    let env = [("FERRY_ROTATE_QUEUE", url.as_str()), ("FERRY_TABLE", table.as_str())];

    let data = tempfile::tempdir().unwrap();
    let scheduled = [env[0], env[1], ("FERRY_DATA_DIR", data.path().to_str().unwrap())];
    let (answer, output) =
        ferry_tests::lambda::invoke_with_output(binary, &sample("eventbridge/token-rotator.json"), &scheduled).await;
    let Answer::Response(report) = answer else { panic!("{answer:?}") };
    assert_eq!((&report["queued"], &report["minted"]), (&1.into(), &serde_json::json!([])), "{report}");
    // The plan's metrics, as CloudWatch takes them.
    let documents = ferry_tests::emf::documents(&output);
    assert_eq!(ferry_tests::emf::sum(&documents, "ferry_queued", &[("cycle", "rotate")]), 1.0, "{output}");
    let queued = sqs.receive_message().queue_url(&url).send().await.unwrap();
    let bodies: Vec<&str> = queued.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, [r#"{"installation":42}"#]);

    let event = sqs_event("token-rotator", &[("m-poison", r#"{"installation":"42; rm -rf /"}"#)]);
    assert_eq!(failed_items(binary, &event, &env).await, ["m-poison"]);
}
