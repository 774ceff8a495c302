//! The token rotator fanned out (README.md, "Fan-out"): the planner sends
//! one item per installation; a worker refreshes each item's token as one
//! rotation would. Minting spends the App's own rate limit, so one budget
//! holds every item: once GitHub refuses a mint, the batch's other items go
//! back on the queue until the limit resets.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Job, Message, Worked};
use crate::domain::tokens::ROTATE_WITHIN;
use crate::domain::{Installation, InstallationId};
use crate::forge::MintError;
use crate::queue::WorkQueue;
use crate::store::{Collection, Key, StateStore};
use crate::usecase::rotate::{self, CONCURRENCY, Failure, RotationReport};
use crate::usecase::tokens::{Need, TokenError, Tokens};

/// One installation whose token to keep fresh, as the queue carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub installation: InstallationId,
}

/// The planner's cycle: one item per installation onto `queue`, all at
/// once (most find their token fresh and spend nothing).
pub async fn plan(state: &dyn StateStore, queue: &dyn WorkQueue) -> RotationReport {
    let mut report = RotationReport::default();
    let items: Vec<Item> = match state.list::<Installation>(&Collection::Installations).await {
        Ok(found) => found.into_iter().map(|found| Item { installation: found.record.id }).collect(),
        Err(e) => {
            report.problems.push(format!("listing the installations: {e}"));
            return report;
        }
    };
    report.queued = items.len();
    if let Err(e) = super::enqueue(queue, &items, &[]).await {
        report.queued -= e.unsent.len();
        report.problems.push(format!("queueing the installations' items: {e}"));
    }
    tracing::info!(queued = report.queued, failures = report.problems.len(), "rotation planned");
    report
}

/// Refreshing one installation's token.
struct Refreshing<'a> {
    tokens: &'a Tokens,
    state: &'a dyn StateStore,
}

#[async_trait]
impl Job for Refreshing<'_> {
    type Item = Item;
    type Report = RotationReport;

    fn budget(&self, _: &Item) -> String {
        "the App".to_owned()
    }

    async fn one(&self, item: &Item) -> (RotationReport, Option<Option<Duration>>) {
        // Only a known installation's: one deleted since it was queued needs nothing.
        match self.state.load::<Installation>(&Key::Installation(item.installation)).await {
            Ok(Some(_)) => {}
            Ok(None) => return (RotationReport::default(), None),
            Err(e) => {
                let problem = format!("reading its record: {e}");
                let failed = vec![Failure { installation: item.installation, problem }];
                return (RotationReport { failed, ..RotationReport::default() }, None);
            }
        }
        let refreshed = self.tokens.refresh(self.state, item.installation, Need::Within(ROTATE_WITHIN)).await;
        if let Err(TokenError::Mint { source: MintError::RateLimited { retry_after }, .. }) = &refreshed {
            tracing::info!(installation = %item.installation, "GitHub rate-limits minting; the item goes back on the queue");
            return (RotationReport::default(), Some(*retry_after));
        }
        let mut report = RotationReport::default();
        rotate::note(&mut report, item.installation, refreshed);
        (report, None)
    }

    fn add(total: &mut RotationReport, part: RotationReport) {
        total.add(part);
    }

    fn leave(total: &mut Self::Report, items: usize) {
        total.left += items;
    }
}

/// A worker's batch: each installation's token refreshed, a few at once,
/// none started after `deadline`.
pub async fn work(
    tokens: &Tokens,
    state: &dyn StateStore,
    queue: &dyn WorkQueue,
    messages: Vec<Message>,
    deadline: Option<Instant>,
) -> Worked<RotationReport> {
    super::work(&Refreshing { tokens, state }, queue, messages, CONCURRENCY, deadline).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_an_installation_number() {
        let item: Item = serde_json::from_str(r#"{"installation":42}"#).unwrap();
        assert_eq!(item.installation, InstallationId::new(42));
        for hostile in [r#"{"installation":"42; rm"}"#, r#"{"installation":-1}"#, "{}", "[]"] {
            assert!(serde_json::from_str::<Item>(hostile).is_err(), "{hostile}");
        }
    }
}
