//! The scheduled cycles fanned out over a queue (README.md, "Fan-out"): a
//! scheduled planner sends one item per unit of work (a repository to
//! reconcile, an installation's token, a ref to poll) and the queue's
//! events are the workers. This module is what the three share: items
//! spread per rate-limit budget, and a worker's batch, `in_flight` at once,
//! that names in its answer only the items no worker can do (unreadable, or
//! their work panicked), so that only they come back and, after the queue's
//! last receive, are dead-lettered. An item whose budget is rate limited
//! goes back on the queue, with the rest of that budget's, delayed until the
//! limit resets; so does one the invocation's deadline leaves unstarted.
//! What each item is, and what doing it means, is each cycle's own
//! ([`reconcile`], [`rotate`], [`poll`]).

#[cfg(feature = "poll")]
pub mod poll;
pub mod reconcile;
pub mod rotate;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::net::rate_limit_wait;
use crate::queue::{QueueError, WorkQueue};

/// A message the queue handed a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// What a worker did with its messages.
#[derive(Debug, Default)]
pub struct Worked<R> {
    /// The items' reports, added up.
    pub report: R,
    /// Items held back (rate limited, or left by the deadline): given back
    /// on the queue, or left for the next plan.
    pub left: usize,
    /// Why an item could not be done at all (unreadable, panicked, or not
    /// given back).
    pub problems: Vec<String>,
    /// The ids of the messages to be delivered again.
    pub failed: Vec<String>,
}

/// One kind of work item and how a worker does it.
#[async_trait]
pub trait Job: Sync {
    /// What the queue carries: read back as hostile as any input.
    type Item: Serialize + DeserializeOwned + Send + Sync;
    type Report: Default + Send;

    /// Whose rate limit the item spends: its installation, a host, the App.
    fn budget(&self, item: &Self::Item) -> String;

    /// Does one item: its report, and, when its budget was found spent, how
    /// long to wait (unknown: `None`).
    async fn one(&self, item: &Self::Item) -> (Self::Report, Option<Option<Duration>>);

    /// Adds one item's report to the batch's.
    fn add(total: &mut Self::Report, part: Self::Report);

    /// Counts in the batch's report the items left for later.
    fn leave(total: &mut Self::Report, items: usize);

    /// Whether an item held back by a rate limit (or the deadline) goes
    /// back on the queue; if not, it is left for the next plan.
    const GIVES_BACK: bool = true;
}

/// A plan's spread items are all due within this: before the next plan
/// (the reconciler's, every 10 minutes by default), so one item is not
/// queued twice.
const SPREAD_WITHIN: Duration = Duration::from_secs(9 * 60);

/// The delay of each item, by its budget: each budget's items go
/// `per_minute` to a minute, the first at once, none later than
/// [`SPREAD_WITHIN`] (past it, items bunch at the end).
pub fn spread(budgets: &[String], per_minute: usize) -> Vec<Duration> {
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let per_minute = u64::try_from(per_minute.max(1)).unwrap_or(u64::MAX);
    budgets
        .iter()
        .map(|budget| {
            let index = seen.entry(budget).or_default();
            let minutes = *index / per_minute;
            *index += 1;
            Duration::from_secs(minutes.saturating_mul(60)).min(SPREAD_WITHIN)
        })
        .collect()
}

/// Sends `items` onto `queue`, each after its delay (none given: at once).
pub async fn enqueue<I: Serialize>(queue: &dyn WorkQueue, items: &[I], delays: &[Duration]) -> Result<(), QueueError> {
    let delays = delays.iter().copied().chain(std::iter::repeat(Duration::ZERO));
    let messages: Vec<(String, Duration)> = items.iter().zip(delays).map(|(item, delay)| (body(item), delay)).collect();
    queue.send(&messages).await
}

fn body(item: &impl Serialize) -> String {
    // Items are names and numbers: they always serialise.
    serde_json::to_string(item).unwrap_or_default()
}

/// What became of one message.
enum Done<I, R> {
    Finished(R),
    /// Back on the queue after this long.
    GiveBack(I, Duration, R),
    Failed(String),
}

/// A message's id, and what became of it.
type Outcome<J> = (String, Done<<J as Job>::Item, <J as Job>::Report>);

/// A worker's batch: each item done, `in_flight` at once, none started
/// after `deadline` or while its budget is rate limited.
pub async fn work<J: Job>(
    job: &J,
    queue: &dyn WorkQueue,
    messages: Vec<Message>,
    in_flight: usize,
    deadline: Option<Instant>,
) -> Worked<J::Report> {
    let limited = Mutex::new(BTreeMap::new());
    let done: Vec<Outcome<J>> = futures::stream::iter(messages)
        .map(|message| {
            let limited = &limited;
            async move { (message.id.clone(), work_one(job, limited, &message, deadline).await) }
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    let mut worked = Worked::default();
    let mut back: Vec<(String, (String, Duration))> = Vec::new();
    for (id, done) in done {
        match done {
            Done::Finished(report) => J::add(&mut worked.report, report),
            Done::Failed(problem) => {
                worked.problems.push(problem);
                worked.failed.push(id);
            }
            Done::GiveBack(item, delay, report) => {
                J::add(&mut worked.report, report);
                worked.left += 1;
                back.push((id, (body(&item), delay)));
            }
        }
    }
    if J::GIVES_BACK {
        let resend: Vec<(String, Duration)> = back.iter().map(|(_, message)| message.clone()).collect();
        if let Err(e) = queue.send(&resend).await {
            // Not given back: delivered again instead, after the queue's visibility timeout.
            worked.left -= e.unsent.len();
            worked.problems.push(format!("giving items back: {e}"));
            worked.failed.extend(e.unsent.iter().filter_map(|&i| back.get(i)).map(|(id, _)| id.clone()));
        }
    }
    J::leave(&mut worked.report, worked.left);
    worked
}

type Waits = Mutex<BTreeMap<String, Option<Duration>>>;

async fn work_one<J: Job>(
    job: &J,
    limited: &Waits,
    message: &Message,
    deadline: Option<Instant>,
) -> Done<J::Item, J::Report> {
    let item: J::Item = match serde_json::from_str(&message.body) {
        Ok(item) => item,
        Err(e) => return Done::Failed(format!("message {}: not a work item: {e}", message.id)),
    };
    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
        return Done::GiveBack(item, Duration::ZERO, J::Report::default());
    }
    let budget = job.budget(&item);
    if let Some(wait) = wait(limited, &budget) {
        return Done::GiveBack(item, rate_limit_wait(wait), J::Report::default());
    }
    // An item that panics is one failed item, not the whole batch.
    let (report, spent) = match std::panic::AssertUnwindSafe(job.one(&item)).catch_unwind().await {
        Ok(done) => done,
        Err(_) => return Done::Failed(format!("message {}: its work panicked", message.id)),
    };
    let Some(wait) = spent else {
        return Done::Finished(report);
    };
    if let Ok(mut limited) = limited.lock() {
        let longest = limited.entry(budget).or_insert(wait);
        *longest = (*longest).max(wait);
    }
    Done::GiveBack(item, rate_limit_wait(wait), report)
}

fn wait(limited: &Waits, budget: &str) -> Option<Option<Duration>> {
    limited.lock().ok().and_then(|limited| limited.get(budget).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_budget_s_items_are_spread_by_the_minute_within_the_queue_s_longest_delay() {
        let budgets = ["i1", "i1", "i2", "i1", "r"].map(String::from);
        let minutes = |per_minute| spread(&budgets, per_minute).iter().map(|d| d.as_secs() / 60).collect::<Vec<_>>();
        assert_eq!(minutes(2), [0, 0, 0, 1, 0], "the third of budget i1 waits a minute; the others go");
        assert_eq!(minutes(1), [0, 1, 0, 2, 0]);
        assert_eq!(minutes(0), [0, 1, 0, 2, 0], "zero is taken as one");
        assert_eq!(minutes(100), [0, 0, 0, 0, 0]);
        let many = vec!["i1".to_owned(); 100];
        assert_eq!(spread(&many, 1).last(), Some(&SPREAD_WITHIN), "bunched before the next plan");
    }

    #[test]
    fn a_given_back_item_waits_for_the_reset_within_the_queue_s_bounds() {
        assert_eq!(rate_limit_wait(Some(Duration::from_secs(120))), Duration::from_secs(120));
        assert_eq!(rate_limit_wait(None), crate::net::UNSAID_WAIT);
        assert_eq!(rate_limit_wait(Some(Duration::ZERO)), Duration::from_secs(1));
        assert_eq!(rate_limit_wait(Some(Duration::from_secs(3600))), crate::queue::MAX_DELAY);
    }

    /// A job over numbers: `n` spends budget `n % 2`; 13 is rate limited
    /// for 30 s; 66 panics.
    struct Numbers;

    #[async_trait]
    impl Job for Numbers {
        type Item = u32;
        type Report = Vec<u32>;

        fn budget(&self, item: &u32) -> String {
            (item % 2).to_string()
        }

        async fn one(&self, item: &u32) -> (Vec<u32>, Option<Option<Duration>>) {
            assert_ne!(*item, 66, "a bug in one item's work");
            (vec![*item], (*item == 13).then_some(Some(Duration::from_secs(30))))
        }

        fn add(total: &mut Vec<u32>, part: Vec<u32>) {
            total.extend(part);
        }

        fn leave(_: &mut Vec<u32>, _: usize) {}
    }

    #[derive(Default)]
    struct Sent(Mutex<Vec<(String, Duration)>>);

    #[async_trait]
    impl WorkQueue for Sent {
        async fn send(&self, items: &[(String, Duration)]) -> Result<(), crate::queue::QueueError> {
            self.0.lock().unwrap().extend_from_slice(items);
            Ok(())
        }
    }

    fn messages(bodies: &[&str]) -> Vec<Message> {
        bodies.iter().enumerate().map(|(id, body)| Message { id: format!("m{id}"), body: (*body).to_owned() }).collect()
    }

    #[tokio::test]
    async fn a_batch_names_only_what_no_worker_can_do_and_gives_back_a_spent_budget_s_items() {
        let queue = Sent::default();
        // One at a time, in order: 13 spends budget 1 before 15 and 17 start.
        let worked = work(&Numbers, &queue, messages(&["2", "13", "15", "x", "66", "4", "17"]), 1, None).await;
        let mut done = worked.report.clone();
        done.sort_unstable();
        assert_eq!(done, [2, 4, 13], "13 was done, then its budget was spent");
        assert_eq!(worked.failed, ["m3", "m4"], "the unreadable item and the one that panicked");
        assert_eq!(worked.problems.len(), 2);
        assert_eq!(worked.left, 3);
        let back = queue.0.lock().unwrap().clone();
        let thirty = Duration::from_secs(30);
        assert_eq!(back, [("13".into(), thirty), ("15".into(), thirty), ("17".into(), thirty)]);
    }

    #[tokio::test]
    async fn past_its_deadline_a_batch_gives_everything_back_at_once() {
        let queue = Sent::default();
        let worked = work(&Numbers, &queue, messages(&["2", "3"]), 4, Some(Instant::now())).await;
        assert!(worked.report.is_empty());
        assert_eq!((worked.left, worked.failed.len()), (2, 0));
        assert_eq!(queue.0.lock().unwrap().clone(), [("2".into(), Duration::ZERO), ("3".into(), Duration::ZERO)]);
    }
}
