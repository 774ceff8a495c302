//! GitHub App authentication: the App's JWT (RS256, signed with its private
//! key) and installation tokens minted with it
//! (`POST /app/installations/{id}/access_tokens`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::api::{ApiCall, GithubApi};
use crate::domain::repair::HookAttempt;
use crate::domain::tokens::StoredToken;
use crate::domain::{Clock, InstallationId, Timestamp};
use crate::forge::{AppHooks, ForgeError, Listed, MintError, TokenMinter, TokenScope};
use crate::secrets::{SecretName, SecretStore, SecretsManagerStore};

/// `iat` is set this far in the past, as GitHub advises against clock drift.
pub const JWT_BACKDATE: Duration = Duration::from_secs(60);

/// `exp` is this far after `iat`: GitHub accepts at most 10 minutes.
pub const JWT_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The App's private key, parsed and proven able to sign. Never printed.
#[derive(Clone)]
pub struct AppKey(EncodingKey);

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey([REDACTED])")
    }
}

impl AppKey {
    /// Reads a PEM RSA key: PKCS#1 (`BEGIN RSA PRIVATE KEY`, what GitHub
    /// hands out) or PKCS#8 (`BEGIN PRIVATE KEY`). The problem never quotes it.
    pub fn from_pem(pem: &SecretString) -> Result<Self, MintError> {
        let text = pem.expose_secret().trim();
        if !text.starts_with("-----BEGIN") {
            return Err(MintError::Key("it is not a PEM-encoded key".into()));
        }
        super::jwt::install();
        let key = EncodingKey::from_rsa_pem(text.as_bytes())
            .map_err(|e| MintError::Key(format!("it is not an RSA private key ({e})")))?;
        let key = AppKey(key);
        // Parsing the PEM checks little: signing once proves the key works.
        key.sign(&Claims { iat: 0, exp: 1, iss: "0".into() })?;
        Ok(key)
    }

    fn sign(&self, claims: &Claims) -> Result<SecretString, MintError> {
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &self.0)
            .map(SecretString::from)
            .map_err(|e| MintError::Key(format!("it cannot sign ({e})")))
    }
}

#[derive(Debug, Serialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

/// The App's JWT at `now`: `iss` the App id, `iat` a minute back, `exp`
/// ten minutes after `iat` (so at most nine ahead).
pub fn app_jwt(app_id: u64, key: &AppKey, now: Timestamp) -> Result<SecretString, MintError> {
    let iat = now.minus(JWT_BACKDATE);
    key.sign(&Claims { iat: iat.unix(), exp: iat.plus(JWT_LIFETIME).unix(), iss: app_id.to_string() })
}

/// Where the private key is read from.
#[derive(Clone)]
pub enum KeySource {
    /// The PEM itself (tests, or a caller that read it already).
    Pem(SecretString),
    /// `FERRY_GITHUB_APP_PRIVATE_KEY_FILE`.
    File(PathBuf),
    /// `FERRY_GITHUB_APP_PRIVATE_KEY_SECRET_ID`.
    SecretId(SecretsManagerStore, String),
    /// The secret store's `app-private-key`.
    Store(Arc<dyn SecretStore>),
}

impl KeySource {
    async fn read(&self) -> Result<SecretString, MintError> {
        match self {
            KeySource::Pem(pem) => Ok(pem.clone()),
            KeySource::File(path) => tokio::fs::read_to_string(path)
                .await
                .map(SecretString::from)
                .map_err(|e| MintError::Key(format!("cannot read {}: {e}", path.display()))),
            KeySource::SecretId(store, id) => {
                store.get_by_id(id).await.map_err(|e| MintError::Key(format!("cannot read secret {id}: {e}")))
            }
            KeySource::Store(store) => {
                let name = SecretName::app_private_key();
                match store.get(&name).await {
                    Ok(Some(pem)) => Ok(pem),
                    Ok(None) => Err(MintError::Key(format!("the secret store holds no {name}"))),
                    Err(e) => Err(MintError::Key(format!("cannot read {name}: {e}"))),
                }
            }
        }
    }
}

/// A GitHub App: mints installation tokens through the REST API. The key is
/// read on first use and again after a failure, so a key fixed in the
/// secret store is picked up by the next cycle without a restart.
pub struct GithubApp {
    id: u64,
    source: KeySource,
    key: Mutex<Option<AppKey>>,
    api: GithubApi,
    clock: Arc<dyn Clock>,
    /// `<slug>[bot]`, read once from `GET /app`.
    login: tokio::sync::OnceCell<String>,
}

impl GithubApp {
    pub fn new(id: u64, source: KeySource, api: GithubApi, clock: Arc<dyn Clock>) -> Self {
        Self { id, source, key: Mutex::new(None), api, clock, login: tokio::sync::OnceCell::new() }
    }

    /// The App's bot login from its slug (`GET /app`, with the JWT).
    async fn read_login(&self) -> Result<String, ForgeError> {
        let answer = self.app_call(Method::GET, "/app", None).await?;
        if answer.status != 200 {
            return Err(ForgeError::Rejected {
                what: "reading the App".into(),
                status: answer.status,
                message: answer.message(),
            });
        }
        let app: serde_json::Value = serde_json::from_slice(&answer.body)
            .map_err(|e| ForgeError::Unavailable(format!("GitHub's App is not JSON: {e}")))?;
        match app["slug"].as_str() {
            Some(slug) if !slug.is_empty() => Ok(format!("{slug}[bot]")),
            _ => Err(ForgeError::Unavailable("GitHub's App has no slug".into())),
        }
    }

    async fn key(&self) -> Result<AppKey, MintError> {
        let mut key = self.key.lock().await;
        if let Some(key) = key.as_ref() {
            return Ok(key.clone());
        }
        let loaded = AppKey::from_pem(&self.source.read().await?)?;
        *key = Some(loaded.clone());
        Ok(loaded)
    }
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: String,
}

#[async_trait]
impl TokenMinter for GithubApp {
    #[tracing::instrument(skip_all, fields(installation = %installation))]
    async fn mint(&self, installation: InstallationId, scope: &TokenScope) -> Result<StoredToken, MintError> {
        let jwt = app_jwt(self.id, &self.key().await?, self.clock.now())?;
        let body = match scope {
            TokenScope::Installation => None,
            TokenScope::CloneOnly(repo) => Some(serde_json::json!({
                "repositories": [repo.name()],
                "permissions": { "contents": "read" },
            })),
        };
        let path = format!("/app/installations/{installation}/access_tokens");
        let answer = self
            .api
            .send(&jwt, &ApiCall::new(Method::POST, &path, body.as_ref()))
            .await
            .map_err(MintError::Unavailable)?;
        if let Some(retry_after) = answer.rate_limit(self.clock.now()) {
            return Err(MintError::RateLimited { retry_after });
        }
        match answer.status {
            201 | 200 => {}
            401 => {
                // A key GitHub does not accept may be a rotated one: read it again next time.
                *self.key.lock().await = None;
                return Err(MintError::Unauthorized { message: answer.message() });
            }
            403 => return Err(MintError::Forbidden { message: answer.message() }),
            404 => return Err(MintError::NotFound { installation }),
            status @ 500.. => return Err(MintError::Unavailable(format!("{status} {}", answer.message()))),
            status => return Err(MintError::Rejected { status, message: answer.message() }),
        }
        let minted: AccessToken = serde_json::from_slice(&answer.body)
            .map_err(|e| MintError::Unavailable(format!("GitHub's answer is not an access token: {e}")))?;
        if minted.token.is_empty() {
            return Err(MintError::Unavailable("GitHub's answer holds an empty token".into()));
        }
        let expires_at = Timestamp::parse_rfc3339(&minted.expires_at).map_err(MintError::Unavailable)?;
        Ok(StoredToken { token: SecretString::from(minted.token), expires_at: Some(expires_at) })
    }

    async fn app_login(&self) -> Result<String, ForgeError> {
        self.login.get_or_try_init(|| self.read_login()).await.cloned()
    }
}

#[async_trait]
impl AppHooks for GithubApp {
    async fn deliveries(
        &self,
        after: Option<u64>,
        max: usize,
        etag: Option<&str>,
    ) -> Result<Listed<HookAttempt>, ForgeError> {
        let mut attempts = Vec::new();
        let mut path = "/app/hook/deliveries?per_page=100".to_owned();
        // The newest page's ETag: the log grows at its head, so an unchanged
        // first page means nothing new past the cursor.
        let mut log_etag = None;
        let mut first = true;
        loop {
            let answer = self.app_call(Method::GET, &path, etag.filter(|_| first)).await?;
            if answer.status == 304 && first {
                return Ok(Listed::Unchanged);
            }
            if answer.status != 200 {
                return Err(ForgeError::Rejected {
                    what: "listing the App's webhook deliveries".into(),
                    status: answer.status,
                    message: answer.message(),
                });
            }
            if first {
                log_etag = answer.etag();
            }
            let items: Vec<serde_json::Value> = serde_json::from_slice(&answer.body)
                .map_err(|e| ForgeError::Unavailable(format!("GitHub's delivery list is not a list: {e}")))?;
            let done = |attempts| Ok(Listed::Changed { items: attempts, etag: log_etag.clone() });
            for item in &items {
                let Some(id) = item["id"].as_u64() else { continue };
                if after.is_some_and(|after| id <= after) || attempts.len() >= max {
                    return done(attempts);
                }
                let delivered_at = item["delivered_at"].as_str().and_then(|t| Timestamp::parse_rfc3339(t).ok());
                attempts.push(HookAttempt {
                    id,
                    guid: item["guid"].as_str().unwrap_or_default().to_owned(),
                    delivered_at: delivered_at.unwrap_or_else(|| self.clock.now()),
                    redelivery: item["redelivery"] == true,
                    status_code: item["status_code"].as_u64().and_then(|c| u16::try_from(c).ok()).unwrap_or(0),
                });
            }
            // GitHub pages this list by cursor, named in the `Link` header.
            match next_link(&answer.headers).and_then(|next| below_base(&next, self.api.base())) {
                Some(next) if !items.is_empty() => {
                    path = next;
                    first = false;
                }
                _ => return done(attempts),
            }
        }
    }

    async fn redeliver(&self, id: u64) -> Result<(), ForgeError> {
        let answer = self.app_call(Method::POST, &format!("/app/hook/deliveries/{id}/attempts"), None).await?;
        match answer.status {
            200..=202 => Ok(()),
            status => Err(ForgeError::Rejected {
                what: format!("redelivering attempt {id}"),
                status,
                message: answer.message(),
            }),
        }
    }
}

impl GithubApp {
    /// One call as the App itself (its JWT), for the App's own endpoints.
    async fn app_call(
        &self,
        method: Method,
        path: &str,
        etag: Option<&str>,
    ) -> Result<super::api::ApiResponse, ForgeError> {
        let key = self.key().await.map_err(|e| ForgeError::NoCredential(e.to_string()))?;
        let jwt = app_jwt(self.id, &key, self.clock.now()).map_err(|e| ForgeError::NoCredential(e.to_string()))?;
        let call = ApiCall { etag, ..ApiCall::new(method, path, None) };
        let answer = self.api.send(&jwt, &call).await.map_err(ForgeError::Unavailable)?;
        if let Some(retry_after) = answer.rate_limit(self.clock.now()) {
            return Err(ForgeError::RateLimited { retry_after });
        }
        match answer.status {
            401 => {
                *self.key.lock().await = None;
                Err(ForgeError::Unauthorized)
            }
            500.. => Err(ForgeError::Unavailable(format!("{} {}", answer.status, answer.message()))),
            _ => Ok(answer),
        }
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &http::HeaderMap) -> Option<String> {
    let link = headers.get(http::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

/// `url` as a path below the API `base`, if it is one (never follow a link elsewhere).
fn below_base(url: &str, base: &str) -> Option<String> {
    url.strip_prefix(base).filter(|rest| rest.starts_with('/')).map(str::to_owned)
}

/// Ferry without App credentials: every mint says so.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoApp;

#[async_trait]
impl TokenMinter for NoApp {
    async fn mint(&self, _: InstallationId, _: &TokenScope) -> Result<StoredToken, MintError> {
        Err(MintError::NotConfigured)
    }

    fn configured(&self) -> bool {
        false
    }
}
