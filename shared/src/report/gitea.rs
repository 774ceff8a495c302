//! Gitea (and Forgejo) commit statuses: `POST /api/v1/repos/{owner}/{repo}/statuses/{sha}`
//! (<https://gitea.com/api/swagger#/repository/repoCreateStatus>), with
//! `Authorization: token <token>`.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::json;

use super::{Client, HostRepo, StatusReporter, segment};
use crate::domain::Sha;
use crate::forge::{CommitStatus, ForgeError, StatusState};

pub struct Gitea(pub(crate) Client);

/// Gitea's states: `pending`, `success`, `error`, `failure`, `warning` (GitHub's, plus one).
pub fn state(state: StatusState) -> &'static str {
    match state {
        StatusState::Pending => "pending",
        StatusState::Success => "success",
        StatusState::Failure => "failure",
        StatusState::Error => "error",
    }
}

#[async_trait]
impl StatusReporter for Gitea {
    async fn report(&self, at: &HostRepo, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        let parts = at.segments(2, "owner/repo")?;
        let path = format!("/api/v1/repos/{}/{}/statuses/{sha}", segment(parts[0]), segment(parts[1]));
        let mut body =
            json!({ "state": state(status.state), "context": status.context, "description": status.description });
        if let Some(url) = &status.target_url {
            body["target_url"] = url.clone().into();
        }
        let request = self
            .0
            .http
            .post(self.0.url(&path))
            .header("Authorization", format!("token {}", self.0.token.expose_secret()))
            .json(&body);
        self.0.send("a Gitea commit status", request).await.map(|_| ())
    }
}
