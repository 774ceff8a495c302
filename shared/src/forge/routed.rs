//! Each call goes where its credential leads: a repository on another host
//! to that host (`report::hosted`); with a GitHub App, everything else to
//! GitHub; without one, a repository with its own token stored
//! (repository-token mode) to GitHub, at `FERRY_GITHUB_API_URL`, and any
//! other to the dry run.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{CheckRun, CommitStatus, DeploymentStatus, Forge, ForgeError, Listed, Target};
use crate::domain::event::GitEvent;
use crate::domain::tokens::Credential;
use crate::domain::{PrNumber, Sha};
use crate::secrets::{SecretName, SecretStore};

/// Which forge a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Github,
    DryRun,
    Host,
}

/// Where a call with `credential` goes, given whether a GitHub App is configured and
/// whether a repository token is stored for it: without an App, only a
/// repository token reaches GitHub (there is nothing to mint an
/// installation token with).
pub fn via(credential: &Credential, app: bool, token_stored: bool) -> Via {
    match credential {
        Credential::Host(_) => Via::Host,
        Credential::Installation(_) | Credential::Repository(_) if app => Via::Github,
        Credential::Repository(_) if token_stored => Via::Github,
        Credential::Repository(_) | Credential::Installation(_) => Via::DryRun,
    }
}

/// The forges calls are routed to.
pub struct Forges {
    pub github: Arc<dyn Forge>,
    pub dry_run: Arc<dyn Forge>,
    /// Repositories polled on their own host (`report::hosted`).
    pub host: Arc<dyn Forge>,
    /// Whether a GitHub App is configured.
    pub app: bool,
}

pub struct ByCredential {
    forges: Forges,
    secrets: Arc<dyn SecretStore>,
}

impl ByCredential {
    pub fn new(forges: Forges, secrets: Arc<dyn SecretStore>) -> Self {
        Self { forges, secrets }
    }

    async fn pick(&self, at: &Target) -> Result<&dyn Forge, ForgeError> {
        let token_stored = match &at.credential {
            // With an App, the route does not depend on it: not read.
            Credential::Repository(_) if self.forges.app => false,
            Credential::Repository(repo) => {
                let name = SecretName::repository(repo).map_err(|e| ForgeError::NoCredential(e.to_string()))?;
                let stored = self.secrets.get(&name).await;
                stored.map_err(|e| ForgeError::Unavailable(format!("reading the secret store: {e}")))?.is_some()
            }
            Credential::Installation(_) | Credential::Host(_) => false,
        };
        Ok(match via(&at.credential, self.forges.app, token_stored) {
            Via::Github => self.forges.github.as_ref(),
            Via::DryRun => self.forges.dry_run.as_ref(),
            Via::Host => self.forges.host.as_ref(),
        })
    }
}

#[async_trait]
impl Forge for ByCredential {
    async fn file(&self, at: &Target, sha: &Sha, path: &str) -> Result<Option<String>, ForgeError> {
        self.pick(at).await?.file(at, sha, path).await
    }

    async fn pull_request_files(&self, at: &Target, number: PrNumber) -> Result<Option<Vec<String>>, ForgeError> {
        self.pick(at).await?.pull_request_files(at, number).await
    }

    async fn commit_of(&self, at: &Target, reference: &str) -> Result<Option<Sha>, ForgeError> {
        self.pick(at).await?.commit_of(at, reference).await
    }

    async fn status(&self, at: &Target, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        self.pick(at).await?.status(at, sha, status).await
    }

    async fn deployment(&self, at: &Target, sha: &Sha, environment: &str, url: &str) -> Result<u64, ForgeError> {
        self.pick(at).await?.deployment(at, sha, environment, url).await
    }

    async fn check_run(&self, at: &Target, sha: &Sha, check: &CheckRun<'_>) -> Result<(), ForgeError> {
        self.pick(at).await?.check_run(at, sha, check).await
    }

    async fn deployment_status(&self, at: &Target, status: &DeploymentStatus<'_>) -> Result<(), ForgeError> {
        self.pick(at).await?.deployment_status(at, status).await
    }

    async fn comment(&self, at: &Target, number: PrNumber, key: &str, body: &str) -> Result<(), ForgeError> {
        self.pick(at).await?.comment(at, number, key, body).await
    }

    async fn can_push(&self, at: &Target, login: &str) -> Result<Option<bool>, ForgeError> {
        self.pick(at).await?.can_push(at, login).await
    }

    async fn hooks(&self, at: &Target) -> Result<Vec<(u64, String)>, ForgeError> {
        self.pick(at).await?.hooks(at).await
    }

    async fn create_hook(&self, at: &Target, url: &str, secret: &SecretString) -> Result<u64, ForgeError> {
        self.pick(at).await?.create_hook(at, url, secret).await
    }

    async fn delete_hook(&self, at: &Target, id: u64) -> Result<(), ForgeError> {
        self.pick(at).await?.delete_hook(at, id).await
    }

    async fn open_pull_requests(&self, at: &Target, etag: Option<&str>) -> Result<Listed<GitEvent>, ForgeError> {
        self.pick(at).await?.open_pull_requests(at, etag).await
    }

    async fn releases(&self, at: &Target, etag: Option<&str>) -> Result<Listed<GitEvent>, ForgeError> {
        self.pick(at).await?.releases(at, etag).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InstallationId, RepoName};

    #[test]
    fn only_a_stored_repository_token_reaches_github_without_an_app() {
        let repo = RepoName::parse("acme/web").unwrap();
        let cases = [
            (Credential::Repository(repo.clone()), true, Via::Github),
            (Credential::Repository(repo), false, Via::DryRun),
            (Credential::Installation(InstallationId::new(7)), true, Via::DryRun),
            (Credential::Installation(InstallationId::new(7)), false, Via::DryRun),
        ];
        for (credential, stored, expected) in cases {
            assert_eq!(via(&credential, false, stored), expected, "{credential} with a token stored: {stored}");
        }
    }

    #[test]
    fn with_an_app_github_takes_all_but_another_host_s_repositories() {
        let repo = RepoName::parse("acme/web").unwrap();
        let host = RepoName::parse("gitlab.com/acme.web").unwrap();
        for stored in [true, false] {
            assert_eq!(via(&Credential::Repository(repo.clone()), true, stored), Via::Github);
            assert_eq!(via(&Credential::Installation(InstallationId::new(7)), true, stored), Via::Github);
            for app in [true, false] {
                assert_eq!(via(&Credential::Host(host.clone()), app, stored), Via::Host);
            }
        }
    }
}
