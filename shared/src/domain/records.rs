//! What Ferry remembers, one type per row kind of the state table (README.md, "State").
//! The store decides where each lives; these types only say what it is.

use std::borrow::Cow;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::event::GitEvent;
use super::{DeliveryId, InstallationId, PrNumber, RefName, RepoName, Sha, Tag, Timestamp, UnitName};

/// A GitHub App installation on an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    pub id: InstallationId,
    pub account: String,
    #[serde(default)]
    pub suspended: bool,
    /// `all` or `selected`, as GitHub reports it.
    pub repository_selection: String,
    /// When the token in the secret store expires, as last written there.
    #[serde(default)]
    pub token_expires_at: Option<Timestamp>,
    /// A rotation minting for this installation holds it until then.
    #[serde(default)]
    pub minting_until: Option<Timestamp>,
    /// Why the last mint failed; cleared by the next one that works.
    #[serde(default)]
    pub token_error: Option<String>,
    /// When GitHub last changed the installation, as far as Ferry has
    /// heard: an event older than this changes nothing.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
}

impl Installation {
    /// An installation as an event first reports it: no token yet.
    pub fn new(id: InstallationId, account: impl Into<String>, repository_selection: impl Into<String>) -> Self {
        Self {
            id,
            account: account.into(),
            suspended: false,
            repository_selection: repository_selection.into(),
            token_expires_at: None,
            minting_until: None,
            token_error: None,
            updated_at: None,
        }
    }
}

/// How Ferry reaches a repository: as a GitHub App, or with a repository token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoMode {
    App,
    Token,
    /// Polled on another host (`[[poll]]` with a provider and `launch = true`).
    Host,
}

/// A repository Ferry acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    pub name: RepoName,
    pub mode: RepoMode,
    #[serde(default)]
    pub installation: Option<InstallationId>,
    /// The repository webhook Ferry created, in token mode.
    #[serde(default)]
    pub hook_id: Option<u64>,
    #[serde(default)]
    pub last_event_at: Option<Timestamp>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Since when Ferry tracks it: the reconciler launches no release
    /// published before this.
    #[serde(default)]
    pub tracked_since: Option<Timestamp>,
}

/// A ref the poller watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolledRef {
    pub repo: RepoName,
    pub name: RefName,
    /// The last SHA delivered; recorded only after the endpoint accepted it.
    #[serde(default)]
    pub sha: Option<Sha>,
    #[serde(default)]
    pub etag: Option<String>,
    /// Which token generation earned `etag`: ETags differ per token.
    #[serde(default)]
    pub token_epoch: u64,
    pub next_poll_at: Timestamp,
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Why the last poll or delivery failed; cleared by the next success.
    #[serde(default)]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrState {
    Open,
    Closed,
}

/// A pull request as Ferry last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub repo: RepoName,
    pub number: PrNumber,
    pub head_sha: Sha,
    pub state: PrState,
    /// `/ok-to-test` approval, bound to the head SHA it was given for.
    #[serde(default)]
    pub approved_sha: Option<Sha>,
    #[serde(default)]
    pub approved_by: Option<String>,
    /// Namespace of the preview environment, when one exists.
    #[serde(default)]
    pub preview_namespace: Option<String>,
    /// The branch the pull request comes from.
    #[serde(default)]
    pub head_ref: Option<String>,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub labels: Vec<String>,
    /// The author's `author_association`, as GitHub reported it.
    #[serde(default)]
    pub author_association: Option<String>,
    /// The author's login.
    #[serde(default)]
    pub author: Option<String>,
    /// When GitHub last updated the pull request, as far as Ferry has
    /// heard: an event older than this changes nothing.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// When the head SHA was first seen (the update that brought it): an
    /// `/ok-to-test` written before this did not see this code.
    #[serde(default)]
    pub head_at: Option<Timestamp>,
    /// Consecutive successful listings of open pull requests that did not
    /// show this one open: at two, the reconciler closes it.
    #[serde(default)]
    pub unseen_listings: u32,
    /// The head branch lives in a fork.
    #[serde(default)]
    pub from_fork: bool,
    /// Who pushed the head (the sender of the event that brought it), when
    /// Ferry heard that event: in a fork, they may not be the author.
    #[serde(default)]
    pub head_pushed_by: Option<String>,
    /// Since the last approval, someone who cannot push here pushed to the
    /// fork: every later head carries their commits, whoever pushes next
    /// (a maintainer's "Update branch" too), until a trusted user approves.
    #[serde(default)]
    pub untrusted_push: bool,
    /// Once closed, the store forgets it (and its approval) after this
    /// (`[reconciler] retention_days`); reopened, it is kept again.
    #[serde(default)]
    pub retain_until: Option<Timestamp>,
}

impl PullRequest {
    /// What Ferry knows after hearing `told` (the whole pull request as an
    /// event describes it) on top of `self`: an event older than the last
    /// one heard changes nothing; an approval survives only on the head it
    /// was given for; the preview is kept; the head's first-seen time moves
    /// only with the head.
    pub fn heard(self, told: PullRequest) -> PullRequest {
        if let (Some(known), Some(at)) = (self.updated_at, told.updated_at)
            && at < known
        {
            return self;
        }
        let same_head = self.head_sha == told.head_sha;
        let approved = self.approved_sha.as_ref() == Some(&told.head_sha);
        PullRequest {
            approved_sha: self.approved_sha.filter(|_| approved),
            approved_by: self.approved_by.filter(|_| approved),
            preview_namespace: self.preview_namespace,
            head_at: if same_head { self.head_at.or(told.head_at) } else { told.head_at },
            head_pushed_by: if same_head { self.head_pushed_by.or(told.head_pushed_by) } else { told.head_pushed_by },
            untrusted_push: self.untrusted_push || told.untrusted_push,
            updated_at: told.updated_at.or(self.updated_at),
            unseen_listings: 0,
            ..told
        }
    }
}

/// A preview environment Ferry applied, and what GitHub was told of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub repo: RepoName,
    /// `pr-<n>`, or `release-<tag>` for a prerelease's preview.
    pub of: String,
    pub unit: UnitName,
    pub namespace: String,
    /// The Deployment's name in the namespace.
    pub deployment: String,
    pub sha: Sha,
    /// GitHub's environment (`preview/<unit>/pr-<n>`) and the deployment created there.
    pub environment: String,
    #[serde(default)]
    pub github_deployment: Option<u64>,
    pub url: String,
    pub applied_at: Timestamp,
    /// `success` or `failure` once reported; `None` while it comes up.
    #[serde(default)]
    pub reported: Option<String>,
}

/// A single-use `state` of the management API's GitHub login, kept ten minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OauthState {
    pub state: String,
    pub created_at: Timestamp,
    /// Set when a callback used it: a second use is refused.
    #[serde(default)]
    pub used: bool,
}

impl OauthState {
    pub const LIFETIME: Duration = Duration::from_secs(10 * 60);
}

/// A GitHub login whose user token the OAuth callback stored as
/// `oauth/<login>`: listed, so tracking can use the only one without being
/// told which. The token itself stays in the secret store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub login: String,
    pub logged_in_at: Timestamp,
}

/// A delivery body Ferry acted on, by its SHA-256: the same signed body
/// under another delivery id is a replay (anyone who can read a webhook
/// relay can resend it) and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodySeen {
    /// The body's SHA-256, in hex.
    pub hash: String,
    /// The delivery that brought it first: its own redeliveries still count.
    pub delivery: DeliveryId,
    pub received_at: Timestamp,
}

impl BodySeen {
    /// How long a body is remembered: well past GitHub's 3 days of
    /// redeliveries, so a replay within it is known for one.
    pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
}

/// A release Ferry has recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub repo: RepoName,
    pub tag: Tag,
    #[serde(default)]
    pub prerelease: bool,
    pub recorded_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    Success,
    Failure,
    Error,
}

/// A Tekton run Ferry launched for one unit at one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub repo: RepoName,
    pub unit: UnitName,
    pub sha: Sha,
    pub namespace: String,
    pub name: String,
    pub status: RunStatus,
    /// The last status reported to the forge, so statuses never go backwards.
    #[serde(default)]
    pub reported: Option<RunStatus>,
    /// `PipelineRun` or `TaskRun`.
    #[serde(default)]
    pub run_kind: Option<String>,
    /// Since when it waits, created pending, for a slot (`max_running`);
    /// `None` once started.
    #[serde(default)]
    pub queued_at: Option<Timestamp>,
    /// Its unit's `max_running` when it was launched.
    #[serde(default)]
    pub unit_limit: Option<u32>,
    /// Its unit's `keep_runs` when it was launched.
    #[serde(default)]
    pub keep_runs: Option<u32>,
    /// When Ferry launched it (or queued it, waiting for a slot).
    #[serde(default)]
    pub launched_at: Option<Timestamp>,
    /// The pull request it ran for (what `/cancel` and closing cancel).
    #[serde(default)]
    pub pr: Option<PrNumber>,
    /// Once its result is reported, the store forgets it after this
    /// (`[reconciler] retention_days`).
    #[serde(default)]
    pub retain_until: Option<Timestamp>,
}

impl Run {
    /// `PipelineRun` or `TaskRun` (records from before the kind was kept: `PipelineRun`).
    pub fn kind(&self) -> &str {
        self.run_kind.as_deref().unwrap_or("PipelineRun")
    }
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Received,
    Processed,
    Duplicate,
    Ignored,
    Deferred,
    Failed,
    /// Failed every attempt the reconciler makes: given up, and reported.
    Dead,
    /// Refused before anything was recorded (bad signature or request): only ever a reply.
    Rejected,
}

impl Outcome {
    /// As the delivery log and the reply spell it (`processed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Received => "received",
            Outcome::Processed => "processed",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Deferred => "deferred",
            Outcome::Failed => "failed",
            Outcome::Dead => "dead",
            Outcome::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a delivery (or a command, or a repair) did, as the delivery
/// log and the status page show it: `pipelinerun.created ci/ferry-api-…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub kind: Cow<'static, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl Action {
    pub fn new(kind: &'static str, name: impl ToString) -> Self {
        Self { kind: Cow::Borrowed(kind), namespace: None, name: name.to_string() }
    }

    pub fn in_namespace(kind: &'static str, namespace: impl Into<String>, name: impl ToString) -> Self {
        Self { kind: Cow::Borrowed(kind), namespace: Some(namespace.into()), name: name.to_string() }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// What a delivery decided for one unit: what it does, or why it does not
/// run (the answer to "why didn't it run?").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitDecision {
    pub unit: UnitName,
    /// Whether the unit runs (or its preview changes).
    pub runs: bool,
    /// What is done (`run api`), or why not.
    pub what: String,
}

/// One webhook delivery, keyed by `X-GitHub-Delivery`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub event: String,
    pub received_at: Timestamp,
    pub outcome: Outcome,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub reason: Option<String>,
    /// The repository the event is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<RepoName>,
    /// What acting on it did (at most [`Delivery::KEPT`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// What it decided per unit (at most [`Delivery::KEPT`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<UnitDecision>,
    /// The parsed event, kept so the reconciler can act on it again.
    #[serde(default)]
    pub git_event: Option<Box<GitEvent>>,
    /// When the reconciler last tried it again.
    #[serde(default)]
    pub last_attempt_at: Option<Timestamp>,
    /// The event did not fit one item: it is kept in this many
    /// [`DeliveryPart`]s instead of `git_event`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One piece of an event too large for one item (an installation with
/// thousands of repositories): its JSON, cut into pieces that fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPart {
    pub delivery: DeliveryId,
    pub index: u32,
    pub text: String,
    pub received_at: Timestamp,
}

impl DeliveryPart {
    /// Bytes of JSON in one part: well inside DynamoDB's 400 KB item.
    pub const MAX_BYTES: usize = 256 * 1024;

    /// `event` as parts of `delivery`.
    pub fn split(delivery: &Delivery, event: &GitEvent) -> Vec<DeliveryPart> {
        let text = serde_json::to_string(event).unwrap_or_default();
        let mut parts = Vec::new();
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let cut = rest.floor_char_boundary(Self::MAX_BYTES.min(rest.len()));
            let (piece, tail) = rest.split_at(cut);
            parts.push(DeliveryPart {
                delivery: delivery.id.clone(),
                index: u32::try_from(parts.len()).unwrap_or(u32::MAX),
                text: piece.to_owned(),
                received_at: delivery.received_at,
            });
            rest = tail;
        }
        parts
    }

    /// The event the parts make, in order; `None` if one is missing.
    pub fn join(parts: &[DeliveryPart], count: u32) -> Option<GitEvent> {
        let mut sorted: Vec<&DeliveryPart> = parts.iter().collect();
        sorted.sort_by_key(|p| p.index);
        let complete = sorted.len() == count as usize && sorted.iter().enumerate().all(|(i, p)| p.index as usize == i);
        complete
            .then(|| sorted.iter().map(|p| p.text.as_str()).collect::<String>())
            .and_then(|text| serde_json::from_str(&text).ok())
    }
}

impl Delivery {
    /// Delivery `id` of event `event`, just received at `at`: its first attempt.
    pub fn received(id: DeliveryId, event: &str, at: Timestamp) -> Self {
        Self {
            id,
            event: event.to_owned(),
            received_at: at,
            outcome: Outcome::Received,
            attempts: 1,
            reason: None,
            git_event: None,
            last_attempt_at: None,
            parts: 0,
            repo: None,
            actions: Vec::new(),
            decisions: Vec::new(),
        }
    }

    /// How many actions and decisions a delivery keeps: a repository's units
    /// are bounded, but the record must fit one item whatever they hold.
    pub const KEPT: usize = 64;

    /// Keeps what acting did, within [`Delivery::KEPT`] entries of at most
    /// [`Delivery::KEPT_TEXT`] bytes of text each.
    pub fn acted(&mut self, actions: Vec<Action>, decisions: Vec<UnitDecision>) {
        let cut = |text: &mut String| text.truncate(text.floor_char_boundary(Self::KEPT_TEXT));
        self.actions = actions.into_iter().take(Self::KEPT).collect();
        self.actions.iter_mut().for_each(|a| cut(&mut a.name));
        self.decisions = decisions.into_iter().take(Self::KEPT).collect();
        self.decisions.iter_mut().for_each(|d| cut(&mut d.what));
    }

    /// The longest action name or decision kept, in bytes.
    pub const KEPT_TEXT: usize = 512;

    /// Not done with yet: the reconciler tries it again.
    pub fn is_unfinished(&self) -> bool {
        matches!(self.outcome, Outcome::Received | Outcome::Deferred | Outcome::Failed)
    }

    /// Done with, it keeps what happened (outcome, reason) but not its
    /// event, which only acting on it again reads: less to encode and to
    /// keep for the retention. (DynamoDB still bills the write replacing the
    /// received item by the larger of the two.)
    /// Its reason is kept to [`Delivery::KEPT_REASON`] bytes whatever it is.
    pub fn settle(&mut self) {
        if !self.is_unfinished() {
            self.git_event = None;
        }
        self.cut_reason();
    }

    /// Keeps the first [`Delivery::KEPT_REASON`] bytes of the reason.
    pub fn cut_reason(&mut self) {
        if let Some(reason) = &mut self.reason {
            reason.truncate(reason.floor_char_boundary(Self::KEPT_REASON));
        }
    }

    /// The longest reason kept, in bytes: every skipped unit's reason, joined.
    pub const KEPT_REASON: usize = 8 * 1024;

    /// How long the ledger remembers a delivery (README.md, "State": 7 days).
    pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

    pub fn expires_at(&self) -> Timestamp {
        self.received_at.plus(Self::RETENTION)
    }
}

/// What a scheduled cycle last reported (`reconcile`, `rotate`, `poll`),
/// for the status page: its whole cycle or plan, or a worker's batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleReport {
    /// The cycle, and `.batch` for a worker's batch: `reconcile.batch`.
    pub name: String,
    pub at: Timestamp,
    pub summary: String,
    /// What failed, the first [`CycleReport::KEPT`].
    #[serde(default)]
    pub failures: Vec<String>,
    /// The whole report, as JSON.
    pub fields: String,
}

impl CycleReport {
    pub const KEPT: usize = 20;
    /// Bytes of the report's JSON kept (the rest is cut).
    pub const KEPT_FIELDS: usize = 32 * 1024;
}

/// A named position in some outside listing, e.g. GitHub's delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub name: String,
    pub position: String,
    /// The listing's ETag when everything up to `position` was dealt with.
    #[serde(default)]
    pub etag: Option<String>,
}

/// The ETags of a repository's listings as of the last answer the
/// reconciler acted on whole: asked with them, an unchanged listing is a
/// 304 that costs no rate limit, in a warm process or a cold one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingTags {
    pub repo: RepoName,
    #[serde(default)]
    pub pull_requests: Option<String>,
    /// The pull requests that listing showed open: what an unchanged one
    /// (a 304) still shows.
    #[serde(default)]
    pub open: Vec<u64>,
    #[serde(default)]
    pub releases: Option<String>,
    /// The repository's pending runs and open pull requests carry their
    /// listing: records written before Ferry listed them were written again.
    #[serde(default)]
    pub listed: bool,
}

impl ListingTags {
    /// Nothing known yet of `repo`'s listings.
    pub fn new(repo: RepoName) -> Self {
        Self { repo, pull_requests: None, open: Vec::new(), releases: None, listed: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_reads_in_logs_as_in_the_reply() {
        use Outcome::*;
        for outcome in [Received, Processed, Duplicate, Ignored, Deferred, Failed, Dead, Rejected] {
            assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.to_string());
        }
        assert_eq!(Outcome::Processed.to_string(), "processed");
    }

    /// A settled delivery keeps its event exactly while the reconciler may
    /// still act on it.
    #[test]
    fn a_delivery_keeps_its_event_only_while_unfinished() {
        use Outcome::*;
        for outcome in [Received, Processed, Duplicate, Ignored, Deferred, Failed, Dead, Rejected] {
            let event = crate::domain::event::GitEvent::new("ping", None, crate::domain::event::Detail::Ping);
            let mut delivery = Delivery::received(DeliveryId::parse("d-1").unwrap(), "ping", Timestamp::from_unix(0));
            (delivery.outcome, delivery.git_event) = (outcome, Some(Box::new(event)));
            delivery.settle();
            let kept = matches!(outcome, Received | Deferred | Failed);
            assert_eq!(delivery.git_event.is_some(), kept, "{outcome}");
            assert_eq!(delivery.outcome, outcome);
        }
    }

    fn sha(c: char) -> Sha {
        Sha::parse(c.to_string().repeat(40)).unwrap()
    }

    fn told(head: char, at: i64, state: PrState) -> PullRequest {
        PullRequest {
            repo: RepoName::parse("acme/api").unwrap(),
            number: PrNumber::new(7),
            head_sha: sha(head),
            state,
            approved_sha: None,
            approved_by: None,
            preview_namespace: None,
            head_ref: Some("feature".into()),
            draft: false,
            labels: vec![],
            author_association: Some("CONTRIBUTOR".into()),
            author: Some("someone".into()),
            updated_at: Some(Timestamp::from_unix(at)),
            head_at: Some(Timestamp::from_unix(at)),
            unseen_listings: 0,
            from_fork: false,
            head_pushed_by: None,
            untrusted_push: false,
            retain_until: None,
        }
    }

    fn known(head: char, at: i64) -> PullRequest {
        PullRequest {
            approved_sha: Some(sha(head)),
            approved_by: Some("maintainer".into()),
            preview_namespace: Some("preview-x".into()),
            ..told(head, at, PrState::Open)
        }
    }

    #[test]
    fn an_older_update_changes_nothing() {
        let before = known('a', 100);
        assert_eq!(before.clone().heard(told('b', 99, PrState::Closed)), before);
    }

    #[test]
    fn a_newer_update_on_the_same_head_keeps_approval_preview_and_head_time() {
        let merged = known('a', 100).heard(PullRequest { labels: vec!["x".into()], ..told('a', 150, PrState::Open) });
        assert_eq!(merged.labels, ["x"]);
        assert_eq!(merged.approved_sha, Some(sha('a')));
        assert_eq!(merged.approved_by.as_deref(), Some("maintainer"));
        assert_eq!(merged.preview_namespace.as_deref(), Some("preview-x"));
        assert_eq!(
            (merged.head_at, merged.updated_at),
            (Some(Timestamp::from_unix(100)), Some(Timestamp::from_unix(150)))
        );
    }

    #[test]
    fn a_new_head_lapses_the_approval_and_restarts_the_head_time() {
        let merged = known('a', 100).heard(told('b', 200, PrState::Open));
        assert_eq!((merged.approved_sha, merged.approved_by), (None, None));
        assert_eq!(merged.head_sha, sha('b'));
        assert_eq!(merged.head_at, Some(Timestamp::from_unix(200)));
        assert_eq!(merged.preview_namespace.as_deref(), Some("preview-x"));
    }

    #[test]
    fn the_same_second_or_an_unknown_time_is_not_older() {
        let merged = known('a', 100).heard(told('a', 100, PrState::Closed));
        assert_eq!(merged.state, PrState::Closed);
        let merged =
            known('a', 100).heard(PullRequest { updated_at: None, head_at: None, ..told('b', 0, PrState::Open) });
        assert_eq!((merged.head_sha, merged.updated_at), (sha('b'), Some(Timestamp::from_unix(100))));
        let legacy = PullRequest { updated_at: None, head_at: None, ..known('a', 0) };
        assert_eq!(legacy.heard(told('a', 300, PrState::Open)).head_at, Some(Timestamp::from_unix(300)));
    }

    #[test]
    fn an_event_too_large_for_one_item_comes_back_whole_from_its_parts() {
        use crate::domain::event::{Detail, InstallationDetail};
        let repositories =
            (0..6000).map(|i| RepoName::parse(format!("acme/{}-{i}", "r".repeat(80))).unwrap()).collect();
        let detail = Detail::Installation(InstallationDetail {
            account: "acme".into(),
            repository_selection: "selected".into(),
            suspended: false,
            repositories,
        });
        let event = GitEvent {
            action: Some("created".into()),
            installation: Some(InstallationId::new(1)),
            ..GitEvent::new("installation", None, detail)
        };
        let delivery = Delivery::received(DeliveryId::parse("big").unwrap(), "installation", Timestamp::from_unix(1));
        let parts = DeliveryPart::split(&delivery, &event);
        assert!(parts.len() > 1 && parts.iter().all(|p| p.text.len() <= DeliveryPart::MAX_BYTES));
        let count = u32::try_from(parts.len()).unwrap();
        let mut shuffled = parts.clone();
        shuffled.reverse();
        assert_eq!(DeliveryPart::join(&shuffled, count), Some(event));
        assert_eq!(DeliveryPart::join(&parts[1..], count), None, "a part missing");
        assert_eq!(DeliveryPart::join(&parts, count + 1), None, "a part more expected");
    }
}
