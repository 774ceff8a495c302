//! Reconciliation at the scale of an organisation: N tracked repositories in
//! 100 installations, a fake GitHub answering every repository call after
//! 50 ms with ETags and GitHub's rate-limit headers.
//!
//! `cargo bench -p ferry-tests --bench reconcile` (the AWS API emulator for
//! `emulator` stores and for `queue`: see BENCHMARKS.md). Settings, from
//! the environment:
//! - `FERRY_BENCH_REPOS` (10000), `FERRY_BENCH_IN_FLIGHT` (16,64);
//! - `FERRY_BENCH_STORE`: `embedded` (SQLite, default) or `emulator` (DynamoDB on moto);
//! - `FERRY_BENCH_WORKERS` (unset: one process): through a queue, with this
//!   many workers (e.g. 1,2,4), each `in_flight`: SQS on the emulator, or
//!   with `FERRY_BENCH_QUEUE=memory` a queue in this process (the emulator
//!   serves one request at a time, so it bounds the sharded wall time).
//!
//! For each setting, a first cycle (every listing new) and an unchanged one
//! in a process that just started (every listing a 304, from the ETags in
//! the store): wall time, calls made, rate-limit units spent, repositories
//! per second, and Ferry's resident memory; last, its peak. The fake GitHub
//! runs in a process of its own (this one, started again): it keeps every
//! request it answered, which is not Ferry's memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::domain::{Installation, InstallationId, Repository, Timestamp};
use ferry::forge::github::{GithubApi, GithubForge};
use ferry::queue::{SqsQueue, WorkQueue};
use ferry::store::StateStore;
use ferry::usecase::fanout::Message;
use ferry::usecase::fanout::reconcile as fanout;
use ferry::usecase::reconcile::{self, Ports, Report};
use ferry::usecase::tokens::TokenSource;
use ferry_tests::builders::repository;
use std::io::{BufRead, Write};

use ferry::forge::github::{GithubApp, KeySource};
use ferry_tests::github::{APP_ID, FakeGithub, SimClock, app_keys};
use ferry_tests::webhook::Harness;

const INSTALLATIONS: u64 = 100;

fn setting<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    value.split(',').filter(|v| !v.is_empty()).map(|v| v.trim().parse().ok().expect(name)).collect()
}

/// The process's resident memory (`VmRSS`) or its peak (`VmHWM`), in MB.
fn rss_mb(which: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with(which)).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

/// The fake GitHub in a process of its own, asked over its standard input
/// for what it was asked.
struct Github {
    url: url::Url,
    /// The fake's App key (a test key of its process).
    key: secrecy::SecretString,
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
    _child: std::process::Child,
}

impl Github {
    fn start() -> Self {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .env("FERRY_BENCH_ROLE", "github")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the fake GitHub starts");
        let input = child.stdin.take().unwrap();
        let mut output = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        output.read_line(&mut line).unwrap();
        let url = url::Url::parse(line.trim()).expect("its URL");
        let mut key = String::new();
        while !key.contains("END RSA PRIVATE KEY") {
            output.read_line(&mut key).unwrap();
        }
        Self { url, key: key.into(), input, output, _child: child }
    }

    fn app(&self, clock: Arc<SimClock>) -> GithubApp {
        let api = GithubApi::new(&self.url);
        GithubApp::new(APP_ID, KeySource::Pem(self.key.clone()), api, clock)
    }

    /// Calls made and rate-limit units spent so far.
    fn spent(&mut self) -> (usize, u64) {
        writeln!(self.input, "report").unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        let (calls, units) = line.trim().split_once(' ').expect("calls units");
        (calls.parse().unwrap(), units.parse().unwrap())
    }
}

/// The fake's own process: answers every repository call after 50 ms, and
/// says how much it was asked on each line of its input.
async fn serve_github() {
    let fake = FakeGithub::start(SimClock::at(Timestamp::now())).await;
    fake.answer_after(Duration::from_millis(50));
    println!("{}", fake.url());
    println!("{}", secrecy::ExposeSecret::expose_secret(&app_keys().pkcs1_pem).trim_end());
    tokio::task::spawn_blocking(move || {
        for _ in std::io::stdin().lock().lines().map_while(Result::ok) {
            let asked = fake.reported();
            println!("{} {}", asked.calls.len(), asked.units.values().sum::<u64>());
        }
    })
    .await
    .unwrap();
}

/// A Ferry on `store` tracking `repos` repositories of the fake.
async fn ferry(fake: &Github, clock: &Arc<SimClock>, repos: usize, in_flight: usize) -> Harness {
    let state: Arc<dyn StateStore> = match std::env::var("FERRY_BENCH_STORE").as_deref() {
        Ok("emulator") => Arc::new(ferry_tests::emulator::dynamo_store().await),
        _ => Arc::new(ferry_tests::embedded::state_in(&tempfile::tempdir().unwrap().keep())),
    };
    let minter = Arc::new(fake.app(clock.clone()));
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
fn cold_start(harness: &mut Harness, fake: &Github) {
    let context = harness.context();
    let tokens = TokenSource { tokens: context.tokens.clone(), state: context.state.clone() };
    harness.set_forge(Arc::new(GithubForge::new(GithubApi::new(&fake.url), Arc::new(tokens))));
}

async fn one_process(harness: &Harness, clock: &SimClock) -> Report {
    let mut ports = Ports::of(harness.context());
    ports.launch.clock = clock;
    let repositories = harness.state().list::<Repository>(&ferry::store::Collection::Repositories).await.unwrap();
    reconcile::repair_all(ports, &reconcile::Shared::new(ports), repositories, None).await
}

/// A queue in this process: what SQS does for the workers, minus the
/// network and the emulator's one-request-at-a-time lock.
#[derive(Default)]
struct MemoryQueue(std::sync::Mutex<std::collections::VecDeque<String>>);

#[async_trait::async_trait]
impl WorkQueue for MemoryQueue {
    async fn send(&self, items: &[(String, Duration)]) -> Result<(), ferry::queue::QueueError> {
        self.0.lock().unwrap().extend(items.iter().map(|(body, _)| body.clone()));
        Ok(())
    }
}

async fn drain_memory(queue: &MemoryQueue, ports: Ports<'_>) -> Report {
    let mut total = Report::default();
    loop {
        let batch: Vec<String> = {
            let mut items = queue.0.lock().unwrap();
            let n = items.len().min(10);
            items.drain(..n).collect()
        };
        if batch.is_empty() {
            return total;
        }
        let messages = batch.iter().enumerate().map(|(i, body)| Message { id: i.to_string(), body: body.clone() });
        let worked = fanout::work(ports, queue, messages.collect(), None).await;
        for id in worked.failed {
            queue.0.lock().unwrap().push_back(batch[id.parse::<usize>().unwrap()].clone());
        }
        total.add(worked.report);
    }
}

/// Plans onto a queue, then `workers` drain it as Lambda's event source
/// would (batches of 10, failed items left to come back). Timed apart: on
/// the emulator, the plan's sends are the emulator's speed, not Ferry's.
async fn through_queue(harness: &Harness, clock: &SimClock, workers: usize) -> Report {
    let mut ports = Ports::of(harness.context());
    ports.launch.clock = clock;
    let planning = Instant::now();
    let (mut total, reports) = if std::env::var("FERRY_BENCH_QUEUE").as_deref() == Ok("memory") {
        let queue = MemoryQueue::default();
        let total = fanout::plan(ports, &queue).await;
        let planned = planning.elapsed();
        let draining = Instant::now();
        let reports = futures::future::join_all((0..workers).map(|_| drain_memory(&queue, ports))).await;
        println!("    plan {:.1} s, workers {:.1} s", planned.as_secs_f64(), draining.elapsed().as_secs_f64());
        (total, reports)
    } else {
        let (sqs, url, _) = ferry_tests::emulator::work_queue(60, 3).await;
        let queue = SqsQueue::new(sqs.clone(), url.clone());
        let total = fanout::plan(ports, &queue).await;
        let planned = planning.elapsed();
        let draining = Instant::now();
        let reports = futures::future::join_all((0..workers).map(|_| drain(&sqs, &url, ports, &queue))).await;
        println!("    plan {:.1} s, workers {:.1} s", planned.as_secs_f64(), draining.elapsed().as_secs_f64());
        (total, reports)
    };
    for report in reports {
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

async fn cycle(label: &str, harness: &Harness, fake: &mut Github, clock: &SimClock, workers: Option<usize>) {
    let (calls, units) = fake.spent();
    let started = Instant::now();
    let report = match workers {
        None => one_process(harness, clock).await,
        Some(workers) => through_queue(harness, clock, workers).await,
    };
    let wall = started.elapsed();
    let (calls_after, units_after) = fake.spent();
    println!(
        "  {label:<10} {:>8.1} s  {:>6} repositories  {:>7.0}/s  {:>6} calls  {:>6} units  {:>6} unchanged listings  \
         {} failures  RSS {:.0} MB",
        wall.as_secs_f64(),
        report.repositories,
        report.repositories as f64 / wall.as_secs_f64(),
        calls_after - calls,
        units_after - units,
        report.unchanged_listings,
        report.failed.len(),
        rss_mb("VmRSS:")
    );
    if let Some(first) = report.failed.first() {
        println!("    first failure: {first}");
    }
}

#[tokio::main]
async fn main() {
    ferry::telemetry::install_crypto_provider();
    if std::env::var("FERRY_BENCH_ROLE").as_deref() == Ok("github") {
        return serve_github().await;
    }
    let repos: usize = setting("FERRY_BENCH_REPOS", "10000")[0];
    let store = std::env::var("FERRY_BENCH_STORE").unwrap_or_else(|_| "embedded".into());
    let clock = SimClock::at(Timestamp::now());
    let mut fake = Github::start();
    let shapes: Vec<Option<usize>> = match std::env::var("FERRY_BENCH_WORKERS") {
        Ok(_) => setting::<usize>("FERRY_BENCH_WORKERS", "1").into_iter().map(Some).collect(),
        Err(_) => vec![None],
    };
    for in_flight in setting::<usize>("FERRY_BENCH_IN_FLIGHT", "16,64") {
        for workers in &shapes {
            let mut harness = ferry(&fake, &clock, repos, in_flight).await;
            println!("  (tracked: RSS {:.0} MB)", rss_mb("VmRSS:"));
            let shape = workers.map_or("one process".to_owned(), |w| format!("{w} workers through SQS"));
            println!("{repos} repositories, {store} store, {shape}, {in_flight} in flight each:");
            cycle("first", &harness, &mut fake, &clock, *workers).await;
            cold_start(&mut harness, &fake);
            cycle("unchanged", &harness, &mut fake, &clock, *workers).await;
        }
    }
    println!("peak RSS: {:.1} MB", rss_mb("VmHWM:"));
}
