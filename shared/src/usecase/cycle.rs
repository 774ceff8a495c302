//! The three scheduled cycles (polling, token rotation, reconciliation) in
//! one shape, for their Lambdas, `ferry serve`'s schedules and the `ferry
//! poll`/`rotate`/`reconcile` commands alike: a cycle answers its report,
//! and fails when the report holds failures, so Lambda's error metric and
//! the template's alarms see them (README, "Operations").

use serde::Serialize;
use tokio::time::Instant;

use crate::domain::CycleReport;
use crate::store::StoreError;

#[cfg(feature = "poll")]
use super::poll;
use super::{reconcile, rotate};

/// One of the scheduled cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cycle {
    #[cfg(feature = "poll")]
    Poll,
    Rotate,
    Reconcile,
}

/// What one cycle did: its report as the Lambda answers it, the one line it
/// ends with, and what failed (to be tried again next cycle).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub fields: serde_json::Value,
    pub summary: String,
    pub failures: Vec<String>,
}

/// Why a cycle failed.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("{cycle} could not start")]
    Store {
        cycle: &'static str,
        #[source]
        source: StoreError,
    },
    /// The cycle ran; some of what it had to do failed. The report says what.
    #[error("{cycle}: {} failed, tried again next cycle; first: {}", .report.failures.len(), .report.failures.first().map_or("", String::as_str))]
    Failures { cycle: &'static str, report: Report },
}

impl Cycle {
    /// The cycle as logs and errors name it.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "poll")]
            Cycle::Poll => "polling",
            Cycle::Rotate => "token rotation",
            Cycle::Reconcile => "reconciliation",
        }
    }

    /// Runs one cycle, starting no new work after `deadline`: its
    /// report, or why it failed.
    pub async fn run(self, context: &crate::Context, deadline: Option<Instant>) -> Result<Report, CycleError> {
        let store = |source| self.could_not_start(source);
        let report = match self {
            #[cfg(feature = "poll")]
            Cycle::Poll => polled(&poll::cycle(context, deadline).await.map_err(store)?),
            Cycle::Rotate => rotated(&rotate::rotate(&context.tokens, context.state.as_ref()).await.map_err(store)?),
            Cycle::Reconcile => reconciled(reconcile::reconcile(reconcile::Ports::of(context), deadline).await),
        };
        self.remember(context, self.metric(), &report).await;
        self.outcome(report)
    }

    /// Keeps `report` where the status page reads it, as `name`: the
    /// cycle's (or its plan's), or `<cycle>.batch` for a worker's batch.
    /// Bookkeeping: a write that fails is logged, never the cycle's failure.
    async fn remember(self, context: &crate::Context, name: &str, report: &Report) {
        // A report lists what it did (every token minted): one item holds only so much.
        let mut fields = report.fields.to_string();
        fields.truncate(fields.floor_char_boundary(CycleReport::KEPT_FIELDS));
        let kept = CycleReport {
            name: name.to_owned(),
            at: crate::domain::Clock::now(&crate::domain::SystemClock),
            summary: report.summary.clone(),
            failures: report.failures.iter().take(CycleReport::KEPT).cloned().collect(),
            fields,
        };
        // The newest report replaces whatever is there.
        if let Err(e) = context.state.save(kept.clone(), |_| kept.clone()).await {
            tracing::warn!(cycle = self.name(), error = %e, "could not keep the cycle's report");
        }
    }

    /// Why the cycle could not start, counted as one of its failures.
    fn could_not_start(self, source: StoreError) -> CycleError {
        crate::metrics::items_not_done(self.metric(), 1);
        CycleError::Store { cycle: self.name(), source }
    }

    /// The cycle as its metrics' dimension names it.
    pub fn metric(self) -> &'static str {
        match self {
            #[cfg(feature = "poll")]
            Cycle::Poll => "poll",
            Cycle::Rotate => "rotate",
            Cycle::Reconcile => "reconcile",
        }
    }

    /// The queue this cycle fans out over, when one is configured
    /// (`FERRY_RECONCILE_QUEUE`, `FERRY_ROTATE_QUEUE`, `FERRY_POLL_QUEUE`).
    pub fn queue(self, config: &crate::Config) -> Option<&str> {
        match self {
            #[cfg(feature = "poll")]
            Cycle::Poll => config.queues.poll.as_deref(),
            Cycle::Rotate => config.queues.rotate.as_deref(),
            Cycle::Reconcile => config.queues.reconcile.as_deref(),
        }
    }

    /// Kept before an invocation's deadline: for the work under way to end
    /// (and, fanned out, the items not started to go back on the queue).
    pub fn margin(self) -> std::time::Duration {
        match self {
            #[cfg(feature = "poll")]
            // One ref's fetch, event and launch: their clients' timeouts.
            Cycle::Poll => std::time::Duration::from_secs(30),
            // One mint, its connection and the SDK's retries of its writes.
            Cycle::Rotate => std::time::Duration::from_secs(30),
            Cycle::Reconcile => std::time::Duration::from_secs(60),
        }
    }

    /// Fanned out, the scheduled part: what this cycle puts on `queue`
    /// (the reconciler's deliveries and the poller's few due refs are done
    /// here).
    #[cfg(feature = "queue")]
    pub async fn plan(
        self,
        context: &crate::Context,
        queue: &dyn crate::queue::WorkQueue,
        deadline: Option<Instant>,
    ) -> Result<Report, CycleError> {
        use super::fanout;
        // Only the poller's planner polls (a few due refs) itself.
        #[cfg(not(feature = "poll"))]
        let _ = deadline;
        let report = match self {
            #[cfg(feature = "poll")]
            Cycle::Poll => {
                let planned = fanout::poll::plan(poll::PollPorts::of(context), queue, deadline).await;
                polled(&planned.map_err(|source| self.could_not_start(source))?)
            }
            Cycle::Rotate => rotated(&fanout::rotate::plan(context.state.as_ref(), queue).await),
            Cycle::Reconcile => reconciled(fanout::reconcile::plan(reconcile::Ports::of(context), queue).await),
        };
        self.remember(context, self.metric(), &report).await;
        self.outcome(report)
    }

    /// Fanned out, a worker's batch of `messages`: its report (counting the
    /// items given back `left`) and the ids of the messages to deliver
    /// again. Never an error: that would deliver the whole batch again.
    #[cfg(feature = "queue")]
    pub async fn work(
        self,
        context: &crate::Context,
        queue: &dyn crate::queue::WorkQueue,
        messages: Vec<super::fanout::Message>,
        deadline: Option<Instant>,
    ) -> (Report, Vec<String>) {
        use super::fanout;
        let (mut report, problems, failed) = match self {
            #[cfg(feature = "poll")]
            Cycle::Poll => {
                let worked = fanout::poll::work(poll::PollPorts::of(context), queue, messages, deadline).await;
                (polled(&worked.report), worked.problems, worked.failed)
            }
            Cycle::Rotate => {
                let (tokens, state) = (&context.tokens, context.state.as_ref());
                let worked = fanout::rotate::work(tokens, state, queue, messages, deadline).await;
                (rotated(&worked.report), worked.problems, worked.failed)
            }
            Cycle::Reconcile => {
                let worked = fanout::reconcile::work(reconcile::Ports::of(context), queue, messages, deadline).await;
                (reconciled(worked.report), worked.problems, worked.failed)
            }
        };
        if !problems.is_empty() {
            crate::metrics::items_not_done(self.metric(), problems.len());
            report.summary.push_str(&format!("; {} items not done", problems.len()));
            report.failures.extend(problems);
        }
        self.remember(context, &format!("{}.batch", self.metric()), &report).await;
        (report, failed)
    }

    /// The report, or a failure when it holds failures.
    pub fn outcome(self, report: Report) -> Result<Report, CycleError> {
        if report.failures.is_empty() {
            return Ok(report);
        }
        tracing::warn!(cycle = self.name(), report = %report.fields, "the cycle had failures; the next one tries again");
        Err(CycleError::Failures { cycle: self.name(), report })
    }
}

#[cfg(feature = "poll")]
fn polled(report: &poll::PollReport) -> Report {
    crate::metrics::polled(report);
    let summary = format!(
        "polled: {} polled, {} not due, {} unchanged, {} delivered, {} undelivered, {} failures",
        report.polled,
        report.not_due,
        report.unchanged,
        report.delivered,
        report.undelivered,
        report.failed.len()
    );
    let failures = report.failed.iter().map(|f| format!("{} {}: {}", f.url, f.reference, f.problem)).collect();
    Report { fields: json(report), summary, failures }
}

fn rotated(report: &rotate::RotationReport) -> Report {
    crate::metrics::rotated(report);
    let summary = format!(
        "rotated: {} minted, {} fresh, {} suspended, {} leased ({} queued, {} left), {} failures",
        report.minted.len(),
        report.fresh,
        report.suspended,
        report.leased.len(),
        report.queued,
        report.left,
        report.failed.len() + report.problems.len()
    );
    let failures = report
        .failed
        .iter()
        .map(|f| format!("installation {}: {}", f.installation, f.problem))
        .chain(report.problems.iter().cloned())
        .collect();
    Report { fields: json(report), summary, failures }
}

/// A reconciliation's report, as every cycle reports (also a planner's).
pub(crate) fn reconciled(report: reconcile::Report) -> Report {
    crate::metrics::reconciled(&report);
    Report { fields: json(&report), summary: report.summary(), failures: report.failed }
}

fn json(report: &impl Serialize) -> serde_json::Value {
    // Reports are plain structs of strings and numbers: they always serialise.
    serde_json::to_value(report).unwrap_or_default()
}
