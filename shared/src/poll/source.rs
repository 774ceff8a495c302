//! Reading a tracked ref's head: GitHub's and GitLab's commit APIs with
//! `If-None-Match` (a 304 changes nothing and costs GitHub no rate limit),
//! or a Git server's ref advertisement.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::{SourceKind, TrackedRef, pktline};
use crate::domain::Timestamp;
use crate::net::SharedClient;
use crate::report::Provider;

/// Every poll request ends within this.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// 304: nothing changed since the ETag.
    Unchanged,
    Head {
        sha: String,
        etag: Option<String>,
        body: Vec<u8>,
    },
    /// The host asks Ferry to stop for now.
    RateLimited {
        retry_after: Option<Duration>,
    },
    /// This ref fails (404, 401, a broken answer); the others go on.
    Failed(String),
}

pub struct Sources {
    github_api: url::Url,
    /// Built by the first poll.
    default: SharedClient,
    /// Clients trusting a ref's extra CA bundle, by file.
    with_ca: Mutex<HashMap<String, reqwest::Client>>,
}

fn settings() -> reqwest::ClientBuilder {
    crate::net::client_builder().timeout(REQUEST_LIMIT).connect_timeout(Duration::from_secs(5))
}

/// A client trusting the CA bundle `pem` besides the system's roots.
fn client_trusting(pem: &[u8]) -> Result<reqwest::Client, String> {
    let mut builder = settings();
    for certificate in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("the CA bundle: {e}"))? {
        builder = builder.add_root_certificate(certificate);
    }
    crate::net::build(builder)
}

impl Sources {
    pub fn new(github_api: &url::Url) -> Self {
        Self { github_api: github_api.clone(), default: SharedClient::with(settings), with_ca: Mutex::default() }
    }

    /// `FERRY_GITHUB_API_URL`: the one API GitHub credentials go to.
    pub fn github_api(&self) -> &url::Url {
        &self.github_api
    }

    /// The client for `tracked`'s host: trusting its `ca_file` too, if it names one.
    pub async fn client_for(&self, tracked: &TrackedRef) -> Result<reqwest::Client, String> {
        let Some(file) = &tracked.ca_file else { return self.default.get().cloned() };
        let mut clients = self.with_ca.lock().await;
        if let Some(client) = clients.get(file) {
            return Ok(client.clone());
        }
        let pem = tokio::fs::read(file).await.map_err(|e| format!("cannot read {file}: {e}"))?;
        let built = client_trusting(&pem)?;
        clients.insert(file.clone(), built.clone());
        Ok(built)
    }

    /// The ref's head, asking only for a change since `etag`.
    pub async fn fetch(&self, tracked: &TrackedRef, token: Option<&SecretString>, etag: Option<&str>) -> Polled {
        let client = match self.client_for(tracked).await {
            Ok(client) => client,
            Err(problem) => return Polled::Failed(problem),
        };
        let request = match self.request(&client, tracked, token) {
            Ok(request) => request,
            Err(problem) => return Polled::Failed(problem),
        };
        let request = match etag {
            Some(etag) => request.header("if-none-match", etag),
            None => request,
        };
        match request.send().await {
            Ok(response) => answer(tracked, response).await,
            Err(e) => Polled::Failed(format!("no answer: {}", without_url(&e))),
        }
    }

    /// The request for the ref's head, as its kind of host answers it.
    fn request(
        &self,
        client: &reqwest::Client,
        tracked: &TrackedRef,
        token: Option<&SecretString>,
    ) -> Result<reqwest::RequestBuilder, String> {
        Ok(match tracked.kind {
            SourceKind::Github => {
                let api = tracked
                    .api_url
                    .as_deref()
                    .map(|u| u.trim_end_matches('/').to_owned())
                    .unwrap_or_else(|| self.github_api.as_str().trim_end_matches('/').to_owned());
                let repo = tracked.owner_name()?;
                let mut request = client
                    .get(format!("{api}/repos/{repo}/commits/{}", crate::net::segment(&tracked.reference)))
                    .header("accept", "application/vnd.github+json")
                    .header("x-github-api-version", crate::forge::github::api::API_VERSION);
                if let Some(token) = token {
                    request = request.bearer_auth(token.expose_secret());
                }
                request
            }
            SourceKind::Gitlab => {
                let api = tracked.host_api(Provider::Gitlab)?;
                let project = crate::net::segment(&tracked.project_path());
                let mut request = client.get(format!(
                    "{}/api/v4/projects/{project}/repository/commits/{}",
                    api.as_str().trim_end_matches('/'),
                    crate::net::segment(&tracked.reference)
                ));
                if let Some(token) = token {
                    request = request.header("private-token", token.expose_secret());
                }
                request
            }
            SourceKind::Git => {
                let mut request = client
                    .get(format!("{}/info/refs?service=git-upload-pack", tracked.url.trim_end_matches('/')))
                    .header("git-protocol", "version=1");
                if let Some(token) = token {
                    // A host's token goes as that host's Git expects it (Bitbucket's with its user).
                    let (user, token) = match tracked.host() {
                        Some(provider) => crate::report::clone_credential(provider, token.clone()),
                        None => ("x-access-token".to_owned(), token.clone()),
                    };
                    request = request.basic_auth(user, Some(token.expose_secret()));
                }
                request
            }
        })
    }
}

/// The longest answer a host may give about one ref: a commit with its
/// file list, or the ref advertisement of a repository with many refs.
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;

/// What the host's answer says of the ref.
async fn answer(tracked: &TrackedRef, response: reqwest::Response) -> Polled {
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
    let remaining = header("x-ratelimit-remaining");
    let exhausted = remaining.as_deref() == Some("0");
    if let Some(units) = remaining.and_then(|v| v.trim().parse::<u64>().ok()) {
        crate::metrics::rate_limit_left(&tracked.url, units);
    }
    if status == 429 || (status == 403 && (retry_after.is_some() || exhausted)) {
        let reset = header("x-ratelimit-reset")
            .and_then(|v| v.parse::<i64>().ok())
            .map(|at| Timestamp::now().until(Timestamp::from_unix(at)));
        return Polled::RateLimited { retry_after: retry_after.or(reset) };
    }
    if status == 304 {
        return Polled::Unchanged;
    }
    let etag = header("etag");
    let body = match crate::net::read_up_to(response, ANSWER_LIMIT).await {
        Ok((_, true)) => return Polled::Failed(format!("the answer is larger than {ANSWER_LIMIT} bytes")),
        Ok((body, false)) => body,
        Err(e) => return Polled::Failed(format!("a broken answer: {}", without_url(&e))),
    };
    if status != 200 {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        return Polled::Failed(format!("{status} {}", message.chars().take(200).collect::<String>()).trim().to_owned());
    }
    head(tracked, etag, body)
}

fn head(tracked: &TrackedRef, etag: Option<String>, body: Vec<u8>) -> Polled {
    let sha = match tracked.kind {
        SourceKind::Github | SourceKind::Gitlab => {
            let field = if tracked.kind == SourceKind::Github { "sha" } else { "id" };
            serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v[field].as_str().map(str::to_owned))
        }
        SourceKind::Git => {
            let refs = match pktline::advertised_refs(&body) {
                Ok(refs) => refs,
                Err(problem) => return Polled::Failed(format!("the ref advertisement: {problem}")),
            };
            match pktline::find(&refs, &tracked.reference) {
                Some(sha) => {
                    let body = serde_json::json!({ "ref": tracked.ref_path(), "sha": sha });
                    return Polled::Head { sha, etag, body: body.to_string().into_bytes() };
                }
                None => return Polled::Failed(format!("the server advertises no {}", tracked.reference)),
            }
        }
    };
    match sha {
        Some(sha) if sha.len() >= 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()) => Polled::Head { sha, etag, body },
        _ => Polled::Failed("the answer names no commit".into()),
    }
}

/// A reqwest error without its URL (which may carry credentials).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = crate::telemetry::chain(error);
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text.chars().take(300).collect()
}
