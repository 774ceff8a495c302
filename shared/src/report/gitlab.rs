//! GitLab commit statuses: `POST /api/v4/projects/:id/statuses/:sha`
//! (<https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit>),
//! and files: `GET /api/v4/projects/:id/repository/files/:file_path/raw?ref=:sha`
//! (<https://docs.gitlab.com/api/repository_files/#get-raw-file-from-repository>),
//! the project named by its URL-encoded path, the token in `PRIVATE-TOKEN`.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::json;

use super::{Client, Host, HostRepo, Provider, segment, text};
use crate::domain::Sha;
use crate::forge::{CommitStatus, ForgeError, StatusState};

pub struct Gitlab(pub(crate) Client);

/// GitLab's states: `pending`, `running`, `success`, `failed`, `canceled`,
/// `skipped`. Ferry's `error` (a run cancelled, vanished or stuck) is
/// `failed`: GitLab has no error state, and `canceled` would read as a
/// choice someone made.
pub fn state(state: StatusState) -> &'static str {
    match state {
        StatusState::Pending => "pending",
        StatusState::Success => "success",
        StatusState::Failure | StatusState::Error => "failed",
    }
}

#[async_trait]
impl Host for Gitlab {
    async fn report(&self, at: &HostRepo, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        at.segments(Provider::Gitlab)?;
        let path = format!("/api/v4/projects/{}/statuses/{sha}", segment(&at.path));
        let mut body =
            json!({ "state": state(status.state), "name": status.context, "description": status.description });
        if let Some(url) = &status.target_url {
            body["target_url"] = url.clone().into();
        }
        let request =
            self.0.http.post(self.0.url(&path)).header("PRIVATE-TOKEN", self.0.token.expose_secret()).json(&body);
        match self.0.send("a GitLab commit status", request).await {
            Ok(_) => Ok(()),
            // GitLab refuses to post a state the status already has
            // ("Cannot transition status via :enqueue from :pending"): it is there.
            Err(ForgeError::Rejected { status: 400, message, .. }) if message.contains("Cannot transition status") => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn file(&self, at: &HostRepo, sha: &Sha, path: &str) -> Result<Option<String>, ForgeError> {
        at.segments(Provider::Gitlab)?;
        // The file path is one URL-encoded segment, its `/` too.
        let url = format!("/api/v4/projects/{}/repository/files/{}/raw?ref={sha}", segment(&at.path), segment(path));
        let request = self.0.http.get(self.0.url(&url)).header("PRIVATE-TOKEN", self.0.token.expose_secret());
        let what = format!("reading {path} on GitLab");
        self.0.read(&what, request).await?.map(|bytes| text(&what, bytes)).transpose()
    }
}
