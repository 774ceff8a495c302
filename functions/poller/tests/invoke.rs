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

/// With a queue and more refs due than it polls at once, a scheduled event
/// queues one item per due ref and polls none; the queue's event is the
/// polls, answered with the items that failed: the unreadable one only (a
/// ref whose poll fails is the next cycle's, and the sample's ref, which
/// this config does not list, does nothing).
#[tokio::test]
async fn with_a_queue_many_due_refs_are_queued_and_the_queue_s_events_poll() {
    use ferry_tests::lambda::{failed_items, sqs_event};

    let (sqs, url, _) = ferry_tests::emulator::work_queue(30, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    // Nothing listens on port 1: a poll fails at once.
    let entry = |name| {
        let endpoint = "endpoint = \"http://127.0.0.1:1/events\"\n";
        format!("[[poll]]\ntype = \"git\"\nurl = \"http://127.0.0.1:1/acme/{name}.git\"\nref = \"main\"\n{endpoint}")
    };
    std::fs::write(&config, format!("poll_in_flight = 1\n{}{}", entry("api"), entry("web"))).unwrap();
    let env = [("FERRY_POLL_QUEUE", url.as_str()), ("FERRY_CONFIG", config.to_str().unwrap())];

    let report = ferry_tests::lambda::scheduled(binary(), "poller", &env).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((&report["queued"], &report["polled"]), (&2.into(), &0.into()), "{report}");
    let queued = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    let mut bodies: Vec<&str> = queued.messages().iter().filter_map(|m| m.body()).collect();
    bodies.sort_unstable();
    assert_eq!(
        bodies,
        [
            r#"{"url":"http://127.0.0.1:1/acme/api.git","ref":"main"}"#,
            r#"{"url":"http://127.0.0.1:1/acme/web.git","ref":"main"}"#
        ]
    );

    let event = sqs_event("poller", &[("m-listed", bodies[0]), ("m-poison", "not an item")]);
    assert_eq!(failed_items(binary(), &event, &env).await, ["m-poison"]);
}
