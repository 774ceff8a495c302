//! What Ferry remembers, one type per row kind of DESIGN.md's state table.
//! The store decides where each lives; these types only say what it is.

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
        }
    }
}

/// How Ferry reaches a repository: as a GitHub App, or with a repository token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoMode {
    App,
    Token,
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
    /// Refused before anything was recorded (bad signature or request): only ever a reply.
    Rejected,
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
    /// The parsed event, kept so the reconciler can act on it again.
    #[serde(default)]
    pub git_event: Option<Box<GitEvent>>,
}

impl Delivery {
    /// How long the ledger remembers a delivery (DESIGN.md: TTL 7 days).
    pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

    pub fn expires_at(&self) -> Timestamp {
        self.received_at.plus(Self::RETENTION)
    }
}

/// A named position in some outside listing, e.g. GitHub's delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub name: String,
    pub position: String,
}
