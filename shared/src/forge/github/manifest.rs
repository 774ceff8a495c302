//! The GitHub App manifest (`ferry app-manifest`): exactly the permissions
//! and events Ferry uses, so an operator creates the App in one step through
//! GitHub's manifest flow.

use serde_json::{Value, json};

/// Every repository permission Ferry needs, and the calls that need it.
pub const PERMISSIONS: [(&str, &str, &str); 6] = [
    ("metadata", "read", "repository metadata; a collaborator's permission (who may run code)"),
    ("contents", "read", ".ferry.toml at a commit, commits of tags, and the clone token"),
    ("pull_requests", "write", "a pull request's changed files, and the preview comment Ferry edits"),
    ("statuses", "write", "commit statuses ferry/<unit>, ferry/config, ferry/ok-to-test"),
    ("deployments", "write", "preview deployments and their URL"),
    ("checks", "write", "re-requested check suites and runs (/retest from the Checks tab)"),
];

/// Where the App's homepage is and where GitHub delivers its webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUrls {
    pub homepage: String,
    pub webhook: String,
}

impl AppUrls {
    /// From `--url` (Ferry's public base URL; webhooks go to its `/webhook`)
    /// and `--webhook-url` (the exact webhook URL, e.g. a tunnel's channel,
    /// whose origin is then the homepage when `--url` is absent).
    pub fn new(url: Option<&str>, webhook_url: Option<&str>) -> Result<Self, String> {
        for given in [url, webhook_url].into_iter().flatten() {
            check_url(given)?;
        }
        let base = url.map(|u| u.trim_end_matches('/'));
        match (base, webhook_url) {
            (Some(base), None) => Ok(Self { homepage: base.to_owned(), webhook: format!("{base}/webhook") }),
            (Some(base), Some(webhook)) => Ok(Self { homepage: base.to_owned(), webhook: webhook.to_owned() }),
            // The homepage is shown wherever the App is: only the webhook's
            // origin, never a relay channel's secret path.
            (None, Some(webhook)) => {
                let origin = url::Url::parse(webhook).map_err(|e| e.to_string())?.origin().ascii_serialization();
                Ok(Self { homepage: origin, webhook: webhook.to_owned() })
            }
            (None, None) => Err("give --url (Ferry's public base URL) or --webhook-url (the exact webhook URL)".into()),
        }
    }
}

/// The manifest for an App named `name` at `urls`.
pub fn app_manifest(name: &str, urls: &AppUrls) -> Value {
    let permissions: serde_json::Map<String, Value> =
        PERMISSIONS.iter().map(|(permission, access, _)| ((*permission).to_owned(), (*access).into())).collect();
    json!({
        "name": name,
        "url": urls.homepage,
        "description": "Ferry: Git host events to Tekton pipelines and preview environments.",
        "hook_attributes": { "url": urls.webhook, "active": true },
        "public": false,
        "default_permissions": permissions,
        "default_events": super::events::subscribed(),
    })
}

/// Checks `url` is one GitHub can deliver to: absolute `https` (plain
/// `http` only for a loopback tunnel under test).
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match (parsed.scheme(), parsed.host_str()) {
        ("https", Some(_)) => Ok(()),
        ("http", Some("localhost" | "127.0.0.1")) => Ok(()),
        _ => Err(format!("{url:?}: GitHub delivers webhooks to an https:// URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_points_webhooks_at_the_webhook_route() {
        let urls = AppUrls::new(Some("https://ferry.example.com/"), None).unwrap();
        let manifest = app_manifest("Ferry (acme)", &urls);
        assert_eq!(manifest["hook_attributes"]["url"], "https://ferry.example.com/webhook");
        assert_eq!(manifest["url"], "https://ferry.example.com");
        assert_eq!(manifest["default_permissions"]["contents"], "read");
        assert_eq!(manifest["default_permissions"].as_object().unwrap().len(), PERMISSIONS.len());
        assert_eq!(manifest["public"], false);
    }

    #[test]
    fn the_urls_come_from_the_base_url_or_the_exact_webhook_url() {
        let base = "https://ferry.example.com";
        let smee = "https://smee.io/AbC123";
        // (--url, --webhook-url, Ok((homepage, webhook)) or Err(part of the problem))
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Result<(&'a str, &'a str), &'a str>);
        let cases: [Case; 7] = [
            (Some(base), None, Ok((base, "https://ferry.example.com/webhook"))),
            (Some("https://ferry.example.com/"), None, Ok((base, "https://ferry.example.com/webhook"))),
            (Some(base), Some(smee), Ok((base, smee))),
            (None, Some(smee), Ok(("https://smee.io", smee))),
            (None, None, Err("give --url")),
            (Some("http://ferry.example.com"), None, Err("https://")),
            (Some(base), Some("http://smee.io/AbC123"), Err("https://")),
        ];
        for (url, webhook_url, expected) in cases {
            let got = AppUrls::new(url, webhook_url);
            match expected {
                Ok((homepage, webhook)) => assert_eq!(
                    got,
                    Ok(AppUrls { homepage: homepage.into(), webhook: webhook.into() }),
                    "{url:?} {webhook_url:?}"
                ),
                Err(part) => assert!(got.as_ref().is_err_and(|e| e.contains(part)), "{url:?} {webhook_url:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn only_https_urls_are_accepted() {
        assert!(check_url("https://ferry.example.com").is_ok());
        assert!(check_url("http://localhost:3000").is_ok());
        assert!(check_url("http://ferry.example.com").is_err());
        assert!(check_url("ferry.example.com").is_err());
    }
}
