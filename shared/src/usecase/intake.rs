//! The webhook's use case (README.md, "The webhook"; docs/architecture.md,
//! "A delivery, from the edge to the cluster"): verify, record once,
//! persist, then act within a budget, and say what happened.

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::domain::event::{Detail, GitEvent};
use crate::domain::route::{Route, route};
use crate::domain::signature::{WebhookSecret, verify};
use crate::domain::{BodySeen, Delivery, DeliveryId, DeliveryPart, Outcome, RepoName};
use crate::forge::github::{self, ParseError};
use crate::store::{Collection, Key, Record, StateStore, StoreError, Version};

use super::Action;
use super::installations::{apply_installation, apply_repositories};
use super::launch::{LaunchPorts, Launched, launch};

/// How long acting may take before the reply goes out as `deferred`:
/// inside GitHub's 10 s, with room for the outcome write and the network.
pub const BUDGET: Duration = Duration::from_secs(8);

/// How long the outcome write may take after acting, on top of the budget.
pub const OUTCOME_WRITE_LIMIT: Duration = Duration::from_secs(1);

/// One delivery as it arrived: headers Ferry reads, and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub event: Option<&'a str>,
    pub delivery: Option<&'a str>,
    pub signature: Option<&'a [u8]>,
    pub body: &'a [u8],
    /// Set when the delivery came to one repository's own URL: a delivery
    /// about any other repository (or none) is refused unrecorded.
    pub repository: Option<&'a RepoName>,
}

/// The HTTP status and the JSON a person reads in GitHub's delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: ReplyBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    pub outcome: Outcome,
    pub actions: Vec<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Reply {
    pub fn rejected(status: u16, reason: impl ToString) -> Self {
        Self {
            status,
            body: ReplyBody {
                delivery: None,
                event: None,
                outcome: Outcome::Rejected,
                actions: Vec::new(),
                reason: Some(reason.to_string()),
            },
        }
    }

    fn outcome(delivery: &Delivery, actions: Vec<Action>) -> Self {
        let status = match delivery.outcome {
            Outcome::Processed | Outcome::Duplicate => 200,
            Outcome::Rejected => 400,
            Outcome::Received | Outcome::Ignored | Outcome::Deferred | Outcome::Failed | Outcome::Dead => 202,
        };
        Self {
            status,
            body: ReplyBody {
                delivery: Some(delivery.id.to_string()),
                event: Some(delivery.event.clone()),
                outcome: delivery.outcome,
                actions,
                reason: delivery.reason.clone(),
            },
        }
    }
}

/// The narrow ports intake needs: the webhook secrets to verify with, and
/// launching's.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub secrets: &'a [WebhookSecret],
    pub launch: LaunchPorts<'a>,
}

#[tracing::instrument(skip_all, fields(event = inbound.event, delivery = inbound.delivery))]
pub async fn intake(ports: Ports<'_>, inbound: Inbound<'_>, budget: Duration) -> Reply {
    let started = Instant::now();
    // First, before anything else reads the body or touches a store.
    if let Err(refused) = verify(ports.secrets, inbound.body, inbound.signature) {
        tracing::warn!(reason = %refused, "refused a delivery");
        return Reply::rejected(401, refused);
    }
    let Some(name) = inbound.event.filter(|e| !e.is_empty() && e.len() <= 100) else {
        return Reply::rejected(400, "missing X-GitHub-Event header");
    };
    let Some(id) = inbound.delivery.and_then(|d| DeliveryId::parse(d).ok()) else {
        return Reply::rejected(400, "missing or invalid X-GitHub-Delivery header");
    };
    let mut delivery = Delivery::received(id, name, ports.launch.clock.now());

    let event = match github::parse(name, inbound.body) {
        Ok(event) => event,
        Err(problem) if inbound.repository.is_some() => return Reply::rejected(400, problem),
        Err(problem) => return refuse_body(ports.launch.state, delivery, problem).await,
    };
    if let Some(expected) = inbound.repository
        && let Some(problem) = other_repository(expected, event.repo.as_ref())
    {
        tracing::warn!(%problem, "refused a delivery for another repository");
        return Reply::rejected(400, problem);
    }
    let route = route(&event);
    if let Route::Ignore(reason) = &route {
        delivery.outcome = Outcome::Ignored;
        delivery.reason = Some(reason.clone());
    }
    // What acts is kept from acting twice on one body (a replay): its hash
    // is written with the delivery, in the same write.
    let seen = matches!(route, Route::Installation(_) | Route::Repositories | Route::Launch(_)).then(|| BodySeen {
        hash: hex::encode(Sha256::digest(inbound.body)),
        delivery: delivery.id.clone(),
        received_at: delivery.received_at,
    });
    delivery.repo = event.repo.clone();
    delivery.git_event = Some(Box::new(event));

    // Persist first: once this returns, the event cannot be lost.
    let id = delivery.id.clone();
    let recording = record(ports.launch.state, delivery, seen);
    let Ok((recorded, aside, written)) = tokio::time::timeout(budget, recording).await else {
        return unrecorded(&id, &StoreError::Unavailable("timed out".into()));
    };
    let mut delivery = recorded;
    let version = match written {
        Ok(version) => version,
        Err(StoreError::AlreadyExists { .. }) => {
            delivery.outcome = Outcome::Duplicate;
            delivery.reason = Some("this delivery was received before".into());
            return Reply::outcome(&delivery, Vec::new());
        }
        Err(e) => return unrecorded(&id, &e),
    };
    if matches!(delivery.outcome, Outcome::Ignored | Outcome::Duplicate) {
        return Reply::outcome(&delivery, Vec::new());
    }

    let event = delivery.git_event.as_deref().or(aside.as_deref()).expect("set above, or set aside in parts");
    let remaining = budget.saturating_sub(started.elapsed());
    let (outcome, acted) = act_within(ports, event, route, remaining, budget).await;
    (delivery.outcome, delivery.reason) = (outcome, acted.reason);
    let reply = Reply::outcome(&delivery, acted.actions.clone());
    delivery.acted(acted.actions, acted.decisions);
    tracing::info!(outcome = %delivery.outcome, actions = reply.body.actions.len(), "delivery handled");
    // The outcome is bookkeeping: if it cannot be written in time, the
    // delivery stays `received` and the reconciler acts on it again, which
    // is idempotent. The reply does not wait past the limit.
    match tokio::time::timeout(OUTCOME_WRITE_LIMIT, write(ports.launch.state, delivery, Some(version))).await {
        Ok((_, Ok(_))) => {}
        Ok((_, Err(e))) => tracing::warn!(error = %e, "could not record the outcome"),
        Err(_) => tracing::warn!("recording the outcome timed out"),
    }
    reply
}

/// Acts on the recorded event within `remaining`: the delivery's outcome
/// and why, processed, failed (the reconciler retries it) or deferred (the
/// reconciler finishes it), and what was done (the reason is the outcome's).
async fn act_within(
    ports: Ports<'_>,
    event: &GitEvent,
    route: Route,
    remaining: Duration,
    budget: Duration,
) -> (Outcome, Launched) {
    match tokio::time::timeout(remaining, act(ports, event, route)).await {
        Ok(Ok(acted)) => (Outcome::Processed, acted),
        Ok(Err(problem)) => {
            tracing::warn!(%problem, "acting on the delivery failed; the reconciler retries it");
            (Outcome::Failed, Launched::note(problem))
        }
        Err(_) => {
            let reason = format!("not done within {budget:?}; the reconciler finishes it");
            (Outcome::Deferred, Launched::note(reason))
        }
    }
}

/// Why a delivery to `expected`'s own URL is not about `expected`, if it is
/// not. GitHub compares owner and repository names case-insensitively.
fn other_repository(expected: &RepoName, about: Option<&RepoName>) -> Option<String> {
    match about {
        Some(repo) if repo.full_name().eq_ignore_ascii_case(expected.full_name()) => None,
        Some(repo) => Some(format!("this URL takes deliveries for {expected}; this one is for {repo}")),
        None => Some(format!("this URL takes deliveries for {expected}; this one names no repository")),
    }
}

/// Records a new delivery, with its body's hash when `seen` (one write).
/// One that does not fit an item loses nothing: a push is kept without its
/// paths (path filters then match everything), any other event is kept in
/// parts, and handed back to act on now.
async fn record(
    state: &dyn StateStore,
    delivery: Delivery,
    seen: Option<BodySeen>,
) -> (Delivery, Option<Box<GitEvent>>, Result<Version, StoreError>) {
    let (mut delivery, written) = match &seen {
        Some(seen) => write_with_body(state, delivery, seen).await,
        None => write(state, delivery, None).await,
    };
    if !matches!(written, Err(StoreError::TooLarge { .. })) {
        return (delivery, None, written);
    }
    // Too large for one write: the body's hash first, then the delivery as it fits.
    if let Some(seen) = &seen
        && let Err(e) = claim_body(state, &mut delivery, seen).await
    {
        return (delivery, None, Err(e));
    }
    if let Some(GitEvent { detail: Detail::Push(push), .. }) = delivery.git_event.as_deref_mut() {
        push.truncate_paths();
        let (delivery, written) = write(state, delivery, None).await;
        return (delivery, None, written);
    }
    let Some(event) = delivery.git_event.take() else { return (delivery, None, written) };
    // Ignored or a replay: nothing will act on it again, so nothing to keep.
    if !delivery.is_unfinished() {
        let (delivery, written) = write(state, delivery, None).await;
        return (delivery, None, written);
    }
    let parts = DeliveryPart::split(&delivery, &event);
    for part in &parts {
        match state.create(&part.clone().into()).await {
            // A redelivery of a delivery whose first recording stopped halfway.
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return (delivery, Some(event), Err(e)),
        }
    }
    delivery.parts = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    let (delivery, written) = write(state, delivery, None).await;
    (delivery, Some(event), written)
}

/// Creates the delivery and its body's hash in one write. A delivery there
/// already is GitHub's redelivery (received before, found first). A hash
/// there already is the body come before under another id: a replay,
/// recorded as a duplicate.
async fn write_with_body(
    state: &dyn StateStore,
    delivery: Delivery,
    seen: &BodySeen,
) -> (Delivery, Result<Version, StoreError>) {
    let records = [Record::Delivery(delivery), Record::Body(seen.clone())];
    let written = state.create_all(&records).await;
    let [Record::Delivery(mut delivery), _] = records else { unreachable!("a delivery was put in above") };
    match written {
        Ok(()) => (delivery, Ok(Version(1))),
        Err(StoreError::AlreadyExists { key: Key::Body(_) }) => match mark_replay(state, &mut delivery, seen).await {
            Ok(()) => write(state, delivery, None).await,
            Err(e) => (delivery, Err(e)),
        },
        Err(e) => (delivery, Err(e)),
    }
}

/// Keeps the body's hash unless it is there already, then as [`mark_replay`].
async fn claim_body(state: &dyn StateStore, delivery: &mut Delivery, seen: &BodySeen) -> Result<(), StoreError> {
    match state.create(&seen.clone().into()).await {
        Ok(_) => Ok(()),
        Err(StoreError::AlreadyExists { .. }) => mark_replay(state, delivery, seen).await,
        Err(e) => Err(e),
    }
}

/// Marks `delivery` a duplicate when the body whose hash is kept came first
/// under another id: a replay changes nothing. GitHub's own redelivery
/// keeps the id, so it is not one.
async fn mark_replay(state: &dyn StateStore, delivery: &mut Delivery, seen: &BodySeen) -> Result<(), StoreError> {
    let first = state.load::<BodySeen>(&Key::Body(seen.hash.clone())).await?;
    if let Some(first) = first.map(|found| found.record.delivery).filter(|first| *first != delivery.id) {
        delivery.outcome = Outcome::Duplicate;
        delivery.reason = Some(format!("the same body came as delivery {first}: a replay changes nothing"));
    }
    Ok(())
}

/// The event of a delivery kept in parts.
pub(crate) async fn joined(state: &dyn StateStore, delivery: &Delivery) -> Result<Option<GitEvent>, StoreError> {
    let found = state.list::<DeliveryPart>(&Collection::DeliveryParts(delivery.id.clone())).await?;
    let parts: Vec<DeliveryPart> = found.into_iter().map(|part| part.record).collect();
    Ok(DeliveryPart::join(&parts, delivery.parts))
}

/// Creates (no version) or updates the delivery without copying it: it goes
/// into a `Record` for the call and comes back out. One done with (ignored,
/// a duplicate, processed) is written without its event.
async fn write(
    state: &dyn StateStore,
    mut delivery: Delivery,
    version: Option<Version>,
) -> (Delivery, Result<Version, StoreError>) {
    delivery.settle();
    let record = Record::Delivery(delivery);
    let written = match version {
        None => state.create(&record).await,
        Some(version) => state.update(&record, version).await,
    };
    let Record::Delivery(delivery) = record else { unreachable!("a delivery was put in above") };
    (delivery, written)
}

/// The delivery could not be made durable: 503, so GitHub marks it failed
/// and it can be redelivered.
fn unrecorded(id: &DeliveryId, error: &StoreError) -> Reply {
    tracing::error!(%error, "could not record the delivery");
    let mut reply = Reply::rejected(503, "could not record the delivery; redeliver it");
    reply.body.delivery = Some(id.to_string());
    reply
}

/// A signed body Ferry cannot read: recorded as failed, refused with 400.
async fn refuse_body(state: &dyn StateStore, mut delivery: Delivery, problem: ParseError) -> Reply {
    delivery.outcome = Outcome::Failed;
    delivery.reason = Some(problem.to_string());
    delivery.cut_reason();
    match state.create(&delivery.clone().into()).await {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
        Err(e) => tracing::warn!(error = %e, "could not record the failed delivery"),
    }
    let mut reply = Reply::outcome(&delivery, Vec::new());
    reply.status = 400;
    reply
}

/// Does what the route says: what was done, decided, and a note for the log.
pub(crate) async fn act(ports: Ports<'_>, event: &GitEvent, route: Route) -> Result<Launched, String> {
    let state = ports.launch.state;
    let applied = |applied: super::installations::Applied| Launched {
        actions: applied.actions,
        reason: applied.reason,
        decisions: Vec::new(),
    };
    match route {
        Route::Pong => Ok(Launched::note("pong".into())),
        Route::Installation(change) => {
            apply_installation(state, ports.launch.tokens, event, change, ports.launch.clock.now())
                .await
                .map(applied)
                .map_err(|e| e.to_string())
        }
        Route::Repositories => {
            apply_repositories(state, event, ports.launch.clock.now()).await.map(applied).map_err(|e| e.to_string())
        }
        Route::Launch(trigger) => launch(ports.launch, event, trigger).await.map_err(|e| e.to_string()),
        Route::Ignore(reason) => Ok(Launched::note(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_s_own_url_takes_only_its_deliveries() {
        let repo = |name: &str| RepoName::parse(name).unwrap();
        let cases = [
            ("acme/web", Some("acme/web"), true),
            ("acme/web", Some("Acme/Web"), true),
            ("acme/web", Some("acme/api"), false),
            ("acme/web", Some("other/web"), false),
            ("acme/web", None, false),
        ];
        for (expected, about, taken) in cases {
            let about = about.map(repo);
            let problem = other_repository(&repo(expected), about.as_ref());
            assert_eq!(problem.is_none(), taken, "{expected} {about:?}: {problem:?}");
        }
    }
}
