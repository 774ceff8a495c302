//! The scheduled functions fanned out: the reconciler's planner and
//! workers against the AWS API emulator's SQS, the fake GitHub behind them
//! (the rotator's and the poller's are beside their own harnesses, in
//! `tokens.rs` and `poll.rs`, through [`drain`]). The test plays Lambda's
//! SQS event source: it receives a batch, hands it to a worker, and deletes
//! what the worker did not name as failed.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use ferry::domain::{InstallationId, ListingTags, Repository, Timestamp};
use ferry::queue::{SqsQueue, WorkQueue};
use ferry::store::Key;
use ferry::usecase::fanout::reconcile::{self as fanout, Item};
use ferry::usecase::fanout::{Message, Worked};
use ferry::usecase::reconcile::{Ports, Report};
use ferry_tests::builders::{repo, repository};
use ferry_tests::github::{FakeGithub, SimClock};
use ferry_tests::webhook::Harness;

use super::reconcile::github_harness;

/// Tracks `names` (`acme/*` through installation 5, the rest through 6)
/// beside the harness's own `acme/api`.
async fn track(harness: &Harness, names: &[String]) {
    for name in names {
        let installation = if name.starts_with("acme/") { 5 } else { 6 };
        let tracked = Repository {
            installation: Some(InstallationId::new(installation)),
            tracked_since: Some(Timestamp::now()),
            ..repository(name)
        };
        harness.state().create(&tracked.into()).await.unwrap();
    }
}

fn ports<'a>(harness: &'a Harness, clock: &'a SimClock) -> Ports<'a> {
    let mut ports = Ports::of(harness.context());
    ports.launch.clock = clock;
    ports
}

pub(crate) async fn count(sqs: &aws_sdk_sqs::Client, url: &str, attribute: QueueAttributeName) -> usize {
    let answer = sqs.get_queue_attributes().queue_url(url).attribute_names(attribute.clone()).send().await.unwrap();
    answer.attributes().and_then(|a| a.get(&attribute)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The messages `url` holds, visible or not (the emulator moves a
/// dead-lettered message still invisible from its last receive).
pub(crate) async fn held(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    count(sqs, url, QueueAttributeName::ApproximateNumberOfMessages).await
        + count(sqs, url, QueueAttributeName::ApproximateNumberOfMessagesNotVisible).await
}

/// Lambda's SQS event source, until the queue is empty: each batch to
/// `work`, its failed items left to come back. What each batch came to.
pub(crate) async fn drain<R, F, Fut>(sqs: &aws_sdk_sqs::Client, url: &str, mut work: F) -> Vec<Worked<R>>
where
    F: FnMut(Vec<Message>) -> Fut,
    Fut: Future<Output = Worked<R>>,
{
    let visibility = sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::VisibilityTimeout);
    let visibility =
        visibility.send().await.unwrap().attributes().unwrap()[&QueueAttributeName::VisibilityTimeout].parse().unwrap();
    // The emulator's counts lag its receives: empty only once nothing came
    // for longer than a failed item stays invisible.
    let quiet = Duration::from_secs(visibility) + Duration::from_secs(1);
    let mut batches = Vec::new();
    let (started, mut last) = (Instant::now(), Instant::now());
    loop {
        assert!(started.elapsed() < Duration::from_secs(60), "the queue did not drain");
        let batch = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        let received = batch.messages().to_vec();
        if received.is_empty() {
            if last.elapsed() > quiet && held(sqs, url).await == 0 {
                return batches;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        last = Instant::now();
        let messages = received
            .iter()
            .map(|m| Message { id: m.message_id().unwrap().to_owned(), body: m.body().unwrap().to_owned() })
            .collect();
        let worked = work(messages).await;
        for message in &received {
            let id = message.message_id().unwrap();
            if !worked.failed.iter().any(|f| f == id) {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        batches.push(worked);
    }
}

/// The reconciler's workers until the queue is empty: their reports added
/// up, and the failed items.
async fn repair(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    ports: Ports<'_>,
    queue: &dyn WorkQueue,
) -> (Report, Vec<String>) {
    let (mut total, mut failed) = (Report::default(), Vec::new());
    for worked in drain(sqs, url, |messages| fanout::work(ports, queue, messages, None)).await {
        failed.extend(worked.failed);
        total.add(worked.report);
    }
    (total, failed)
}

async fn tags(harness: &Harness, name: &str) -> Option<ListingTags> {
    harness.state().load::<ListingTags>(&Key::ListingTags(repo(name))).await.unwrap().map(|found| found.record)
}

/// Every tracked repository is planned once and repaired once: the only
/// item that comes back is the one no worker can read; a repair that met
/// GitHub's 502 is done with for this cycle (the next plan has it again).
#[tokio::test]
async fn every_item_is_repaired_once_across_partial_failures() {
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    let harness = github_harness(&fake, &clock, "[reconciler]\nin_flight = 4\n").await;
    let names: Vec<String> = (0..11).map(|n| format!("{}/r{n}", if n % 2 == 0 { "acme" } else { "other" })).collect();
    track(&harness, &names).await;
    let (sqs, url, dead) = ferry_tests::emulator::work_queue(1, 3).await;
    let queue = SqsQueue::new(sqs.clone(), url.clone());

    let planned = fanout::plan(ports(&harness, &clock), &queue).await;
    assert_eq!((planned.queued, planned.failed.len()), (12, 0), "{planned:?}");
    queue.send(&[("not an item".to_owned(), Duration::ZERO)]).await.unwrap();
    fake.repos(|r| r.fail_listings = 1);
    let (worked, failed) = repair(&sqs, &url, ports(&harness, &clock), &queue).await;

    assert_eq!(failed.len(), 3, "the unreadable item, once per receive: {worked:?}");
    assert_eq!(worked.repositories, 12, "each repository once: {worked:?}");
    let outage: Vec<&String> = worked.failed.iter().filter(|f| f.contains("502")).collect();
    assert_eq!(outage.len(), 1, "{worked:?}");
    let mut whole = 0;
    for name in names.iter().map(String::as_str).chain(["acme/api"]) {
        let tags = tags(&harness, name).await.unwrap_or_else(|| panic!("{name} was never repaired"));
        whole += usize::from(tags.pull_requests.is_some() && tags.releases.is_some());
    }
    assert_eq!(whole, 11, "all but the one that met the 502 have both listings' ETags");
    assert_eq!(held(&sqs, &dead).await, 1);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// An item no worker can read fails every receive and ends in the
/// dead-letter queue; the items beside it are repaired.
#[tokio::test]
async fn a_poisoned_item_lands_in_the_dead_letter_queue() {
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    let harness = github_harness(&fake, &clock, "").await;
    let (sqs, url, dead) = ferry_tests::emulator::work_queue(1, 2).await;
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    let item =
        serde_json::to_string(&Item { repo: repo("acme/api"), installation: Some(InstallationId::new(5)), plan: None });
    let poison = r#"{"repo": "../../etc/passwd"}"#.to_owned();
    queue.send(&[(item.unwrap(), Duration::ZERO), (poison.clone(), Duration::ZERO)]).await.unwrap();

    let (worked, failed) = repair(&sqs, &url, ports(&harness, &clock), &queue).await;
    assert_eq!(worked.repositories, 1, "{worked:?}");
    assert_eq!(failed.len(), 2, "the poisoned item failed both its receives");
    let dead_letters = sqs.receive_message().queue_url(&dead).max_number_of_messages(10).send().await.unwrap();
    let bodies: Vec<&str> = dead_letters.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, [poison.as_str()]);
    assert!(tags(&harness, "acme/api").await.is_some());
}

/// GitHub's `Retry-After` for one installation sends that installation's
/// items back on the queue, delayed by it; the other installation's item is
/// repaired, and nothing is retried hot.
#[tokio::test]
async fn a_retry_after_delays_only_its_installation_s_items() {
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    let harness = github_harness(&fake, &clock, "[reconciler]\nin_flight = 1\n").await;
    track(&harness, &["acme/b".to_owned(), "other/x".to_owned()]).await;
    fake.repos(|r| {
        r.rate_limited.insert("acme/api".into(), 120);
    });
    let (sqs, url, _) = ferry_tests::emulator::work_queue(30, 3).await;
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    let message = |id: &str, name: &str, installation: u64| Message {
        id: id.into(),
        body: serde_json::to_string(&Item {
            repo: repo(name),
            installation: Some(InstallationId::new(installation)),
            plan: None,
        })
        .unwrap(),
    };
    let batch = vec![message("1", "acme/api", 5), message("2", "acme/b", 5), message("3", "other/x", 6)];

    let worked = fanout::work(ports(&harness, &clock), &queue, batch.clone(), None).await;
    assert_eq!(worked.failed, Vec::<String>::new(), "a rate limit fails no item");
    assert_eq!((worked.report.repositories, worked.report.left), (2, 2), "{:?}", worked.report);
    assert!(tags(&harness, "other/x").await.is_some(), "the other installation went on");
    assert!(tags(&harness, "acme/b").await.is_none(), "acme/b waited without asking GitHub");
    let asked: Vec<String> = fake.reported().calls.into_iter().map(|(call, _)| call).collect();
    assert!(!asked.iter().any(|c| c.contains("acme/b/")), "{asked:?}");
    assert_eq!(count(&sqs, &url, QueueAttributeName::ApproximateNumberOfMessagesDelayed).await, 2);
    let now = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    assert!(now.messages().is_empty(), "given back for later, not now");

    // Past the invocation's deadline nothing starts: every item goes back now.
    let (sqs, url, _) = ferry_tests::emulator::work_queue(30, 3).await;
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    let worked = fanout::work(ports(&harness, &clock), &queue, batch, Some(tokio::time::Instant::now())).await;
    assert_eq!((worked.failed.len(), worked.report.repositories, worked.report.left), (0, 0, 3), "{worked:?}");
    assert_eq!(count(&sqs, &url, QueueAttributeName::ApproximateNumberOfMessages).await, 3);
}

/// A worker takes its preview removals from its plan's cap, shared through
/// the store with the plan's other workers: the cap spent, a pull request
/// GitHub no longer lists keeps its preview; the next plan's worker
/// removes it.
#[tokio::test]
async fn a_worker_removes_previews_within_its_plan_s_cap() {
    use ferry::domain::{Cursor, PrState, PullRequest};
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    // One removal a cycle; acme/api (installation 5) lists no open pull request.
    let harness = github_harness(&fake, &clock, "[reconciler]\nmax_preview_removals = 1\n").await;
    let unseen = PullRequest { unseen_listings: 1, ..ferry_tests::builders::pull_request("acme/api", 7) };
    harness.state().create(&unseen.into()).await.unwrap();
    let spent = Cursor { name: "preview-removals".into(), position: "100:1".into(), etag: None };
    harness.state().create(&spent.into()).await.unwrap();
    let (sqs, url, _) = ferry_tests::emulator::work_queue(30, 3).await;
    let queue = SqsQueue::new(sqs, url);
    let message = |plan| {
        let item = Item { repo: repo("acme/api"), installation: Some(InstallationId::new(5)), plan: Some(plan) };
        vec![Message { id: format!("m-{plan}"), body: serde_json::to_string(&item).unwrap() }]
    };
    let capped = fanout::work(ports(&harness, &clock), &queue, message(100), None).await;
    assert_eq!(capped.report.previews_removed, 0, "plan 100's cap is spent: {:?}", capped.report);
    assert_eq!(pr_state(&harness, 7).await, PrState::Open);
    let next = fanout::work(ports(&harness, &clock), &queue, message(200), None).await;
    assert_eq!(next.report.previews_removed, 1, "{:?}", next.report);
    assert_eq!(pr_state(&harness, 7).await, PrState::Closed);
}

async fn pr_state(harness: &Harness, number: u64) -> ferry::domain::PrState {
    let key = Key::PullRequest(repo("acme/api"), ferry::domain::PrNumber::new(number));
    harness.state().load::<ferry::domain::PullRequest>(&key).await.unwrap().unwrap().record.state
}
