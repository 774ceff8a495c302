//! Git hosts: what they send us and what we ask of them.

pub mod github;

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::tokens::StoredToken;
use crate::domain::{InstallationId, RepoName};

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
