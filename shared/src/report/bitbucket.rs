//! Bitbucket Cloud build statuses:
//! `POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build`
//! (<https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/>),
//! and files: `GET /2.0/repositories/{workspace}/{repo_slug}/src/{commit}/{path}`
//! (<https://developer.atlassian.com/cloud/bitbucket/rest/api-group-source/>),
//! with a bearer (repository or workspace access) token, or an app password
//! given as `<user>:<app-password>` and sent as HTTP Basic. A status with the
//! same `key` is overwritten, so each context keeps one status.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Client, Host, HostRepo, Provider, file_path, segment, text};
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

/// How a token is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth<'a> {
    /// An app password, given as `<user>:<app-password>`.
    Basic { user: &'a str, password: &'a str },
    /// A repository, project or workspace access token.
    Bearer(&'a str),
}

/// A token with a colon is an app password: access tokens have none.
pub fn auth(token: &str) -> Auth<'_> {
    match token.split_once(':') {
        Some((user, password)) => Auth::Basic { user, password },
        None => Auth::Bearer(token),
    }
}

#[async_trait]
impl Host for Bitbucket {
    async fn report(&self, at: &HostRepo, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        let parts = at.segments(Provider::Bitbucket)?;
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
        let request = self.authorised(self.0.http.post(self.0.url(&path)).json(&body));
        self.0.send("a Bitbucket build status", request).await.map(|_| ())
    }

    async fn file(&self, at: &HostRepo, sha: &Sha, path: &str) -> Result<Option<String>, ForgeError> {
        let parts = at.segments(Provider::Bitbucket)?;
        let url =
            format!("/2.0/repositories/{}/{}/src/{sha}/{}", segment(parts[0]), segment(parts[1]), file_path(path));
        let request = self.authorised(self.0.http.get(self.0.url(&url)));
        let what = format!("reading {path} on Bitbucket");
        self.0.read(&what, request).await?.map(|bytes| text(&what, bytes)).transpose()
    }
}

impl Bitbucket {
    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match auth(self.0.token.expose_secret()) {
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_password_is_basic_and_an_access_token_a_bearer() {
        let cases = [
            ("ci-bot:app-password", Auth::Basic { user: "ci-bot", password: "app-password" }),
            // The password may itself hold a colon: only the first one splits.
            ("ci-bot:pass:word", Auth::Basic { user: "ci-bot", password: "pass:word" }),
            ("ATCTT3xFfGN0-access-token", Auth::Bearer("ATCTT3xFfGN0-access-token")),
            ("", Auth::Bearer("")),
        ];
        for (token, expected) in cases {
            assert_eq!(auth(token), expected, "{token:?}");
        }
    }
}
