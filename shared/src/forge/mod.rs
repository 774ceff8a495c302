//! Git hosts: what they send us and what we ask of them.

pub mod dry_run;
pub mod github;
pub mod routed;

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::domain::event::GitEvent;
use crate::domain::repair::HookAttempt;
use crate::domain::tokens::{Credential, StoredToken};
use crate::domain::{InstallationId, PrNumber, RepoName, Sha};

pub use dry_run::DryRunForge;

/// What a minted installation token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScope {
    /// Everything the installation was granted. It never leaves Ferry.
    Installation,
    /// Read the contents of one repository, nothing else: what a pipeline
    /// gets to clone with.
    CloneOnly(RepoName),
}

/// The forge's side of App credentials: installation tokens on demand.
#[async_trait]
pub trait TokenMinter: Send + Sync {
    /// A new token for `installation`, narrowed to `scope`.
    async fn mint(&self, installation: InstallationId, scope: &TokenScope) -> Result<StoredToken, MintError>;

    /// False when there is nothing to mint with: callers skip the work around a mint.
    fn configured(&self) -> bool {
        true
    }

    /// The login the App's installation tokens act as (`<app-slug>[bot]`):
    /// the author of every comment Ferry writes with them.
    async fn app_login(&self) -> Result<String, ForgeError> {
        Err(ForgeError::NoCredential("no GitHub App is configured".into()))
    }
}

/// Why no token came back. Every case is retried at the next cycle; none
/// quotes a token, a JWT or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    #[error("no GitHub App is configured (FERRY_GITHUB_APP_ID and a private key)")]
    NotConfigured,
    #[error("the App's private key is unusable: {0}")]
    Key(String),
    #[error(
        "GitHub refused the App's credentials (401: {message}); check FERRY_GITHUB_APP_ID, the private key and the clock"
    )]
    Unauthorized { message: String },
    #[error("GitHub does not know installation {installation} (404): the App was uninstalled, or it is another App's")]
    NotFound { installation: InstallationId },
    #[error("GitHub refused the token (403: {message})")]
    Forbidden { message: String },
    #[error("GitHub refused the request ({status}: {message})")]
    Rejected { status: u16, message: String },
    #[error("GitHub is rate limiting the App{}", retry_after.map(|d| format!("; retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("GitHub could not be reached or failed: {0}")]
    Unavailable(String),
}

/// A repository, and the credential Ferry reaches it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub repo: RepoName,
    pub credential: Credential,
}

/// A commit status state, as GitHub names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

/// One commit status: `context` is `ferry/<unit>` (or `ferry/config`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitStatus {
    pub context: String,
    pub state: StatusState,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
}

/// A completed check run `name` with `conclusion` (`failure`), and a title
/// and summary saying why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckRun<'a> {
    pub name: &'a str,
    pub conclusion: &'a str,
    pub title: &'a str,
    pub summary: &'a str,
}

/// Deployment `id`'s new `state`: `in_progress`, `success` (with its URL),
/// `failure` (with the reason) or `inactive` (removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeploymentStatus<'a> {
    pub id: u64,
    pub environment: &'a str,
    pub state: &'a str,
    pub url: Option<&'a str>,
    pub description: &'a str,
}

impl CommitStatus {
    /// GitHub keeps at most 140 characters of a description.
    pub const DESCRIPTION_LIMIT: usize = 140;

    pub fn new(context: impl Into<String>, state: StatusState, description: impl AsRef<str>) -> Self {
        let description: String = description.as_ref().chars().take(Self::DESCRIPTION_LIMIT).collect();
        Self { context: context.into(), state, description, target_url: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForgeError {
    #[error("the forge refused the credential (401)")]
    Unauthorized,
    #[error("the forge is rate limiting{}", retry_after.map(|d| format!("; retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("the forge refused {what} ({status}: {message})")]
    Rejected { what: String, status: u16, message: String },
    #[error("the forge could not be reached or failed: {0}")]
    Unavailable(String),
    #[error("no credential for {0}")]
    NoCredential(String),
}

/// What Ferry reads from and reports to a Git host, for one repository.
#[async_trait]
pub trait Forge: Send + Sync {
    /// A file's text at a commit; `None` when there is no such file.
    async fn file(&self, at: &Target, sha: &Sha, path: &str) -> Result<Option<String>, ForgeError>;

    /// The paths a pull request changes; `None` when there are more than
    /// the host lists (then every path counts as changed).
    async fn pull_request_files(&self, at: &Target, number: PrNumber) -> Result<Option<Vec<String>>, ForgeError>;

    /// The commit a branch, tag or SHA names; `None` when it names none.
    async fn commit_of(&self, at: &Target, reference: &str) -> Result<Option<Sha>, ForgeError>;

    /// Sets a commit status.
    async fn status(&self, at: &Target, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError>;

    /// Creates a deployment of `sha` to `environment` (to be live at
    /// `url`), marked `in_progress`: its id, for the status the reconciler
    /// reports once the preview is up or cannot come up.
    async fn deployment(&self, at: &Target, sha: &Sha, environment: &str, url: &str) -> Result<u64, ForgeError>;

    /// A completed check run on `sha`: richer than a status where the host
    /// has checks (GitHub, with the App's `checks: write`). Where the
    /// credential may not create check runs, nothing is done.
    async fn check_run(&self, at: &Target, sha: &Sha, check: &CheckRun<'_>) -> Result<(), ForgeError>;

    /// Sets a deployment's status.
    async fn deployment_status(&self, at: &Target, status: &DeploymentStatus<'_>) -> Result<(), ForgeError>;

    /// Writes Ferry's comment `key` on a pull request: edits the one
    /// written before instead of adding another. Only a comment Ferry
    /// itself wrote (its marker, and Ferry's own author) is edited: a
    /// stranger's comment carrying the marker is left alone.
    async fn comment(&self, at: &Target, number: PrNumber, key: &str, body: &str) -> Result<(), ForgeError>;

    /// Whether `login` may push to the repository (write, maintain or
    /// admin): who may run code through Ferry. `None`: the host cannot
    /// tell (the dry run without a permissions file), so the author
    /// association GitHub sent decides alone.
    async fn can_push(&self, at: &Target, login: &str) -> Result<Option<bool>, ForgeError>;

    /// The repository webhooks, as `(id, delivery URL)`.
    async fn hooks(&self, at: &Target) -> Result<Vec<(u64, String)>, ForgeError>;

    /// Creates a repository webhook delivering Ferry's events to `url`,
    /// signed with `secret`: its id.
    async fn create_hook(&self, at: &Target, url: &str, secret: &SecretString) -> Result<u64, ForgeError>;

    /// Deletes webhook `id`; one already gone is fine.
    async fn delete_hook(&self, at: &Target, id: u64) -> Result<(), ForgeError>;

    /// Every open pull request, each as a `pull_request` event describing
    /// it (`happened_at` = its last update), unless unchanged since `etag`;
    /// [`Listed::Incomplete`] when the host cannot list them all (too many,
    /// or a dry run without a listing).
    async fn open_pull_requests(&self, at: &Target, etag: Option<&str>) -> Result<Listed<GitEvent>, ForgeError>;

    /// The newest published releases, each as a `release` event
    /// (`published` or `prereleased`; `happened_at` = its publication),
    /// unless unchanged since `etag`.
    async fn releases(&self, at: &Target, etag: Option<&str>) -> Result<Listed<GitEvent>, ForgeError>;
}

/// A listing asked for with the ETag of the last answer Ferry acted on
/// (README.md, "Reconciler"): an unchanged listing costs no rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed<T> {
    /// Nothing changed since the ETag asked with (GitHub's 304).
    Unchanged,
    /// The whole listing, and the ETag to ask with next time: none when the
    /// host sent none, or the listing spans pages (a page's ETag says
    /// nothing of the others).
    Changed { items: Vec<T>, etag: Option<String> },
    /// Too long to read whole: nothing may be concluded from what it misses.
    Incomplete,
}

impl<T> Listed<T> {
    /// A whole listing with no ETag to ask with.
    pub fn all(items: Vec<T>) -> Self {
        Listed::Changed { items, etag: None }
    }
}

/// The App's own webhook log (`/app/hook/deliveries`), read and replayed
/// with the App's JWT: how the reconciler finds deliveries GitHub could
/// not make.
#[async_trait]
pub trait AppHooks: Send + Sync {
    /// Delivery attempts, newest first, down to (not including) the attempt
    /// `after`, at most `max` of them, unless the log is unchanged since `etag`.
    async fn deliveries(
        &self,
        after: Option<u64>,
        max: usize,
        etag: Option<&str>,
    ) -> Result<Listed<HookAttempt>, ForgeError>;

    /// Asks GitHub to deliver attempt `id` again.
    async fn redeliver(&self, id: u64) -> Result<(), ForgeError>;

    /// False without App credentials: there is no log to read.
    fn configured(&self) -> bool {
        true
    }
}

/// No App: no webhook log.
#[async_trait]
impl AppHooks for crate::forge::github::NoApp {
    async fn deliveries(&self, _: Option<u64>, _: usize, _: Option<&str>) -> Result<Listed<HookAttempt>, ForgeError> {
        Ok(Listed::all(Vec::new()))
    }

    async fn redeliver(&self, _: u64) -> Result<(), ForgeError> {
        Err(ForgeError::Unavailable("no GitHub App is configured".into()))
    }

    fn configured(&self) -> bool {
        false
    }
}

/// Whether a repository permission (`admin`, `maintain`, `write`,
/// `triage`, `read`, `none`) lets its holder push.
pub fn grants_push(permission: &str) -> bool {
    matches!(permission, "admin" | "maintain" | "write")
}

/// The hidden line that marks Ferry's comment `key`.
pub fn comment_marker(key: &str) -> String {
    format!("<!-- ferry:{key} -->")
}

/// Where a forge adapter gets the token for a credential, and says when the
/// host refused one (so the next call gets a replacement).
#[async_trait]
pub trait Credentials: Send + Sync {
    async fn token(&self, credential: &Credential) -> Result<secrecy::SecretString, String>;
    fn refused(&self, credential: &Credential, token: &secrecy::SecretString);
    /// The login installation tokens act as: see [`TokenMinter::app_login`].
    async fn app_login(&self) -> Result<String, ForgeError>;
}
