//! Ferry's GitHub REST client: octocrab's transport (rustls on ring,
//! native roots, timeouts, tracing) carrying requests Ferry builds, so every
//! status and header (`Retry-After`, `X-RateLimit-*`) reaches the caller.
//! octocrab's retry feature stays off: it retries a 429 at once, ignoring
//! `Retry-After`; Ferry's callers decide when to try again.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{Method, Request};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::domain::Timestamp;

/// Every call ends within this, whatever the network does.
pub const CALL_LIMIT: Duration = Duration::from_secs(15);

/// The REST API version Ferry is written against.
pub const API_VERSION: &str = "2022-11-28";

#[derive(Clone)]
pub struct GithubApi {
    base: String,
    /// Built by the first call: building reads every root certificate of
    /// the system, which a Lambda's init need not wait for.
    client: Arc<OnceLock<Result<Octocrab, String>>>,
}

impl std::fmt::Debug for GithubApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApi").field("base", &self.base).finish_non_exhaustive()
    }
}

/// What GitHub answered.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// GitHub's ETags are a quoted SHA-256 at most (under 80 bytes).
pub const ETAG_LIMIT: usize = 256;

impl ApiResponse {
    /// GitHub's `message` from an error body, cut short; or the status' name.
    pub fn message(&self) -> String {
        let parsed: Option<String> = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned));
        let text = parsed.unwrap_or_else(|| {
            http::StatusCode::from_u16(self.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no message")
                .to_owned()
        });
        text.chars().take(200).collect()
    }

    /// The answer's ETag, to ask with next time: the host's own words, kept
    /// in the store, so one longer than [`ETAG_LIMIT`] is not kept (the
    /// next ask is then unconditional, as the first was).
    pub fn etag(&self) -> Option<String> {
        let etag = self.headers.get(http::header::ETAG)?.to_str().ok()?;
        (etag.len() <= ETAG_LIMIT).then(|| etag.to_owned())
    }

    /// `Some(wait)` when this answer is GitHub rate limiting: a 429, or a 403
    /// with `Retry-After` or an exhausted `X-RateLimit-Remaining`. The wait
    /// comes from `Retry-After`, else `X-RateLimit-Reset`, when given.
    pub fn rate_limit(&self, now: Timestamp) -> Option<Option<Duration>> {
        let header = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let retry_after = header(RETRY_AFTER.as_str()).and_then(|v| v.parse::<u64>().ok()).map(Duration::from_secs);
        let exhausted = header("x-ratelimit-remaining") == Some("0");
        let limited = self.status == 429 || (self.status == 403 && (retry_after.is_some() || exhausted));
        if !limited {
            return None;
        }
        let reset = header("x-ratelimit-reset")
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|_| exhausted)
            .map(|at| now.until(Timestamp::from_unix(at)));
        Some(retry_after.or(reset))
    }
}

impl GithubApi {
    /// A client for the API at `base` (`https://api.github.com`, or a GitHub
    /// Enterprise Server's `https://host/api/v3`).
    pub fn new(base: &Url) -> Self {
        Self { base: base.as_str().trim_end_matches('/').to_owned(), client: Arc::default() }
    }

    fn client(&self) -> Result<&Octocrab, String> {
        let built = self.client.get_or_init(|| {
            Octocrab::builder()
                .set_connect_timeout(Some(Duration::from_secs(5)))
                .set_read_timeout(Some(Duration::from_secs(10)))
                .build()
                .map_err(|e| format!("cannot build the GitHub client: {e}"))
        });
        built.as_ref().map_err(Clone::clone)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `call` with `bearer` as its credential. Only a transport
    /// failure (or a client that cannot be built: the system has no root
    /// certificates) is an `Err`: every status GitHub answers comes back as a
    /// response. A redirect is followed only within the API's origin (see
    /// `crate::net`); one elsewhere comes back as the 3xx it is, the
    /// credential unsent.
    pub async fn send(&self, bearer: &SecretString, call: &ApiCall<'_>) -> Result<ApiResponse, String> {
        let client = self.client()?;
        let sent = async {
            let first = Url::parse(&format!("{}{}", self.base, call.path)).map_err(|e| format!("not a URL: {e}"))?;
            let mut url = first.clone();
            let mut hops = 0;
            loop {
                let response = client.execute(request(&url, bearer, call)?).await.map_err(transport)?;
                let (parts, answer) = response.into_parts();
                let next = parts.status.is_redirection().then(|| location(&url, &parts.headers)).flatten();
                hops += 1;
                if let Some(next) = next.filter(|next| crate::net::may_follow(&first, next, hops).is_ok()) {
                    url = next;
                    continue;
                }
                let body = answer.collect().await.map_err(transport)?.to_bytes().to_vec();
                return Ok(ApiResponse { status: parts.status.as_u16(), headers: parts.headers, body });
            }
        };
        match tokio::time::timeout(CALL_LIMIT, sent).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {}s", CALL_LIMIT.as_secs())),
        }
    }
}

/// One request to the API: `path` is below the base and starts with `/`.
#[derive(Debug, Clone)]
pub struct ApiCall<'a> {
    pub method: Method,
    pub path: &'a str,
    pub body: Option<&'a serde_json::Value>,
    /// The media type asked for.
    pub accept: &'a str,
    /// Sent as `If-None-Match`: an unchanged answer is a 304, which costs
    /// no rate limit.
    pub etag: Option<&'a str>,
}

impl<'a> ApiCall<'a> {
    /// `method path` with `body`, asking for GitHub's JSON.
    pub fn new(method: Method, path: &'a str, body: Option<&'a serde_json::Value>) -> Self {
        Self { method, path, body, accept: "application/vnd.github+json", etag: None }
    }
}

fn request(url: &Url, bearer: &SecretString, call: &ApiCall<'_>) -> Result<Request<String>, String> {
    let mut credential = HeaderValue::from_str(&format!("Bearer {}", bearer.expose_secret()))
        .map_err(|_| "the credential is not a valid header value".to_owned())?;
    credential.set_sensitive(true);
    let request = Request::builder()
        .method(call.method.clone())
        .uri(url.as_str())
        .header(AUTHORIZATION, credential)
        .header(ACCEPT, call.accept)
        .header("x-github-api-version", API_VERSION)
        .header(USER_AGENT, concat!("ferry/", env!("CARGO_PKG_VERSION")));
    let request = match call.etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        Some(etag) => request.header(http::header::IF_NONE_MATCH, etag),
        None => request,
    };
    match call.body {
        Some(body) => request.header(http::header::CONTENT_TYPE, "application/json").body(body.to_string()),
        None => request.body(String::new()),
    }
    .map_err(|e| format!("cannot build the request: {e}"))
}

/// Where a redirect points, resolved against the URL that answered it.
fn location(url: &Url, headers: &HeaderMap) -> Option<Url> {
    let location = headers.get(http::header::LOCATION)?.to_str().ok()?;
    url.join(location).ok()
}

/// A transport failure, said without the request (whose headers hold the credential).
fn transport(error: octocrab::Error) -> String {
    crate::telemetry::chain(&error).chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&'static str, &str)]) -> ApiResponse {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        ApiResponse {
            status,
            headers: map,
            body: br#"{"message":"You have exceeded a secondary rate limit"}"#.to_vec(),
        }
    }

    #[test]
    fn rate_limits_are_told_apart_from_other_refusals() {
        let now = Timestamp::from_unix(1_000);
        let secs = |s| Some(Some(Duration::from_secs(s)));
        let cases = [
            (response(429, &[]), Some(None)),
            (response(429, &[("retry-after", "30")]), secs(30)),
            (response(403, &[("retry-after", "60")]), secs(60)),
            (response(403, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1300")]), secs(300)),
            (response(403, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "900")]), secs(0)),
            (response(403, &[("x-ratelimit-remaining", "12")]), None),
            (response(403, &[]), None),
            (response(401, &[("retry-after", "5")]), None),
            (response(502, &[]), None),
        ];
        for (answer, expected) in cases {
            assert_eq!(answer.rate_limit(now), expected, "{} {:?}", answer.status, answer.headers);
        }
    }

    /// A host's ETag is kept only when it is the size of one.
    #[test]
    fn an_etag_is_kept_only_within_its_limit() {
        let etag = "W/\"0a1b2c\"";
        assert_eq!(response(200, &[("etag", etag)]).etag().as_deref(), Some(etag));
        assert_eq!(response(200, &[]).etag(), None);
        let huge = format!("\"{}\"", "x".repeat(ETAG_LIMIT));
        assert_eq!(response(200, &[("etag", huge.as_str())]).etag(), None);
    }

    #[test]
    fn messages_come_from_the_body_or_the_status() {
        assert_eq!(response(403, &[]).message(), "You have exceeded a secondary rate limit");
        let empty = ApiResponse { status: 502, headers: HeaderMap::new(), body: b"<html>".to_vec() };
        assert_eq!(empty.message(), "Bad Gateway");
    }
}
