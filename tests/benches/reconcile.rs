//! Reconciliation at the scale of an organisation: N tracked repositories in
//! 100 installations, a fake GitHub answering every repository call after
//! 50 ms with ETags and GitHub's rate-limit headers.
//!
//! `cargo bench -p ferry-tests --bench reconcile` (the AWS API emulator for
//! `emulator` stores and for `queue`: see BENCHMARKS.md). Settings, from
//! the environment:
//! - `FERRY_BENCH_REPOS` (10000), `FERRY_BENCH_IN_FLIGHT` (16,64);
//! - `FERRY_BENCH_STORE`: `embedded` (SQLite, default) or `emulator` (DynamoDB on moto);
//! - `FERRY_BENCH_WORKERS` (unset: one process): through an SQS queue on
//!   the emulator, with this many workers (e.g. 1,2,4), each `in_flight`.
//!
//! For each setting, a first cycle (every listing new) and an unchanged one
//! in a process that just started (every listing a 304, from the ETags in
//! the store): wall time, calls made, rate-limit units spent, repositories
//! per second; last, the process's peak RSS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::domain::{Installation, InstallationId, Repository, Timestamp};
use ferry::forge::github::{GithubApi, GithubForge};
use ferry::queue::{SqsQueue, WorkQueue};
use ferry::store::StateStore;
use ferry::usecase::fanout::{self, Message};
use ferry::usecase::reconcile::{self, Ports, Report};
use ferry::usecase::tokens::TokenSource;
use ferry_tests::builders::repository;
use ferry_tests::github::{FakeGithub, SimClock, app_keys};
use ferry_tests::webhook::Harness;

const INSTALLATIONS: u64 = 100;

fn setting<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    value.split(',').filter(|v| !v.is_empty()).map(|v| v.trim().parse().ok().expect(name)).collect()
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

/// A Ferry on `store` tracking `repos` repositories of the fake.
async fn ferry(fake: &FakeGithub, clock: &Arc<SimClock>, repos: usize, in_flight: usize) -> Harness {
    let state: Arc<dyn StateStore> = match std::env::var("FERRY_BENCH_STORE").as_deref() {
        Ok("emulator") => Arc::new(ferry_tests::emulator::dynamo_store().await),
        _ => Arc::new(ferry_tests::embedded::state_in(&tempfile::tempdir().unwrap().keep())),
    };
    let minter = Arc::new(fake.app(&app_keys().pkcs1_pem, clock.clone()));
    let mut harness = Harness::with_state_and_minter(state, minter).await;
    harness.set_operator(&format!("[reconciler]\nin_flight = {in_flight}\nitems_per_minute = 100000\n"));
    for id in 1..=INSTALLATIONS {
        harness.state().create(&Installation::new(InstallationId::new(id), "org", "all").into()).await.unwrap();
    }
    let tracked = futures::StreamExt::map(futures::stream::iter(0..repos), |n| {
        let state = harness.context().state.clone();
        async move {
            let repository = Repository {
                installation: Some(InstallationId::new(n as u64 % INSTALLATIONS + 1)),
                tracked_since: Some(Timestamp::now()),
                ..repository(&name(n))
            };
            state.create(&repository.into()).await.unwrap();
        }
    });
    futures::StreamExt::for_each_concurrent(tracked, 16, |created| created).await;
    cold_start(&mut harness, fake);
    harness
}

fn name(n: usize) -> String {
    format!("org{}/repo{n}", n as u64 % INSTALLATIONS)
}

/// A forge as a process builds it at start: nothing kept but the store.
fn cold_start(harness: &mut Harness, fake: &FakeGithub) {
    let context = harness.context();
    let tokens = TokenSource { tokens: context.tokens.clone(), state: context.state.clone() };
    harness.set_forge(Arc::new(GithubForge::new(GithubApi::new(&fake.url()).unwrap(), Arc::new(tokens))));
}

/// Calls made and rate-limit units spent so far.
fn spent(fake: &FakeGithub) -> (usize, u64) {
    let repos = fake.reported();
    (repos.calls.len(), repos.units.values().sum())
}

async fn one_process(harness: &Harness, clock: &SimClock) -> Report {
    let mut ports = Ports::of(harness.context());
    ports.launch.clock = clock;
    let repositories = harness.state().list::<Repository>(&ferry::store::Collection::Repositories).await.unwrap();
    let repositories = repositories.into_iter().map(|found| found.record).collect();
    reconcile::repair_all(ports, &reconcile::Shared::new(ports), repositories, None).await
}

/// Plans onto a queue of the emulator, then `workers` drain it as Lambda's
/// event source would (batches of 10, failed items left to come back).
async fn through_queue(harness: &Harness, clock: &SimClock, workers: usize) -> Report {
    let (sqs, url, _) = ferry_tests::emulator::work_queue(60, 3).await;
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    let mut ports = Ports::of(harness.context());
    ports.launch.clock = clock;
    let mut total = fanout::plan(ports, &queue).await;
    let drained = (0..workers).map(|_| drain(&sqs, &url, ports, &queue));
    for report in futures::future::join_all(drained).await {
        total.add(report);
    }
    total
}

async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, ports: Ports<'_>, queue: &dyn WorkQueue) -> Report {
    let mut total = Report::default();
    loop {
        let batch = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        if batch.messages().is_empty() {
            return total;
        }
        let messages = batch
            .messages()
            .iter()
            .map(|m| Message { id: m.message_id().unwrap().to_owned(), body: m.body().unwrap().to_owned() })
            .collect();
        let worked = fanout::work(ports, queue, messages, None).await;
        let done =
            batch.messages().iter().filter(|m| !worked.failed.iter().any(|f| Some(f.as_str()) == m.message_id()));
        let entries: Vec<_> = done
            .enumerate()
            .map(|(i, m)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap())
                    .build()
                    .unwrap()
            })
            .collect();
        if !entries.is_empty() {
            sqs.delete_message_batch().queue_url(url).set_entries(Some(entries)).send().await.unwrap();
        }
        total.add(worked.report);
    }
}

async fn cycle(label: &str, harness: &Harness, fake: &FakeGithub, clock: &SimClock, workers: Option<usize>) {
    let (calls, units) = spent(fake);
    let started = Instant::now();
    let report = match workers {
        None => one_process(harness, clock).await,
        Some(workers) => through_queue(harness, clock, workers).await,
    };
    let wall = started.elapsed();
    let (calls_after, units_after) = spent(fake);
    println!(
        "  {label:<10} {:>8.1} s  {:>6} repositories  {:>7.0}/s  {:>6} calls  {:>6} units  {:>6} unchanged listings  {} failures",
        wall.as_secs_f64(),
        report.repositories,
        report.repositories as f64 / wall.as_secs_f64(),
        calls_after - calls,
        units_after - units,
        report.unchanged_listings,
        report.failed.len()
    );
    if let Some(first) = report.failed.first() {
        println!("    first failure: {first}");
    }
}

#[tokio::main]
async fn main() {
    ferry::telemetry::install_crypto_provider();
    let repos: usize = setting("FERRY_BENCH_REPOS", "10000")[0];
    let store = std::env::var("FERRY_BENCH_STORE").unwrap_or_else(|_| "embedded".into());
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    fake.answer_after(Duration::from_millis(50));
    let shapes: Vec<Option<usize>> = match std::env::var("FERRY_BENCH_WORKERS") {
        Ok(_) => setting::<usize>("FERRY_BENCH_WORKERS", "1").into_iter().map(Some).collect(),
        Err(_) => vec![None],
    };
    for in_flight in setting::<usize>("FERRY_BENCH_IN_FLIGHT", "16,64") {
        for workers in &shapes {
            let mut harness = ferry(&fake, &clock, repos, in_flight).await;
            let shape = workers.map_or("one process".to_owned(), |w| format!("{w} workers through SQS"));
            println!("{repos} repositories, {store} store, {shape}, {in_flight} in flight each:");
            cycle("first", &harness, &fake, &clock, *workers).await;
            cold_start(&mut harness, &fake);
            cycle("unchanged", &harness, &fake, &clock, *workers).await;
        }
    }
    println!("peak RSS: {:.1} MB", peak_rss_mb());
}
