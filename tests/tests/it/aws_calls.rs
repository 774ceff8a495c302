//! What one warm webhook invocation costs in DynamoDB calls, counted at the
//! SDK's HTTP layer against the AWS API emulator: each request's operation,
//! in order. A new call on the delivery path shows up here by name.

use std::sync::Arc;

use ferry_tests::emulator;
use ferry_tests::throttle::{Service, ThrottleFirst};
use ferry_tests::webhook::Harness;
use serde_json::json;

const SECRET: &str = "counted-secret";

const UNITS: &str = r#"
[repositories."acme/api"]
units = '''
[api.pipeline]
namespace = "ci"
ref = "build"
'''
"#;

/// A harness on a DynamoDB table of its own whose every call is counted.
async fn counted() -> (Harness, ThrottleFirst) {
    let counter = ThrottleFirst::new(Service::DynamoDb, 0);
    let state = Arc::new(emulator::dynamo_store_with(Some(&counter)).await);
    let mut harness = Harness::with_state(state, SECRET).await;
    harness.set_operator(UNITS);
    (harness, counter)
}

fn push(after: char) -> String {
    json!({
        "ref": "refs/heads/main", "before": "0".repeat(40), "after": after.to_string().repeat(40),
        "commits": [{"added": ["src/lib.rs"], "modified": [], "removed": []}],
        "repository": {"full_name": "acme/api", "clone_url": "https://github.com/acme/api.git",
                       "pushed_at": 1_790_000_000},
        "installation": {"id": 5}, "sender": {"login": "octocat"}
    })
    .to_string()
}

fn installation() -> String {
    json!({
        "action": "created",
        "installation": {"id": 5, "account": {"login": "acme"}, "repository_selection": "selected",
                         "updated_at": "2026-11-20T10:00:00Z"},
        "repositories": [{"full_name": "acme/api"}],
        "sender": {"login": "octocat"}
    })
    .to_string()
}

/// A ping: the delivery is written once, conditionally, and its outcome
/// once; nothing else is read or written.
#[tokio::test]
async fn a_warm_ping_costs_the_delivery_and_its_outcome() {
    let (harness, counter) = counted().await;
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1}).to_string();
    assert_eq!(harness.deliver("ping", "cold-ping", SECRET, &ping).await.0, 200);
    counter.take_operations();
    assert_eq!(harness.deliver("ping", "warm-ping", SECRET, &ping).await.0, 200);
    assert_eq!(counter.take_operations(), ["PutItem", "PutItem"]);
}

/// A push that launches one unit, warm: what it costs, call by call. Each
/// is named so that a new one is a decision, not an accident.
#[tokio::test]
async fn a_warm_push_costs_a_known_list_of_calls() {
    let (harness, counter) = counted().await;
    assert_eq!(harness.deliver("installation", "installed", SECRET, &installation()).await.0, 200);
    let (status, reply) = harness.deliver("push", "cold-push", SECRET, &push('a')).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("processed")), "{reply}");
    counter.take_operations();
    let (status, reply) = harness.deliver("push", "warm-push", SECRET, &push('b')).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("processed")), "{reply}");
    let operations = counter.take_operations();
    let writes = operations.iter().filter(|op| matches!(op.as_str(), "PutItem" | "DeleteItem")).count();
    println!("a warm push: {} calls: {operations:?}", operations.len());
    assert!(operations.iter().all(|op| matches!(op.as_str(), "GetItem" | "PutItem" | "Query" | "DeleteItem")));
    assert_eq!(operations.first().map(String::as_str), Some("PutItem"), "the body's replay check comes first");
    assert_eq!(operations.last().map(String::as_str), Some("PutItem"), "the outcome comes last");
    assert_eq!(operations, EXPECTED_PUSH, "{writes} writes");
}

/// The calls of a warm push today, in order (BENCHMARKS.md, "AWS calls per
/// delivery").
const EXPECTED_PUSH: [&str; 6] = [
    "PutItem", // the body, created unless a replay
    "PutItem", // the delivery, created unless a redelivery
    "GetItem", // the repository: whose credential
    "GetItem", // the installation: suspended or not
    "PutItem", // the run, created (read and merged only if one is there)
    "PutItem", // the delivery's outcome
];
