//! Without a GitHub App, each call goes where its credential leads: a
//! repository with its own token stored (repository-token mode) is GitHub's,
//! at `FERRY_GITHUB_API_URL`; any other is the dry run's.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{CommitStatus, Forge, ForgeError, Target};
use crate::domain::event::GitEvent;
use crate::domain::tokens::Credential;
use crate::domain::{PrNumber, Sha};
use crate::secrets::{SecretName, SecretStore};

/// Which forge a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Github,
    DryRun,
}

/// The route for a credential, given whether a repository token is stored
/// for it: only a repository token reaches GitHub (there is no App to mint
/// an installation token with).
pub fn route(credential: &Credential, token_stored: bool) -> Route {
    match credential {
        Credential::Repository(_) if token_stored => Route::Github,
        Credential::Repository(_) | Credential::Installation(_) | Credential::Host(_) => Route::DryRun,
    }
}

pub struct ByCredential {
    github: Arc<dyn Forge>,
    dry_run: Arc<dyn Forge>,
    secrets: Arc<dyn SecretStore>,
}

impl ByCredential {
    pub fn new(github: Arc<dyn Forge>, dry_run: Arc<dyn Forge>, secrets: Arc<dyn SecretStore>) -> Self {
        Self { github, dry_run, secrets }
    }

    async fn pick(&self, at: &Target) -> Result<&dyn Forge, ForgeError> {
        let token_stored = match &at.credential {
            Credential::Repository(repo) => {
                let name = SecretName::repository(repo).map_err(|e| ForgeError::NoCredential(e.to_string()))?;
                let stored = self.secrets.get(&name).await;
                stored.map_err(|e| ForgeError::Unavailable(format!("reading the secret store: {e}")))?.is_some()
            }
            Credential::Installation(_) | Credential::Host(_) => false,
        };
        Ok(match route(&at.credential, token_stored) {
            Route::Github => self.github.as_ref(),
            Route::DryRun => self.dry_run.as_ref(),
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

    async fn check_run(
        &self,
        at: &Target,
        sha: &Sha,
        name: &str,
        conclusion: &str,
        title: &str,
        summary: &str,
    ) -> Result<(), ForgeError> {
        self.pick(at).await?.check_run(at, sha, name, conclusion, title, summary).await
    }

    async fn deployment_status(
        &self,
        at: &Target,
        id: u64,
        environment: &str,
        state: &str,
        url: Option<&str>,
        description: &str,
    ) -> Result<(), ForgeError> {
        self.pick(at).await?.deployment_status(at, id, environment, state, url, description).await
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

    async fn open_pull_requests(&self, at: &Target) -> Result<Option<Vec<GitEvent>>, ForgeError> {
        self.pick(at).await?.open_pull_requests(at).await
    }

    async fn releases(&self, at: &Target) -> Result<Vec<GitEvent>, ForgeError> {
        self.pick(at).await?.releases(at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InstallationId, RepoName};

    #[test]
    fn only_a_stored_repository_token_reaches_github() {
        let repo = RepoName::parse("acme/web").unwrap();
        let cases = [
            (Credential::Repository(repo.clone()), true, Route::Github),
            (Credential::Repository(repo), false, Route::DryRun),
            (Credential::Installation(InstallationId::new(7)), true, Route::DryRun),
            (Credential::Installation(InstallationId::new(7)), false, Route::DryRun),
        ];
        for (credential, stored, expected) in cases {
            assert_eq!(route(&credential, stored), expected, "{credential} with a token stored: {stored}");
        }
    }
}
