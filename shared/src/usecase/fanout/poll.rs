//! The poller fanned out (README.md, "Fan-out"): when more refs are due
//! than it polls at once (`poll_in_flight`), the planner sends one item per
//! due ref; a worker polls each as one cycle would. An item names a ref of
//! the operator's `[[poll]]` list and nothing else is believed of it: one
//! that names no listed ref does nothing, and one polled since it was
//! queued is not due. A host's rate limit holds back the batch's other
//! items of that host, which stay due for the next plan (a minute later);
//! the ref that met it is not due until the limit resets.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Job, Message, Worked};
use crate::poll::TrackedRef;
use crate::queue::WorkQueue;
use crate::store::StoreError;
use crate::usecase::poll::{self, PollFailure, PollPorts, PollReport};

/// One due ref, as the queue carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub url: String,
    #[serde(rename = "ref")]
    pub reference: String,
}

/// The planner's cycle: the due refs polled here when they are few (one
/// round of `poll_in_flight`), else one item each onto `queue`.
pub async fn plan(
    ports: PollPorts<'_>,
    queue: &dyn WorkQueue,
    deadline: Option<Instant>,
) -> Result<PollReport, StoreError> {
    let operator = ports.launch.operator;
    let (due, not_due) = poll::due(ports, &operator.poll).await?;
    if due.len() <= operator.poll_in_flight.max(1) {
        let mut report = poll::poll_due(ports, due, operator.poll_in_flight, deadline).await;
        report.not_due = not_due;
        tracing::info!(polled = report.polled, not_due, failed = report.failed.len(), "polled the few due refs");
        return Ok(report);
    }
    let items: Vec<Item> = due
        .iter()
        .map(|(tracked, _)| Item { url: tracked.url.clone(), reference: tracked.reference.clone() })
        .collect();
    let mut report = PollReport { not_due, queued: items.len(), ..PollReport::default() };
    if let Err(e) = super::enqueue(queue, &items, &[]).await {
        // Not polled: each stays due for the next plan.
        report.queued -= e.unsent.len();
        let unsent = e.unsent.iter().filter_map(|&i| items.get(i));
        let problem = format!("queueing it: {}", e.first);
        report.failed.extend(unsent.map(|item| PollFailure::new(&item.url, &item.reference, problem.clone())));
    }
    tracing::info!(queued = report.queued, not_due, failures = report.failed.len(), "poll planned");
    Ok(report)
}

/// Whose rate limit a ref's requests spend: its host's (and its own
/// token's, when it names one).
fn budget(url: &str) -> String {
    url::Url::parse(url).map_or_else(|_| url.to_owned(), |url| url.origin().ascii_serialization())
}

/// Polling one ref.
struct Polling<'a> {
    ports: PollPorts<'a>,
}

impl Polling<'_> {
    fn tracked(&self, item: &Item) -> Option<&TrackedRef> {
        self.ports.launch.operator.poll.iter().find(|t| t.url == item.url && t.reference == item.reference)
    }
}

#[async_trait]
impl Job for Polling<'_> {
    type Item = Item;
    type Report = PollReport;

    fn budget(&self, item: &Item) -> String {
        match self.tracked(item).and_then(|t| t.token_secret.as_deref()) {
            Some(secret_name) => format!("{} {secret_name}", budget(&item.url)),
            None => budget(&item.url),
        }
    }

    async fn one(&self, item: &Item) -> (PollReport, Option<Option<Duration>>) {
        match self.tracked(item) {
            Some(tracked) => poll::poll_ref(self.ports, tracked).await,
            None => {
                tracing::info!(url = %item.url, reference = %item.reference, "no longer a polled ref; nothing to do");
                (PollReport::default(), None)
            }
        }
    }

    fn add(total: &mut PollReport, part: PollReport) {
        total.add(part);
    }

    fn leave(total: &mut Self::Report, items: usize) {
        total.left += items;
    }

    // A ref held back stays due, and the ref that met the limit waits for
    // its reset in its own record: the next plan queues what is due then.
    // Given back instead, a held-back ref would also be queued again by
    // the plans made meanwhile, and polled twice.
    const GIVES_BACK: bool = false;
}

/// A worker's batch: each ref polled, `poll_in_flight` at once, none
/// started after `deadline`.
pub async fn work(
    ports: PollPorts<'_>,
    queue: &dyn WorkQueue,
    messages: Vec<Message>,
    deadline: Option<Instant>,
) -> Worked<PollReport> {
    let in_flight = ports.launch.operator.poll_in_flight;
    super::work(&Polling { ports }, queue, messages, in_flight, deadline).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ref_s_budget_is_its_host() {
        assert_eq!(budget("https://gitlab.com/acme/api"), "https://gitlab.com");
        assert_eq!(budget("https://git.example:8443/a/b.git"), "https://git.example:8443");
        assert_eq!(budget("not a url"), "not a url");
    }
}
