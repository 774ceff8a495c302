//! The reconciler (README.md, "Reconciler"): GitHub never
//! retries a webhook, so every cycle repairs what a lost or failed delivery
//! left wrong. Each repair is idempotent (a second cycle right after
//! changes nothing), skips a repository whose host or cluster fails (and
//! tries it again next cycle), and deletes nothing on an error.
//!
//! In order: unfinished deliveries are acted on again (then given up);
//! deliveries GitHub could not make are redelivered; then, for every
//! tracked repository, run results become commit statuses, missed releases
//! and pull requests are launched, and previews of pull requests two
//! listings in a row no longer show open are removed.
//!
//! Each repository is one work item ([`repair_all`], [`repair_one`]): one
//! process repairs `[reconciler] in_flight` of them at once, or a queue
//! fans them out to workers (`crate::usecase::fanout`). A rate-limited
//! installation's remaining items wait for its reset instead of retrying hot.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::time::Instant;

use super::intake::{self, act};
use super::launch::{LaunchError, LaunchPorts, launch, status_context, target, target_of};
use crate::cluster::logs;
use crate::domain::event::{Detail, GitEvent, PullRequestDetail};
use crate::domain::repair::{self, Listing, Retry, RunPhase};
use crate::domain::route::{Trigger, route};
use crate::domain::tokens::Credential;
use crate::domain::{
    Cursor, Delivery, DeliveryId, InstallationId, ListingTags, Outcome, PrState, Preview, PullRequest, Release,
    RepoMode, RepoName, Repository, Run, RunStatus, Sha, Timestamp,
};
use crate::forge::{AppHooks, CheckRun, CommitStatus, DeploymentStatus, ForgeError, Listed, StatusState, Target};
use crate::store::{Collection, Key, StateStore, StoreError, Version, Versioned};

/// How long acting on one retried delivery may take.
const ACT_LIMIT: Duration = Duration::from_secs(60);

/// At most this many attempts are read from GitHub's webhook log per cycle.
const DELIVERIES_READ: usize = 1000;

/// The cursor record holding the newest webhook-log attempt already read.
const DELIVERY_CURSOR: &str = "deliveries";

/// The ports the reconciler needs: launching's (its clock among them) and
/// the App's webhook log.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub launch: LaunchPorts<'a>,
    pub app_hooks: &'a dyn AppHooks,
}

impl<'a> Ports<'a> {
    pub fn of(context: &'a crate::Context) -> Self {
        Self { launch: LaunchPorts::of(context), app_hooks: context.app_hooks.as_ref() }
    }

    /// What intake needs to act on a stored event (it verifies nothing here:
    /// the event was verified when it arrived).
    fn intake(&self) -> intake::Ports<'a> {
        intake::Ports { secrets: &[], launch: self.launch }
    }
}

/// What one cycle repaired: counts of each repair, and what failed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Run results reported as commit statuses.
    pub statuses: usize,
    /// Previews reported up (`success` with the URL) or failing (`failure` with why).
    pub previews_reported: usize,
    /// Unfinished deliveries acted on again, and how many of them succeeded.
    pub retried: usize,
    pub recovered: usize,
    /// Deliveries given up after every attempt (reported as an error status).
    pub dead: usize,
    /// Deliveries GitHub could not make, asked for again.
    pub redelivered: usize,
    /// Releases recorded and launched that no webhook announced.
    pub missed_releases: usize,
    /// Open pull requests launched that no webhook announced (or a newer head).
    pub missed_pull_requests: usize,
    /// Previews removed of pull requests GitHub no longer lists open.
    pub previews_removed: usize,
    /// Repositories repaired.
    pub repositories: usize,
    /// Repositories queued for the queue's workers (a planner's cycle).
    pub queued: usize,
    /// Listings GitHub answered unchanged (304: no rate limit spent).
    pub unchanged_listings: usize,
    /// Repositories not started: the deadline came first, or their
    /// installation is rate limited. The next cycle has them.
    pub left: usize,
    /// What could not be done this cycle, to be tried again next cycle.
    pub failed: Vec<String>,
    /// The rate-limit budgets ([`budget`]) GitHub found spent, and for how
    /// long (unknown: `None`): their items wait instead of retrying hot.
    #[serde(skip)]
    pub rate_limited: BTreeMap<String, Option<Duration>>,
}

impl Report {
    /// The one line each cycle ends with.
    pub fn summary(&self) -> String {
        format!(
            "reconciled: {} repositories ({} queued, {} unchanged listings, {} left), {} statuses, {} previews reported, \
             {} retried ({} recovered), {} dead, {} redelivered, {} missed releases, \
             {} missed pull requests, {} previews removed, {} failures",
            self.repositories,
            self.queued,
            self.unchanged_listings,
            self.left,
            self.statuses,
            self.previews_reported,
            self.retried,
            self.recovered,
            self.dead,
            self.redelivered,
            self.missed_releases,
            self.missed_pull_requests,
            self.previews_removed,
            self.failed.len()
        )
    }

    /// Adds another part of the cycle's report to this one.
    pub fn add(&mut self, other: Report) {
        self.statuses += other.statuses;
        self.previews_reported += other.previews_reported;
        self.retried += other.retried;
        self.recovered += other.recovered;
        self.dead += other.dead;
        self.redelivered += other.redelivered;
        self.missed_releases += other.missed_releases;
        self.missed_pull_requests += other.missed_pull_requests;
        self.previews_removed += other.previews_removed;
        self.repositories += other.repositories;
        self.queued += other.queued;
        self.unchanged_listings += other.unchanged_listings;
        self.left += other.left;
        self.failed.extend(other.failed);
        for (budget, wait) in other.rate_limited {
            note_wait(&mut self.rate_limited, budget, wait);
        }
    }

    /// Notes a failure of `repo`'s repair. A rate limit is no failure: it
    /// holds back the rest of its budget's items until it resets.
    fn failure(&mut self, repository: &Repository, what: &str, error: &LaunchError) {
        if let LaunchError::Forge(ForgeError::RateLimited { retry_after }) = error {
            note_wait(&mut self.rate_limited, budget(&repository.name, repository.installation), *retry_after);
            return;
        }
        self.failed.push(format!("{}: {what}: {error}", repository.name));
    }
}

/// Notes that `budget` must wait `wait` (unknown: `None`), keeping the longest wait.
fn note_wait(waits: &mut BTreeMap<String, Option<Duration>>, budget: String, wait: Option<Duration>) {
    let longest = waits.entry(budget).or_insert(wait);
    *longest = (*longest).max(wait);
}

/// Whose rate limit a repository's calls spend: its installation's, or
/// (a repository with a token of its own, or on another host) its own.
pub fn budget(repo: &RepoName, installation: Option<InstallationId>) -> String {
    match installation {
        Some(id) => format!("installation {id}"),
        None => format!("repository {repo}"),
    }
}

/// What the repairs of one cycle share: the cap on preview removals, and
/// the installations found rate limited.
#[derive(Debug)]
pub struct Shared {
    removals_left: AtomicUsize,
    /// Fanned out, the plan the items come from: its workers share the cap
    /// through the store.
    plan: Option<u64>,
    max_removals: usize,
    rate_limited: Mutex<BTreeMap<String, Option<Duration>>>,
}

/// The cursor counting a plan's preview removals across its workers.
const REMOVALS_CURSOR: &str = "preview-removals";

impl Shared {
    pub fn new(ports: Ports<'_>) -> Self {
        let max_removals = ports.launch.operator.reconciler.max_preview_removals;
        Self { removals_left: AtomicUsize::new(max_removals), plan: None, max_removals, rate_limited: Mutex::default() }
    }

    /// For the workers of the plan made at `plan` (Unix seconds).
    pub fn of_plan(ports: Ports<'_>, plan: u64) -> Self {
        Self { plan: Some(plan), ..Self::new(ports) }
    }

    /// Takes one preview removal, if any is left this cycle (or, fanned
    /// out, this plan); in doubt, none.
    async fn take_removal(&self, state: &dyn StateStore) -> bool {
        let Some(plan) = self.plan else {
            return self
                .removals_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
                .is_ok();
        };
        for _ in 0..5 {
            let found = match state.load::<Cursor>(&Key::Cursor(REMOVALS_CURSOR.into())).await {
                Ok(found) => found,
                Err(_) => return false,
            };
            let Some(taken) = repair::removals_taken(found.as_ref().map(|f| f.record.position.as_str()), plan) else {
                return false;
            };
            if taken >= self.max_removals {
                return false;
            }
            let counted =
                Cursor { name: REMOVALS_CURSOR.into(), position: format!("{plan}:{}", taken + 1), etag: None };
            let written = match found {
                Some(found) => state.update(&counted.into(), found.version).await.map(drop),
                None => state.create(&counted.into()).await.map(drop),
            };
            match written {
                Ok(()) => return true,
                Err(
                    StoreError::StaleVersion { .. } | StoreError::AlreadyExists { .. } | StoreError::NotFound { .. },
                ) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Whether `budget` was found spent this cycle, and for how long.
    pub fn limited(&self, budget: &str) -> Option<Option<Duration>> {
        self.rate_limited.lock().ok().and_then(|limited| limited.get(budget).copied())
    }

    /// Remembers the rate limits `report` met.
    pub fn limit(&self, report: &Report) {
        if let Ok(mut limited) = self.rate_limited.lock() {
            for (budget, wait) in &report.rate_limited {
                note_wait(&mut limited, budget.clone(), *wait);
            }
        }
    }
}

/// One reconciliation cycle in one process: the deliveries, then every
/// tracked repository, none started after `deadline`.
#[tracing::instrument(skip_all)]
pub async fn reconcile(ports: Ports<'_>, deadline: Option<Instant>) -> Report {
    let mut report = deliveries(ports).await;
    match ports.launch.state.list::<Repository>(&Collection::Repositories).await {
        Ok(repositories) => report.add(repair_all(ports, &Shared::new(ports), repositories, deadline).await),
        Err(e) => report.failed.push(format!("listing the tracked repositories: {e}")),
    }
    tracing::info!(
        repositories = report.repositories,
        left = report.left,
        statuses = report.statuses,
        retried = report.retried,
        dead = report.dead,
        redelivered = report.redelivered,
        failures = report.failed.len(),
        "{}",
        report.summary()
    );
    report
}

/// The part of a cycle that is not per repository: unfinished deliveries
/// acted on again, and those GitHub could not make asked for again.
pub async fn deliveries(ports: Ports<'_>) -> Report {
    let mut report = Report::default();
    retry_deliveries(ports, &mut report).await;
    redeliver(ports, &mut report).await;
    report
}

/// Repairs `repositories`, `[reconciler] in_flight` at once. None is
/// started after `deadline`, nor while its installation is rate limited:
/// those are counted `left`.
pub async fn repair_all(
    ports: Ports<'_>,
    shared: &Shared,
    repositories: Vec<Versioned<Repository>>,
    deadline: Option<Instant>,
) -> Report {
    let in_flight = ports.launch.operator.reconciler.in_flight.max(1);
    let reports: Vec<Report> = futures::stream::iter(repositories)
        .map(|found| async move {
            let repository = &found.record;
            if deadline.is_some_and(|deadline| Instant::now() >= deadline)
                || shared.limited(&budget(&repository.name, repository.installation)).is_some()
            {
                return Report { left: 1, ..Report::default() };
            }
            let report = repair_repository(ports, shared, &found).await;
            shared.limit(&report);
            report
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let mut total = Report::default();
    for report in reports {
        total.add(report);
    }
    total
}

/// One work item: the repository `repo`, as a queue's worker repairs it
/// (one untracked since it was queued needs nothing).
pub async fn repair_one(ports: Ports<'_>, shared: &Shared, repo: &RepoName) -> Report {
    match ports.launch.state.load::<Repository>(&Key::Repository(repo.clone())).await {
        Ok(Some(found)) => repair_repository(ports, shared, &found).await,
        Ok(None) => Report::default(),
        Err(e) => Report { failed: vec![format!("{repo}: reading its record: {e}")], ..Report::default() },
    }
}

/// Unfinished deliveries: acted on again when due, given up after the last attempt.
async fn retry_deliveries(ports: Ports<'_>, report: &mut Report) {
    let unfinished = match ports.launch.state.list::<Delivery>(&Collection::UnfinishedDeliveries).await {
        Ok(found) => found,
        Err(e) => return report.failed.push(format!("listing unfinished deliveries: {e}")),
    };
    for found in unfinished {
        match repair::retry(&found.record, ports.launch.clock.now()) {
            Retry::Wait => {}
            Retry::Now => retry_delivery(ports, found, report).await,
            Retry::GiveUp(reason) => give_up(ports, found, reason, report).await,
        }
    }
}

async fn retry_delivery(ports: Ports<'_>, found: Versioned<Delivery>, report: &mut Report) {
    let now = ports.launch.clock.now();
    // Claim the attempt first, recorded as failed until it finishes: a
    // concurrent cycle loses the race and skips it, and an attempt that
    // kills the process still counts towards giving up.
    let mut delivery = found.record;
    delivery.attempts = delivery.attempts.saturating_add(1);
    delivery.last_attempt_at = Some(now);
    delivery.outcome = Outcome::Failed;
    delivery.reason = Some(format!("attempt {} stopped before it finished", delivery.attempts));
    let Ok(version) = ports.launch.state.update(&delivery.clone().into(), found.version).await else { return };
    let joined = if delivery.git_event.is_none() {
        intake::joined(ports.launch.state, &delivery).await.ok().flatten().map(Box::new)
    } else {
        None
    };
    let Some(event) = delivery.git_event.as_deref().or(joined.as_deref()) else { return };
    report.retried += 1;
    // A delivery that panics is one failed attempt, not the end of the cycle.
    let acting = std::panic::AssertUnwindSafe(act(ports.intake(), event, route(event))).catch_unwind();
    match tokio::time::timeout(ACT_LIMIT, acting).await {
        Ok(Ok(Ok(acted))) => {
            delivery.outcome = Outcome::Processed;
            delivery.reason = acted.reason;
            delivery.acted(acted.actions, acted.decisions);
            report.recovered += 1;
        }
        Ok(Ok(Err(problem))) => delivery.reason = Some(problem),
        Ok(Err(_)) => delivery.reason = Some("acting on it panicked".into()),
        Err(_) => {
            delivery.outcome = Outcome::Deferred;
            delivery.reason = Some(format!("not done within {ACT_LIMIT:?}"));
        }
    }
    tracing::info!(delivery = %delivery.id, outcome = %delivery.outcome, attempts = delivery.attempts, "retried a delivery");
    delivery.settle();
    if let Err(e) = ports.launch.state.update(&delivery.into(), version).await {
        report.failed.push(format!("recording a retried delivery's outcome: {e}"));
    }
}

/// Marks a delivery dead and says so on its commit, when it has one.
async fn give_up(ports: Ports<'_>, found: Versioned<Delivery>, reason: String, report: &mut Report) {
    let mut delivery = found.record;
    delivery.outcome = Outcome::Dead;
    delivery.reason = Some(reason.clone());
    delivery.cut_reason();
    if ports.launch.state.update(&delivery.clone().into(), found.version).await.is_err() {
        return;
    }
    report.dead += 1;
    tracing::error!(delivery = %delivery.id, event = %delivery.event, %reason, "gave up on a delivery");
    let Some(event) = delivery.git_event.as_deref() else { return };
    let (Some(repo), Some(sha)) = (&event.repo, commit_of(event)) else { return };
    let Ok(Some(target)) = target(ports.launch.state, event, repo).await else { return };
    let mut description = format!("Ferry gave up on the {} delivery {}: {reason}", delivery.event, delivery.id);
    description.truncate(description.floor_char_boundary(140));
    let status =
        CommitStatus::new(status_context(ports.launch.cluster_name, "delivery"), StatusState::Error, description);
    if let Err(e) = ports.launch.forge.status(&target, &sha, &status).await {
        report.failed.push(format!("{repo}: reporting a dead delivery: {e}"));
    }
}

/// The commit an event is about, if any.
fn commit_of(event: &GitEvent) -> Option<Sha> {
    match &event.detail {
        Detail::Push(push) if !push.deleted => Some(push.after.clone()),
        Detail::PullRequest(pr) => Some(pr.head_sha.clone()),
        Detail::Rerequested { head_sha, .. } => Some(head_sha.clone()),
        _ => None,
    }
}

/// Deliveries GitHub could not make to Ferry (and that Ferry's ledger does
/// not hold) are asked for again, once each.
async fn redeliver(ports: Ports<'_>, report: &mut Report) {
    if !ports.app_hooks.configured() {
        return;
    }
    let cursor = match ports.launch.state.load::<Cursor>(&Key::Cursor(DELIVERY_CURSOR.into())).await {
        Ok(found) => found,
        Err(e) => return report.failed.push(format!("reading the delivery cursor: {e}")),
    };
    let after = cursor.as_ref().and_then(|c| c.record.position.parse::<u64>().ok());
    let etag = cursor.as_ref().and_then(|c| c.record.etag.as_deref());
    let (attempts, etag) = match ports.app_hooks.deliveries(after, DELIVERIES_READ, etag).await {
        Ok(Listed::Changed { items, etag }) => (items, etag),
        // Nothing new past the cursor.
        Ok(Listed::Unchanged | Listed::Incomplete) => return,
        Err(e) => return report.failed.push(format!("reading the App's webhook deliveries: {e}")),
    };
    let mut known = BTreeSet::new();
    for guid in attempts.iter().map(|a| a.guid.as_str()).collect::<BTreeSet<_>>() {
        let Ok(id) = DeliveryId::parse(guid) else { continue };
        match ports.launch.state.get(&Key::Delivery(id)).await {
            Ok(Some(_)) => {
                known.insert(guid.to_owned());
            }
            Ok(None) => {}
            // Unsure whether Ferry has it: redelivering is safe (deduplicated).
            Err(e) => tracing::warn!(error = %e, guid, "cannot read the delivery ledger"),
        }
    }
    let mut all_sent = true;
    for id in repair::to_redeliver(&attempts, |guid| known.contains(guid), ports.launch.clock.now()) {
        match ports.app_hooks.redeliver(id).await {
            Ok(()) => report.redelivered += 1,
            Err(e) => {
                all_sent = false;
                report.failed.push(format!("redelivering attempt {id}: {e}"));
            }
        }
    }
    // The cursor (and the log's ETag) moves only once everything it passes was dealt with.
    let newest = attempts.iter().map(|a| a.id).max().map(|id| id.to_string());
    let Some(position) = newest.or(cursor.map(|c| c.record.position)) else { return };
    if all_sent {
        let record = Cursor { name: DELIVERY_CURSOR.into(), position, etag };
        if let Err(e) = ports.launch.state.save(record.clone(), |_| record.clone()).await {
            report.failed.push(format!("saving the delivery cursor: {e}"));
        }
    }
}

/// Every repair of one repository; a failing step skips the rest of that
/// step for this repository only.
async fn repair_repository(ports: Ports<'_>, shared: &Shared, found: &Versioned<Repository>) -> Report {
    let mut report = Report::default();
    let repository = &found.record;
    let repo = &repository.name;
    if repository.mode == RepoMode::Host && ports.launch.operator.hosted(repo).is_none() {
        // Its [[poll]] entry is gone: its host, token and API with it.
        tracing::info!(%repo, "no [[poll]] entry names this repository any more: not repaired");
        return report;
    }
    let target = match repository.installation {
        Some(id) => Target { repo: repo.clone(), credential: Credential::Installation(id) },
        None => match target_of(repository) {
            Some(target) => target,
            None => return report,
        },
    };
    report.repositories = 1;
    let (tags, tags_version) = match ports.launch.state.load::<ListingTags>(&Key::ListingTags(repo.clone())).await {
        Ok(Some(found)) => (found.record, Some(found.version)),
        Ok(None) => (ListingTags::new(repo.clone()), None),
        Err(e) => {
            report.failure(repository, "reading its listings' ETags", &e.into());
            return report;
        }
    };
    let listed =
        tags.listed || list_again(ports, repo).await.inspect_err(|e| report.failure(repository, "listing", e)).is_ok();
    if let Err(e) = report_runs(ports, &target, &mut report).await {
        report.failure(repository, "runs", &e);
    }
    if let Err(e) = report_previews(ports, &target, &mut report).await {
        report.failure(repository, "previews", &e);
    }
    let releases = missed_releases(ports, &target, found, tags.releases.as_deref(), &mut report).await;
    let releases = releases.unwrap_or_else(|e| {
        report.failure(repository, "releases", &e);
        tags.releases.clone()
    });
    let pulls = pull_requests(ports, shared, &target, &tags, &mut report).await;
    let (pull_requests, open) = pulls.unwrap_or_else(|e| {
        report.failure(repository, "pull requests", &e);
        (tags.pull_requests.clone(), tags.open.clone())
    });
    let newer = ListingTags { repo: repo.clone(), pull_requests, open, releases, listed };
    if newer != tags
        && let Err(e) = save_tags(ports, newer, tags_version).await
    {
        report.failure(repository, "saving its listings' ETags", &e.into());
    }
    report
}

/// Writes again the repository's pending runs and open pull requests that
/// were written before Ferry listed them (the write adds their listing).
/// Once per repository: [`ListingTags::listed`] says it was done.
async fn list_again(ports: Ports<'_>, repo: &RepoName) -> Result<(), LaunchError> {
    let state = ports.launch.state;
    let runs = state.list::<Run>(&Collection::Runs(repo.clone())).await?;
    let pulls = state.list::<PullRequest>(&Collection::PullRequests(repo.clone())).await?;
    let runs = runs.into_iter().filter(|f| f.record.status == RunStatus::Pending).map(|f| (f.record.into(), f.version));
    let pulls = pulls.into_iter().filter(|f| f.record.state == PrState::Open).map(|f| (f.record.into(), f.version));
    for (record, version) in runs.chain(pulls).collect::<Vec<(crate::store::Record, _)>>() {
        match state.update(&record, version).await {
            // Written meanwhile, and so listed.
            Ok(_) | Err(StoreError::StaleVersion { .. } | StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Saves a repository's listings' ETags over the `version` read, unless it
/// was untracked meanwhile. Lost to another worker's write, this one's
/// are not needed: the next cycle asks with whichever was kept.
async fn save_tags(ports: Ports<'_>, tags: ListingTags, version: Option<Version>) -> Result<(), StoreError> {
    let state = ports.launch.state;
    if state.load::<Repository>(&Key::Repository(tags.repo.clone())).await?.is_none() {
        return Ok(());
    }
    let written = match version {
        Some(version) => state.update(&tags.into(), version).await.map(drop),
        None => state.create(&tags.into()).await.map(drop),
    };
    match written {
        Err(StoreError::StaleVersion { .. } | StoreError::AlreadyExists { .. } | StoreError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

/// Each run still pending becomes its result's commit status, once; slots
/// the results freed go to runs waiting for one.
async fn report_runs(ports: Ports<'_>, target: &Target, report: &mut Report) -> Result<(), LaunchError> {
    let mut waiting = false;
    for found in ports.launch.state.list::<Run>(&Collection::PendingRuns(target.repo.clone())).await? {
        let run = found.record;
        // A run waiting for a slot has not started: it cannot be late.
        if run.status != RunStatus::Pending || run.queued_at.is_some() {
            waiting |= run.queued_at.is_some();
            continue;
        }
        let phase = ports.launch.cluster.run_phase(&run.namespace, run.kind(), &run.name).await?;
        let found = Versioned { record: run, version: found.version };
        if report_run(ports, target, found, &phase).await? {
            report.statuses += 1;
        }
    }
    if waiting {
        super::waiting::start_waiting(ports.launch, target).await?;
    }
    Ok(())
}

/// Reports `found`'s result as the cluster gives it (`phase`): its commit
/// status and, for a failure, a check run saying why. Once: whether this
/// call posted it. The reconciler and Tekton's events both come here.
pub(crate) async fn report_run(
    ports: Ports<'_>,
    target: &Target,
    found: Versioned<Run>,
    phase: &RunPhase,
) -> Result<bool, LaunchError> {
    let stuck_after = Duration::from_secs(ports.launch.operator.reconciler.run_timeout_minutes.saturating_mul(60));
    let run = found.record;
    let kind = run.kind().to_owned();
    let Some((result, text)) = repair::run_result(phase, ports.launch.clock.now(), stuck_after) else {
        return Ok(false);
    };
    if run.status != RunStatus::Pending || run.queued_at.is_some() || !repair::may_report(run.reported, result) {
        return Ok(false);
    }
    // Claimed before it is posted: a newer run's record (a retry) wins the race.
    let retain_until = Some(ports.launch.operator.reconciler.retain_from(ports.launch.clock.now()));
    let done = Run { status: result, reported: Some(result), retain_until, ..run.clone() };
    let version = match ports.launch.state.update(&done.into(), found.version).await {
        Ok(version) => version,
        Err(StoreError::StaleVersion { .. } | StoreError::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let mut status = CommitStatus::new(
        status_context(ports.launch.cluster_name, run.unit.as_str()),
        state_of(result),
        format!("{kind} {}: {text}", run.name),
    );
    status.target_url = ports.launch.operator.dashboard_link(&run.namespace, &run.name);
    if let Err(e) = ports.launch.forge.status(target, &run.sha, &status).await {
        // Not reported after all: pending again, so the next cycle posts it.
        let back = Run { status: RunStatus::Pending, reported: run.reported, ..run };
        let _ = ports.launch.state.update(&back.into(), version).await;
        return Err(e.into());
    }
    if matches!(result, RunStatus::Failure | RunStatus::Error) {
        // Beside the status, a check run says why in more than 140 characters.
        let step = match result {
            RunStatus::Failure => failing_step(ports, target, &run).await,
            _ => None,
        };
        let summary = failure_summary(&kind, &run, &text, status.target_url.as_deref(), step.as_ref());
        let title = format!("{} {}", run.unit, if result == RunStatus::Failure { "failed" } else { "did not finish" });
        let check = CheckRun { name: &status.context, conclusion: "failure", title: &title, summary: &summary };
        if let Err(e) = ports.launch.forge.check_run(target, &run.sha, &check).await {
            tracing::warn!(error = %e, "could not add the check run; the status stands");
        }
    }
    // Reported: it counts among the finished runs its unit keeps.
    if let Err(e) = super::history::keep_newest(ports.launch, &run).await {
        tracing::warn!(error = %e, "could not delete finished runs beyond keep_runs; the next result tries again");
    }
    Ok(true)
}

/// Each preview still coming up is reported once it is available (its
/// GitHub deployment `success`, with the URL) or cannot come up in time
/// (`failure`, with the reason its pods give).
pub(crate) async fn report_previews(ports: Ports<'_>, target: &Target, report: &mut Report) -> Result<(), LaunchError> {
    for found in ports.launch.state.list::<Preview>(&Collection::Previews(target.repo.clone())).await? {
        let preview = found.record;
        if preview.reported.is_some() {
            continue;
        }
        let health = ports.launch.cluster.deployment_health(&preview.namespace, &preview.deployment).await?;
        let Some((up, text)) = repair::preview_result(&health, preview.applied_at, ports.launch.clock.now()) else {
            continue;
        };
        let state = if up { "success" } else { "failure" };
        if let Some(id) = preview.github_deployment {
            let url = up.then_some(preview.url.as_str());
            let status = DeploymentStatus { id, environment: &preview.environment, state, url, description: &text };
            ports.launch.forge.deployment_status(target, &status).await?;
        }
        let done = Preview { reported: Some(state.to_owned()), ..preview };
        match ports.launch.state.update(&done.into(), found.version).await {
            // A newer push re-applied it meanwhile: its own record is reported next.
            Ok(_) | Err(StoreError::StaleVersion { .. } | StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        report.previews_reported += 1;
    }
    Ok(())
}

/// The Markdown a failed run's check run shows.
fn failure_summary(kind: &str, run: &Run, text: &str, link: Option<&str>, step: Option<&StepTail>) -> String {
    let mut summary = format!(
        "**{kind} `{}`** in namespace `{}`, for commit `{}`:\n\n> {text}\n",
        run.name,
        run.namespace,
        run.sha.short()
    );
    if let Some(step) = step {
        // A fence longer than any run of backticks in the log: the log cannot close it.
        let longest = step.lines.iter().map(|l| longest_backticks(l)).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        summary.push_str(&format!(
            "\nStep `{}` of TaskRun `{}` failed; its last {} lines:\n\n{fence}text\n{}\n{fence}\n",
            step.step,
            step.task_run,
            step.lines.len(),
            step.lines.join("\n")
        ));
    }
    if let Some(link) = link {
        summary.push_str(&format!("\n[Open the run]({link})\n"));
    }
    summary.push_str(&format!(
        "\n`kubectl -n {} get {} {} -o yaml` shows every step; a trusted user's `/retest` runs it again.\n",
        run.namespace,
        kind.to_ascii_lowercase(),
        run.name
    ));
    summary
}

fn longest_backticks(line: &str) -> usize {
    line.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// The end of a failed step's log, masked, as a check run shows it.
struct StepTail {
    task_run: String,
    step: String,
    lines: Vec<String>,
}

/// The failed step of a failed run and its last lines, masked: any token
/// shape, and the values of the credentials Ferry gave the run. Nothing
/// when the cluster cannot say; the check run goes without it.
async fn failing_step(ports: Ports<'_>, target: &Target, run: &Run) -> Option<StepTail> {
    let found = match ports.launch.cluster.failed_step(&run.namespace, run.kind(), &run.name).await {
        Ok(found) => found?,
        Err(e) => {
            tracing::warn!(error = %e, run = %run.name, "could not read the failed step's log");
            return None;
        }
    };
    let secrets = run_secrets(ports, target).await;
    let secrets: Vec<&str> = secrets.iter().map(|s| s.expose_secret()).collect();
    Some(StepTail { task_run: found.task_run, step: found.step, lines: logs::tail(&found.log, &secrets) })
}

/// The values a run of `target` may have been given: a repository on
/// another host clones with its entry's `clone_secret`. (GitHub's clone
/// tokens are minted per run and masked by their shape.)
async fn run_secrets(ports: Ports<'_>, target: &Target) -> Vec<secrecy::SecretString> {
    let Credential::Host(repo) = &target.credential else { return Vec::new() };
    let Some((tracked, _)) = ports.launch.operator.hosted(repo) else { return Vec::new() };
    let mut found = Vec::new();
    for name in [&tracked.clone_secret, &tracked.token_secret].into_iter().flatten() {
        if let Ok(name) = crate::secrets::SecretName::parse(name.clone())
            && let Ok(Some(value)) = ports.launch.tokens.named(&name).await
        {
            // A `<user>:<token>` secret reaches the run as its two halves.
            if let Some((user, password)) = value.expose_secret().split_once(':') {
                found.push(secrecy::SecretString::from(user.to_owned()));
                found.push(secrecy::SecretString::from(password.to_owned()));
            }
            found.push(value);
        }
    }
    found
}

fn state_of(status: RunStatus) -> StatusState {
    match status {
        RunStatus::Pending => StatusState::Pending,
        RunStatus::Success => StatusState::Success,
        RunStatus::Failure => StatusState::Failure,
        RunStatus::Error => StatusState::Error,
    }
}

/// Releases published since Ferry began tracking the repository that it
/// never recorded: recorded and launched now. The listing's ETag, once
/// every release it shows is dealt with.
async fn missed_releases(
    ports: Ports<'_>,
    target: &Target,
    found: &Versioned<Repository>,
    etag: Option<&str>,
    report: &mut Report,
) -> Result<Option<String>, LaunchError> {
    let Some(tracked_since) = found.record.tracked_since else {
        // Tracked before Ferry kept the date: from now on (untracked or
        // changed meanwhile, the next cycle sees to it).
        let dated = Repository { tracked_since: Some(ports.launch.clock.now()), ..found.record.clone() };
        return match ports.launch.state.update(&dated.into(), found.version).await {
            Ok(_) | Err(StoreError::StaleVersion { .. } | StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        };
    };
    let (listed, etag) = match ports.launch.forge.releases(target, etag).await? {
        Listed::Changed { items, etag } => (items, etag),
        Listed::Unchanged => {
            report.unchanged_listings += 1;
            return Ok(etag.map(str::to_owned));
        }
        Listed::Incomplete => return Ok(None),
    };
    let recorded: Vec<Release> = ports
        .launch
        .state
        .list::<Release>(&Collection::Releases(target.repo.clone()))
        .await?
        .into_iter()
        .map(|found| found.record)
        .collect();
    let since = repair::releases_since(tracked_since, &recorded, ports.launch.operator.reconciler.releases_kept());
    for event in listed {
        let Detail::Release(release) = &event.detail else { continue };
        let known = recorded.iter().any(|r| r.tag == release.tag);
        if repair::missed_release(known, release.draft, event.happened_at, since) {
            tracing::info!(repo = %target.repo, tag = %release.tag, "launching a release no webhook announced");
            launch(ports.launch, &event, Trigger::Release).await?;
            report.missed_releases += 1;
        }
    }
    Ok(etag)
}

/// Open pull requests Ferry missed are launched; previews of pull requests
/// two successful listings in a row no longer show open are removed. A
/// failed or incomplete listing changes nothing. An unchanged one (a 304)
/// shows what the last one showed: nothing new is missed, and what it did
/// not show is still not shown. The listing's ETag, once all is done.
async fn pull_requests(
    ports: Ports<'_>,
    shared: &Shared,
    target: &Target,
    tags: &ListingTags,
    report: &mut Report,
) -> Result<(Option<String>, Vec<u64>), LaunchError> {
    let (listed, etag) = match ports.launch.forge.open_pull_requests(target, tags.pull_requests.as_deref()).await? {
        Listed::Changed { items, etag } => (Some(items), etag),
        Listed::Unchanged => {
            report.unchanged_listings += 1;
            (None, tags.pull_requests.clone())
        }
        Listed::Incomplete => return Ok((None, Vec::new())),
    };
    let mut known: BTreeMap<u64, Versioned<PullRequest>> = BTreeMap::new();
    for found in ports.launch.state.list::<PullRequest>(&Collection::OpenPullRequests(target.repo.clone())).await? {
        known.insert(found.record.number.get(), found);
    }
    let open = match &listed {
        Some(listed) => launch_missed(ports, target, listed, &known, report).await?,
        // Unchanged: it shows what it showed, and nothing heard of since.
        None => tags.open.iter().copied().collect(),
    };
    for found in known.into_values().filter(|f| !open.contains(&f.record.number.get())) {
        match repair::listing(&found.record, false) {
            Listing::Seen => {}
            Listing::Unseen(count) => {
                let unseen = PullRequest { unseen_listings: count, ..found.record };
                ports.launch.state.update(&unseen.into(), found.version).await?;
            }
            Listing::Close if !shared.take_removal(ports.launch.state).await => {
                tracing::warn!(repo = %target.repo, pr = %found.record.number, "preview removals capped this cycle");
            }
            Listing::Close => {
                let closed = closed_event(target, &found.record, ports.launch.clock.now());
                tracing::info!(repo = %target.repo, pr = %found.record.number, "closing a pull request GitHub no longer lists open");
                launch(ports.launch, &closed, Trigger::PullRequest).await?;
                report.previews_removed += 1;
            }
        }
    }
    Ok((etag, open.into_iter().collect()))
}

/// Launches the listed pull requests Ferry missed: unknown, moved on (a
/// missed push), or reopened (a missed reopen), where GitHub's view is
/// newer than Ferry's. The numbers listed open.
async fn launch_missed(
    ports: Ports<'_>,
    target: &Target,
    listed: &[GitEvent],
    open_known: &BTreeMap<u64, Versioned<PullRequest>>,
    report: &mut Report,
) -> Result<BTreeSet<u64>, LaunchError> {
    let mut open = BTreeSet::new();
    for event in listed {
        let Detail::PullRequest(pr) = &event.detail else { continue };
        open.insert(pr.number.get());
        let known = match open_known.get(&pr.number.get()) {
            Some(found) => Some(found.clone()),
            // Not held as open: closed (a missed reopen), or never heard of.
            None => ports.launch.state.load::<PullRequest>(&Key::PullRequest(target.repo.clone(), pr.number)).await?,
        };
        let missed = match &known {
            None => true,
            Some(found) => {
                (found.record.state == PrState::Closed || found.record.head_sha != pr.head_sha)
                    && event.happened_at > found.record.updated_at
            }
        };
        if missed {
            tracing::info!(repo = %target.repo, pr = %pr.number, "launching a pull request no webhook announced");
            launch(ports.launch, event, Trigger::PullRequest).await?;
            report.missed_pull_requests += 1;
        } else if let Some(found) = known
            && found.record.unseen_listings > 0
        {
            let seen = PullRequest { unseen_listings: 0, ..found.record };
            ports.launch.state.update(&seen.into(), found.version).await?;
        }
    }
    Ok(open)
}

/// The `closed` event a lost webhook would have carried for `pr`.
fn closed_event(target: &Target, pr: &PullRequest, now: Timestamp) -> GitEvent {
    GitEvent {
        name: "pull_request".into(),
        action: Some("closed".into()),
        installation: match &target.credential {
            Credential::Installation(id) => Some(*id),
            Credential::Repository(_) | Credential::Host(_) => None,
        },
        repo: Some(target.repo.clone()),
        clone_url: None,
        sender: None,
        // Later than anything heard of it, so it is not taken for a late event.
        happened_at: Some(pr.updated_at.map_or(now, |at| at.max(now))),
        detail: Detail::PullRequest(PullRequestDetail {
            number: pr.number,
            head_sha: pr.head_sha.clone(),
            head_ref: pr.head_ref.clone().unwrap_or_default(),
            base_ref: String::new(),
            author: pr.author.clone().unwrap_or_default(),
            author_association: pr.author_association.clone().unwrap_or_default(),
            draft: pr.draft,
            merged: false,
            from_fork: pr.from_fork,
            labels: pr.labels.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(plan: Option<u64>, max_removals: usize) -> Shared {
        Shared { removals_left: AtomicUsize::new(max_removals), plan, max_removals, rate_limited: Mutex::default() }
    }

    /// Fanned out, a plan's workers share its cap through the store; a
    /// worker of an older plan, late, removes nothing more.
    #[tokio::test]
    async fn the_workers_of_one_plan_share_its_cap_on_preview_removals() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::EmbeddedStore::open(&dir.path().join("s.sqlite3"), crate::store::Durability::Process)
            .unwrap();
        let state: &dyn StateStore = &store;
        let (first, second) = (shared(Some(100), 3), shared(Some(100), 3));
        let mut taken = 0;
        for _ in 0..4 {
            taken += usize::from(first.take_removal(state).await);
            taken += usize::from(second.take_removal(state).await);
        }
        assert_eq!(taken, 3);
        let newer = shared(Some(200), 3);
        assert!(newer.take_removal(state).await, "a new plan counts afresh");
        assert!(!shared(Some(100), 3).take_removal(state).await, "the old plan's worker is late");
        // In one process, the cycle's own count.
        let alone = shared(None, 1);
        assert!(alone.take_removal(state).await && !alone.take_removal(state).await);
    }
}
