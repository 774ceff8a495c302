//! What Ferry counts (README.md, "Operations"), in one list, through the
//! `metrics` facade. On Lambda each invocation ends with one CloudWatch
//! Embedded Metric Format lines on stdout, one per label set (namespace
//! `Ferry`: [`emf`]);
//! `ferry serve` renders the same metrics in Prometheus's text format at
//! `GET /metrics` ([`prometheus`]). With no recorder installed (tests, the
//! one-shot commands) a call costs next to nothing.
//!
//! Dimensions stay few, and none holds what a stranger chose: every label
//! value is one of a fixed set, or (a polled host) the operator's.

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::domain::Outcome;
use crate::usecase::Action;

/// The CloudWatch namespace of every metric (each name also starts
/// `ferry_`, Prometheus's convention for an application's metrics).
pub const NAMESPACE: &str = "Ferry";

/// Every counter, and what it counts.
pub const COUNTERS: &[(&str, &str)] = &[
    ("ferry_deliveries", "webhook deliveries, by outcome (or `unavailable`: answered 5xx)"),
    ("ferry_deliveries_by_event", "deliveries taken in, by event (one Ferry reads, or `other`) and outcome"),
    ("ferry_actions", "what deliveries did, by kind"),
    ("ferry_tekton_events", "Tekton's events received, by what they were (ended, not_an_end, refused)"),
    ("ferry_reconciler_repairs", "repairs made, by kind"),
    ("ferry_reconciler_repositories", "repositories repaired"),
    ("ferry_rotator_mints", "installation tokens minted"),
    ("ferry_rotator_fresh", "installation tokens found fresh"),
    ("ferry_poll_refs_due", "refs polled"),
    ("ferry_poll_not_modified", "polls answered unchanged (304, or the same SHA)"),
    ("ferry_poll_events_sent", "new commits delivered"),
    ("ferry_queued", "work items a planner queued, by cycle"),
    ("ferry_cycle_left", "work a cycle or a worker left for later (the deadline, a rate limit), by cycle"),
    ("ferry_cycle_failures", "what a cycle or a worker's batch could not do, by cycle"),
];

/// The rate-limit units a polled host last said were left, by host (the
/// operator's `[[poll]]` URLs' origins).
pub const RATE_LIMIT_LEFT: &str = "ferry_poll_rate_limit_left";

/// How long accepting one delivery took, from its arrival to its answer.
pub const INTAKE_DURATION: &str = "ferry_intake_duration";

/// [`INTAKE_DURATION`]'s buckets, in seconds: GitHub waits 10 s.
pub const INTAKE_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Tells the installed recorder each metric's unit and meaning.
pub fn describe() {
    for (name, help) in COUNTERS {
        describe_counter!(*name, Unit::Count, *help);
    }
    describe_histogram!(INTAKE_DURATION, Unit::Seconds, "how long accepting one delivery took");
    describe_gauge!(RATE_LIMIT_LEFT, Unit::Count, "the rate-limit units a polled host last said were left, by host");
}

/// What a polled host's `X-RateLimit-Remaining` said, for the ref at `url`.
pub fn rate_limit_left(url: &str, units: u64) {
    let host = url::Url::parse(url).map_or_else(|_| "unknown".to_owned(), |u| u.origin().ascii_serialization());
    #[expect(clippy::cast_precision_loss, reason = "a count of units, far below 2^52")]
    gauge!(RATE_LIMIT_LEFT, "host" => host).set(units as f64);
}

/// The outcome a delivery answered with an outage (a 5xx: the secrets or the
/// store could not be read; GitHub's redelivery or the reconciler retries
/// it), counted apart from `rejected` (a refusal).
pub const UNAVAILABLE: &str = "unavailable";

/// One delivery's answer: its status and outcome, what it did, and how long
/// accepting it took (counted only for a delivery taken in: refusals are
/// cheap and would hide a slow intake).
pub fn delivery(event: Option<&str>, status: u16, outcome: Outcome, actions: &[Action], took: Duration) {
    let label = if status >= 500 { UNAVAILABLE } else { outcome.as_str() };
    counter!("ferry_deliveries", "outcome" => label).increment(1);
    if outcome == Outcome::Rejected || status >= 500 {
        return;
    }
    if let Some(event) = event {
        counter!("ferry_deliveries_by_event", "event" => event_label(event), "outcome" => label).increment(1);
    }
    for action in actions {
        counter!("ferry_actions", "kind" => action.kind.clone()).increment(1);
    }
    histogram!(INTAKE_DURATION).record(took.as_secs_f64());
}

/// An event's name as a dimension: one Ferry reads in full, or `other`.
/// `X-GitHub-Event` is not signed (the signature covers the body), so the
/// header of a replayed body could otherwise name a dimension per request.
fn event_label(event: &str) -> &'static str {
    crate::forge::github::events::HANDLED.iter().find(|(name, _)| *name == event).map_or("other", |(name, _)| name)
}

/// One Tekton event: `ended`, `not_an_end` or `refused`.
pub fn tekton_event(what: &'static str) {
    counter!("ferry_tekton_events", "what" => what).increment(1);
}

fn count(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// What every cycle reports alike: queued, left, failed.
fn cycle(cycle: &'static str, queued: usize, left: usize, failures: usize) {
    counter!("ferry_queued", "cycle" => cycle).increment(count(queued));
    counter!("ferry_cycle_left", "cycle" => cycle).increment(count(left));
    counter!("ferry_cycle_failures", "cycle" => cycle).increment(count(failures));
}

/// A reconciliation's report: a cycle, a plan, or a worker's batch.
pub fn reconciled(report: &crate::usecase::reconcile::Report) {
    let repairs = [
        ("statuses", report.statuses),
        ("previews_reported", report.previews_reported),
        ("retried", report.retried),
        ("recovered", report.recovered),
        ("dead", report.dead),
        ("redelivered", report.redelivered),
        ("missed_releases", report.missed_releases),
        ("missed_pull_requests", report.missed_pull_requests),
        ("previews_removed", report.previews_removed),
    ];
    for (kind, repaired) in repairs {
        counter!("ferry_reconciler_repairs", "kind" => kind).increment(count(repaired));
    }
    counter!("ferry_reconciler_repositories").increment(count(report.repositories));
    cycle("reconcile", report.queued, report.left, report.failed.len());
}

/// A rotation's report.
pub fn rotated(report: &crate::usecase::rotate::RotationReport) {
    counter!("ferry_rotator_mints").increment(count(report.minted.len()));
    counter!("ferry_rotator_fresh").increment(count(report.fresh));
    cycle("rotate", report.queued, report.left, report.failed.len() + report.problems.len());
}

/// A poll cycle's report.
#[cfg(feature = "poll")]
pub fn polled(report: &crate::usecase::poll::PollReport) {
    counter!("ferry_poll_refs_due").increment(count(report.polled));
    counter!("ferry_poll_not_modified").increment(count(report.unchanged));
    counter!("ferry_poll_events_sent").increment(count(report.delivered));
    cycle("poll", report.queued, report.left, report.failed.len());
}

/// A worker's items no worker can do (unreadable, or their work panicked).
pub fn items_not_done(cycle: &'static str, items: usize) {
    counter!("ferry_cycle_failures", "cycle" => cycle).increment(count(items));
}

/// CloudWatch's Embedded Metric Format, on Lambda.
pub mod emf {
    use std::sync::OnceLock;

    use metrics_cloudwatch_embedded::Collector;

    static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

    /// Installs the EMF recorder (once per process; later calls keep the first).
    pub fn install() {
        let built = metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace(super::NAMESPACE).init();
        match built {
            Ok(collector) => {
                let _ = COLLECTOR.set(collector);
                super::describe();
            }
            Err(e) => tracing::warn!(error = %e, "no metrics: another recorder is installed"),
        }
    }

    /// Writes what this invocation counted as EMF lines on stdout (one per
    /// label set), where Lambda's log group takes them; nothing without the
    /// recorder.
    pub fn flush() {
        flush_to(std::io::stdout().lock());
    }

    /// [`flush`], to `writer`.
    pub fn flush_to(writer: impl std::io::Write) {
        if let Some(collector) = COLLECTOR.get()
            && let Err(e) = collector.flush(writer)
        {
            tracing::warn!(error = %e, "could not write the invocation's metrics");
        }
    }
}

/// Prometheus's text format, for `ferry serve`'s `GET /metrics`.
#[cfg(feature = "prometheus")]
pub mod prometheus {
    use std::sync::OnceLock;

    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

    /// Installs the Prometheus recorder (once per process), and keeps its
    /// histograms' samples folded every few seconds (unfolded, they grow).
    pub fn install() {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(super::INTAKE_DURATION.into()), super::INTAKE_BUCKETS);
        match builder.and_then(|builder| builder.install_recorder()) {
            Ok(handle) => {
                let upkeep = handle.clone();
                tokio::spawn(async move {
                    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
                    loop {
                        every.tick().await;
                        upkeep.run_upkeep();
                    }
                });
                let _ = HANDLE.set(handle);
                super::describe();
            }
            Err(e) => tracing::warn!(error = %e, "no metrics: the Prometheus recorder could not be installed"),
        }
    }

    /// Every metric so far, as Prometheus scrapes them; `None` without the recorder.
    pub fn render() -> Option<String> {
        HANDLE.get().map(PrometheusHandle::render)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through the EMF recorder this process installs once: a host's
    /// rate-limit units left are a gauge by the host's origin, never by a
    /// path or a credential in the URL.
    #[test]
    fn a_host_s_rate_limit_left_is_a_gauge_by_its_origin() {
        emf::install();
        rate_limit_left("https://user:secret@gitlab.example.com/acme/api", 4_321);
        let mut written = Vec::new();
        emf::flush_to(&mut written);
        let written = String::from_utf8(written).unwrap();
        let gauge = written
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|document| document.get(RATE_LIMIT_LEFT).is_some())
            .unwrap_or_else(|| panic!("no gauge in {written}"));
        assert_eq!(gauge["host"], "https://gitlab.example.com", "{gauge}");
        assert_eq!(gauge[RATE_LIMIT_LEFT], 4321.0, "{gauge}");
        assert!(!written.contains("secret") && !written.contains("acme"), "{written}");
    }
}
