//! The other hosts a repository can live on (README.md, "Reconciler",
//! `report_to`, "Polling"): one port, `Host` (post a commit status, read a
//! file at a commit), and an adapter per host. GitHub goes through the
//! GitHub forge (`forge::github`); these adapters serve repositories on
//! GitLab, Bitbucket Cloud, Azure DevOps and Gitea (or Forgejo), as
//! mirrors of GitHub repositories (`mirror`) or polled there (`hosted`).
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
pub mod hosted;
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

    /// The path's segments in the shape `provider` names repositories by.
    pub fn parts(&self, provider: Provider) -> Result<Vec<&str>, String> {
        let parts: Vec<&str> = self.path.split('/').collect();
        let (fits, shape) = match provider {
            // A numeric project id is one segment.
            Provider::Gitlab => (!parts.is_empty(), "group/project or a project id"),
            Provider::Bitbucket => (parts.len() == 2, "workspace/repo_slug"),
            Provider::AzureDevops => (parts.len() == 3, "organization/project/repository"),
            Provider::Gitea => (parts.len() == 2, "owner/repo"),
        };
        if fits && parts.iter().all(|p| !p.is_empty()) {
            Ok(parts)
        } else {
            Err(format!("{:?} is not {shape}", self.path))
        }
    }

    fn segments(&self, provider: Provider) -> Result<Vec<&str>, ForgeError> {
        self.parts(provider).map_err(|message| ForgeError::Rejected {
            what: format!("the repository {:?}", self.path),
            status: 0,
            message,
        })
    }
}

/// What Ferry does on another host, for one repository.
#[async_trait]
pub trait Host: Send + Sync {
    /// Posts a commit status; a later one of the same context replaces it.
    async fn report(&self, at: &HostRepo, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError>;

    /// A file's text at a commit; `None` when there is no such file.
    async fn file(&self, at: &HostRepo, sha: &Sha, path: &str) -> Result<Option<String>, ForgeError>;
}

/// The longest file Ferry reads from a host: far above any units file.
pub const FILE_LIMIT: usize = 1024 * 1024;

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
pub fn host(provider: Provider, base: Url, token: SecretString, http: reqwest::Client) -> Arc<dyn Host> {
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

    /// Sends `request`, mapping the answer: 2xx is done; 401 refuses the
    /// token; 429 and 5xx are worth retrying; any other is rejected. The
    /// error never carries the request (and so never the token).
    pub async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> Result<(u16, String), ForgeError> {
        let (status, body) = self.exchange(what, request, ANSWER_LIMIT).await?;
        if !(200..300).contains(&status) {
            tracing::warn!(%what, status, "the host did not take the status");
        }
        match status {
            200..=299 => Ok((status, String::from_utf8_lossy(&body).into_owned())),
            _ => Err(refusal(what, status, &body)),
        }
    }

    /// Reads a file's answer: `None` for a 404, an error for more than
    /// [`FILE_LIMIT`] bytes. Otherwise as `send`.
    pub async fn read(&self, what: &str, request: reqwest::RequestBuilder) -> Result<Option<Vec<u8>>, ForgeError> {
        match self.exchange(what, request, FILE_LIMIT).await? {
            (200, body) => Ok(Some(body)),
            (404, _) => Ok(None),
            (status, body) => Err(refusal(what, status, &body)),
        }
    }

    /// The answer's status and body; the body of an error answer is cut
    /// short, and a successful one longer than `limit` is an error.
    async fn exchange(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        limit: usize,
    ) -> Result<(u16, Vec<u8>), ForgeError> {
        let unavailable = |e: reqwest::Error| ForgeError::Unavailable(format!("{what}: {}", e.without_url()));
        let response = request.timeout(std::time::Duration::from_secs(10)).send().await.map_err(unavailable)?;
        let status = response.status().as_u16();
        let success = (200..300).contains(&status);
        // Only the start of an error answer is ever shown.
        let limit = if success { limit } else { 1024 };
        let (body, cut) = crate::net::read_up_to(response, limit).await.map_err(unavailable)?;
        if cut && success {
            let message = format!("the answer is larger than {limit} bytes");
            return Err(ForgeError::Rejected { what: what.to_owned(), status, message });
        }
        Ok((status, body))
    }
}

/// The longest answer to a status Ferry reads.
const ANSWER_LIMIT: usize = 64 * 1024;

/// What an answer other than the hoped-for one means.
fn refusal(what: &str, status: u16, body: &[u8]) -> ForgeError {
    match status {
        401 => ForgeError::Unauthorized,
        429 => ForgeError::RateLimited { retry_after: None },
        500.. => ForgeError::Unavailable(format!("{what}: {status}")),
        _ => ForgeError::Rejected {
            what: what.to_owned(),
            status,
            message: String::from_utf8_lossy(body).chars().take(200).collect(),
        },
    }
}

/// A file's bytes as text, or the error saying it is not.
pub(crate) fn text(what: &str, bytes: Vec<u8>) -> Result<String, ForgeError> {
    String::from_utf8(bytes).map_err(|_| ForgeError::Rejected {
        what: what.to_owned(),
        status: 200,
        message: "the file is not UTF-8 text".into(),
    })
}

/// How Git reaches `provider` with `token`: the user name it sends beside
/// it there. A token given as `<user>:<token>` (a Bitbucket app password,
/// a GitLab deploy token) carries its own user.
pub fn clone_credential(provider: Provider, token: SecretString) -> (String, SecretString) {
    use secrecy::ExposeSecret;
    if let Some((user, password)) = token.expose_secret().split_once(':') {
        return (user.to_owned(), SecretString::from(password.to_owned()));
    }
    let user = match provider {
        // GitLab documents `oauth2` for personal, project and group tokens.
        Provider::Gitlab => "oauth2",
        // Bitbucket's access tokens clone as `x-token-auth`.
        Provider::Bitbucket => "x-token-auth",
        // Both take any user name beside a token.
        Provider::AzureDevops | Provider::Gitea => "ferry",
    };
    (user.to_owned(), token)
}

pub(crate) use crate::net::{path as file_path, segment};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_read_by_name() {
        assert_eq!("azure_devops".parse::<Provider>(), Ok(Provider::AzureDevops));
        assert!("github".parse::<Provider>().is_err());
        assert_eq!(segment("group/sub project"), "group%2Fsub%20project");
        assert!(HostRepo::new("/acme/api/").parts(Provider::Gitea).is_ok());
        assert!(HostRepo::new("acme").parts(Provider::Gitea).is_err());
        assert!(HostRepo::new("group/sub/project").parts(Provider::Gitlab).is_ok());
        assert!(HostRepo::new("group/sub/project").parts(Provider::Bitbucket).is_err());
        assert!(HostRepo::new("org/project/repo").parts(Provider::AzureDevops).is_ok());
        assert!(HostRepo::new("org//repo").parts(Provider::AzureDevops).is_err());
    }

    #[test]
    fn each_host_clones_with_the_user_name_it_expects() {
        use secrecy::ExposeSecret;
        let cases = [
            (Provider::Gitlab, "glpat-x", "oauth2", "glpat-x"),
            (Provider::Gitlab, "gitlab+deploy-token-7:gldt-x", "gitlab+deploy-token-7", "gldt-x"),
            (Provider::Bitbucket, "ci-bot:app-pass", "ci-bot", "app-pass"),
            (Provider::Bitbucket, "ATCTT-access", "x-token-auth", "ATCTT-access"),
            (Provider::AzureDevops, "pat", "ferry", "pat"),
            (Provider::Gitea, "token", "ferry", "token"),
        ];
        for (provider, token, user, password) in cases {
            let (got_user, got) = clone_credential(provider, SecretString::from(token.to_owned()));
            assert_eq!((got_user.as_str(), got.expose_secret()), (user, password), "{provider:?}");
        }
    }
}
