//! A forge that also sends each commit status to the other hosts the
//! operator config names for the repository (`report_to`): a GitLab,
//! Bitbucket, Azure DevOps or Gitea mirror of a GitHub repository sees the
//! same `ferry/<unit>` statuses. Everything else goes to the inner forge
//! untouched. A mirror that fails is logged and does not fail the status
//! GitHub got.

use std::sync::Arc;

use async_trait::async_trait;

use super::{HostRepo, host};
use crate::domain::event::GitEvent;
use crate::domain::{PrNumber, Sha};
use crate::forge::{CheckRun, CommitStatus, DeploymentStatus, Forge, ForgeError, Listed, Target};
use crate::net::SharedClient;
use crate::secrets::{SecretName, SecretStore};
use crate::units::OperatorConfig;

pub struct Mirrored {
    inner: Arc<dyn Forge>,
    operator: Arc<OperatorConfig>,
    secrets: Arc<dyn SecretStore>,
    http: SharedClient,
}

impl Mirrored {
    pub fn new(
        inner: Arc<dyn Forge>,
        operator: Arc<OperatorConfig>,
        secrets: Arc<dyn SecretStore>,
        http: SharedClient,
    ) -> Self {
        Self { inner, operator, secrets, http }
    }

    async fn mirror(&self, at: &Target, sha: &Sha, status: &CommitStatus) {
        let entries = self.operator.report_to(&at.repo);
        if entries.is_empty() {
            return;
        }
        let http = match self.http.get() {
            Ok(http) => http,
            Err(e) => {
                tracing::warn!(repo = %at.repo, error = %e, "cannot mirror a status");
                return;
            }
        };
        for to in entries {
            let Some(base) = to.url.clone().or_else(|| to.provider.default_base()) else {
                tracing::warn!(repo = %at.repo, provider = ?to.provider, "report_to needs a url for this host");
                continue;
            };
            let token = match SecretName::parse(to.token_secret.clone()) {
                Ok(name) => self.secrets.get(&name).await,
                Err(e) => {
                    tracing::warn!(repo = %at.repo, error = %e, "report_to names an invalid secret");
                    continue;
                }
            };
            let token = match token {
                Ok(Some(token)) => token,
                Ok(None) => {
                    tracing::warn!(repo = %at.repo, secret = %to.token_secret, "no token for report_to");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(repo = %at.repo, error = %e, "cannot read the report_to token");
                    continue;
                }
            };
            let host = host(to.provider, base, token, http.clone());
            match host.report(&HostRepo::new(to.repository.clone()), sha, status).await {
                Ok(()) => {
                    tracing::info!(repo = %at.repo, provider = ?to.provider, context = %status.context, "status mirrored")
                }
                Err(e) => {
                    tracing::warn!(repo = %at.repo, provider = ?to.provider, error = %e, "could not mirror a status")
                }
            }
        }
    }
}

#[async_trait]
impl Forge for Mirrored {
    async fn file(&self, at: &Target, sha: &Sha, path: &str) -> Result<Option<String>, ForgeError> {
        self.inner.file(at, sha, path).await
    }

    async fn pull_request_files(&self, at: &Target, number: PrNumber) -> Result<Option<Vec<String>>, ForgeError> {
        self.inner.pull_request_files(at, number).await
    }

    async fn commit_of(&self, at: &Target, reference: &str) -> Result<Option<Sha>, ForgeError> {
        self.inner.commit_of(at, reference).await
    }

    async fn status(&self, at: &Target, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        self.inner.status(at, sha, status).await?;
        self.mirror(at, sha, status).await;
        Ok(())
    }

    async fn check_run(&self, at: &Target, sha: &Sha, check: &CheckRun<'_>) -> Result<(), ForgeError> {
        self.inner.check_run(at, sha, check).await
    }

    async fn deployment(&self, at: &Target, sha: &Sha, environment: &str, url: &str) -> Result<u64, ForgeError> {
        self.inner.deployment(at, sha, environment, url).await
    }

    async fn deployment_status(&self, at: &Target, status: &DeploymentStatus<'_>) -> Result<(), ForgeError> {
        self.inner.deployment_status(at, status).await
    }

    async fn comment(&self, at: &Target, number: PrNumber, key: &str, body: &str) -> Result<(), ForgeError> {
        self.inner.comment(at, number, key, body).await
    }

    async fn can_push(&self, at: &Target, login: &str) -> Result<Option<bool>, ForgeError> {
        self.inner.can_push(at, login).await
    }

    async fn hooks(&self, at: &Target) -> Result<Vec<(u64, String)>, ForgeError> {
        self.inner.hooks(at).await
    }

    async fn create_hook(&self, at: &Target, url: &str, secret: &secrecy::SecretString) -> Result<u64, ForgeError> {
        self.inner.create_hook(at, url, secret).await
    }

    async fn delete_hook(&self, at: &Target, id: u64) -> Result<(), ForgeError> {
        self.inner.delete_hook(at, id).await
    }

    async fn open_pull_requests(&self, at: &Target, etag: Option<&str>) -> Result<Listed<GitEvent>, ForgeError> {
        self.inner.open_pull_requests(at, etag).await
    }

    async fn releases(&self, at: &Target, etag: Option<&str>) -> Result<Listed<GitEvent>, ForgeError> {
        self.inner.releases(at, etag).await
    }
}
