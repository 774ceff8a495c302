//! The GitHub forge: reads files and pull request changes, and reports
//! commit statuses, deployments and comments through the REST API with the
//! repository's installation (or repository) token. A 401 gets the token
//! replaced and the call tried once more.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use http::Method;
use serde_json::{Value, json};

use super::api::{ApiCall, ApiResponse, GithubApi};
use super::listing::{listed_event, listed_release};
use crate::domain::event::GitEvent;
use crate::domain::tokens::Credential;
use crate::domain::{PrNumber, Sha, Timestamp};
use crate::forge::{
    CheckRun, CommitStatus, Credentials, DeploymentStatus, Forge, ForgeError, Listed, Target, comment_marker,
    grants_push,
};
use secrecy::SecretString;

/// GitHub lists at most 3000 files of a pull request, 100 a page.
const PR_FILES_PAGES: u32 = 30;
/// Ferry looks for its own comment among the first 1000.
const COMMENT_PAGES: u32 = 10;

/// Pages of open pull requests read (100 each); past them the listing is
/// incomplete, and nothing is concluded from what it misses.
const OPEN_PR_PAGES: u32 = 10;

/// Releases read: the newest, enough for any gap a lost webhook leaves.
const RELEASES_LISTED: u32 = 30;

pub struct GithubForge {
    api: GithubApi,
    credentials: Arc<dyn Credentials>,
    /// The login each repository token acts as (`GET /user`).
    logins: std::sync::Mutex<std::collections::HashMap<Credential, String>>,
}

impl GithubForge {
    pub fn new(api: GithubApi, credentials: Arc<dyn Credentials>) -> Self {
        Self { api, credentials, logins: std::sync::Mutex::default() }
    }

    /// The login Ferry acts as on `at`: the App's bot, or the repository
    /// token's user. What tells Ferry's comments from anyone else's.
    async fn own_login(&self, at: &Target) -> Result<String, ForgeError> {
        if let Credential::Installation(_) = at.credential {
            return self.credentials.app_login().await;
        }
        if let Some(login) = self.logins.lock().ok().and_then(|l| l.get(&at.credential).cloned()) {
            return Ok(login);
        }
        let answer = self.json(at, Method::GET, "/user", None).await?;
        if answer.status != 200 {
            return Err(refused("reading the token's user", &answer));
        }
        let login = parse(&answer)?["login"]
            .as_str()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ForgeError::Unavailable("GitHub named no user for the token".into()))?;
        if let Ok(mut logins) = self.logins.lock() {
            logins.insert(at.credential.clone(), login.clone());
        }
        Ok(login)
    }

    /// A listing page, asked with `If-None-Match: etag` when there is one:
    /// a 304 costs no rate limit.
    async fn listing(&self, at: &Target, path: &str, etag: Option<&str>) -> Result<ApiResponse, ForgeError> {
        self.call(at, &ApiCall { etag, ..ApiCall::new(Method::GET, path, None) }).await
    }

    /// One call with the target's token; after a 401, once more with a new one.
    async fn call(&self, at: &Target, call: &ApiCall<'_>) -> Result<ApiResponse, ForgeError> {
        for attempt in 0..2 {
            let token = self.credentials.token(&at.credential).await.map_err(ForgeError::NoCredential)?;
            let answer = self.api.send(&token, call).await.map_err(ForgeError::Unavailable)?;
            if answer.status == 401 && attempt == 0 {
                self.credentials.refused(&at.credential, &token);
                continue;
            }
            if let Some(retry_after) = answer.rate_limit(Timestamp::now()) {
                return Err(ForgeError::RateLimited { retry_after });
            }
            return match answer.status {
                401 => Err(ForgeError::Unauthorized),
                500.. => Err(ForgeError::Unavailable(format!("{} {}", answer.status, answer.message()))),
                _ => Ok(answer),
            };
        }
        Err(ForgeError::Unauthorized)
    }

    async fn json(
        &self,
        at: &Target,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ApiResponse, ForgeError> {
        self.call(at, &ApiCall::new(method, path, body)).await
    }
}

/// The id of the comment carrying `marker` that `login` wrote. Anyone can
/// paste a marker; only the author tells Ferry's own comment apart.
fn own_comment(comments: &[Value], marker: &str, login: &str) -> Option<u64> {
    comments
        .iter()
        .filter(|c| c["user"]["login"].as_str().is_some_and(|author| author.eq_ignore_ascii_case(login)))
        .find(|c| c["body"].as_str().is_some_and(|b| b.starts_with(marker)))
        .and_then(|c| c["id"].as_u64())
}

fn refused(what: impl Into<String>, answer: &ApiResponse) -> ForgeError {
    ForgeError::Rejected { what: what.into(), status: answer.status, message: answer.message() }
}

fn parse(answer: &ApiResponse) -> Result<Value, ForgeError> {
    serde_json::from_slice(&answer.body)
        .map_err(|e| ForgeError::Unavailable(format!("GitHub answered other than JSON: {e}")))
}

#[async_trait]
impl Forge for GithubForge {
    async fn file(&self, at: &Target, sha: &Sha, path: &str) -> Result<Option<String>, ForgeError> {
        let url = format!("/repos/{}/contents/{}?ref={sha}", at.repo, crate::net::path(path));
        let answer = self.json(at, Method::GET, &url, None).await?;
        match answer.status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(refused(format!("reading {path}"), &answer)),
        }
        let value = parse(&answer)?;
        if value["type"] != "file" {
            return Ok(None);
        }
        let content = value["content"].as_str().unwrap_or_default().replace(['\n', '\r'], "");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| ForgeError::Unavailable(format!("{path}: not base64: {e}")))?;
        String::from_utf8(bytes).map(Some).map_err(|_| ForgeError::Rejected {
            what: format!("reading {path}"),
            status: 200,
            message: "the file is not UTF-8 text".into(),
        })
    }

    async fn pull_request_files(&self, at: &Target, number: PrNumber) -> Result<Option<Vec<String>>, ForgeError> {
        let mut files = Vec::new();
        for page in 1..=PR_FILES_PAGES {
            let url = format!("/repos/{}/pulls/{number}/files?per_page=100&page={page}", at.repo);
            let answer = self.json(at, Method::GET, &url, None).await?;
            if answer.status != 200 {
                return Err(refused(format!("listing the files of pull request #{number}"), &answer));
            }
            let listed = parse(&answer)?;
            let listed = listed.as_array().cloned().unwrap_or_default();
            for file in &listed {
                files.extend(file["filename"].as_str().map(str::to_owned));
                // A rename changed the old path too.
                files.extend(file["previous_filename"].as_str().map(str::to_owned));
            }
            if listed.len() < 100 {
                return Ok(Some(files));
            }
        }
        Ok(None)
    }

    async fn commit_of(&self, at: &Target, reference: &str) -> Result<Option<Sha>, ForgeError> {
        let url = format!("/repos/{}/commits/{}", at.repo, crate::net::path(reference));
        let answer = self
            .call(at, &ApiCall { accept: "application/vnd.github.sha", ..ApiCall::new(Method::GET, &url, None) })
            .await?;
        match answer.status {
            200 => Ok(Sha::parse(String::from_utf8_lossy(&answer.body).trim()).ok()),
            404 | 422 => Ok(None),
            _ => Err(refused(format!("resolving {reference}"), &answer)),
        }
    }

    async fn status(&self, at: &Target, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        let mut body = json!({ "state": status.state, "description": status.description, "context": status.context });
        if let Some(url) = &status.target_url {
            body["target_url"] = url.clone().into();
        }
        let answer = self.json(at, Method::POST, &format!("/repos/{}/statuses/{sha}", at.repo), Some(&body)).await?;
        match answer.status {
            201 => Ok(()),
            _ => Err(refused(format!("status {}", status.context), &answer)),
        }
    }

    async fn deployment(&self, at: &Target, sha: &Sha, environment: &str, url: &str) -> Result<u64, ForgeError> {
        let body = json!({
            "ref": sha,
            "environment": environment,
            "auto_merge": false,
            "required_contexts": [],
            "transient_environment": true,
            "production_environment": false,
            "description": "Ferry preview",
        });
        let answer = self.json(at, Method::POST, &format!("/repos/{}/deployments", at.repo), Some(&body)).await?;
        if answer.status != 201 {
            return Err(refused(format!("deployment to {environment}"), &answer));
        }
        let id =
            parse(&answer)?["id"].as_u64().ok_or_else(|| ForgeError::Unavailable("a deployment without id".into()))?;
        let description = "Ferry is bringing the preview up";
        let status = DeploymentStatus { id, environment, state: "in_progress", url: Some(url), description };
        self.deployment_status(at, &status).await?;
        Ok(id)
    }

    async fn check_run(&self, at: &Target, sha: &Sha, check: &CheckRun<'_>) -> Result<(), ForgeError> {
        let CheckRun { name, conclusion, title, summary } = *check;
        // Check runs are the App's: a repository token cannot create them.
        if !matches!(at.credential, crate::domain::tokens::Credential::Installation(_)) {
            return Ok(());
        }
        let body = json!({
            "name": name,
            "head_sha": sha,
            "status": "completed",
            "conclusion": conclusion,
            "output": { "title": title.chars().take(200).collect::<String>(), "summary": summary.chars().take(65_000).collect::<String>() },
        });
        let answer = self.json(at, Method::POST, &format!("/repos/{}/check-runs", at.repo), Some(&body)).await?;
        match answer.status {
            201 => Ok(()),
            // The App was installed without `checks: write`: the status says enough.
            403 => {
                tracing::debug!(repo = %at.repo, "no checks permission: the failure is reported as a status only");
                Ok(())
            }
            _ => Err(refused(format!("check run {name}"), &answer)),
        }
    }

    async fn deployment_status(&self, at: &Target, status: &DeploymentStatus<'_>) -> Result<(), ForgeError> {
        let DeploymentStatus { id, environment, state, url, description } = *status;
        let mut body = json!({ "state": state, "description": description.chars().take(CommitStatus::DESCRIPTION_LIMIT).collect::<String>(), "auto_inactive": true });
        if let Some(url) = url {
            body["environment_url"] = url.into();
        }
        let path = format!("/repos/{}/deployments/{id}/statuses", at.repo);
        let answer = self.json(at, Method::POST, &path, Some(&body)).await?;
        match answer.status {
            201 => Ok(()),
            _ => Err(refused(format!("deployment status of {environment}"), &answer)),
        }
    }

    async fn can_push(&self, at: &Target, login: &str) -> Result<Option<bool>, ForgeError> {
        if login.is_empty() || !login.chars().all(|c| c.is_ascii_alphanumeric() || "-_[]".contains(c)) {
            return Ok(Some(false));
        }
        let url = format!("/repos/{}/collaborators/{}/permission", at.repo, crate::net::path(login));
        let answer = self.json(at, Method::GET, &url, None).await?;
        match answer.status {
            200 => {
                let value = parse(&answer)?;
                // `permission` folds maintain into write; `role_name` names it.
                let granted =
                    [&value["permission"], &value["role_name"]].iter().any(|v| v.as_str().is_some_and(grants_push));
                Ok(Some(granted))
            }
            // Not a collaborator at all.
            404 => Ok(Some(false)),
            _ => Err(refused(format!("the permission of {login}"), &answer)),
        }
    }

    async fn hooks(&self, at: &Target) -> Result<Vec<(u64, String)>, ForgeError> {
        let answer = self.json(at, Method::GET, &format!("/repos/{}/hooks?per_page=100", at.repo), None).await?;
        if answer.status != 200 {
            return Err(refused("listing the repository's webhooks", &answer));
        }
        let hooks = parse(&answer)?.as_array().cloned().unwrap_or_default();
        Ok(hooks
            .iter()
            .filter_map(|h| Some((h["id"].as_u64()?, h["config"]["url"].as_str().unwrap_or_default().to_owned())))
            .collect())
    }

    async fn create_hook(&self, at: &Target, url: &str, secret: &SecretString) -> Result<u64, ForgeError> {
        use secrecy::ExposeSecret;
        let body = json!({
            "name": "web",
            "active": true,
            "events": super::events::hook_events(),
            "config": { "url": url, "content_type": "json", "secret": secret.expose_secret(), "insecure_ssl": "0" },
        });
        let answer = self.json(at, Method::POST, &format!("/repos/{}/hooks", at.repo), Some(&body)).await?;
        if answer.status != 201 {
            return Err(refused("creating the repository webhook", &answer));
        }
        parse(&answer)?["id"].as_u64().ok_or_else(|| ForgeError::Unavailable("a webhook without an id".into()))
    }

    async fn delete_hook(&self, at: &Target, id: u64) -> Result<(), ForgeError> {
        let answer = self.json(at, Method::DELETE, &format!("/repos/{}/hooks/{id}", at.repo), None).await?;
        match answer.status {
            204 | 404 => Ok(()),
            _ => Err(refused(format!("deleting webhook {id}"), &answer)),
        }
    }

    async fn open_pull_requests(&self, at: &Target, etag: Option<&str>) -> Result<Listed<GitEvent>, ForgeError> {
        let mut events = Vec::new();
        for page in 1..=OPEN_PR_PAGES {
            let url = format!("/repos/{}/pulls?state=open&per_page=100&page={page}", at.repo);
            let answer = self.listing(at, &url, etag.filter(|_| page == 1)).await?;
            if answer.status == 304 && page == 1 {
                return Ok(Listed::Unchanged);
            }
            if answer.status != 200 {
                return Err(refused("listing the open pull requests", &answer));
            }
            let items = parse(&answer)?.as_array().cloned().unwrap_or_default();
            for item in &items {
                events.push(listed_event(at, "pull_request", "synchronize", item)?);
            }
            if items.len() < 100 {
                // The first page's ETag speaks for the whole listing only when it is all there is.
                let etag = if page == 1 { answer.etag() } else { None };
                return Ok(Listed::Changed { items: events, etag });
            }
        }
        Ok(Listed::Incomplete)
    }

    async fn releases(&self, at: &Target, etag: Option<&str>) -> Result<Listed<GitEvent>, ForgeError> {
        let url = format!("/repos/{}/releases?per_page={RELEASES_LISTED}", at.repo);
        let answer = self.listing(at, &url, etag).await?;
        match answer.status {
            304 => return Ok(Listed::Unchanged),
            200 => {}
            _ => return Err(refused("listing the releases", &answer)),
        }
        let items = parse(&answer)?.as_array().cloned().unwrap_or_default();
        let events = items.iter().filter(|item| item["draft"] != true).map(|item| listed_release(at, item));
        Ok(Listed::Changed { items: events.collect::<Result<_, _>>()?, etag: answer.etag() })
    }

    async fn comment(&self, at: &Target, number: PrNumber, key: &str, body: &str) -> Result<(), ForgeError> {
        let marker = comment_marker(key);
        let text = json!({ "body": format!("{marker}\n{body}") });
        let login = self.own_login(at).await?;
        for page in 1..=COMMENT_PAGES {
            let url = format!("/repos/{}/issues/{number}/comments?per_page=100&page={page}", at.repo);
            let answer = self.json(at, Method::GET, &url, None).await?;
            if answer.status != 200 {
                return Err(refused(format!("listing the comments of #{number}"), &answer));
            }
            let comments = parse(&answer)?.as_array().cloned().unwrap_or_default();
            if let Some(id) = own_comment(&comments, &marker, &login) {
                let path = format!("/repos/{}/issues/comments/{id}", at.repo);
                let answer = self.json(at, Method::PATCH, &path, Some(&text)).await?;
                return match answer.status {
                    200 => Ok(()),
                    _ => Err(refused(format!("editing comment {id}"), &answer)),
                };
            }
            if comments.len() < 100 {
                break;
            }
        }
        let path = format!("/repos/{}/issues/{number}/comments", at.repo);
        let answer = self.json(at, Method::POST, &path, Some(&text)).await?;
        match answer.status {
            201 => Ok(()),
            _ => Err(refused(format!("commenting on #{number}"), &answer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ferrys_own_marked_comment_is_its_own() {
        let marker = comment_marker("preview-api");
        let comment = |id: u64, login: &str, body: &str| json!({"id": id, "user": {"login": login}, "body": body});
        let ours = "ferry-ci[bot]";
        let cases: [(Vec<Value>, Option<u64>); 6] = [
            (vec![comment(1, "mallory", &format!("{marker}\nclick here"))], None),
            (vec![comment(1, "mallory", &format!("{marker}\nx")), comment(2, ours, &format!("{marker}\ny"))], Some(2)),
            (vec![comment(3, "Ferry-CI[bot]", &format!("{marker}\ny"))], Some(3)),
            (
                vec![comment(4, ours, "no marker"), comment(5, ours, &format!("{}\nz", comment_marker("preview-web")))],
                None,
            ),
            (vec![json!({"id": 6, "body": format!("{marker}\nno author")})], None),
            (vec![comment(7, "ferry-ci", &format!("{marker}\na user named like the App"))], None),
        ];
        for (comments, expected) in cases {
            assert_eq!(own_comment(&comments, &marker, ours), expected, "{comments:?}");
        }
    }
}
