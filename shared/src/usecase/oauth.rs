//! The management API's GitHub login (README.md, "Management API"; the
//! flow Kube Git Deploy users know): an authorize URL carrying a single-use `state` kept ten minutes,
//! and the callback that checks it, exchanges the code for a user token,
//! keeps the token in the secret store as `oauth/<login>` and lists the
//! login (a [`Login`] record), so tracking can find it. The token is
//! never echoed, logged, or put in an error.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::domain::{Clock, Login, OauthState};
use crate::secrets::{SecretError, SecretName, SecretStore};
use crate::store::{Key, StateStore, StoreError};

#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub state: &'a dyn StateStore,
    pub secrets: &'a dyn SecretStore,
    pub http: &'a crate::net::SharedClient,
    /// `FERRY_GITHUB_API_URL`: the web host is derived from it.
    pub api: &'a Url,
    pub client_id: Option<&'a str>,
    pub clock: &'a dyn Clock,
}

impl<'a> Ports<'a> {
    pub fn of(context: &'a crate::Context) -> Self {
        Self {
            state: context.state.as_ref(),
            secrets: context.secrets.as_ref(),
            http: &context.http,
            api: &context.config.github_api_url,
            client_id: context.config.oauth_client_id.as_deref(),
            clock: &crate::domain::SystemClock,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OauthError {
    #[error("the GitHub login is not configured: set FERRY_GITHUB_OAUTH_CLIENT_ID and store oauth-client-secret")]
    NotConfigured,
    /// Unknown, expired or already used: 400.
    #[error("the login's state is unknown, expired or already used: start again")]
    BadState,
    /// GitHub refused the code: its reason.
    #[error("GitHub refused the login: {0}")]
    Refused(String),
    #[error("GitHub could not be reached: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretError),
}

/// The web host of a GitHub API base: `https://api.github.com` is
/// `https://github.com`; GitHub Enterprise Server's `https://host/api/v3` is
/// `https://host`; anything else is itself.
pub fn web_base(api: &Url) -> String {
    let text = api.as_str().trim_end_matches('/');
    if api.host_str() == Some("api.github.com") {
        return "https://github.com".into();
    }
    text.strip_suffix("/api/v3").unwrap_or(text).to_owned()
}

/// The authorize URL, with a fresh single-use state.
pub async fn login_url(ports: Ports<'_>) -> Result<String, OauthError> {
    let client_id = ports.client_id.ok_or(OauthError::NotConfigured)?;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| OauthError::Unavailable(e.to_string()))?;
    let state = hex::encode(bytes);
    ports.state.create(&OauthState { state: state.clone(), created_at: ports.clock.now(), used: false }.into()).await?;
    let mut url = Url::parse(&format!("{}/login/oauth/authorize", web_base(ports.api)))
        .map_err(|e| OauthError::Unavailable(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("scope", "repo admin:repo_hook")
        .append_pair("state", &state);
    Ok(url.into())
}

/// Checks `state`, exchanges `code`, stores the token: the GitHub login it belongs to.
pub async fn callback(ports: Ports<'_>, code: &str, state: &str) -> Result<String, OauthError> {
    let client_id = ports.client_id.ok_or(OauthError::NotConfigured)?;
    if state.is_empty() || state.len() > 64 || !state.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(OauthError::BadState);
    }
    // Used once: marked used under its version, so a replay (even a
    // concurrent one) finds it used or loses the race.
    let found =
        ports.state.load::<OauthState>(&Key::OauthState(state.to_owned())).await?.ok_or(OauthError::BadState)?;
    if found.record.used || found.record.created_at.plus(OauthState::LIFETIME) <= ports.clock.now() {
        return Err(OauthError::BadState);
    }
    // Before the state is spent: a client that cannot be built is this
    // machine's fault, and the person can try the same login again.
    let http = ports.http.get().map_err(OauthError::Unavailable)?;
    let used = OauthState { used: true, ..found.record };
    ports.state.update(&used.into(), found.version).await.map_err(|e| match e {
        StoreError::StaleVersion { .. } | StoreError::NotFound { .. } => OauthError::BadState,
        other => OauthError::Store(other),
    })?;
    let secret_name = SecretName::parse("oauth-client-secret").map_err(|e| OauthError::Unavailable(e.to_string()))?;
    let client_secret = ports.secrets.get(&secret_name).await?.ok_or(OauthError::NotConfigured)?;
    let answer = json_of(
        http.post(format!("{}/login/oauth/access_token", web_base(ports.api)))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("client_id", client_id), ("client_secret", client_secret.expose_secret()), ("code", code)]),
    )
    .await?;
    let Some(token) = answer["access_token"].as_str().filter(|t| !t.is_empty()) else {
        let reason = answer["error_description"].as_str().or(answer["error"].as_str()).unwrap_or("no token");
        return Err(OauthError::Refused(reason.chars().take(200).collect()));
    };
    let token = SecretString::from(token.to_owned());
    let user = json_of(
        http.get(format!("{}/user", ports.api.as_str().trim_end_matches('/')))
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header(reqwest::header::USER_AGENT, concat!("ferry/", env!("CARGO_PKG_VERSION"))),
    )
    .await?;
    let login = user["login"].as_str().ok_or_else(|| OauthError::Refused("the token names no user".into()))?;
    let name = SecretName::parse(format!("oauth/{login}")).map_err(|e| OauthError::Refused(e.to_string()))?;
    ports.secrets.put(&name, &token).await?;
    let record = Login { login: login.to_owned(), logged_in_at: ports.clock.now() };
    ports.state.save(record.clone(), |_| record.clone()).await?;
    tracing::info!(%login, "stored a GitHub login's token");
    Ok(login.to_owned())
}

/// The JSON GitHub answers `request` with, of at most 64 KiB; no URL in the
/// error (a code or token may be in it).
async fn json_of(request: reqwest::RequestBuilder) -> Result<serde_json::Value, OauthError> {
    let unavailable = |e: reqwest::Error| OauthError::Unavailable(e.without_url().to_string());
    let response = request.send().await.map_err(unavailable)?;
    let (body, cut) = crate::net::read_up_to(response, 64 * 1024).await.map_err(unavailable)?;
    if cut {
        return Err(OauthError::Unavailable("GitHub's answer is larger than 64 KiB".into()));
    }
    serde_json::from_slice(&body).map_err(|e| OauthError::Unavailable(format!("GitHub's answer is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_host_follows_the_api_base() {
        let web = |api: &str| web_base(&Url::parse(api).unwrap());
        assert_eq!(web("https://api.github.com"), "https://github.com");
        assert_eq!(web("https://ghe.example.com/api/v3"), "https://ghe.example.com");
        assert_eq!(web("https://ghe.example.com/api/v3/"), "https://ghe.example.com");
        assert_eq!(web("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }

    /// A clock a test moves by hand.
    struct Hand(std::sync::Mutex<crate::domain::Timestamp>);

    impl Clock for Hand {
        fn now(&self) -> crate::domain::Timestamp {
            *self.0.lock().unwrap()
        }
    }

    /// A login's state works for its lifetime and not a second longer,
    /// refused before GitHub is asked (nothing listens at the API here).
    #[tokio::test]
    async fn a_login_state_expires_after_its_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let state =
            crate::store::EmbeddedStore::open(&dir.path().join("s"), crate::store::Durability::Process).unwrap();
        let secrets = crate::secrets::EmbeddedSecrets::open(&dir.path().join("secrets.json")).unwrap();
        let http = crate::net::SharedClient::default();
        let api = Url::parse("http://127.0.0.1:1").unwrap();
        let start = crate::domain::Timestamp::from_unix(1_800_000_000);
        let clock = Hand(std::sync::Mutex::new(start));
        let ports =
            Ports { state: &state, secrets: &secrets, http: &http, api: &api, client_id: Some("Iv1.x"), clock: &clock };
        let url = Url::parse(&login_url(ports).await.unwrap()).unwrap();
        let issued = url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
        *clock.0.lock().unwrap() = start.plus(OauthState::LIFETIME);
        assert!(matches!(callback(ports, "code", &issued).await, Err(OauthError::BadState)));
        // Still unused: a moment earlier it gets as far as the client secret.
        *clock.0.lock().unwrap() = start.plus(OauthState::LIFETIME - std::time::Duration::from_secs(1));
        assert!(matches!(callback(ports, "code", &issued).await, Err(OauthError::NotConfigured)));
    }
}
