//! The reconciler fanned out (README.md, "Reconciler"): the planner deals
//! with the deliveries and sends one item per tracked repository, each
//! installation's items spread over minutes (GitHub rate-limits per
//! installation); a worker repairs its items. A repair that meets a failing
//! host is done with for this cycle, as in one process: the next plan has
//! it again.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Job, Message, Worked};
use crate::domain::{InstallationId, RepoName, Repository};
use crate::queue::WorkQueue;
use crate::store::Collection;
use crate::usecase::reconcile::{self, Ports, Report, Shared};

/// One repository to repair, as the queue carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub repo: RepoName,
    #[serde(default)]
    pub installation: Option<InstallationId>,
    /// When the plan that queued it was made (Unix seconds): its workers
    /// share the cycle's cap on preview removals.
    #[serde(default)]
    pub plan: Option<u64>,
}

/// The planner's cycle: the deliveries, then one item per tracked
/// repository onto `queue`, spread `items_per_minute` per budget.
pub async fn plan(ports: Ports<'_>, queue: &dyn WorkQueue) -> Report {
    let mut report = reconcile::deliveries(ports).await;
    let repositories = match ports.launch.state.list::<Repository>(&Collection::Repositories).await {
        Ok(found) => found,
        Err(e) => {
            report.failed.push(format!("listing the tracked repositories: {e}"));
            return report;
        }
    };
    let plan = u64::try_from(ports.launch.clock.now().unix()).ok();
    let items: Vec<Item> = repositories
        .into_iter()
        .map(|found| Item { repo: found.record.name, installation: found.record.installation, plan })
        .collect();
    let budgets: Vec<String> = items.iter().map(|item| reconcile::budget(&item.repo, item.installation)).collect();
    let delays = super::spread(&budgets, ports.launch.operator.reconciler.items_per_minute);
    report.queued = items.len();
    if let Err(e) = super::enqueue(queue, &items, &delays).await {
        report.queued -= e.unsent.len();
        report.failed.push(format!("queueing the repositories' items: {e}"));
    }
    tracing::info!(queued = report.queued, failures = report.failed.len(), "{}", report.summary());
    report
}

/// Repairing one repository.
struct Repairing<'a> {
    ports: Ports<'a>,
    shared: Shared,
}

#[async_trait]
impl Job for Repairing<'_> {
    type Item = Item;
    type Report = Report;

    fn budget(&self, item: &Item) -> String {
        reconcile::budget(&item.repo, item.installation)
    }

    async fn one(&self, item: &Item) -> (Report, Option<Option<Duration>>) {
        let report = reconcile::repair_one(self.ports, &self.shared, &item.repo).await;
        let spent = report.rate_limited.values().copied().max();
        (report, spent)
    }

    fn add(total: &mut Report, part: Report) {
        total.add(part);
    }

    fn leave(total: &mut Self::Report, items: usize) {
        total.left += items;
    }
}

/// A worker's batch: each repository repaired, `[reconciler] in_flight` at
/// once, none started after `deadline`.
pub async fn work(
    ports: Ports<'_>,
    queue: &dyn WorkQueue,
    messages: Vec<Message>,
    deadline: Option<Instant>,
) -> Worked<Report> {
    // A batch's items come from one plan, or from an older one given back:
    // they share the newest plan's cap on preview removals.
    let plan = messages.iter().filter_map(|m| serde_json::from_str::<Item>(&m.body).ok()?.plan).max();
    let shared = plan.map_or_else(|| Shared::new(ports), |plan| Shared::of_plan(ports, plan));
    let in_flight = ports.launch.operator.reconciler.in_flight;
    super::work(&Repairing { ports, shared }, queue, messages, in_flight, deadline).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_reads_back_as_it_was_sent() {
        let sent = Item {
            repo: RepoName::parse("acme/api").unwrap(),
            installation: Some(InstallationId::new(5)),
            plan: Some(7),
        };
        assert_eq!(serde_json::from_str::<Item>(&serde_json::to_string(&sent).unwrap()).unwrap(), sent);
        let bare: Item = serde_json::from_str(r#"{"repo":"acme/api"}"#).unwrap();
        assert_eq!((bare.installation, bare.plan), (None, None));
        assert!(serde_json::from_str::<Item>(r#"{"repo":"not a repo"}"#).is_err());
        assert!(serde_json::from_str::<Item>(r#"{"repo":"../../etc/passwd"}"#).is_err());
    }
}
