//! Outbound HTTP: where a credential may go.
//!
//! A credential is bound to the origin (scheme, host, port) it was made
//! for, so every reqwest client Ferry builds starts from [`client_builder`],
//! whose redirect rule follows a redirect only within the origin the
//! request was first sent to. reqwest itself drops `Authorization` on a
//! redirect to another host, but keeps custom credential headers (GitLab's
//! `PRIVATE-TOKEN`) and, on one host, follows `https` down to `http`;
//! refusing every change of origin covers both. A redirect within the
//! origin is followed: the host the credential was made for is the one
//! answering (GitHub sends 301 and 307 for renamed and moved repositories).
//! The GitHub client (octocrab, built without its `follow-redirect`
//! feature) follows redirects by the same rule in `forge::github::api`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use url::Url;

/// Redirects followed at most for one request, all within its origin.
pub const MAX_REDIRECTS: usize = 5;

/// Why a redirect was not followed.
#[derive(Debug, thiserror::Error)]
pub enum RedirectRefused {
    #[error("a redirect to another host is not followed: a credential goes only to the host it was made for")]
    OtherOrigin,
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooMany,
}

/// Whether a request that went to `first` may follow a redirect to `next`,
/// the `hops`-th of its chain.
pub fn may_follow(first: &Url, next: &Url, hops: usize) -> Result<(), RedirectRefused> {
    if first.origin() != next.origin() || !first.origin().is_tuple() {
        return Err(RedirectRefused::OtherOrigin);
    }
    if hops > MAX_REDIRECTS {
        return Err(RedirectRefused::TooMany);
    }
    Ok(())
}

/// reqwest's redirect policy for [`may_follow`].
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else { return attempt.stop() };
        match may_follow(first, attempt.url(), attempt.previous().len()) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    })
}

/// The start of every reqwest client Ferry builds: its user agent, and
/// redirects only within the first request's origin.
pub fn client_builder() -> reqwest::ClientBuilder {
    crate::telemetry::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(same_origin_redirects())
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
}

/// Builds `builder`'s client; the error names the cause (a root store
/// with no valid certificate, a bad CA bundle).
pub fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, String> {
    builder.build().map_err(|e| format!("cannot build the HTTP client: {}", crate::telemetry::chain(&e)))
}

/// A reqwest client built by its first use: building one reads the
/// system's root certificates, which a function that never calls those
/// hosts (the webhook, most often) should not pay for at start. Clones
/// share it. The default is the one the reporters, the poller's deliveries
/// and OAuth share.
#[derive(Clone)]
pub struct SharedClient {
    built: Arc<OnceLock<Result<reqwest::Client, String>>>,
    settings: fn() -> reqwest::ClientBuilder,
}

impl Default for SharedClient {
    fn default() -> Self {
        Self::with(|| client_builder().timeout(Duration::from_secs(10)))
    }
}

impl SharedClient {
    /// A client built from `settings`, which start from [`client_builder`].
    pub fn with(settings: fn() -> reqwest::ClientBuilder) -> Self {
        Self { built: Arc::default(), settings }
    }

    /// Whether the first use has built it (or tried to).
    pub fn is_built(&self) -> bool {
        self.built.get().is_some()
    }

    /// The client, built now if this is its first use; an error when it
    /// cannot be built (a root store with no valid certificate), and the
    /// same error at each use after: nothing about the machine changes
    /// while the process runs.
    pub fn get(&self) -> Result<&reqwest::Client, String> {
        let built = self.built.get_or_init(|| {
            build((self.settings)()).inspect_err(|problem| {
                tracing::error!(%problem, "the shared HTTP client is unusable until the process restarts");
            })
        });
        built.as_ref().map_err(Clone::clone)
    }
}

/// Whether two URLs share an origin: the same scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin().is_tuple() && a.origin() == b.origin()
}

/// Everything but RFC 3986's unreserved characters.
const RESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `text` as one URL path segment: a `/` in it (a GitLab project path, a
/// ref) is encoded too.
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

/// `path` with each of its segments encoded and its `/` kept.
pub fn path(path: &str) -> String {
    path.split('/').map(segment).collect::<Vec<_>>().join("/")
}

/// At most `limit` bytes of `response`'s body, and whether it had more: a
/// host's answer never grows Ferry's memory past what the caller allows.
pub async fn read_up_to(mut response: reqwest::Response, limit: usize) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// How long a host that rate-limited Ferry is left alone: what it said
/// (`Retry-After`, or its limit's reset), a minute when it said nothing,
/// and never less than a second nor more than 15 minutes (SQS's longest
/// delay; a host's word beyond it is not taken).
pub fn rate_limit_wait(said: Option<std::time::Duration>) -> std::time::Duration {
    said.unwrap_or(UNSAID_WAIT).clamp(std::time::Duration::from_secs(1), LONGEST_WAIT)
}

/// A rate-limited host's wait when it did not say.
pub const UNSAID_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The longest a rate-limited host is waited for.
pub const LONGEST_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn the_shared_client_is_built_once_and_its_clones_share_it() {
        let shared = SharedClient::default();
        let copy = shared.clone();
        assert!(!shared.is_built(), "nothing is built before the first use");
        let first: *const reqwest::Client = shared.get().unwrap();
        let again: *const reqwest::Client = copy.get().unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn segments_keep_only_unreserved_characters_and_paths_their_slashes() {
        assert_eq!(segment("group/sub project"), "group%2Fsub%20project");
        assert_eq!(segment("refs/heads/ü-1.0_~"), "refs%2Fheads%2F%C3%BC-1.0_~");
        assert_eq!(path("deploy/kube git.toml"), "deploy/kube%20git.toml");
        assert_eq!(path(".ferry.toml"), ".ferry.toml");
    }

    #[test]
    fn only_redirects_within_the_first_origin_are_followed() {
        let first = url("https://api.github.com/repos/acme/api");
        let cases = [
            ("https://api.github.com/repositories/1", 1, true),
            ("https://api.github.com:443/x", 1, true),
            ("https://api.github.com/x", MAX_REDIRECTS, true),
            ("https://api.github.com/x", MAX_REDIRECTS + 1, false),
            ("http://api.github.com/x", 1, false),
            ("https://api.github.com:8443/x", 1, false),
            ("https://github.com/acme/api", 1, false),
            ("https://evil.example.com/repos/acme/api", 1, false),
            ("https://api.github.com.evil.example.com/x", 1, false),
        ];
        for (next, hops, followed) in cases {
            assert_eq!(may_follow(&first, &url(next), hops).is_ok(), followed, "{next} after {hops}");
        }
        assert!(may_follow(&url("http://127.0.0.1:80/a"), &url("http://localhost:80/a"), 1).is_err());
        assert!(same_origin(&url("https://gitlab.com"), &url("https://gitlab.com:443/api/v4")));
        assert!(!same_origin(&url("https://gitlab.com"), &url("http://gitlab.com")));
        assert!(!same_origin(&url("data:text/plain,a"), &url("data:text/plain,a")), "opaque origins never match");
    }
}
