//! A forge for repositories that live on another host and that Ferry polls
//! with `launch = true` (README.md, "Polling"): their units are read from
//! that host and their statuses posted there, with the `[[poll]]` entry's
//! `token_secret`. What only GitHub has (check runs, deployments, comments,
//! webhooks, pull requests, releases) is nothing for them. `forge::routed`
//! sends it the calls whose credential is `Credential::Host`, and only those.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{Host, HostRepo, host};
use crate::domain::event::GitEvent;
use crate::domain::tokens::Credential;
use crate::domain::{PrNumber, Sha};
use crate::forge::{CheckRun, CommitStatus, DeploymentStatus, Forge, ForgeError, Listed, Target};
use crate::poll::source::Sources;
use crate::secrets::{SecretName, SecretStore};
use crate::units::OperatorConfig;

pub struct Hosted {
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
    pub fn new(operator: Arc<OperatorConfig>, secrets: Arc<dyn SecretStore>, sources: Arc<Sources>) -> Self {
        Self { operator, secrets, sources }
    }

    /// The host `at` lives on, which its credential names.
    async fn host_of(&self, at: &Target) -> Result<(Arc<dyn Host>, HostRepo), ForgeError> {
        let Credential::Host(repo) = &at.credential else {
            return Err(ForgeError::NoCredential(format!("{} is not a repository of another host", at.repo)));
        };
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
        Ok((host(provider, base, token, http), tracked.host_repo(provider)))
    }
}

#[async_trait]
impl Forge for Hosted {
    async fn file(&self, at: &Target, sha: &Sha, path: &str) -> Result<Option<String>, ForgeError> {
        let (host, repo) = self.host_of(at).await?;
        host.file(&repo, sha, path).await
    }

    async fn status(&self, at: &Target, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        let (host, repo) = self.host_of(at).await?;
        host.report(&repo, sha, status).await
    }

    async fn pull_request_files(&self, _: &Target, _: PrNumber) -> Result<Option<Vec<String>>, ForgeError> {
        Ok(None)
    }

    async fn commit_of(&self, _: &Target, _: &str) -> Result<Option<Sha>, ForgeError> {
        Ok(None)
    }

    /// The status already says how the run ended; the host has no check runs.
    async fn check_run(&self, _: &Target, _: &Sha, _: &CheckRun<'_>) -> Result<(), ForgeError> {
        Ok(())
    }

    async fn deployment(&self, at: &Target, _: &Sha, _: &str, _: &str) -> Result<u64, ForgeError> {
        Err(none_there("a deployment", at))
    }

    async fn deployment_status(&self, at: &Target, _: &DeploymentStatus<'_>) -> Result<(), ForgeError> {
        Err(none_there("a deployment status", at))
    }

    async fn comment(&self, at: &Target, _: PrNumber, _: &str, _: &str) -> Result<(), ForgeError> {
        Err(none_there("a comment", at))
    }

    async fn can_push(&self, _: &Target, _: &str) -> Result<Option<bool>, ForgeError> {
        Ok(None)
    }

    async fn hooks(&self, _: &Target) -> Result<Vec<(u64, String)>, ForgeError> {
        Ok(Vec::new())
    }

    async fn create_hook(&self, at: &Target, _: &str, _: &SecretString) -> Result<u64, ForgeError> {
        Err(none_there("a webhook", at))
    }

    async fn delete_hook(&self, _: &Target, _: u64) -> Result<(), ForgeError> {
        Ok(())
    }

    async fn open_pull_requests(&self, _: &Target, _: Option<&str>) -> Result<Listed<GitEvent>, ForgeError> {
        Ok(Listed::Incomplete)
    }

    async fn releases(&self, _: &Target, _: Option<&str>) -> Result<Listed<GitEvent>, ForgeError> {
        Ok(Listed::all(Vec::new()))
    }
}
