//! Bitbucket Cloud build statuses:
//! `POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build`
//! (<https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/>),
//! with a bearer (repository or workspace access) token. A status with the
//! same `key` is overwritten, so each context keeps one status.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Client, HostRepo, StatusReporter, segment};
use crate::domain::Sha;
use crate::forge::{CommitStatus, ForgeError, StatusState};

pub struct Bitbucket(pub(crate) Client);

/// The longest `key` Ferry sends.
pub const KEY_LIMIT: usize = 40;

/// Bitbucket's states: `INPROGRESS`, `SUCCESSFUL`, `FAILED`, `STOPPED`.
/// Ferry's `error` is `STOPPED` (the run did not finish), `failure` `FAILED`.
pub fn state(state: StatusState) -> &'static str {
    match state {
        StatusState::Pending => "INPROGRESS",
        StatusState::Success => "SUCCESSFUL",
        StatusState::Failure => "FAILED",
        StatusState::Error => "STOPPED",
    }
}

/// The context as a key: itself when short enough, else a stable cut with a hash.
pub fn key(context: &str) -> String {
    if context.len() <= KEY_LIMIT {
        return context.to_owned();
    }
    let hash = hex::encode(&Sha256::digest(context.as_bytes())[..4]);
    let mut cut: String = context.chars().take(KEY_LIMIT - hash.len() - 1).collect();
    while cut.len() > KEY_LIMIT - hash.len() - 1 {
        cut.pop();
    }
    format!("{cut}-{hash}")
}

#[async_trait]
impl StatusReporter for Bitbucket {
    async fn report(&self, at: &HostRepo, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        let parts = at.segments(2, "workspace/repo_slug")?;
        let path = format!("/2.0/repositories/{}/{}/commit/{sha}/statuses/build", segment(parts[0]), segment(parts[1]));
        // Bitbucket requires a URL; without a dashboard, the commit itself.
        let url =
            status.target_url.clone().unwrap_or_else(|| format!("https://bitbucket.org/{}/commits/{sha}", at.path));
        let body = json!({
            "key": key(&status.context),
            "state": state(status.state),
            "name": status.context,
            "description": status.description,
            "url": url,
        });
        let request = self.0.http.post(self.0.url(&path)).bearer_auth(self.0.token.expose_secret()).json(&body);
        self.0.send("a Bitbucket build status", request).await.map(|_| ())
    }
}
