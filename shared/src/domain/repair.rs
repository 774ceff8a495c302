//! What the reconciler decides (README.md, "Reconciler"), without I/O: the
//! result a run's state comes to, when a failed delivery is tried again or
//! given up, which GitHub deliveries to redeliver, when a pull request that
//! listings no longer show is closed, and which releases were missed.

use std::collections::BTreeMap;
use std::time::Duration;

use super::records::{Delivery, Outcome, PullRequest, Release, RunStatus};
use super::time::Timestamp;

/// What the cluster says of a run Ferry launched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunPhase {
    /// Not there (deleted, pruned, or never created).
    Gone,
    /// Waiting or running, since `created_at`.
    Running {
        created_at: Option<Timestamp>,
    },
    Succeeded,
    /// `Succeeded=False`: Tekton's reason and message.
    Failed {
        reason: String,
        message: String,
    },
    /// Cancelled (superseded by a newer commit, or by hand).
    Cancelled {
        reason: String,
    },
}

/// The result to report for a run in `phase`, and its description; `None`
/// while there is nothing to say yet. A run still running `stuck_after`
/// past its creation is reported as an error.
pub fn run_result(phase: &RunPhase, now: Timestamp, stuck_after: Duration) -> Option<(RunStatus, String)> {
    match phase {
        RunPhase::Gone => Some((RunStatus::Error, "the run is gone from the cluster".into())),
        RunPhase::Running { created_at: Some(created) } if created.plus(stuck_after) <= now => {
            Some((RunStatus::Error, format!("no result {} minutes after it was created", stuck_after.as_secs() / 60)))
        }
        RunPhase::Running { .. } => None,
        RunPhase::Succeeded => Some((RunStatus::Success, "succeeded".into())),
        RunPhase::Failed { reason, message } => {
            let text = if message.is_empty() { reason.clone() } else { format!("{reason}: {message}") };
            Some((RunStatus::Failure, text))
        }
        RunPhase::Cancelled { reason } => Some((RunStatus::Error, format!("cancelled ({reason})"))),
    }
}

/// What the cluster says of a preview's Deployment, as Flux's health
/// checks read one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Gone,
    Available,
    Progressing,
    /// It cannot come up: the reason (an image that cannot be pulled, a
    /// container crash-looping, a missed progress deadline).
    Failed(String),
}

/// How long a preview has to become available.
pub const PREVIEW_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The deployment status to report for a preview (`true`: success), and
/// its description; `None` while it is still coming up.
pub fn preview_result(health: &Health, applied_at: Timestamp, now: Timestamp) -> Option<(bool, String)> {
    match health {
        Health::Available => Some((true, "available".into())),
        Health::Failed(reason) => Some((false, reason.clone())),
        Health::Gone => Some((false, "the preview's Deployment is gone".into())),
        Health::Progressing if applied_at.plus(PREVIEW_TIMEOUT) <= now => {
            Some((false, format!("not available {} minutes after it was applied", PREVIEW_TIMEOUT.as_secs() / 60)))
        }
        Health::Progressing => None,
    }
}

/// Tekton's `Succeeded=False` reasons that mean the run was cancelled.
pub const CANCELLED_REASONS: [&str; 5] =
    ["Cancelled", "PipelineRunCancelled", "TaskRunCancelled", "CancelledRunFinally", "StoppedRunFinally"];

/// Whether a status already reported may be replaced by `next`: only a
/// pending one (or none) moves, to a result; results never go back.
pub fn may_report(reported: Option<RunStatus>, next: RunStatus) -> bool {
    matches!(reported, None | Some(RunStatus::Pending)) && next != RunStatus::Pending
}

/// How many times a delivery is acted on in all (the webhook's try included).
pub const MAX_ATTEMPTS: u32 = 6;

/// A delivery still `received` this long after arriving lost its outcome write.
pub const STUCK_RECEIVED: Duration = Duration::from_secs(5 * 60);

/// What to do with an unfinished delivery now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Not due yet (backing off, or still being handled).
    Wait,
    Now,
    /// No attempt can succeed, or every attempt failed: mark it dead.
    GiveUp(String),
}

/// Backoff after `attempts` tries: 1, 2, 4, 8, 16 minutes… at most an hour.
pub fn backoff(attempts: u32) -> Duration {
    let minutes = 1u64 << attempts.saturating_sub(1).min(6);
    Duration::from_secs(minutes.min(60) * 60)
}

pub fn retry(delivery: &Delivery, now: Timestamp) -> Retry {
    if !delivery.is_unfinished() {
        return Retry::Wait;
    }
    if delivery.git_event.is_none() && delivery.parts == 0 {
        return Retry::GiveUp(delivery.reason.clone().unwrap_or_else(|| "the body could not be read".into()));
    }
    let stuck = delivery.received_at.plus(STUCK_RECEIVED) <= now;
    if delivery.outcome == Outcome::Received && !stuck {
        // Being handled right now.
        return Retry::Wait;
    }
    // Counted before acting: a delivery whose every attempt killed the
    // process still reaches the last one.
    if delivery.attempts >= MAX_ATTEMPTS {
        let reason = delivery.reason.clone().unwrap_or_else(|| "no reason was recorded".into());
        return Retry::GiveUp(format!("failed {} times; last: {reason}", delivery.attempts));
    }
    if delivery.outcome == Outcome::Received {
        return Retry::Now;
    }
    let last = delivery.last_attempt_at.unwrap_or(delivery.received_at);
    if last.plus(backoff(delivery.attempts)) <= now { Retry::Now } else { Retry::Wait }
}

/// One attempt GitHub made at delivering to the App's webhook, as its
/// `GET /app/hook/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookAttempt {
    pub id: u64,
    pub guid: String,
    pub delivered_at: Timestamp,
    /// A redelivery (by Ferry or by hand), not GitHub's first attempt.
    pub redelivery: bool,
    pub status_code: u16,
}

/// How long GitHub keeps deliveries for redelivery.
pub const GITHUB_KEEPS_DELIVERIES: Duration = Duration::from_secs(3 * 24 * 3600);

/// The attempts to redeliver: GitHub's first attempt at each delivery none
/// of whose attempts succeeded, that Ferry's ledger does not hold (`known`),
/// and that GitHub still keeps. A redelivery is never itself redelivered,
/// so each delivery is tried again once.
pub fn to_redeliver(attempts: &[HookAttempt], known: impl Fn(&str) -> bool, now: Timestamp) -> Vec<u64> {
    let mut by_guid: BTreeMap<&str, Vec<&HookAttempt>> = BTreeMap::new();
    for attempt in attempts {
        by_guid.entry(attempt.guid.as_str()).or_default().push(attempt);
    }
    let oldest_kept = now.minus(GITHUB_KEEPS_DELIVERIES);
    let mut chosen: Vec<u64> = by_guid
        .into_iter()
        .filter(|(_, tries)| !tries.iter().any(|t| (200..300).contains(&t.status_code)))
        .filter(|(_, tries)| !tries.iter().any(|t| t.redelivery))
        .filter(|(guid, _)| !known(guid))
        .filter_map(|(_, tries)| tries.iter().find(|t| !t.redelivery).copied())
        .filter(|first| first.delivered_at > oldest_kept)
        .map(|first| first.id)
        .collect();
    chosen.sort_unstable();
    chosen
}

/// What one successful listing of open pull requests means for a pull
/// request Ferry holds as open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Listed open: nothing to do (a count of unseen listings resets).
    Seen,
    /// Not listed, for the `n`th listing in a row: wait for another.
    Unseen(u32),
    /// Two listings in a row agree it is gone: close it (remove previews).
    Close,
}

/// Successful listings in a row that must miss a pull request before it is
/// closed: one listing can race an opening.
pub const LISTINGS_TO_CLOSE: u32 = 2;

pub fn listing(known: &PullRequest, listed_open: bool) -> Listing {
    if listed_open {
        return Listing::Seen;
    }
    let unseen = known.unseen_listings.saturating_add(1);
    if unseen >= LISTINGS_TO_CLOSE { Listing::Close } else { Listing::Unseen(unseen) }
}

/// Whether a release published at `published_at` was missed: Ferry did not
/// record it, and it came after Ferry began tracking the repository (older
/// ones are history, not missed events).
pub fn missed_release(recorded: bool, draft: bool, published_at: Option<Timestamp>, tracked_since: Timestamp) -> bool {
    !recorded && !draft && published_at.is_some_and(|at| at >= tracked_since)
}

/// How many preview removals the plan made at `plan` has taken, from the
/// shared count (`<plan>:<count>`, the newest plan's): none yet when it
/// counts an older plan or nothing; `None` when it counts a newer plan
/// (this one's workers are late: they remove nothing more).
pub fn removals_taken(stored: Option<&str>, plan: u64) -> Option<usize> {
    let counted =
        stored.and_then(|s| s.split_once(':')).and_then(|(p, n)| Some((p.parse::<u64>().ok()?, n.parse().ok()?)));
    match counted {
        Some((counting, taken)) if counting == plan => Some(taken),
        Some((counting, _)) if counting > plan => None,
        _ => Some(0),
    }
}

/// The releases beyond a repository's newest `keep` (by when Ferry recorded
/// them): what the store forgets.
pub fn releases_to_forget(recorded: &[Release], keep: usize) -> Vec<&Release> {
    let mut newest_first: Vec<&Release> = recorded.iter().collect();
    newest_first.sort_by(|a, b| b.recorded_at.cmp(&a.recorded_at).then_with(|| a.tag.cmp(&b.tag)));
    newest_first.split_off(keep.min(newest_first.len()))
}

/// Since when a release Ferry did not record counts as missed: since
/// tracking began, and, once the repository keeps `keep` releases (older
/// ones forgotten), only after the oldest it keeps was recorded, so a
/// forgotten release is never taken for a missed one.
pub fn releases_since(tracked_since: Timestamp, recorded: &[Release], keep: usize) -> Timestamp {
    let oldest_kept = recorded.iter().map(|r| r.recorded_at).min();
    match oldest_kept {
        Some(oldest) if recorded.len() >= keep => tracked_since.max(oldest.plus(Duration::from_secs(1))),
        _ => tracked_since,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{Detail, GitEvent};
    use crate::domain::{DeliveryId, PrNumber, PrState, RepoName, Sha};

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix(1_790_000_000 + seconds)
    }

    #[test]
    fn each_phase_comes_to_its_result() {
        let now = at(10_000);
        let table = [
            (RunPhase::Gone, Some(RunStatus::Error)),
            (RunPhase::Running { created_at: Some(at(9_000)) }, None),
            (RunPhase::Running { created_at: None }, None),
            (RunPhase::Running { created_at: Some(at(10_000 - 3600)) }, Some(RunStatus::Error)),
            (RunPhase::Succeeded, Some(RunStatus::Success)),
            (
                RunPhase::Failed { reason: "Failed".into(), message: "step build exited 1".into() },
                Some(RunStatus::Failure),
            ),
            (
                RunPhase::Failed { reason: "PipelineRunTimeout".into(), message: String::new() },
                Some(RunStatus::Failure),
            ),
            (RunPhase::Cancelled { reason: "Cancelled".into() }, Some(RunStatus::Error)),
        ];
        for (phase, expected) in table {
            assert_eq!(run_result(&phase, now, HOUR).map(|(s, _)| s), expected, "{phase:?}");
        }
        let (_, text) =
            run_result(&RunPhase::Failed { reason: "Failed".into(), message: "exit 1".into() }, now, HOUR).unwrap();
        assert_eq!(text, "Failed: exit 1");
        let (_, stuck) = run_result(&RunPhase::Running { created_at: Some(at(0)) }, now, HOUR).unwrap();
        assert_eq!(stuck, "no result 60 minutes after it was created");
    }

    #[test]
    fn a_preview_is_reported_once_it_is_up_or_cannot_come_up() {
        let applied = at(0);
        assert_eq!(preview_result(&Health::Available, applied, at(5)), Some((true, "available".into())));
        assert_eq!(preview_result(&Health::Progressing, applied, at(599)), None);
        assert!(
            matches!(preview_result(&Health::Progressing, applied, at(600)), Some((false, r)) if r.contains("10 minutes"))
        );
        assert_eq!(
            preview_result(&Health::Failed("ImagePullBackOff: not found".into()), applied, at(5)),
            Some((false, "ImagePullBackOff: not found".into()))
        );
        assert!(matches!(preview_result(&Health::Gone, applied, at(5)), Some((false, _))));
    }

    #[test]
    fn statuses_never_go_backwards() {
        use RunStatus::*;
        for reported in [None, Some(Pending)] {
            for next in [Success, Failure, Error] {
                assert!(may_report(reported, next));
            }
            assert!(!may_report(reported, Pending));
        }
        for reported in [Success, Failure, Error] {
            for next in [Pending, Success, Failure, Error] {
                assert!(!may_report(Some(reported), next), "{reported:?} then {next:?}");
            }
        }
    }

    fn delivery(outcome: Outcome, attempts: u32, last: Option<Timestamp>) -> Delivery {
        Delivery {
            id: DeliveryId::parse("d-1").unwrap(),
            event: "ping".into(),
            received_at: at(0),
            outcome,
            attempts,
            reason: Some("the cluster could not be reached".into()),
            git_event: Some(Box::new(GitEvent::new("ping", None, Detail::Ping))),
            last_attempt_at: last,
            ..Delivery::received(DeliveryId::parse("d-1").unwrap(), "ping", at(0))
        }
    }

    #[test]
    fn failed_deliveries_back_off_then_are_given_up() {
        assert_eq!(retry(&delivery(Outcome::Failed, 1, None), at(59)), Retry::Wait);
        assert_eq!(retry(&delivery(Outcome::Failed, 1, None), at(60)), Retry::Now);
        assert_eq!(retry(&delivery(Outcome::Deferred, 1, None), at(60)), Retry::Now);
        assert_eq!(retry(&delivery(Outcome::Failed, 3, Some(at(1000))), at(1000 + 239)), Retry::Wait);
        assert_eq!(retry(&delivery(Outcome::Failed, 3, Some(at(1000))), at(1000 + 240)), Retry::Now);
        assert!(
            matches!(retry(&delivery(Outcome::Failed, MAX_ATTEMPTS, None), at(99_999)), Retry::GiveUp(r) if r.contains("failed 6 times"))
        );
        assert_eq!(backoff(1), Duration::from_secs(60));
        assert_eq!(backoff(30), HOUR, "capped");
    }

    #[test]
    fn a_received_delivery_is_left_alone_unless_it_is_stuck() {
        assert_eq!(retry(&delivery(Outcome::Received, 1, None), at(60)), Retry::Wait);
        assert_eq!(retry(&delivery(Outcome::Received, 1, None), at(300)), Retry::Now);
        // A delivery that never got past `received` counts its attempts too.
        assert!(matches!(
            retry(&delivery(Outcome::Received, MAX_ATTEMPTS, Some(at(10))), at(300)),
            Retry::GiveUp(r) if r.contains("failed 6 times")
        ));
        assert_eq!(retry(&delivery(Outcome::Received, MAX_ATTEMPTS, None), at(60)), Retry::Wait, "still in hand");
    }

    #[test]
    fn finished_deliveries_are_never_retried_and_unreadable_ones_are_given_up() {
        for outcome in [Outcome::Processed, Outcome::Ignored, Outcome::Duplicate, Outcome::Dead] {
            assert_eq!(retry(&delivery(outcome, 1, None), at(99_999)), Retry::Wait, "{outcome:?}");
        }
        let unreadable = Delivery { git_event: None, ..delivery(Outcome::Failed, 1, None) };
        assert!(matches!(retry(&unreadable, at(99_999)), Retry::GiveUp(_)));
    }

    fn attempt(id: u64, guid: &str, redelivery: bool, status_code: u16, seconds: i64) -> HookAttempt {
        HookAttempt { id, guid: guid.into(), delivered_at: at(seconds), redelivery, status_code }
    }

    #[test]
    fn only_failed_unknown_kept_first_attempts_are_redelivered_once() {
        let now = at(100_000);
        let attempts = [
            attempt(1, "ok", false, 200, 99_000),
            attempt(2, "failed", false, 502, 99_000),
            attempt(3, "failed-then-ok", false, 500, 99_000),
            attempt(4, "failed-then-ok", true, 202, 99_100),
            attempt(5, "already-redelivered", false, 500, 99_000),
            attempt(6, "already-redelivered", true, 500, 99_100),
            attempt(7, "in-the-ledger", false, 503, 99_000),
            attempt(8, "too-old", false, 500, 100_000 - 4 * 24 * 3600),
            attempt(9, "timeout", false, 0, 99_500),
        ];
        let known = |guid: &str| guid == "in-the-ledger";
        assert_eq!(to_redeliver(&attempts, known, now), [2, 9]);
    }

    fn open_pr(unseen: u32) -> PullRequest {
        PullRequest {
            repo: RepoName::parse("acme/api").unwrap(),
            number: PrNumber::new(1),
            head_sha: Sha::parse("a".repeat(40)).unwrap(),
            state: PrState::Open,
            approved_sha: None,
            approved_by: None,
            preview_namespace: Some("preview-x".into()),
            head_ref: None,
            draft: false,
            labels: vec![],
            author_association: None,
            author: None,
            updated_at: None,
            head_at: None,
            unseen_listings: unseen,
            from_fork: false,
            head_pushed_by: None,
            untrusted_push: false,
            retain_until: None,
        }
    }

    #[test]
    fn a_pull_request_is_closed_only_when_two_listings_in_a_row_miss_it() {
        assert_eq!(listing(&open_pr(0), true), Listing::Seen);
        assert_eq!(listing(&open_pr(1), true), Listing::Seen);
        assert_eq!(listing(&open_pr(0), false), Listing::Unseen(1));
        assert_eq!(listing(&open_pr(1), false), Listing::Close);
    }

    #[test]
    fn only_releases_after_tracking_began_are_missed() {
        let since = at(1000);
        assert!(missed_release(false, false, Some(at(1000)), since));
        assert!(!missed_release(true, false, Some(at(2000)), since), "recorded");
        assert!(!missed_release(false, true, Some(at(2000)), since), "a draft");
        assert!(!missed_release(false, false, Some(at(999)), since), "history");
        assert!(!missed_release(false, false, None, since), "unpublished");
    }

    fn release(tag: &str, recorded: i64) -> Release {
        Release {
            repo: RepoName::parse("acme/api").unwrap(),
            tag: crate::domain::Tag::parse(tag).unwrap(),
            prerelease: false,
            recorded_at: at(recorded),
        }
    }

    #[test]
    fn the_newest_releases_are_kept_and_the_rest_forgotten() {
        let recorded = [release("v1", 10), release("v3", 30), release("v2", 20), release("v2b", 20)];
        let tags = |keep| releases_to_forget(&recorded, keep).iter().map(|r| r.tag.to_string()).collect::<Vec<_>>();
        assert_eq!(tags(4), Vec::<String>::new());
        assert_eq!(tags(9), Vec::<String>::new());
        assert_eq!(tags(2), ["v2b", "v1"], "ties broken by tag, newest first");
        assert_eq!(tags(0), ["v3", "v2", "v2b", "v1"]);
    }

    #[test]
    fn a_plan_counts_its_own_removals_and_a_late_one_takes_none() {
        assert_eq!(removals_taken(None, 100), Some(0));
        assert_eq!(removals_taken(Some("100:3"), 100), Some(3));
        assert_eq!(removals_taken(Some("90:9"), 100), Some(0), "an older plan's count");
        assert_eq!(removals_taken(Some("110:1"), 100), None, "a newer plan counts now");
        assert_eq!(removals_taken(Some("garbage"), 100), Some(0));
    }

    #[test]
    fn a_forgotten_release_is_never_missed() {
        let recorded = [release("v2", 20), release("v3", 30)];
        // Not full: everything since tracking began.
        assert_eq!(releases_since(at(5), &recorded, 3), at(5));
        // Full: only after the oldest kept, and never before tracking began.
        assert_eq!(releases_since(at(5), &recorded, 2), at(21));
        assert_eq!(releases_since(at(50), &recorded, 2), at(50));
        assert_eq!(releases_since(at(5), &[], 0), at(5));
        // A release forgotten (v1, recorded at 10, published before) is history.
        assert!(!missed_release(false, false, Some(at(10)), releases_since(at(5), &recorded, 2)));
        assert!(missed_release(false, false, Some(at(25)), releases_since(at(5), &recorded, 2)));
    }
}
