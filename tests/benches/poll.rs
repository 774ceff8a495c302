//! One poll cycle over 1,000 tracked GitHub refs against a local fake that
//! answers every request in 20 ms, 10 requests in flight.
//! `cargo bench -p ferry-tests --bench poll`
//!
//! Prints, for a first cycle (every ref new), an unchanged cycle (every ref
//! a 304) and a cycle with 10 changed refs: requests made, rate-limit units
//! spent (GitHub charges nothing for a 304), events delivered, wall time;
//! then the process's peak RSS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::cluster::DryRunCluster;
use ferry::domain::Timestamp;
use ferry::forge::DryRunForge;
use ferry::forge::github::NoApp;
use ferry::poll::source::Sources;
use ferry::poll::{Format, SourceKind, TrackedRef};
use ferry::secrets::SecretStore;
use ferry::store::StateStore;
use ferry::units::OperatorConfig;
use ferry::usecase::launch::LaunchPorts;
use ferry::usecase::poll::{PollPorts, poll};
use ferry::usecase::tokens::Tokens;
use ferry_tests::git_hosts::{GitHosts, Receiver};
use ferry_tests::github::SimClock;

const REFS: usize = 1000;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

#[tokio::main]
async fn main() {
    ferry::telemetry::install_crypto_provider();
    let hosts = GitHosts::start(Duration::from_millis(20)).await;
    let receiver = Receiver::start().await;
    let sha = |i: usize, round: usize| format!("{:040x}", i * 10 + round);
    let refs: Vec<TrackedRef> = (0..REFS)
        .map(|i| {
            hosts.set(&format!("acme/r{i}"), "main", &sha(i, 0));
            TrackedRef {
                url: format!("https://github.com/acme/r{i}"),
                reference: "main".into(),
                kind: SourceKind::Github,
                frequency: "1m".into(),
                endpoint: Some(receiver.url()),
                secret: None,
                secret_name: None,
                launch: false,
                format: Format::Cloudevents,
                api_url: Some(hosts.url()),
                ca_file: None,
                token_secret: None,
                provider: None,
                clone_secret: None,
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(ferry_tests::embedded::state_in(dir.path()));
    let secrets: Arc<dyn SecretStore> = Arc::new(ferry_tests::embedded::secrets_in(dir.path()));
    let clock = SimClock::at(Timestamp::now());
    let tokens = Tokens::new(secrets.clone(), Arc::new(NoApp), clock.clone());
    let sources = Sources::new(&url::Url::parse(&hosts.url()).unwrap());
    let http = ferry::net::SharedClient::default();
    let (cluster, forge, operator) =
        (DryRunCluster::new(dir.path()), DryRunForge::new(dir.path()), OperatorConfig::default());
    let ports = PollPorts {
        secrets: secrets.as_ref(),
        sources: &sources,
        http: &http,
        launch: LaunchPorts {
            state: state.as_ref(),
            tokens: &tokens,
            forge: &forge,
            cluster: &cluster,
            operator: &operator,
            cluster_name: None,
            clock: clock.as_ref(),
        },
    };
    for (label, change) in [("first cycle, every ref new", 0usize), ("unchanged cycle", 0), ("10 refs changed", 10)] {
        for i in 0..change {
            hosts.set(&format!("acme/r{i}"), "main", &sha(i, 1));
        }
        let (requests_before, free_before) = hosts.counts();
        let events_before = receiver.accepted().len();
        let started = Instant::now();
        let report = poll(ports, &refs, 10, None).await.unwrap();
        let wall = started.elapsed();
        let (requests, free) = hosts.counts();
        let requests = requests - requests_before;
        let units = requests - (free - free_before);
        println!(
            "{label}: {} refs polled, {requests} requests, {units} rate-limit units, {} events delivered, {} failed, wall {:.2} s",
            report.polled,
            receiver.accepted().len() - events_before,
            report.failed.len(),
            wall.as_secs_f64()
        );
        clock.advance(Duration::from_secs(67));
    }
    println!("peak RSS {:.1} MB (the process: fakes, receiver and poller together)", peak_rss_mb());
}
