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

/// Installation 5 with acme/api, then a push to it processed: what a warm
/// instance has seen before the delivery a test counts.
async fn warmed(harness: &Harness, counter: &ThrottleFirst, first_push: &str, after: char) {
    assert_eq!(harness.deliver("installation", "installed", SECRET, &installation()).await.0, 200);
    let (status, reply) = harness.deliver("push", first_push, SECRET, &push(after)).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("processed")), "{reply}");
    counter.take_operations();
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
    warmed(&harness, &counter, "cold-push", 'a').await;
    let (status, reply) = harness.deliver("push", "warm-push", SECRET, &push('b')).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("processed")), "{reply}");
    let operations = counter.take_operations();
    let writes = operations.iter().filter(|op| matches!(op.as_str(), "PutItem" | "TransactWriteItems")).count();
    println!("a warm push: {} calls: {operations:?}", operations.len());
    assert!(operations.iter().all(|op| matches!(op.as_str(), "GetItem" | "PutItem" | "TransactWriteItems" | "Query")));
    assert_eq!(operations.first().map(String::as_str), Some("TransactWriteItems"), "the delivery and its body first");
    assert_eq!(operations.last().map(String::as_str), Some("PutItem"), "the outcome comes last");
    assert_eq!(operations, EXPECTED_PUSH, "{writes} writes");
}

/// The calls of a warm push today, in order (BENCHMARKS.md, "AWS calls per
/// delivery"): one write records the delivery, one its outcome; the rest is
/// the launch.
const EXPECTED_PUSH: [&str; 5] = [
    "TransactWriteItems", // the delivery and its body's hash, created together unless a redelivery or a replay
    "GetItem",            // the repository: whose credential
    "GetItem",            // the installation: suspended or not
    "PutItem",            // the run, created (read and merged only if one is there)
    "PutItem",            // the delivery's outcome
];

/// A signed body resent under a new delivery id, on DynamoDB: the write
/// that would record it is cancelled by the body's hash, so nothing acts;
/// the replay is recorded as a duplicate naming the first delivery. GitHub's
/// redelivery (the same id) is cancelled by the delivery itself.
#[tokio::test]
async fn a_replay_costs_three_calls_a_redelivery_one_and_neither_acts() {
    let (harness, counter) = counted().await;
    warmed(&harness, &counter, "first-push", 'c').await;
    let (status, reply) = harness.deliver("push", "replayed-push", SECRET, &push('c')).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("duplicate")), "{reply}");
    assert!(reply["reason"].as_str().unwrap().contains("first-push"), "{reply}");
    assert_eq!(reply["actions"], json!([]));
    let operations = counter.take_operations();
    assert_eq!(
        operations,
        ["TransactWriteItems", "GetItem", "PutItem"],
        "the cancelled write, the first body, the duplicate"
    );
    // GitHub's own redelivery keeps the id: received before, in one call.
    let (status, reply) = harness.deliver("push", "first-push", SECRET, &push('c')).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("duplicate")), "{reply}");
    assert!(reply["reason"].as_str().unwrap().contains("received before"), "{reply}");
    assert_eq!(counter.take_operations(), ["TransactWriteItems"]);
}

/// The webhook secret in Secrets Manager on the emulator, every call
/// counted: read with the first signed delivery, then kept, so a warm
/// delivery asks Secrets Manager nothing (it is read again only after the
/// TTL, `context::SECRETS_TTL`).
#[tokio::test]
async fn a_warm_delivery_reads_no_secret() {
    use ferry::secrets::{SecretName, SecretStore};
    let (mut harness, _) = counted().await;
    let counter = ThrottleFirst::new(Service::SecretsManager, 0);
    let store = emulator::secrets_manager(Some(&counter)).await;
    store.put(&SecretName::webhook_secret(), &secrecy::SecretString::from(SECRET.to_owned())).await.unwrap();
    counter.take_operations();
    harness.context.webhook_secrets =
        Arc::new(ferry::context::WebhookSecretsCache::stored(Arc::new(store) as Arc<dyn SecretStore>));
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1}).to_string();
    assert_eq!(harness.deliver("ping", "cold-secret", SECRET, &ping).await.0, 200);
    assert_eq!(counter.take_operations(), ["GetSecretValue"], "read with the first signed delivery");
    for id in ["warm-secret-1", "warm-secret-2"] {
        assert_eq!(harness.deliver("ping", id, SECRET, &ping).await.0, 200);
    }
    assert_eq!(counter.take_operations(), Vec::<String>::new(), "kept: no secret fetched");
}

/// What one cycle costs per repository on DynamoDB when nothing changed on
/// GitHub (both listings a 304): its listings' ETags (one `GetItem`), its
/// pending runs, previews and open pull requests (three `Query`s), and no
/// write; the cycle itself adds two `Query`s (unfinished deliveries, the
/// tracked repositories), whatever the number of repositories.
#[tokio::test]
async fn an_unchanged_repository_costs_four_reads_and_no_write() {
    use ferry::domain::{Installation, InstallationId, Repository, Timestamp};
    use ferry_tests::github::{FakeGithub, SimClock, app_keys};
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    let counter = ThrottleFirst::new(Service::DynamoDb, 0);
    let state = Arc::new(emulator::dynamo_store_with(Some(&counter)).await);
    let minter = Arc::new(fake.app(&app_keys().pkcs1_pem, clock.clone()));
    let mut harness = Harness::with_state_and_minter(state, minter).await;
    let context = harness.context();
    let tokens = ferry::usecase::tokens::TokenSource { tokens: context.tokens.clone(), state: context.state.clone() };
    let forge =
        ferry::forge::github::GithubForge::new(ferry::forge::github::GithubApi::new(&fake.url()), Arc::new(tokens));
    harness.set_forge(Arc::new(forge));
    harness.state().create(&Installation::new(InstallationId::new(5), "acme", "all").into()).await.unwrap();
    let tracked = Repository {
        installation: Some(InstallationId::new(5)),
        tracked_since: Some(Timestamp::now()),
        ..ferry_tests::builders::repository("acme/api")
    };
    harness.state().create(&tracked.into()).await.unwrap();
    let first = harness.reconcile(clock.as_ref()).await;
    assert_eq!((first.repositories, first.failed.len()), (1, 0), "{first:?}");
    counter.take_operations();

    let unchanged = harness.reconcile(clock.as_ref()).await;
    assert_eq!(unchanged.unchanged_listings, 2, "{unchanged:?}");
    assert_eq!(counter.take_operations(), ["Query", "Query", "GetItem", "Query", "Query", "Query"]);
}
