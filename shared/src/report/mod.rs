//! Reporting a run's result as a commit status on the host the repository
//! lives on (README.md, "Reconciler", `report_to`): one port, `StatusReporter`, and an
//! adapter per host. GitHub's statuses go through the GitHub forge
//! (`forge::github`); these adapters serve repositories on GitLab,
//! Bitbucket Cloud, Azure DevOps and Gitea (or Forgejo).
//!
//! Each maps Ferry's four states (`pending`, `success`, `failure`,
//! `error`) onto the host's own, keeps the context (`ferry/<unit>`, or
//! `ferry/<cluster>/<unit>`) as the host's status name so a later status
//! replaces an earlier one, and never lets the token into a log line or an
//! error message.

pub mod azure_devops;
pub mod bitbucket;
pub mod gitea;
pub mod gitlab;
pub mod mirror;

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::domain::Sha;
use crate::forge::{CommitStatus, ForgeError};

/// A repository as its host names it: GitLab `group/subgroup/project`,
/// Bitbucket `workspace/repo_slug`, Azure DevOps
/// `organization/project/repository`, Gitea `owner/repo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRepo {
    pub path: String,
}

impl HostRepo {
    pub fn new(path: impl Into<String>) -> Self {
        Self { path: path.into().trim_matches('/').to_owned() }
    }

    /// The path's segments, or an error naming the shape the host needs.
    fn segments(&self, count: usize, shape: &str) -> Result<Vec<&str>, ForgeError> {
        let parts: Vec<&str> = self.path.split('/').collect();
        if parts.len() == count && parts.iter().all(|p| !p.is_empty()) {
            Ok(parts)
        } else {
            Err(ForgeError::Rejected {
                what: format!("the repository {:?}", self.path),
                status: 0,
                message: format!("expected {shape}"),
            })
        }
    }
}

/// Where a commit's statuses are reported.
#[async_trait]
pub trait StatusReporter: Send + Sync {
    async fn report(&self, at: &HostRepo, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError>;
}

/// The hosts with a status adapter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Gitlab,
    Bitbucket,
    AzureDevops,
    Gitea,
}

impl std::str::FromStr for Provider {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(text.to_owned()))
            .map_err(|_| format!("{text:?} is not one of gitlab, bitbucket, azure_devops, gitea"))
    }
}

impl Provider {
    /// The public service's API base, for hosts that have one.
    pub fn default_base(self) -> Option<Url> {
        let base = match self {
            Provider::Gitlab => "https://gitlab.com",
            Provider::Bitbucket => "https://api.bitbucket.org",
            Provider::AzureDevops => "https://dev.azure.com",
            Provider::Gitea => return None,
        };
        Url::parse(base).ok()
    }
}

/// The adapter for `provider` at `base` (the host's root URL), with `token`.
pub fn reporter(provider: Provider, base: Url, token: SecretString, http: reqwest::Client) -> Arc<dyn StatusReporter> {
    let client = Client { base, token, http };
    match provider {
        Provider::Gitlab => Arc::new(gitlab::Gitlab(client)),
        Provider::Bitbucket => Arc::new(bitbucket::Bitbucket(client)),
        Provider::AzureDevops => Arc::new(azure_devops::AzureDevops(client)),
        Provider::Gitea => Arc::new(gitea::Gitea(client)),
    }
}

/// What every adapter holds.
pub(crate) struct Client {
    pub base: Url,
    pub token: SecretString,
    pub http: reqwest::Client,
}

impl Client {
    /// `base` with `path` (already percent-encoded where needed) below it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// Sends `request`, mapping the answer: 2xx is done; 401/403 refuse
    /// the token; 429 and 5xx are worth retrying; any other is rejected.
    /// The error never carries the request (and so never the token).
    pub async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> Result<(u16, String), ForgeError> {
        let response = request
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| ForgeError::Unavailable(format!("{what}: {}", e.without_url())))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            tracing::warn!(%what, status, "the host did not take the status");
        }
        match status {
            200..=299 => Ok((status, body)),
            401 => Err(ForgeError::Unauthorized),
            429 => Err(ForgeError::RateLimited { retry_after: None }),
            500.. => Err(ForgeError::Unavailable(format!("{what}: {status}"))),
            _ => Err(ForgeError::Rejected { what: what.to_owned(), status, message: body.chars().take(200).collect() }),
        }
    }
}

/// Percent-encodes one path segment (all but unreserved characters).
pub(crate) fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_read_by_name() {
        assert_eq!("azure_devops".parse::<Provider>(), Ok(Provider::AzureDevops));
        assert!("github".parse::<Provider>().is_err());
        assert_eq!(segment("group/sub project"), "group%2Fsub%20project");
        assert!(HostRepo::new("/acme/api/").segments(2, "owner/repo").is_ok());
        assert!(HostRepo::new("acme").segments(2, "owner/repo").is_err());
    }
}
