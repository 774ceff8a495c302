//! The reconciler fanned out over a queue (README.md, "Reconciler"): the
//! scheduled planner deals with the deliveries and sends one item per
//! tracked repository, each installation's items spread over minutes (GitHub
//! rate-limits per installation); workers repair the items the queue hands
//! them and name each one no worker can do (unreadable, or its repair
//! panicked), so that only it is delivered again and, after the queue's
//! last receive, dead-lettered. A repair that meets a failing host is done
//! with for this cycle, as in one process: the next plan has it again. An
//! item met by a rate limit goes back on the queue, with the rest of its
//! installation's, delayed until the limit resets; so does one the
//! invocation's deadline leaves unstarted.

use std::collections::HashMap;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::reconcile::{self, Ports, Report, Shared};
use crate::domain::{InstallationId, RepoName, Repository};
use crate::queue::{MAX_DELAY, WorkQueue};
use crate::store::Collection;

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

/// A message the queue handed a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// What a worker did with its messages: the report, and the ids of the
/// messages to be delivered again.
#[derive(Debug, Default)]
pub struct Worked {
    pub report: Report,
    pub failed: Vec<String>,
}

/// How long a rate-limited item waits when GitHub did not say.
const UNSAID_WAIT: Duration = Duration::from_secs(60);

/// A plan's items are all due within this: before the next plan (every 10
/// minutes by default), so one repository is not queued twice.
const SPREAD_WITHIN: Duration = Duration::from_secs(9 * 60);

/// The delay of each item: the items of one rate-limit budget (an
/// installation, or a repository's own token: [`reconcile::budget`]) go
/// `per_minute` to a minute, the first at once, none later than
/// [`SPREAD_WITHIN`] (past it, items bunch at the end).
pub fn spread(items: &[Item], per_minute: usize) -> Vec<Duration> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    let per_minute = u64::try_from(per_minute.max(1)).unwrap_or(u64::MAX);
    items
        .iter()
        .map(|item| {
            let index = seen.entry(reconcile::budget(&item.repo, item.installation)).or_default();
            let minutes = *index / per_minute;
            *index += 1;
            Duration::from_secs(minutes.saturating_mul(60)).min(SPREAD_WITHIN)
        })
        .collect()
}

/// How long an item given back waits: until the limit resets, within the
/// queue's bounds.
pub fn give_back_delay(retry_after: Option<Duration>) -> Duration {
    retry_after.unwrap_or(UNSAID_WAIT).clamp(Duration::from_secs(1), MAX_DELAY)
}

/// The planner's cycle: the deliveries, then one item per tracked
/// repository onto `queue`.
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
    let delays = spread(&items, ports.launch.operator.reconciler.items_per_minute);
    let messages: Vec<(String, Duration)> = items.iter().zip(delays).map(|(item, delay)| (body(item), delay)).collect();
    report.queued = messages.len();
    if let Err(e) = queue.send(&messages).await {
        report.queued -= e.unsent.len();
        report.failed.push(format!("queueing the repositories' items: {e}"));
    }
    tracing::info!(queued = report.queued, failures = report.failed.len(), "{}", report.summary());
    report
}

fn body(item: &Item) -> String {
    // An item is a name and a number: it always serialises.
    serde_json::to_string(item).unwrap_or_default()
}

/// What became of one message.
enum Done {
    Repaired(Report),
    /// Rate limited: back on the queue after this long.
    GiveBack(Item, Duration, Report),
    Failed(Report),
}

/// A worker's batch: each item repaired, `[reconciler] in_flight` at once,
/// none started after `deadline`.
pub async fn work(
    ports: Ports<'_>,
    queue: &dyn WorkQueue,
    messages: Vec<Message>,
    deadline: Option<Instant>,
) -> Worked {
    // A batch's items come from one plan, or from an older one given back:
    // they share the newest plan's cap on preview removals.
    let plan = messages.iter().filter_map(|m| serde_json::from_str::<Item>(&m.body).ok()?.plan).max();
    let shared = plan.map_or_else(|| Shared::new(ports), |plan| Shared::of_plan(ports, plan));
    let in_flight = ports.launch.operator.reconciler.in_flight.max(1);
    let done: Vec<(String, Done)> = futures::stream::iter(messages)
        .map(|message| {
            let shared = &shared;
            async move { (message.id.clone(), work_one(ports, shared, &message, deadline).await) }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let mut worked = Worked::default();
    let mut back: Vec<(String, (String, Duration))> = Vec::new();
    for (id, done) in done {
        match done {
            Done::Repaired(report) => worked.report.add(report),
            Done::Failed(report) => {
                worked.report.add(report);
                worked.failed.push(id);
            }
            Done::GiveBack(item, delay, report) => {
                worked.report.add(report);
                worked.report.left += 1;
                back.push((id, (body(&item), delay)));
            }
        }
    }
    let resend: Vec<(String, Duration)> = back.iter().map(|(_, message)| message.clone()).collect();
    if let Err(e) = queue.send(&resend).await {
        worked.report.failed.push(format!("giving rate-limited items back: {e}"));
        worked.failed.extend(e.unsent.iter().filter_map(|&i| back.get(i)).map(|(id, _)| id.clone()));
    }
    worked
}

async fn work_one(ports: Ports<'_>, shared: &Shared, message: &Message, deadline: Option<Instant>) -> Done {
    let item: Item = match serde_json::from_str(&message.body) {
        Ok(item) => item,
        Err(e) => {
            let failed = vec![format!("message {}: not a work item: {e}", message.id)];
            return Done::Failed(Report { failed, ..Report::default() });
        }
    };
    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
        return Done::GiveBack(item, Duration::ZERO, Report::default());
    }
    if let Some(wait) = shared.limited(&reconcile::budget(&item.repo, item.installation)) {
        return Done::GiveBack(item, give_back_delay(wait), Report::default());
    }
    // A repository that panics is one failed item, not the whole batch.
    let repairing = std::panic::AssertUnwindSafe(reconcile::repair_one(ports, shared, &item.repo)).catch_unwind();
    let report = match repairing.await {
        Ok(report) => report,
        Err(_) => {
            let failed = vec![format!("{}: repairing it panicked", item.repo)];
            return Done::Failed(Report { failed, ..Report::default() });
        }
    };
    shared.limit(&report);
    if let Some(wait) = report.rate_limited.values().copied().max() {
        return Done::GiveBack(item, give_back_delay(wait), report);
    }
    Done::Repaired(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(repo: &str, installation: Option<u64>) -> Item {
        Item {
            repo: RepoName::parse(repo).unwrap(),
            installation: installation.map(InstallationId::new),
            plan: Some(7),
        }
    }

    #[test]
    fn each_installation_s_items_are_spread_by_the_minute_within_the_queue_s_longest_delay() {
        let items =
            [item("a/1", Some(1)), item("a/2", Some(1)), item("b/1", Some(2)), item("a/3", Some(1)), item("t/1", None)];
        let minutes = |per_minute| spread(&items, per_minute).iter().map(|d| d.as_secs() / 60).collect::<Vec<_>>();
        assert_eq!(minutes(2), [0, 0, 0, 1, 0], "the third of installation 1 waits a minute; the others go");
        assert_eq!(minutes(1), [0, 1, 0, 2, 0]);
        assert_eq!(minutes(0), [0, 1, 0, 2, 0], "zero is taken as one");
        assert_eq!(minutes(100), [0, 0, 0, 0, 0]);
        let many: Vec<Item> = (0..100).map(|n| item(&format!("a/{n}"), Some(1))).collect();
        assert_eq!(spread(&many, 1).last(), Some(&SPREAD_WITHIN), "bunched before the next plan");
    }

    #[test]
    fn a_given_back_item_waits_for_the_reset_within_bounds() {
        assert_eq!(give_back_delay(Some(Duration::from_secs(120))), Duration::from_secs(120));
        assert_eq!(give_back_delay(None), UNSAID_WAIT);
        assert_eq!(give_back_delay(Some(Duration::ZERO)), Duration::from_secs(1));
        assert_eq!(give_back_delay(Some(Duration::from_secs(3600))), MAX_DELAY);
    }

    #[test]
    fn an_item_reads_back_as_it_was_sent() {
        let sent = item("acme/api", Some(5));
        assert_eq!(serde_json::from_str::<Item>(&body(&sent)).unwrap(), sent);
        let bare: Item = serde_json::from_str(r#"{"repo":"acme/api"}"#).unwrap();
        assert_eq!((bare.installation, bare.plan), (None, None));
        assert!(serde_json::from_str::<Item>(r#"{"repo":"not a repo"}"#).is_err());
    }
}
