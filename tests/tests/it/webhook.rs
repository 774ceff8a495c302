//! The webhook flow through the real Lambda service: verify, record once,
//! persist, act, reply.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry::domain::{DeliveryId, Installation, InstallationId, Outcome, Repository};
use ferry::store::{Collection, EmbeddedStore, Key, Record, StateStore, StoreError, Version, Versioned};
use ferry::usecase::intake::{Inbound, Ports, intake};
use ferry::usecase::launch::LaunchPorts;
use ferry_tests::builders::repo;
use ferry_tests::events::{Front, github_headers, lambda_event, secret};
use ferry_tests::webhook::Harness;
use serde_json::Value;

const SECRET: &str = "test-webhook-secret";

fn sample(name: &str) -> String {
    let path = format!("{}/../events/github/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn delivery(harness: &Harness, id: &str) -> Option<ferry::domain::Delivery> {
    let key = Key::Delivery(DeliveryId::parse(id).unwrap());
    harness.state().load(&key).await.unwrap().map(|v| v.record)
}

#[tokio::test]
async fn a_forged_delivery_is_401_and_changes_nothing() {
    let harness = Harness::embedded(SECRET).await;
    let body = sample("installation.created");
    let wrong = harness.deliver("installation", "forged-1", "not-the-secret", &body).await;
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong.1["outcome"], "rejected");
    assert_eq!(wrong.1["reason"], "signature does not match");

    let unsigned = lambda_event(Front::HttpApi, github_headers("installation", "forged-2", None, &body), &body);
    assert_eq!(harness.invoke(&unsigned).await.0, 401);
    let sha1 = github_headers("installation", "forged-3", Some("sha1=7d38cdd689735b008b3c702edd92eea23791c5f6"), &body);
    let (status, reply) = harness.invoke(&lambda_event(Front::HttpApi, sha1, &body)).await;
    assert_eq!((status, reply["reason"].as_str()), (401, Some("only sha256 signatures are accepted")));

    for id in ["forged-1", "forged-2", "forged-3"] {
        assert_eq!(delivery(&harness, id).await, None, "{id} was recorded");
    }
    let installation = Key::Installation(InstallationId::new(4242));
    assert_eq!(harness.state().get(&installation).await.unwrap(), None, "a forged event acted");
}

#[tokio::test]
async fn missing_headers_are_400() {
    let harness = Harness::embedded(SECRET).await;
    let body = sample("ping");
    let signature = ferry::domain::signature::sign(&secret(SECRET), body.as_bytes());
    let mut headers = github_headers("ping", "d-1", Some(&signature), &body);
    headers.remove("X-GitHub-Event");
    let (status, reply) = harness.invoke(&lambda_event(Front::HttpApi, headers, &body)).await;
    assert_eq!((status, reply["reason"].as_str()), (400, Some("missing X-GitHub-Event header")));
    let mut headers = github_headers("ping", "d-1", Some(&signature), &body);
    headers.remove("X-GitHub-Delivery");
    assert_eq!(harness.invoke(&lambda_event(Front::HttpApi, headers, &body)).await.0, 400);
}

#[tokio::test]
async fn a_signed_body_that_is_not_json_is_400_and_recorded_as_failed() {
    let harness = Harness::embedded(SECRET).await;
    let (status, reply) = harness.deliver("push", "not-json-1", SECRET, "{\"ref\": ").await;
    assert_eq!((status, &reply["outcome"]), (400, &Value::from("failed")));
    assert!(reply["reason"].as_str().unwrap().starts_with("the body is not JSON"), "{reply}");
    let recorded = delivery(&harness, "not-json-1").await.expect("recorded");
    assert_eq!(recorded.outcome, Outcome::Failed);
}

#[tokio::test]
async fn a_ping_is_processed_and_its_reply_is_readable() {
    let harness = Harness::embedded(SECRET).await;
    let (status, reply) = harness.deliver("ping", "ping-1", SECRET, &sample("ping")).await;
    assert_eq!(status, 200);
    assert_eq!(reply["delivery"], "ping-1");
    assert_eq!(reply["event"], "ping");
    assert_eq!(reply["outcome"], "processed");
    assert_eq!(reply["actions"], serde_json::json!([]));
    assert_eq!(reply["reason"], "pong");
    let recorded = delivery(&harness, "ping-1").await.unwrap();
    assert_eq!((recorded.outcome, recorded.reason.as_deref()), (Outcome::Processed, Some("pong")));
    // Persisted before acting (a failed or deferred one keeps it for the
    // reconciler); once done with, the outcome's write leaves it out.
    assert!(recorded.git_event.is_none(), "a processed delivery keeps no event");
}

#[tokio::test]
async fn a_redelivery_is_a_duplicate_and_runs_nothing_again() {
    let harness = Harness::embedded(SECRET).await;
    let body = sample("installation.created");
    let first = harness.deliver("installation", "dup-1", SECRET, &body).await;
    assert_eq!((first.0, &first.1["outcome"]), (200, &Value::from("processed")));
    // Undo what the first delivery did: a rerun would bring it back.
    harness.state().delete(&Key::Installation(InstallationId::new(4242))).await.unwrap();
    let again = harness.deliver("installation", "dup-1", SECRET, &body).await;
    assert_eq!((again.0, &again.1["outcome"]), (200, &Value::from("duplicate")));
    assert_eq!(harness.state().get(&Key::Installation(InstallationId::new(4242))).await.unwrap(), None);
    assert_eq!(delivery(&harness, "dup-1").await.unwrap().outcome, Outcome::Processed, "the first outcome stays");
}

#[tokio::test]
async fn a_hundred_copies_at_once_are_processed_once() {
    let harness = Harness::embedded(SECRET).await;
    let body = sample("push");
    let copies = (0..100).map(|_| harness.deliver("push", "storm-1", SECRET, &body));
    let replies = futures::future::join_all(copies).await;
    let outcomes: Vec<&str> = replies.iter().map(|(_, r)| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "processed").count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == "duplicate").count(), 99);
    assert!(replies.iter().all(|(status, _)| *status == 200));
}

#[tokio::test]
async fn the_installation_lifecycle_is_recorded() {
    let harness = Harness::embedded(SECRET).await;
    let created = sample("installation.created");
    let (status, reply) = harness.deliver("installation", "inst-1", SECRET, &created).await;
    assert_eq!(status, 200, "{reply}");
    let kinds: Vec<&str> = reply["actions"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["installation.recorded", "repository.recorded", "repository.recorded"]);
    let key = Key::Installation(InstallationId::new(4242));
    let installation = harness.state().load::<Installation>(&key).await.unwrap().unwrap().record;
    assert_eq!((installation.account.as_str(), installation.suspended), ("acme", false));
    let api = harness.state().load::<Repository>(&Key::Repository(repo("acme/api"))).await.unwrap().unwrap();
    assert_eq!(api.record.installation, Some(InstallationId::new(4242)));

    let mut suspend: Value = serde_json::from_str(&created).unwrap();
    suspend["action"] = "suspend".into();
    suspend["installation"]["suspended_at"] = "2026-11-22T00:00:00Z".into();
    harness.deliver("installation", "inst-2", SECRET, &suspend.to_string()).await;
    assert!(harness.state().load::<Installation>(&key).await.unwrap().unwrap().record.suspended);
    suspend["action"] = "unsuspend".into();
    suspend["installation"]["suspended_at"] = Value::Null;
    harness.deliver("installation", "inst-3", SECRET, &suspend.to_string()).await;
    assert!(!harness.state().load::<Installation>(&key).await.unwrap().unwrap().record.suspended);

    let (status, _) = harness.deliver("installation", "inst-4", SECRET, &sample("installation.deleted")).await;
    assert_eq!(status, 200);
    assert_eq!(harness.state().get(&key).await.unwrap(), None);
    assert_eq!(harness.state().get(&Key::Repository(repo("acme/api"))).await.unwrap(), None);
    assert!(harness.state().query(&Collection::PullRequests(repo("acme/api"))).await.unwrap().is_empty());
}

#[tokio::test]
async fn repositories_come_and_go_with_installation_repositories() {
    let harness = Harness::embedded(SECRET).await;
    harness.deliver("installation", "r-1", SECRET, &sample("installation.created")).await;
    let mut change: Value = serde_json::from_str(&sample("installation.created")).unwrap();
    change["action"] = "removed".into();
    change["repositories_added"] = serde_json::json!([{"full_name": "acme/docs"}]);
    change["repositories_removed"] = serde_json::json!([{"full_name": "acme/web"}]);
    let (status, reply) = harness.deliver("installation_repositories", "r-2", SECRET, &change.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert!(harness.state().get(&Key::Repository(repo("acme/docs"))).await.unwrap().is_some());
    assert!(harness.state().get(&Key::Repository(repo("acme/web"))).await.unwrap().is_none());
    assert!(harness.state().get(&Key::Repository(repo("acme/api"))).await.unwrap().is_some());
}

#[tokio::test]
async fn events_ferry_does_not_act_on_are_202_ignored() {
    let harness = Harness::embedded(SECRET).await;
    let body =
        r#"{"action":"created","starred_at":null,"repository":{"full_name":"acme/api"},"sender":{"login":"octocat"}}"#;
    let (status, reply) = harness.deliver("star", "star-1", SECRET, body).await;
    assert_eq!((status, &reply["outcome"]), (202, &Value::from("ignored")));
    assert_eq!(reply["reason"], "Ferry does not act on star events");
    assert_eq!(delivery(&harness, "star-1").await.unwrap().outcome, Outcome::Ignored);
}

#[tokio::test]
async fn every_front_door_reaches_the_webhook() {
    let harness = Harness::embedded(SECRET).await;
    for (n, front) in Front::ALL.into_iter().enumerate() {
        let event = ferry_tests::events::signed(front, "ping", &format!("front-{n}"), SECRET, &sample("ping"));
        let (status, reply) = harness.invoke(&event).await;
        assert_eq!((status, &reply["outcome"]), (200, &Value::from("processed")), "{front:?}: {reply}");
    }
}

/// The budget: a store whose creates or reads take 5 s.
struct Slow {
    inner: EmbeddedStore,
    creates: bool,
    reads: bool,
    updates: bool,
}

impl Slow {
    fn new(dir: &tempfile::TempDir, creates: bool, reads: bool, updates: bool) -> Self {
        Self { inner: ferry_tests::embedded::state_in(dir.path()), creates, reads, updates }
    }
}

async fn pause(slow: bool) {
    if slow {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

#[async_trait]
impl StateStore for Slow {
    async fn create(&self, record: &Record) -> Result<Version, StoreError> {
        pause(self.creates).await;
        self.inner.create(record).await
    }
    async fn create_all(&self, records: &[Record]) -> Result<(), StoreError> {
        pause(self.creates).await;
        self.inner.create_all(records).await
    }
    async fn get(&self, key: &Key) -> Result<Option<Versioned<Record>>, StoreError> {
        pause(self.reads).await;
        self.inner.get(key).await
    }
    async fn update(&self, record: &Record, expected: Version) -> Result<Version, StoreError> {
        pause(self.updates).await;
        self.inner.update(record, expected).await
    }
    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn query(&self, collection: &Collection) -> Result<Vec<Versioned<Record>>, StoreError> {
        self.inner.query(collection).await
    }
}

async fn slow_intake(store: &Slow, id: &str) -> ferry::usecase::intake::Reply {
    let body = sample("installation.created");
    let secrets = [secret(SECRET)];
    let signature = ferry::domain::signature::sign(&secrets[0], body.as_bytes());
    let inbound = Inbound {
        event: Some("installation"),
        delivery: Some(id),
        signature: Some(signature.as_bytes()),
        body: body.as_bytes(),
        repository: None,
    };
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let tokens = ferry::usecase::tokens::Tokens::new(
        std::sync::Arc::new(ferry_tests::embedded::secrets_in(dir.path())),
        std::sync::Arc::new(ferry::forge::github::NoApp),
        std::sync::Arc::new(ferry::domain::SystemClock),
    );
    let forge = ferry::forge::DryRunForge::new(dir.path());
    let cluster = ferry::cluster::DryRunCluster::new(dir.path());
    let operator = ferry::units::OperatorConfig::default();
    let launch = LaunchPorts {
        state: store,
        tokens: &tokens,
        forge: &forge,
        cluster: &cluster,
        operator: &operator,
        cluster_name: None,
        clock: &ferry::domain::SystemClock,
    };
    let ports = Ports { secrets: &secrets, launch };
    let reply = intake(ports, inbound, Duration::from_millis(200)).await;
    assert!(started.elapsed() < Duration::from_secs(2), "the reply waited for the store");
    reply
}

#[tokio::test]
async fn a_slow_outcome_write_does_not_hold_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let store = Slow::new(&dir, false, false, true);
    let reply = slow_intake(&store, "slow-3").await;
    assert_eq!((reply.status, reply.body.outcome), (200, Outcome::Processed));
    let kept = store.inner.load_delivery("slow-3").await;
    assert_eq!(kept.outcome, Outcome::Received, "the reconciler sees it was never marked");
}

#[tokio::test]
async fn past_the_budget_the_reply_is_deferred_and_the_event_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Slow::new(&dir, false, true, false);
    let reply = slow_intake(&store, "slow-1").await;
    assert_eq!((reply.status, reply.body.outcome), (202, Outcome::Deferred));
    let kept = store.inner.load_delivery("slow-1").await;
    assert_eq!(kept.outcome, Outcome::Deferred);
    assert!(kept.git_event.is_some(), "the reconciler has what it needs");
}

#[tokio::test]
async fn a_delivery_that_cannot_be_recorded_in_time_is_503() {
    let dir = tempfile::tempdir().unwrap();
    let store = Slow::new(&dir, true, false, false);
    let reply = slow_intake(&store, "slow-2").await;
    assert_eq!((reply.status, reply.body.outcome), (503, Outcome::Rejected));
    assert_eq!(reply.body.reason.as_deref(), Some("could not record the delivery; redeliver it"));
}

trait LoadDelivery {
    async fn load_delivery(&self, id: &str) -> ferry::domain::Delivery;
}

impl LoadDelivery for EmbeddedStore {
    async fn load_delivery(&self, id: &str) -> ferry::domain::Delivery {
        let store: &dyn StateStore = self;
        let key = Key::Delivery(DeliveryId::parse(id).unwrap());
        store.load(&key).await.unwrap().expect("the delivery is recorded").record
    }
}

#[tokio::test]
async fn a_thousand_copies_on_dynamodb_are_processed_once() {
    let state: Arc<dyn StateStore> = Arc::new(ferry_tests::emulator::dynamo_store().await);
    let harness = Harness::with_state(state, SECRET).await;
    let body = sample("push");
    let event = ferry_tests::events::signed(Front::HttpApi, "push", "storm-dynamo-1", SECRET, &body);
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        let wave = (0..100).map(|_| harness.invoke(&event));
        outcomes.extend(futures::future::join_all(wave).await.into_iter().map(|(status, reply)| {
            assert_eq!(status, 200, "{reply}");
            reply["outcome"].as_str().unwrap().to_owned()
        }));
    }
    let processed = outcomes.iter().filter(|o| *o == "processed").count();
    let duplicate = outcomes.iter().filter(|o| *o == "duplicate").count();
    assert_eq!((processed, duplicate), (1, 999));
}

/// A secret store that is down for its first `down` reads, counting them.
struct Flaky {
    reads: std::sync::atomic::AtomicUsize,
    down: usize,
}

#[async_trait]
impl ferry::secrets::SecretStore for Flaky {
    async fn get(
        &self,
        _: &ferry::secrets::SecretName,
    ) -> Result<Option<secrecy::SecretString>, ferry::secrets::SecretError> {
        if self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < self.down {
            return Err(ferry::secrets::SecretError::Unavailable("down".into()));
        }
        Ok(Some(secrecy::SecretString::from(SECRET.to_owned())))
    }
    async fn put(
        &self,
        _: &ferry::secrets::SecretName,
        _: &secrecy::SecretString,
    ) -> Result<(), ferry::secrets::SecretError> {
        unreachable!("the webhook secret is only read")
    }
    async fn delete(&self, _: &ferry::secrets::SecretName) -> Result<(), ferry::secrets::SecretError> {
        unreachable!("the webhook secret is only read")
    }
}

/// The secrets are read with the first signed delivery, not before: an
/// unsigned request is refused without asking the store, a signed one while
/// the store is down is a 503 (redelivered), and once read they are kept.
#[tokio::test]
async fn the_webhook_secrets_are_read_with_the_first_signed_delivery() {
    let mut harness = Harness::embedded(SECRET).await;
    let store = std::sync::Arc::new(Flaky { reads: Default::default(), down: 1 });
    harness.context.webhook_secrets = std::sync::Arc::new(ferry::context::WebhookSecretsCache::stored(store.clone()));
    let reads = || store.reads.load(std::sync::atomic::Ordering::SeqCst);
    let ping = sample("ping");
    let unsigned = lambda_event(Front::HttpApi, github_headers("ping", "unsigned-1", None, &ping), &ping);
    assert_eq!(harness.invoke(&unsigned).await.0, 401);
    assert_eq!(reads(), 0, "an unsigned request never reaches the secret store");
    let (status, reply) = harness.deliver("ping", "while-down", SECRET, &ping).await;
    assert_eq!((status, reply["outcome"].as_str()), (503, Some("rejected")), "{reply}");
    assert_eq!(harness.deliver("ping", "up-1", SECRET, &ping).await.0, 200);
    assert_eq!(harness.deliver("ping", "up-2", SECRET, &ping).await.0, 200);
    assert_eq!(reads(), 2, "read until it answered, then kept");
}
