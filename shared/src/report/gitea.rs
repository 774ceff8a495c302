//! Gitea (and Forgejo) commit statuses: `POST /api/v1/repos/{owner}/{repo}/statuses/{sha}`
//! (<https://gitea.com/api/swagger#/repository/repoCreateStatus>), and files:
//! `GET /api/v1/repos/{owner}/{repo}/raw/{filepath}?ref={sha}`
//! (<https://gitea.com/api/swagger#/repository/repoGetRawFile>), with
//! `Authorization: token <token>`.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::json;

use super::{Client, Host, HostRepo, Provider, file_path, segment, text};
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
impl Host for Gitea {
    async fn report(&self, at: &HostRepo, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        let parts = at.segments(Provider::Gitea)?;
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

    async fn file(&self, at: &HostRepo, sha: &Sha, path: &str) -> Result<Option<String>, ForgeError> {
        let parts = at.segments(Provider::Gitea)?;
        let url =
            format!("/api/v1/repos/{}/{}/raw/{}?ref={sha}", segment(parts[0]), segment(parts[1]), file_path(path));
        let request = self
            .0
            .http
            .get(self.0.url(&url))
            .header("Authorization", format!("token {}", self.0.token.expose_secret()));
        let what = format!("reading {path} on Gitea");
        self.0.read(&what, request).await?.map(|bytes| text(&what, bytes)).transpose()
    }
}
