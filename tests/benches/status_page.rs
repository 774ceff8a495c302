//! The status page over a busy organisation's state: how long `GET /ui`
//! takes (its reads, and the page rendered through the router), however
//! much the store holds.
//!
//! `cargo bench -p ferry-tests --bench status_page` (BENCHMARKS.md, "Status
//! page"). Settings, from the environment:
//! - `FERRY_BENCH_DELIVERIES` (50000, spread over the last eight days),
//!   `FERRY_BENCH_RUNS` (20000), `FERRY_BENCH_REPOS` (2000);
//! - `FERRY_BENCH_STORE`: `embedded` (SQLite, default) or `emulator`
//!   (DynamoDB on moto, which serves one request at a time: use fewer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::domain::{Action, Delivery, DeliveryId, Outcome, RunStatus, Timestamp, UnitDecision, UnitName};
use ferry::store::{Record, StateStore};
use ferry_tests::builders::{repo, repository, run};
use ferry_tests::webhook::Harness;
use tower::ServiceExt;

const TOKEN: &str = "bench-admin-token";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `count` records made by `make`, 16 writes at once.
async fn fill(state: &dyn StateStore, count: usize, make: impl Fn(usize) -> Record) {
    use futures::StreamExt;
    let records: Vec<Record> = (0..count).map(make).collect();
    let writes: Vec<_> = records.iter().map(|record| state.create(record)).collect();
    let written: Vec<_> = futures::stream::iter(writes).buffer_unordered(16).collect().await;
    for result in written {
        result.expect("written");
    }
}

fn delivery(n: usize, now: i64) -> Record {
    let eight_days = 8 * 24 * 3600 - 60;
    let at = Timestamp::from_unix(now - (n as i64 * 7919) % eight_days);
    let mut delivery = Delivery::received(DeliveryId::parse(format!("bench-{n}")).unwrap(), "push", at);
    delivery.outcome = Outcome::Processed;
    delivery.repo = Some(repo(&format!("acme/repo-{}", n % 2000)));
    delivery.reason = Some("docs: no changed path matches docs/**".into());
    let unit = |name: &str| UnitName::parse(name).unwrap();
    delivery.acted(
        vec![
            Action::in_namespace("pipelinerun.created", "ci", format!("ferry-api-{n}")),
            Action::new("status.pending", "ferry/api"),
        ],
        vec![
            UnitDecision { unit: unit("api"), runs: true, what: "run api".into() },
            UnitDecision { unit: unit("docs"), runs: false, what: "no changed path matches docs/**".into() },
        ],
    );
    delivery.into()
}

fn launched(n: usize, now: i64) -> Record {
    let sha = char::from_digit((n % 16) as u32, 16).unwrap();
    let mut record = run(&format!("acme/repo-{}", n % 2000), &format!("unit-{}", n / 32), sha, RunStatus::Success);
    record.launched_at = Some(Timestamp::from_unix(now - (n as i64 * 31) % (8 * 24 * 3600)));
    record.into()
}

/// The median and the slowest of `rounds` timings of `work`.
async fn timed<F: std::future::Future<Output = ()>>(
    rounds: usize,
    mut work: impl FnMut() -> F,
) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        work().await;
        samples.push(started.elapsed());
    }
    samples.sort_unstable();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let (deliveries, runs, repos) = (
        setting("FERRY_BENCH_DELIVERIES", 50_000),
        setting("FERRY_BENCH_RUNS", 20_000),
        setting("FERRY_BENCH_REPOS", 2000),
    );
    let emulator = std::env::var("FERRY_BENCH_STORE").is_ok_and(|s| s == "emulator");
    let harness = if emulator {
        let store: Arc<dyn StateStore> = Arc::new(ferry_tests::emulator::dynamo_store().await);
        Harness::with_state_and(store, "bench-secret", &[("FERRY_ADMIN_TOKEN", TOKEN)]).await
    } else {
        Harness::embedded_with("bench-secret", &[("FERRY_ADMIN_TOKEN", TOKEN)]).await
    };
    let state = harness.state();
    let now = Timestamp::now().unix();
    let started = Instant::now();
    fill(state, deliveries, |n| delivery(n, now)).await;
    fill(state, runs, |n| launched(n, now)).await;
    fill(state, repos, |n| repository(&format!("acme/repo-{n}")).into()).await;
    println!(
        "{} store: {deliveries} deliveries, {runs} runs, {repos} repositories written in {:.1} s",
        if emulator { "emulator" } else { "embedded" },
        started.elapsed().as_secs_f64()
    );

    let (p50, max) = timed(20, || async {
        let status = ferry::usecase::status::status(state, Timestamp::now()).await.expect("read");
        assert_eq!((status.deliveries.len(), status.runs.len()), (100, 100));
    })
    .await;
    println!(
        "status reads (100 deliveries, 100 runs, 500 repositories, previews, reports): p50 {}, max {}",
        ms(p50),
        ms(max)
    );

    let router = ferry::http::router(harness.context().clone());
    let size = std::cell::Cell::new(0);
    let (p50, max) = timed(20, || {
        let (router, size) = (router.clone(), &size);
        async move {
            let request = http::Request::get("/ui")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            size.set(body.len());
        }
    })
    .await;
    println!("GET /ui through the router (reads and render), {} bytes: p50 {}, max {}", size.get(), ms(p50), ms(max));
}
