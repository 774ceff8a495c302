//! A forge for repositories that live on another host and that Ferry polls
//! with `launch = true` (README.md, "Polling"): their units are read from
//! that host and their statuses posted there, with the `[[poll]]` entry's
//! `token_secret`. What only GitHub has (check runs, deployments, comments,
//! webhooks, pull requests, releases) is nothing for them. Every other
//! repository goes to the inner forge untouched.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{Host, HostRepo, host};
use crate::domain::event::GitEvent;
use crate::domain::tokens::Credential;
use crate::domain::{PrNumber, Sha};
use crate::forge::{CommitStatus, Forge, ForgeError, Target};
use crate::poll::source::Sources;
use crate::secrets::{SecretName, SecretStore};
use crate::units::OperatorConfig;

pub struct Hosted {
    inner: Arc<dyn Forge>,
    operator: Arc<OperatorConfig>,
    secrets: Arc<dyn SecretStore>,
    /// The poller's clients, so a host with its own CA (`ca_file`) is trusted here too.
    sources: Arc<Sources>,
}

/// What a call for a repository on another host does where the host has
/// no such thing.
fn none_there(what: &str, at: &Target) -> ForgeError {
    ForgeError::Rejected { what: what.to_owned(), status: 0, message: format!("{} is not on GitHub", at.repo) }
}

impl Hosted {
    pub fn new(
        inner: Arc<dyn Forge>,
        operator: Arc<OperatorConfig>,
        secrets: Arc<dyn SecretStore>,
        sources: Arc<Sources>,
    ) -> Self {
        Self { inner, operator, secrets, sources }
    }

    /// The host `at` lives on, when its credential says it is polled there.
    async fn host_of(&self, at: &Target) -> Result<Option<(Arc<dyn Host>, HostRepo)>, ForgeError> {
        let Credential::Host(repo) = &at.credential else { return Ok(None) };
        let Some((tracked, provider)) = self.operator.hosted(repo) else {
            return Err(ForgeError::NoCredential(format!("{repo}: no [[poll]] entry on another host names it")));
        };
        let name =
            tracked.token_secret.clone().ok_or_else(|| ForgeError::NoCredential(format!("{repo}: no token_secret")))?;
        let name = SecretName::parse(name).map_err(|e| ForgeError::NoCredential(e.to_string()))?;
        let token: SecretString = self
            .secrets
            .get(&name)
            .await
            .map_err(|e| ForgeError::Unavailable(format!("reading the secret store: {e}")))?
            .ok_or_else(|| ForgeError::NoCredential(format!("{repo}: the secret store has no {name}")))?;
        let base = tracked.host_api(provider).map_err(ForgeError::NoCredential)?;
        let http = self.sources.client_for(tracked).await.map_err(ForgeError::Unavailable)?;
        Ok(Some((host(provider, base, token, http), tracked.host_repo(provider))))
    }

    fn elsewhere(at: &Target) -> bool {
        matches!(at.credential, Credential::Host(_))
    }
}

#[async_trait]
impl Forge for Hosted {
    async fn file(&self, at: &Target, sha: &Sha, path: &str) -> Result<Option<String>, ForgeError> {
        match self.host_of(at).await? {
            Some((host, repo)) => host.file(&repo, sha, path).await,
            None => self.inner.file(at, sha, path).await,
        }
    }

    async fn status(&self, at: &Target, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        match self.host_of(at).await? {
            Some((host, repo)) => host.report(&repo, sha, status).await,
            None => self.inner.status(at, sha, status).await,
        }
    }

    async fn pull_request_files(&self, at: &Target, number: PrNumber) -> Result<Option<Vec<String>>, ForgeError> {
        if Self::elsewhere(at) {
            return Ok(None);
        }
        self.inner.pull_request_files(at, number).await
    }

    async fn commit_of(&self, at: &Target, reference: &str) -> Result<Option<Sha>, ForgeError> {
        if Self::elsewhere(at) {
            return Ok(None);
        }
        self.inner.commit_of(at, reference).await
    }

    /// The status already says how the run ended; the host has no check runs.
    async fn check_run(
        &self,
        at: &Target,
        sha: &Sha,
        name: &str,
        conclusion: &str,
        title: &str,
        summary: &str,
    ) -> Result<(), ForgeError> {
        if Self::elsewhere(at) {
            return Ok(());
        }
        self.inner.check_run(at, sha, name, conclusion, title, summary).await
    }

    async fn deployment(&self, at: &Target, sha: &Sha, environment: &str, url: &str) -> Result<u64, ForgeError> {
        if Self::elsewhere(at) {
            return Err(none_there("a deployment", at));
        }
        self.inner.deployment(at, sha, environment, url).await
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
        if Self::elsewhere(at) {
            return Err(none_there("a deployment status", at));
        }
        self.inner.deployment_status(at, id, environment, state, url, description).await
    }

    async fn comment(&self, at: &Target, number: PrNumber, key: &str, body: &str) -> Result<(), ForgeError> {
        if Self::elsewhere(at) {
            return Err(none_there("a comment", at));
        }
        self.inner.comment(at, number, key, body).await
    }

    async fn can_push(&self, at: &Target, login: &str) -> Result<Option<bool>, ForgeError> {
        if Self::elsewhere(at) {
            return Ok(None);
        }
        self.inner.can_push(at, login).await
    }

    async fn hooks(&self, at: &Target) -> Result<Vec<(u64, String)>, ForgeError> {
        if Self::elsewhere(at) {
            return Ok(Vec::new());
        }
        self.inner.hooks(at).await
    }

    async fn create_hook(&self, at: &Target, url: &str, secret: &SecretString) -> Result<u64, ForgeError> {
        if Self::elsewhere(at) {
            return Err(none_there("a webhook", at));
        }
        self.inner.create_hook(at, url, secret).await
    }

    async fn delete_hook(&self, at: &Target, id: u64) -> Result<(), ForgeError> {
        if Self::elsewhere(at) {
            return Ok(());
        }
        self.inner.delete_hook(at, id).await
    }

    async fn open_pull_requests(&self, at: &Target) -> Result<Option<Vec<GitEvent>>, ForgeError> {
        if Self::elsewhere(at) {
            return Ok(None);
        }
        self.inner.open_pull_requests(at).await
    }

    async fn releases(&self, at: &Target) -> Result<Vec<GitEvent>, ForgeError> {
        if Self::elsewhere(at) {
            return Ok(Vec::new());
        }
        self.inner.releases(at).await
    }
}
