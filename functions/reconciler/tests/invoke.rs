//! `ferry-reconciler` as Lambda runs it: the real binary against the
//! Lambda Runtime API, given EventBridge's scheduled event from `events/`.

#[tokio::test]
async fn a_scheduled_event_runs_one_cycle_and_answers_its_report() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ferry-reconciler"));
    let report = ferry_tests::lambda::scheduled(binary, "reconciler", &[]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((&report["statuses"], &report["failed"]), (&0.into(), &serde_json::json!([])), "{report}");
}

/// With a queue, a scheduled event plans (one item per tracked repository
/// onto the queue) and the queue's event is the repairs, answered with the
/// items that failed: here the unreadable one only.
#[tokio::test]
async fn with_a_queue_the_schedule_plans_and_the_queue_s_events_repair() {
    use ferry::domain::{InstallationId, Repository};
    use ferry::store::StateStore;
    use ferry_tests::lambda::{failed_items, sqs_event};

    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ferry-reconciler"));
    let (sqs, url, _) = ferry_tests::emulator::work_queue(30, 3).await;
    let store = ferry_tests::emulator::dynamo_store().await;
    let tracked =
        Repository { installation: Some(InstallationId::new(42)), ..ferry_tests::builders::repository("acme/api") };
    store.create(&tracked.into()).await.unwrap();
    let table = store.table().to_string();
    let env = [("FERRY_RECONCILE_QUEUE", url.as_str()), ("FERRY_TABLE", table.as_str())];

    let report = ferry_tests::lambda::scheduled(binary, "reconciler", &env).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((&report["queued"], &report["repositories"]), (&1.into(), &0.into()), "{report}");
    let queued = sqs.receive_message().queue_url(&url).send().await.unwrap();
    let bodies: Vec<serde_json::Value> =
        queued.messages().iter().filter_map(|m| serde_json::from_str(m.body()?).ok()).collect();
    assert_eq!(bodies.len(), 1);
    assert_eq!((&bodies[0]["repo"], &bodies[0]["installation"]), (&"acme/api".into(), &42.into()));
    assert!(bodies[0]["plan"].is_u64(), "{}", bodies[0]);

    let event = sqs_event("reconciler", &[("m-poison", "not an item")]);
    assert_eq!(failed_items(binary, &event, &env).await, ["m-poison"]);

    // What the status page shows: the plan's report, and the batch's apart.
    let kept = |name: &str| {
        let key = ferry::store::Key::CycleReport(name.to_owned());
        let store = &store;
        async move {
            let state: &dyn StateStore = store;
            state.load::<ferry::domain::CycleReport>(&key).await.unwrap().expect("a kept report").record
        }
    };
    let plan = kept("reconcile").await;
    assert!(plan.summary.contains("1 queued"), "{}", plan.summary);
    let batch = kept("reconcile.batch").await;
    assert!(batch.summary.contains("items not done"), "the unreadable item: {}", batch.summary);
    assert_eq!(batch.failures.len(), 1, "{:?}", batch.failures);
}
