//! The `StateStore` contract, run against the embedded adapter and against
//! the DynamoDB adapter on the AWS API emulator.

use std::sync::Arc;
use std::time::Duration;

use ferry::domain::{Installation, InstallationId, PrNumber, Timestamp};
use ferry::store::{Collection, Durability, EmbeddedStore, Key, Record, StateStore, StoreError, Version};
use ferry_tests::builders::{delivery, installation, polled_ref, pull_request, release, repo, repository, run};
use ferry_tests::emulator::{dynamo_store, dynamo_store_with};
use ferry_tests::throttle::{Service, ThrottleFirst};

ferry_tests::contract_suite!(
    embedded => super::embedded(),
    dynamodb => ((), ferry_tests::emulator::dynamo_store().await);
    create_get_delete,
    a_second_create_of_one_key_already_exists,
    updates_follow_versions,
    a_stale_version_is_rejected,
    updating_nothing_is_not_found,
    prefix_query_returns_exactly_the_matching_items_in_sk_order,
    an_expired_item_is_not_returned,
    an_expired_item_can_be_created_again,
    an_item_over_400_kb_is_too_large,
    of_many_concurrent_creates_exactly_one_wins,
    typed_load_reads_what_was_written,
    save_new_creates_at_once_and_merges_what_is_there,
    create_all_writes_every_record_or_none,
    create_all_takes_over_expired_items,
    of_concurrent_create_alls_of_one_key_exactly_one_wins,
    listings_hold_every_installation_or_repository_and_nothing_else,
    unfinished_deliveries_are_listed_until_they_are_done,
    pending_runs_and_open_pull_requests_are_listed_per_repository,
    reported_runs_and_closed_pull_requests_expire_after_their_retention,
    a_day_s_newest_deliveries_come_first_and_no_more_than_asked,
    a_day_s_newest_runs_come_first_and_large_deliveries_all_come,
    the_first_repositories_by_name_are_no_more_than_asked,
);

/// The newest runs are on their launch day's time line; deliveries far
/// larger together than one page of a query (1 MB) all come, in order.
async fn a_day_s_newest_runs_come_first_and_large_deliveries_all_come(store: &dyn StateStore) {
    use ferry::domain::{Delivery, Run};
    let now = Timestamp::now().unix();
    let today = now - now.rem_euclid(24 * 3600);
    let at = |seconds| Timestamp::from_unix(today + seconds);
    for (unit, seconds) in [("api", 10), ("web", 30), ("docs", 20)] {
        store
            .create(
                &Run {
                    launched_at: Some(at(seconds)),
                    ..run("acme/api", unit, 'a', ferry::domain::RunStatus::Pending)
                }
                .into(),
            )
            .await
            .unwrap();
    }
    store.create(&run("acme/api", "unlaunched", 'a', ferry::domain::RunStatus::Pending).into()).await.unwrap();
    let runs = store.list::<Run>(&Collection::RunsOn { day: at(5), newest: 10 }).await.unwrap();
    let units: Vec<String> = runs.into_iter().map(|r| r.record.unit.to_string()).collect();
    assert_eq!(units, ["web", "docs", "api"]);

    let reason = "r".repeat(300 * 1024);
    for n in 0..12 {
        let delivery = Delivery { reason: Some(reason.clone()), ..delivery(&format!("big-{n:02}"), at(100 + n)) };
        store.create(&delivery.into()).await.unwrap();
    }
    let found = store.list::<Delivery>(&Collection::DeliveriesOn { day: at(5), newest: 12 }).await.unwrap();
    let ids: Vec<String> = found.into_iter().map(|d| d.record.id.to_string()).collect();
    let expected: Vec<String> = (0..12).rev().map(|n| format!("big-{n:02}")).collect();
    assert_eq!(ids, expected);
}

/// What the status page lists of the tracked repositories: the first few by name.
async fn the_first_repositories_by_name_are_no_more_than_asked(store: &dyn StateStore) {
    for name in ["acme/web", "acme/api", "acme/zeta", "acme/docs"] {
        store.create(&repository(name).into()).await.unwrap();
    }
    store.create(&installation(79).into()).await.unwrap();
    let first = store.list::<ferry::domain::Repository>(&Collection::FirstRepositories(3)).await.unwrap();
    let names: Vec<String> = first.into_iter().map(|r| r.record.name.to_string()).collect();
    assert_eq!(names, ["acme/api", "acme/docs", "acme/web"]);
}

/// What the status page reads: one day's deliveries, newest first, at most
/// as many as asked, whatever became of them.
async fn a_day_s_newest_deliveries_come_first_and_no_more_than_asked(store: &dyn StateStore) {
    use ferry::domain::{Delivery, Outcome};
    let now = Timestamp::now().unix();
    let today = now - now.rem_euclid(24 * 3600);
    let at = |seconds| Timestamp::from_unix(today + seconds);
    for (id, seconds) in [("t-b", 20), ("t-a", 10), ("t-c", 30), ("t-yesterday", -100)] {
        store.create(&delivery(id, at(seconds)).into()).await.unwrap();
    }
    store.create(&installation(78).into()).await.unwrap();
    let newest = |day: Timestamp, newest: usize| {
        let collection = Collection::DeliveriesOn { day, newest };
        async move {
            let found = store.list::<Delivery>(&collection).await.unwrap();
            found.into_iter().map(|d| d.record.id.to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(newest(at(5), 2).await, ["t-c", "t-b"]);
    assert_eq!(newest(at(5), 10).await, ["t-c", "t-b", "t-a"]);
    assert_eq!(newest(at(-5), 10).await, ["t-yesterday"]);
    // Done with, a delivery stays where it was in its day.
    let key = Key::Delivery(ferry::domain::DeliveryId::parse("t-b").unwrap());
    let found = store.load::<Delivery>(&key).await.unwrap().unwrap();
    store.update(&Delivery { outcome: Outcome::Processed, ..found.record }.into(), found.version).await.unwrap();
    assert_eq!(newest(at(5), 10).await, ["t-c", "t-b", "t-a"]);
}

/// What the reconciler reads of a repository: its pending runs and open
/// pull requests only, through the listing index, whatever else it keeps.
async fn pending_runs_and_open_pull_requests_are_listed_per_repository(store: &dyn StateStore) {
    use ferry::domain::{PrState, PullRequest, RunStatus};
    let records: Vec<Record> = vec![
        run("acme/api", "api", 'a', RunStatus::Pending).into(),
        run("acme/api", "web", 'a', RunStatus::Pending).into(),
        run("acme/api", "api", 'b', RunStatus::Success).into(),
        run("acme/web", "web", 'c', RunStatus::Pending).into(),
        pull_request("acme/api", 1).into(),
        PullRequest { state: PrState::Closed, ..pull_request("acme/api", 2) }.into(),
        pull_request("acme/web", 3).into(),
    ];
    for record in &records {
        store.create(record).await.unwrap();
    }
    let keys = |found: Vec<ferry::store::Versioned<Record>>| -> Vec<String> {
        let mut keys: Vec<String> = found.into_iter().map(|v| v.record.key().to_string()).collect();
        keys.sort();
        keys
    };
    let a = "a".repeat(40);
    let pending = keys(store.query(&Collection::PendingRuns(repo("acme/api"))).await.unwrap());
    assert_eq!(pending, [format!("REPO#acme/api RUN#api#{a}"), format!("REPO#acme/api RUN#web#{a}")]);
    let open = keys(store.query(&Collection::OpenPullRequests(repo("acme/api"))).await.unwrap());
    assert_eq!(open, ["REPO#acme/api PR#1"]);
    // Reported: out of the listing; reopened: back in it.
    let found = store.load::<ferry::domain::Run>(&records[0].key()).await.unwrap().unwrap();
    let done = ferry::domain::Run { status: RunStatus::Failure, ..found.record };
    store.update(&done.into(), found.version).await.unwrap();
    let found = store.load::<PullRequest>(&records[5].key()).await.unwrap().unwrap();
    store.update(&PullRequest { state: PrState::Open, ..found.record }.into(), found.version).await.unwrap();
    let pending = keys(store.query(&Collection::PendingRuns(repo("acme/api"))).await.unwrap());
    assert_eq!(pending, [format!("REPO#acme/api RUN#web#{a}")]);
    let open = keys(store.query(&Collection::OpenPullRequests(repo("acme/api"))).await.unwrap());
    assert_eq!(open, ["REPO#acme/api PR#1", "REPO#acme/api PR#2"]);
}

/// Retention: a reported run or a closed pull request past its
/// `retain_until` is gone; a pending run or an open pull request is kept
/// whatever its date says.
async fn reported_runs_and_closed_pull_requests_expire_after_their_retention(store: &dyn StateStore) {
    use ferry::domain::{PrState, PullRequest, RunStatus};
    let past = Some(Timestamp::now().minus(Duration::from_secs(60)));
    let future = Some(Timestamp::now().plus(Duration::from_secs(3600)));
    let records: Vec<(Record, bool)> = vec![
        (ferry::domain::Run { retain_until: past, ..run("acme/api", "api", 'a', RunStatus::Success) }.into(), false),
        (ferry::domain::Run { retain_until: future, ..run("acme/api", "api", 'b', RunStatus::Failure) }.into(), true),
        (ferry::domain::Run { retain_until: past, ..run("acme/api", "api", 'c', RunStatus::Pending) }.into(), true),
        (PullRequest { state: PrState::Closed, retain_until: past, ..pull_request("acme/api", 1) }.into(), false),
        (PullRequest { state: PrState::Closed, retain_until: future, ..pull_request("acme/api", 2) }.into(), true),
        (PullRequest { retain_until: past, ..pull_request("acme/api", 3) }.into(), true),
    ];
    for (record, _) in &records {
        store.create(record).await.unwrap();
    }
    for (record, kept) in &records {
        assert_eq!(store.get(&record.key()).await.unwrap().is_some(), *kept, "{}", record.key());
    }
    let runs = store.query(&Collection::Runs(repo("acme/api"))).await.unwrap();
    assert_eq!(runs.len(), 2);
}

async fn unfinished_deliveries_are_listed_until_they_are_done(store: &dyn StateStore) {
    use ferry::domain::{Delivery, Outcome};
    let outcomes = [
        ("u-received", Outcome::Received),
        ("u-deferred", Outcome::Deferred),
        ("u-failed", Outcome::Failed),
        ("u-processed", Outcome::Processed),
        ("u-ignored", Outcome::Ignored),
        ("u-dead", Outcome::Dead),
    ];
    for (id, outcome) in outcomes {
        store.create(&Delivery { outcome, ..delivery(id, Timestamp::now()) }.into()).await.unwrap();
    }
    store.create(&installation(77).into()).await.unwrap();
    let listed = |found: Vec<ferry::store::Versioned<Record>>| -> Vec<String> {
        let mut ids: Vec<String> = found
            .into_iter()
            .map(|v| match v.record {
                Record::Delivery(d) => d.id.to_string(),
                other => panic!("a {} in the deliveries' listing", other.kind()),
            })
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        listed(store.query(&Collection::UnfinishedDeliveries).await.unwrap()),
        ["u-deferred", "u-failed", "u-received"]
    );
    // Done with: out of the listing.
    let found = store.load::<Delivery>(&Key::Delivery(ferry::domain::DeliveryId::parse("u-failed").unwrap())).await;
    let found = found.unwrap().unwrap();
    let done = Delivery { outcome: Outcome::Processed, ..found.record };
    store.update(&done.into(), found.version).await.unwrap();
    assert_eq!(listed(store.query(&Collection::UnfinishedDeliveries).await.unwrap()), ["u-deferred", "u-received"]);
}

fn embedded() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().expect("a temporary dir");
    let store = ferry_tests::embedded::state_in(dir.path());
    (dir, store)
}

async fn create_get_delete(store: &dyn StateStore) {
    let record = Record::from(installation(7));
    let key = record.key();
    assert_eq!(store.create(&record).await.unwrap(), Version(1));
    let found = store.get(&key).await.unwrap().expect("the item just created");
    assert_eq!((found.record, found.version), (record, Version(1)));
    store.delete(&key).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    store.delete(&key).await.expect("deleting nothing is fine");
}

async fn a_second_create_of_one_key_already_exists(store: &dyn StateStore) {
    let first = Record::from(repository("acme/api"));
    store.create(&first).await.unwrap();
    let mut other = repository("acme/api");
    other.last_error = Some("must not overwrite".into());
    let err = store.create(&Record::from(other)).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { ref key } if *key == first.key()), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(store.get(&first.key()).await.unwrap().unwrap().record, first);
}

async fn updates_follow_versions(store: &dyn StateStore) {
    let mut pr = pull_request("acme/api", 4);
    store.create(&pr.clone().into()).await.unwrap();
    pr.approved_by = Some("octocat".into());
    assert_eq!(store.update(&pr.clone().into(), Version(1)).await.unwrap(), Version(2));
    pr.preview_namespace = Some("preview-api-pr-4".into());
    assert_eq!(store.update(&pr.clone().into(), Version(2)).await.unwrap(), Version(3));
    let found = store.get(&Key::PullRequest(repo("acme/api"), PrNumber::new(4))).await.unwrap().unwrap();
    assert_eq!((found.record, found.version), (pr.into(), Version(3)));
}

async fn a_stale_version_is_rejected(store: &dyn StateStore) {
    let mut inst = installation(9);
    store.create(&inst.clone().into()).await.unwrap();
    inst.suspended = true;
    store.update(&inst.clone().into(), Version(1)).await.unwrap();
    let mut late = installation(9);
    late.account = "lost update".into();
    let err = store.update(&late.into(), Version(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::StaleVersion { expected: Version(1), .. }), "{err:?}");
    let found = store.get(&Key::Installation(InstallationId::new(9))).await.unwrap().unwrap();
    assert_eq!((found.record, found.version), (inst.into(), Version(2)));
}

async fn updating_nothing_is_not_found(store: &dyn StateStore) {
    let err = store.update(&installation(404).into(), Version(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(store.get(&Key::Installation(InstallationId::new(404))).await.unwrap(), None);
}

async fn prefix_query_returns_exactly_the_matching_items_in_sk_order(store: &dyn StateStore) {
    let records: Vec<Record> = vec![
        pull_request("acme/api", 2).into(),
        pull_request("acme/api", 10).into(),
        pull_request("acme/api", 1).into(),
        release("acme/api", "v1.0").into(),
        polled_ref("acme/api", "main").into(),
        repository("acme/api").into(),
        pull_request("acme/api-docs", 1).into(),
        pull_request("acme2/api", 3).into(),
    ];
    for record in &records {
        store.create(record).await.unwrap();
    }
    let numbers = |found: Vec<ferry::store::Versioned<Record>>| -> Vec<String> {
        found.into_iter().map(|v| v.record.key().sk()).collect()
    };
    let prs = store.query(&Collection::PullRequests(repo("acme/api"))).await.unwrap();
    // Sort keys order bytewise, as DynamoDB orders them: PR#10 before PR#2.
    assert_eq!(numbers(prs), ["PR#1", "PR#10", "PR#2"]);
    let releases = store.query(&Collection::Releases(repo("acme/api"))).await.unwrap();
    assert_eq!(numbers(releases), ["REL#v1.0"]);
    let refs = store.query(&Collection::Refs(repo("acme/api"))).await.unwrap();
    assert_eq!(numbers(refs), ["REF#main"]);
    assert!(store.query(&Collection::Runs(repo("acme/api"))).await.unwrap().is_empty());
    assert!(store.query(&Collection::PullRequests(repo("nobody/api"))).await.unwrap().is_empty());
}

async fn listings_hold_every_installation_or_repository_and_nothing_else(store: &dyn StateStore) {
    let records: Vec<Record> = vec![
        installation(12).into(),
        installation(3).into(),
        repository("acme/web").into(),
        repository("acme/api").into(),
        pull_request("acme/api", 1).into(),
        release("acme/api", "v1.0").into(),
        delivery("d-1", Timestamp::now()).into(),
    ];
    for record in &records {
        store.create(record).await.unwrap();
    }
    let mut removed = installation(40);
    store.create(&removed.clone().into()).await.unwrap();
    removed.suspended = true;
    store.update(&removed.clone().into(), Version(1)).await.unwrap();
    store.delete(&Record::from(removed).key()).await.unwrap();

    let keys = |found: Vec<ferry::store::Versioned<Record>>| -> Vec<String> {
        let mut keys: Vec<String> = found.into_iter().map(|v| v.record.key().to_string()).collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(store.query(&Collection::Installations).await.unwrap()), ["INST#12 META", "INST#3 META"]);
    assert_eq!(
        keys(store.query(&Collection::Repositories).await.unwrap()),
        ["REPO#acme/api META", "REPO#acme/web META"]
    );
}

async fn an_expired_item_is_not_returned(store: &dyn StateStore) {
    let old = delivery("old-1", Timestamp::now().minus(Duration::from_secs(8 * 24 * 3600)));
    let fresh = delivery("fresh-1", Timestamp::now());
    store.create(&old.clone().into()).await.unwrap();
    store.create(&fresh.clone().into()).await.unwrap();
    assert_eq!(store.get(&Record::from(old.clone()).key()).await.unwrap(), None);
    assert!(store.get(&Record::from(fresh).key()).await.unwrap().is_some());
    let err = store.update(&old.into(), Version(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

async fn an_expired_item_can_be_created_again(store: &dyn StateStore) {
    let old = delivery("again-1", Timestamp::now().minus(Duration::from_secs(8 * 24 * 3600)));
    store.create(&old.into()).await.unwrap();
    let new = Record::from(delivery("again-1", Timestamp::now()));
    assert_eq!(store.create(&new).await.unwrap(), Version(1));
    assert_eq!(store.get(&new.key()).await.unwrap().unwrap().record, new);
}

async fn an_item_over_400_kb_is_too_large(store: &dyn StateStore) {
    let mut big = delivery("big-1", Timestamp::now());
    big.reason = Some("x".repeat(401 * 1024));
    let big = Record::from(big);
    let err = store.create(&big).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { size, .. } if size > 400 * 1024), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(store.get(&big.key()).await.unwrap(), None, "nothing half-written");

    let mut fits = delivery("big-1", Timestamp::now());
    fits.reason = Some("x".repeat(390 * 1024));
    store.create(&fits.into()).await.expect("an item under the limit fits");
}

async fn of_many_concurrent_creates_exactly_one_wins(store: &dyn StateStore) {
    let record = Record::from(delivery("raced-1", Timestamp::now()));
    let attempts = (0..20).map(|_| store.create(&record));
    let results = futures::future::join_all(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let lost = results.iter().filter(|r| matches!(r, Err(StoreError::AlreadyExists { .. }))).count();
    assert_eq!((won, lost), (1, 19), "{results:?}");
}

async fn typed_load_reads_what_was_written(store: &dyn StateStore) {
    store.create(&installation(11).into()).await.unwrap();
    let found = store.load::<Installation>(&Key::Installation(InstallationId::new(11))).await.unwrap().unwrap();
    assert_eq!((found.record, found.version), (installation(11), Version(1)));
    assert!(store.load::<Installation>(&Key::Installation(InstallationId::new(12))).await.unwrap().is_none());
}

async fn save_new_creates_at_once_and_merges_what_is_there(store: &dyn StateStore) {
    let key = Key::Installation(InstallationId::new(21));
    let fresh = installation(21);
    let version = store.save_new(fresh.clone(), |_| panic!("nothing to merge with")).await.unwrap();
    assert_eq!(version, Version(1));
    let suspended = Installation { suspended: true, ..fresh.clone() };
    let version = store.save_new(fresh, |current| Installation { suspended: true, ..current }).await.unwrap();
    assert_eq!(version, Version(2), "merged into what was there");
    assert_eq!(store.load::<Installation>(&key).await.unwrap().unwrap().record, suspended);
}

async fn create_all_writes_every_record_or_none(store: &dyn StateStore) {
    let both = [Record::from(repository("acme/all")), Record::from(installation(31))];
    store.create_all(&both).await.unwrap();
    for record in &both {
        let found = store.get(&record.key()).await.unwrap().expect("written");
        assert_eq!((&found.record, found.version), (record, Version(1)));
    }
    // One key taken: nothing of the call is written, and the error names it.
    let taken = Record::from(installation(31));
    let fresh = [Record::from(repository("acme/fresh")), Record::from(delivery("all-1", Timestamp::now()))];
    for order in [vec![fresh[0].clone(), taken.clone(), fresh[1].clone()], vec![taken.clone(), fresh[0].clone()]] {
        let err = store.create_all(&order).await.unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { ref key } if *key == taken.key()), "{err:?}");
        for record in &fresh {
            assert_eq!(store.get(&record.key()).await.unwrap(), None, "{} half-written", record.key());
        }
    }
    assert_eq!(store.get(&taken.key()).await.unwrap().unwrap().record, taken, "unchanged");
    // Too large: nothing written either.
    let mut big = delivery("all-big", Timestamp::now());
    big.reason = Some("x".repeat(401 * 1024));
    let err = store.create_all(&[fresh[0].clone(), big.into()]).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
    assert_eq!(store.get(&fresh[0].key()).await.unwrap(), None);
}

async fn create_all_takes_over_expired_items(store: &dyn StateStore) {
    let old = delivery("all-again", Timestamp::now().minus(Duration::from_secs(8 * 24 * 3600)));
    store.create(&old.into()).await.unwrap();
    let new = [Record::from(delivery("all-again", Timestamp::now())), Record::from(repository("acme/again"))];
    store.create_all(&new).await.unwrap();
    assert_eq!(store.get(&new[0].key()).await.unwrap().unwrap().record, new[0]);
}

async fn of_concurrent_create_alls_of_one_key_exactly_one_wins(store: &dyn StateStore) {
    let shared = Record::from(delivery("all-raced", Timestamp::now()));
    let calls: Vec<[Record; 2]> =
        (0..10).map(|i| [Record::from(repository(&format!("acme/raced-{i}"))), shared.clone()]).collect();
    let results = futures::future::join_all(calls.iter().map(|records| store.create_all(records))).await;
    let won: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_ok()).map(|(i, _)| i).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for (i, result) in results.iter().enumerate() {
        let written = store.get(&calls[i][0].key()).await.unwrap().is_some();
        assert_eq!(written, result.is_ok(), "call {i}: {result:?}");
        if let Err(e) = result {
            // DynamoDB may cancel a transaction that meets another on the
            // same item as a conflict (try again) rather than a failed condition.
            let lost = matches!(e, StoreError::AlreadyExists { .. }) || e.is_retryable();
            assert!(lost, "call {i}: {e:?}");
        }
    }
}

// Adapter-specific behaviour.

#[tokio::test]
async fn dynamodb_throttled_calls_are_retried_then_succeed() {
    let throttle = ThrottleFirst::new(Service::DynamoDb, 2);
    let store = dynamo_store_with(Some(&throttle)).await;
    let record = Record::from(installation(21));
    store.create(&record).await.expect("retried past two throttled answers");
    assert_eq!(throttle.requests(), 3, "two throttled attempts, then the one that went through");
    assert_eq!(store.get(&record.key()).await.unwrap().unwrap().record, record);
}

#[tokio::test]
async fn dynamodb_throttling_that_persists_is_a_retryable_error() {
    let throttle = ThrottleFirst::new(Service::DynamoDb, usize::MAX);
    let store = dynamo_store_with(Some(&throttle)).await;
    let err = store.get(&Key::Installation(InstallationId::new(1))).await.unwrap_err();
    assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(throttle.requests(), ferry::aws::retry_config().max_attempts() as usize);
}

#[tokio::test]
async fn dynamodb_items_carry_their_layout_attributes() {
    let store = dynamo_store().await;
    store.create(&delivery("layout-1", Timestamp::from_unix(1_900_000_000)).into()).await.unwrap();
    let client = aws_sdk_dynamodb::Client::new(&ferry_tests::emulator::sdk_config().await);
    let item = client
        .get_item()
        .table_name(store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("DELIVERY#layout-1".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("META".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the item under its documented key");
    let n = |name: &str| item[name].as_n().unwrap().clone();
    assert_eq!(item["kind"].as_s().unwrap(), "delivery");
    assert_eq!(n("version"), "1");
    assert_eq!(n("expires_at"), (1_900_000_000 + 7 * 24 * 3600).to_string());
    assert_eq!(item["event"].as_s().unwrap(), "push", "fields are attributes, readable in the console");
}

#[tokio::test]
async fn embedded_state_survives_a_restart() {
    for durability in [Durability::Machine, Durability::Process] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let record = Record::from(installation(31));
        {
            let store = EmbeddedStore::open(&path, durability).unwrap();
            store.create(&record).await.unwrap();
        }
        let reopened: Arc<dyn StateStore> = Arc::new(EmbeddedStore::open(&path, durability).unwrap());
        assert_eq!(reopened.get(&record.key()).await.unwrap().unwrap().record, record, "{durability:?}");
    }
}
