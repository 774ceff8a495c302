//! Azure DevOps Git statuses:
//! `POST {organization}/{project}/_apis/git/repositories/{repository}/commits/{commit}/statuses?api-version=7.1`
//! (<https://learn.microsoft.com/en-us/rest/api/azure/devops/git/statuses/create?view=azure-devops-rest-7.1>),
//! and files: `GET …/repositories/{repository}/items?path=…&includeContent=true`
//! (<https://learn.microsoft.com/en-us/rest/api/azure/devops/git/items/get?view=azure-devops-rest-7.1>),
//! authenticated with a personal access token as Basic auth's password.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::json;

use super::{Client, Host, HostRepo, Provider, segment, text};
use crate::domain::Sha;
use crate::forge::{CommitStatus, ForgeError, StatusState};

pub struct AzureDevops(pub(crate) Client);

/// Azure's states: `notSet`, `pending`, `succeeded`, `failed`, `error`, `notApplicable`.
pub fn state(state: StatusState) -> &'static str {
    match state {
        StatusState::Pending => "pending",
        StatusState::Success => "succeeded",
        StatusState::Failure => "failed",
        StatusState::Error => "error",
    }
}

/// The context `ferry/<unit>` as Azure's genre `ferry` and name `<unit>`
/// (`ferry/<cluster>/<unit>`: genre `ferry/<cluster>`).
pub fn context(context: &str) -> (&str, &str) {
    context.rsplit_once('/').unwrap_or(("ferry", context))
}

#[async_trait]
impl Host for AzureDevops {
    async fn report(&self, at: &HostRepo, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        let parts = at.segments(Provider::AzureDevops)?;
        let path = format!(
            "/{}/{}/_apis/git/repositories/{}/commits/{sha}/statuses?api-version=7.1",
            segment(parts[0]),
            segment(parts[1]),
            segment(parts[2])
        );
        let (genre, name) = context(&status.context);
        let mut body = json!({
            "state": state(status.state),
            "description": status.description,
            "context": { "genre": genre, "name": name },
        });
        if let Some(url) = &status.target_url {
            body["targetUrl"] = url.clone().into();
        }
        let request =
            self.0.http.post(self.0.url(&path)).basic_auth("", Some(self.0.token.expose_secret())).json(&body);
        self.0.send("an Azure DevOps commit status", request).await.map(|_| ())
    }

    async fn file(&self, at: &HostRepo, sha: &Sha, path: &str) -> Result<Option<String>, ForgeError> {
        let parts = at.segments(Provider::AzureDevops)?;
        let url = format!(
            "/{}/{}/_apis/git/repositories/{}/items?path=%2F{}&versionDescriptor.version={sha}\
             &versionDescriptor.versionType=commit&includeContent=true&$format=json&api-version=7.1",
            segment(parts[0]),
            segment(parts[1]),
            segment(parts[2]),
            segment(path)
        );
        let request = self.0.http.get(self.0.url(&url)).basic_auth("", Some(self.0.token.expose_secret()));
        let what = format!("reading {path} on Azure DevOps");
        let Some(bytes) = self.0.read(&what, request).await? else { return Ok(None) };
        // A folder of that name has no content: not a file.
        let item: serde_json::Value = serde_json::from_str(&text(&what, bytes)?)
            .map_err(|e| ForgeError::Unavailable(format!("{what}: not JSON: {e}")))?;
        Ok(item["content"].as_str().filter(|_| item["isFolder"] != true).map(str::to_owned))
    }
}
