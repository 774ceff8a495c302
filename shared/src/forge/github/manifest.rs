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

/// The events Ferry subscribes to. `installation`, `installation_repositories`
/// and `ping` reach every App without a subscription.
pub const EVENTS: [&str; 6] = ["push", "pull_request", "release", "issue_comment", "check_suite", "check_run"];

/// The manifest for an App named `name` whose Ferry answers at `url`
/// (the deployment's base URL; webhooks go to `<url>/webhook`).
pub fn app_manifest(name: &str, url: &str) -> Value {
    let base = url.trim_end_matches('/');
    let permissions: serde_json::Map<String, Value> =
        PERMISSIONS.iter().map(|(permission, access, _)| ((*permission).to_owned(), (*access).into())).collect();
    json!({
        "name": name,
        "url": base,
        "description": "Ferry: Git host events to Tekton pipelines and preview environments.",
        "hook_attributes": { "url": format!("{base}/webhook"), "active": true },
        "public": false,
        "default_permissions": permissions,
        "default_events": EVENTS,
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
        let manifest = app_manifest("Ferry (acme)", "https://ferry.example.com/");
        assert_eq!(manifest["hook_attributes"]["url"], "https://ferry.example.com/webhook");
        assert_eq!(manifest["url"], "https://ferry.example.com");
        assert_eq!(manifest["default_permissions"]["contents"], "read");
        assert_eq!(manifest["default_permissions"].as_object().unwrap().len(), PERMISSIONS.len());
        assert_eq!(manifest["public"], false);
    }

    #[test]
    fn only_https_urls_are_accepted() {
        assert!(check_url("https://ferry.example.com").is_ok());
        assert!(check_url("http://localhost:3000").is_ok());
        assert!(check_url("http://ferry.example.com").is_err());
        assert!(check_url("ferry.example.com").is_err());
    }
}
