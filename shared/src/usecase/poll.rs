//! One poll cycle (README.md, "Polling"): for each due ref, a conditional
//! request; a new SHA is delivered (CloudEvent and/or a launch as for a
//! push) and recorded only once delivered, so a failed delivery is sent
//! again next cycle. A rate limit or the deadline stops the cycle early and
//! leaves the remaining refs due; one failing ref does not stop the others.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::domain::event::{Detail, GitEvent, Push};
use crate::domain::route::Trigger;
use crate::domain::tokens::Credential;
use crate::domain::{PolledRef, RefName, RepoMode, RepoName, Repository, Sha};
use crate::poll::source::{Polled, Sources};
use crate::poll::{TrackedRef, deliver};
use crate::secrets::{SecretName, SecretStore};
use crate::store::{Key, StoreError};

use super::launch::{LaunchPorts, launch};

/// The cycle stops starting requests this long before its deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(3);

/// How many refs' records are read at once.
const RECORDS_IN_FLIGHT: usize = 16;

/// The ports polling needs: the secret store (endpoint secrets, host
/// tokens), the hosts' clients, and launching's (the state store, tokens and
/// clock among them).
#[derive(Clone, Copy)]
pub struct PollPorts<'a> {
    pub secrets: &'a dyn SecretStore,
    pub sources: &'a Sources,
    /// Sends events to endpoints.
    pub http: &'a crate::net::SharedClient,
    pub launch: LaunchPorts<'a>,
}

impl<'a> PollPorts<'a> {
    /// Every port, from the composition root's context.
    pub fn of(context: &'a crate::Context) -> Self {
        Self {
            secrets: context.secrets.as_ref(),
            sources: &context.sources,
            http: &context.http,
            launch: LaunchPorts::of(context),
        }
    }
}

/// One cycle over the operator's `[[poll]]` refs, as the Lambda and `ferry poll` run it.
pub async fn cycle(context: &crate::Context, deadline: Option<Instant>) -> Result<PollReport, StoreError> {
    poll(PollPorts::of(context), &context.operator.poll, context.operator.poll_in_flight, deadline).await
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PollReport {
    /// Refs asked about this cycle.
    pub polled: usize,
    /// Refs not due yet.
    pub not_due: usize,
    /// 304, or the same SHA.
    pub unchanged: usize,
    /// A new SHA, delivered and recorded.
    pub delivered: usize,
    /// A new SHA whose delivery failed: sent again next cycle.
    pub undelivered: usize,
    pub failed: Vec<PollFailure>,
    /// Why the cycle stopped before every due ref was polled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Due refs queued for the queue's workers (a planner's cycle).
    #[serde(skip_serializing_if = "super::is_zero")]
    pub queued: usize,
    /// Due refs not done: the deadline or a rate limit came first (they
    /// stay due; the ref that met the limit, from when it resets).
    #[serde(skip_serializing_if = "super::is_zero")]
    pub left: usize,
}

impl PollReport {
    /// Adds another part of the cycle's report to this one.
    pub fn add(&mut self, other: PollReport) {
        self.polled += other.polled;
        self.not_due += other.not_due;
        self.unchanged += other.unchanged;
        self.delivered += other.delivered;
        self.undelivered += other.undelivered;
        self.failed.extend(other.failed);
        self.stopped = self.stopped.take().or(other.stopped);
        self.queued += other.queued;
        self.left += other.left;
    }

    /// Counts what polling `tracked` came to.
    fn count(&mut self, tracked: &TrackedRef, outcome: RefPolled) {
        match outcome {
            RefPolled::Unchanged => self.unchanged += 1,
            RefPolled::Delivered => self.delivered += 1,
            RefPolled::Undelivered => self.undelivered += 1,
            RefPolled::Failed(problem) => self.failed.push(PollFailure::new(&tracked.url, &tracked.reference, problem)),
            RefPolled::RateLimited(_) | RefPolled::Skipped => self.left += 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PollFailure {
    pub url: String,
    #[serde(rename = "ref")]
    pub reference: String,
    pub problem: String,
}

impl PollFailure {
    pub fn new(url: &str, reference: &str, problem: String) -> Self {
        Self { url: url.to_owned(), reference: reference.to_owned(), problem }
    }
}

enum RefPolled {
    Unchanged,
    Delivered,
    Undelivered,
    Failed(String),
    RateLimited(Option<Duration>),
    Skipped,
}

#[tracing::instrument(skip_all, fields(refs = refs.len()))]
pub async fn poll(
    ports: PollPorts<'_>,
    refs: &[TrackedRef],
    in_flight: usize,
    deadline: Option<Instant>,
) -> Result<PollReport, StoreError> {
    let (due, not_due) = due(ports, refs).await?;
    let mut report = poll_due(ports, due, in_flight, deadline).await;
    report.not_due = not_due;
    tracing::info!(
        polled = report.polled,
        not_due = report.not_due,
        unchanged = report.unchanged,
        delivered = report.delivered,
        undelivered = report.undelivered,
        failed = report.failed.len(),
        left = report.left,
        stopped = report.stopped.as_deref().unwrap_or(""),
        "poll cycle done"
    );
    Ok(report)
}

/// The refs due now, with what is recorded of them, and how many are not due.
pub(crate) async fn due<'a>(
    ports: PollPorts<'_>,
    refs: &'a [TrackedRef],
) -> Result<(Vec<(&'a TrackedRef, Option<PolledRef>)>, usize), StoreError> {
    let now = ports.launch.clock.now();
    // In order, a few at once: thousands of refs are read in seconds.
    let loads: Vec<_> = refs.iter().map(|tracked| recorded(ports, tracked)).collect();
    let loaded: Vec<_> = futures::stream::iter(loads).buffered(RECORDS_IN_FLIGHT).collect().await;
    let (mut due, mut not_due) = (Vec::new(), 0);
    for found in loaded {
        match found? {
            (_, Some(stored)) if stored.next_poll_at > now => not_due += 1,
            found => due.push(found),
        }
    }
    Ok((due, not_due))
}

/// What is recorded of `tracked`.
async fn recorded<'a>(
    ports: PollPorts<'_>,
    tracked: &'a TrackedRef,
) -> Result<(&'a TrackedRef, Option<PolledRef>), StoreError> {
    let key = key(ports, tracked).map_err(|problem| StoreError::Corrupt { at: tracked.url.clone(), problem })?;
    Ok((tracked, ports.launch.state.load::<PolledRef>(&key).await?.map(|found| found.record)))
}

/// Polls `due`, `in_flight` at once, until a rate limit or `deadline`.
pub(crate) async fn poll_due(
    ports: PollPorts<'_>,
    due: Vec<(&TrackedRef, Option<PolledRef>)>,
    in_flight: usize,
    deadline: Option<Instant>,
) -> PollReport {
    let guard = Guard {
        stop: AtomicBool::new(false),
        why: std::sync::Mutex::new(None),
        started: AtomicUsize::new(0),
        deadline,
    };
    let polls: Vec<_> = due.into_iter().map(|(tracked, stored)| guarded(ports, tracked, stored, &guard)).collect();
    let outcomes: Vec<(&TrackedRef, RefPolled)> =
        futures::stream::iter(polls).buffer_unordered(in_flight.max(1)).collect().await;
    let Guard { why, started, .. } = guard;
    let mut report = PollReport { polled: started.load(Ordering::SeqCst), ..PollReport::default() };
    for (tracked, outcome) in outcomes {
        report.count(tracked, outcome);
    }
    report.stopped = why.into_inner().expect("not poisoned");
    report
}

/// One ref, as a queue's worker polls it: nothing when it is not due (a
/// poll since it was queued); a rate limit's wait, when one was met.
#[cfg(feature = "queue")]
pub(crate) async fn poll_ref(ports: PollPorts<'_>, tracked: &TrackedRef) -> (PollReport, Option<Option<Duration>>) {
    let (due, not_due) = match due(ports, std::slice::from_ref(tracked)).await {
        Ok(found) => found,
        Err(e) => {
            let failed = vec![PollFailure::new(&tracked.url, &tracked.reference, format!("reading its record: {e}"))];
            return (PollReport { failed, ..PollReport::default() }, None);
        }
    };
    let mut report = PollReport { not_due, ..PollReport::default() };
    let Some((tracked, stored)) = due.into_iter().next() else {
        return (report, None);
    };
    report.polled = 1;
    match poll_one(ports, tracked, stored).await {
        // Given back on the queue: counted `left` by the worker.
        RefPolled::RateLimited(wait) => (report, Some(wait)),
        outcome => {
            report.count(tracked, outcome);
            (report, None)
        }
    }
}

/// What the polls of one cycle share: whether to stop, and why.
struct Guard {
    stop: AtomicBool,
    why: std::sync::Mutex<Option<String>>,
    started: AtomicUsize,
    deadline: Option<Instant>,
}

async fn guarded<'a>(
    ports: PollPorts<'_>,
    tracked: &'a TrackedRef,
    stored: Option<PolledRef>,
    guard: &Guard,
) -> (&'a TrackedRef, RefPolled) {
    if guard.stop.load(Ordering::SeqCst) {
        return (tracked, RefPolled::Skipped);
    }
    if guard.deadline.is_some_and(|d| d.saturating_duration_since(Instant::now()) < DEADLINE_MARGIN) {
        guard.stop.store(true, Ordering::SeqCst);
        *guard.why.lock().expect("not poisoned") = Some("the deadline is near".into());
        return (tracked, RefPolled::Skipped);
    }
    guard.started.fetch_add(1, Ordering::SeqCst);
    let outcome = poll_one(ports, tracked, stored).await;
    if let RefPolled::RateLimited(wait) = &outcome {
        guard.stop.store(true, Ordering::SeqCst);
        let wait = wait.map(|w| format!("; retry after {}s", w.as_secs())).unwrap_or_default();
        *guard.why.lock().expect("not poisoned") = Some(format!("{} is rate limiting{wait}", tracked.url));
    }
    (tracked, outcome)
}

fn key(ports: PollPorts<'_>, tracked: &TrackedRef) -> Result<Key, String> {
    let repo = tracked.repo(ports.sources.github_api())?;
    Ok(Key::Ref(repo, RefName::parse(tracked.reference.clone()).map_err(|e| e.to_string())?))
}

/// Which token generation a token is: ETags are only good for the token that earned them.
fn epoch(token: Option<&SecretString>) -> u64 {
    token.map_or(0, |t| {
        let digest = Sha256::digest(t.expose_secret().as_bytes());
        u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) | 1
    })
}

async fn token(
    ports: PollPorts<'_>,
    tracked: &TrackedRef,
) -> Result<(Option<SecretString>, Option<Credential>), String> {
    if let Some(name) = &tracked.token_secret {
        let name = SecretName::parse(name.clone()).map_err(|e| e.to_string())?;
        return Ok((ports.secrets.get(&name).await.map_err(|e| e.to_string())?, None));
    }
    // GitHub credentials are found by owner/name: only for the GitHub they belong to.
    if !tracked.on_github(ports.sources.github_api()) {
        return Ok((None, None));
    }
    let repo = tracked.repo(ports.sources.github_api())?;
    let found =
        ports.launch.state.load::<Repository>(&Key::Repository(repo.clone())).await.map_err(|e| e.to_string())?;
    let credential = match found.map(|f| f.record) {
        Some(Repository { mode: RepoMode::Token, .. }) => Credential::Repository(repo),
        Some(Repository { installation: Some(id), .. }) => Credential::Installation(id),
        _ => return Ok((None, None)), // a public repository, read unauthenticated
    };
    let token = ports.launch.tokens.token(ports.launch.state, &credential).await.map_err(|e| e.to_string())?;
    Ok((Some(token), Some(credential)))
}

async fn poll_one(ports: PollPorts<'_>, tracked: &TrackedRef, stored: Option<PolledRef>) -> RefPolled {
    let now = ports.launch.clock.now();
    let Ok(Key::Ref(repo, name)) = key(ports, tracked) else {
        return RefPolled::Failed("an invalid tracked ref".into());
    };
    let mut record = stored.clone().unwrap_or(PolledRef {
        repo: repo.clone(),
        name,
        sha: None,
        etag: None,
        token_epoch: 0,
        next_poll_at: now,
        endpoint: tracked.endpoint.clone(),
        last_error: None,
    });
    record.endpoint = tracked.endpoint.clone();
    // Launching reads units and posts statuses on GitHub, or on the host the entry names.
    if let Some(problem) = tracked.launch_problem(ports.sources.github_api()) {
        return fail(ports, record, tracked, now, problem).await;
    }
    let (token, credential) = match token(ports, tracked).await {
        Ok(found) => found,
        Err(problem) => return fail(ports, record, tracked, now, format!("no token: {problem}")).await,
    };
    let epoch = epoch(token.as_ref());
    let etag = record.etag.as_deref().filter(|_| record.token_epoch == epoch);
    let polled = ports.sources.fetch(tracked, token.as_ref(), etag).await;
    // A refused token is replaced before the next cycle.
    if matches!(polled, Polled::Failed(ref p) if p.starts_with("401"))
        && let (Some(credential), Some(token)) = (&credential, &token)
    {
        ports.launch.tokens.refused(credential, token);
    }
    let (sha, etag, body) = match polled {
        Polled::Unchanged => {
            record.next_poll_at = tracked.next_poll(now);
            record.last_error = None;
            save(ports, record).await;
            return RefPolled::Unchanged;
        }
        Polled::RateLimited { retry_after } => {
            // Not asked again before the host's limit resets.
            record.next_poll_at = now.plus(crate::net::rate_limit_wait(retry_after));
            save(ports, record).await;
            return RefPolled::RateLimited(retry_after);
        }
        Polled::Failed(problem) => return fail(ports, record, tracked, now, problem).await,
        Polled::Head { sha, etag, body } => (sha.to_ascii_lowercase(), etag, body),
    };
    if record.sha.as_ref().is_some_and(|known| known.as_str() == sha) {
        // The ETag changed (another token, a touched response), the commit did not.
        record.etag = etag;
        record.token_epoch = epoch;
        record.next_poll_at = tracked.next_poll(now);
        record.last_error = None;
        save(ports, record).await;
        return RefPolled::Unchanged;
    }
    let Ok(new_sha) = Sha::parse(sha.clone()) else {
        return fail(ports, record, tracked, now, format!("{sha:?} is not a commit SHA")).await;
    };
    match deliver_commit(ports, tracked, &record, &new_sha, &body, credential).await {
        Ok(()) => {
            tracing::info!(url = %tracked.url, reference = %tracked.reference, sha = %new_sha, "delivered a new commit");
            record.sha = Some(new_sha);
            record.etag = etag;
            record.token_epoch = epoch;
            record.next_poll_at = tracked.next_poll(now);
            record.last_error = None;
            save(ports, record).await;
            RefPolled::Delivered
        }
        Err(problem) => {
            tracing::warn!(url = %tracked.url, reference = %tracked.reference, %problem, "delivery failed; the next cycle sends it again");
            // Without the ETag, the next poll sees the commit again instead of a 304.
            record.etag = None;
            record.next_poll_at = now;
            record.last_error = Some(problem);
            save(ports, record).await;
            RefPolled::Undelivered
        }
    }
}

async fn deliver_commit(
    ports: PollPorts<'_>,
    tracked: &TrackedRef,
    record: &PolledRef,
    sha: &Sha,
    body: &[u8],
    credential: Option<Credential>,
) -> Result<(), String> {
    if let Some(endpoint) = &tracked.endpoint {
        let secret = match (&tracked.secret, &tracked.secret_name) {
            (Some(inline), _) => Some(SecretString::from(inline.clone())),
            (None, Some(name)) => {
                let name = SecretName::parse(name.clone()).map_err(|e| e.to_string())?;
                Some(
                    ports
                        .secrets
                        .get(&name)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("no secret {name}"))?,
                )
            }
            (None, None) => None,
        };
        let request = deliver::request(tracked, sha.as_str(), body)?;
        deliver::send(ports.http.get()?, endpoint, request, secret.as_ref()).await?;
    }
    if tracked.launch {
        if !tracked.on_github(ports.sources.github_api()) {
            hosted(ports, &record.repo).await.map_err(|e| format!("recording the repository: {e}"))?;
        }
        let zero = Sha::parse("0".repeat(40)).expect("a valid SHA");
        let git_ref = RefName::parse(tracked.ref_path()).map_err(|e| e.to_string())?;
        // A poll does not see which paths changed: all count.
        let push = Push { paths_truncated: true, ..Push::to(git_ref, record.sha.clone().unwrap_or(zero), sha.clone()) };
        let event = GitEvent {
            installation: match credential {
                Some(Credential::Installation(id)) => Some(id),
                _ => None,
            },
            clone_url: Some(tracked.clone_url()),
            happened_at: Some(ports.launch.clock.now()),
            ..GitEvent::new("push", Some(record.repo.clone()), Detail::Push(push))
        };
        launch(ports.launch, &event, Trigger::Push).await.map_err(|e| format!("launching: {e}"))?;
    }
    Ok(())
}

/// A repository launched on its own host is recorded as such: its launches
/// and the reconciler reach it through its `[[poll]]` entry.
async fn hosted(ports: PollPorts<'_>, repo: &RepoName) -> Result<(), StoreError> {
    let fresh = Repository {
        name: repo.clone(),
        mode: RepoMode::Host,
        installation: None,
        hook_id: None,
        last_event_at: None,
        last_error: None,
        tracked_since: Some(ports.launch.clock.now()),
    };
    if ports
        .launch
        .state
        .load::<Repository>(&Key::Repository(repo.clone()))
        .await?
        .is_some_and(|f| f.record.mode == RepoMode::Host)
    {
        return Ok(());
    }
    ports
        .launch
        .state
        .save(fresh, |known| Repository { mode: RepoMode::Host, installation: None, ..known })
        .await
        .map(|_| ())
}

async fn fail(
    ports: PollPorts<'_>,
    mut record: PolledRef,
    tracked: &TrackedRef,
    now: crate::domain::Timestamp,
    problem: String,
) -> RefPolled {
    tracing::warn!(url = %tracked.url, reference = %tracked.reference, %problem, "polling failed");
    record.last_error = Some(problem.clone());
    record.next_poll_at = tracked.next_poll(now);
    save(ports, record).await;
    RefPolled::Failed(problem)
}

async fn save(ports: PollPorts<'_>, record: PolledRef) {
    if let Err(e) = ports.launch.state.save(record.clone(), |_| record.clone()).await {
        // Not recorded: the ref stays due and is polled again, which is safe.
        tracing::warn!(error = %e, "could not record the poll");
    }
}
