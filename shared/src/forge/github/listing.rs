//! GitHub's listings (open pull requests, releases) as the events that
//! would have described each item: the reconciler acts on what a lost
//! webhook would have said, read by the same parser as the webhook.

use serde_json::{Value, json};

use super::payload;
use crate::domain::event::GitEvent;
use crate::domain::tokens::Credential;
use crate::forge::{ForgeError, Target};

/// The `event` with `action` that describes `item` (under `event`'s key).
pub fn listed_event(at: &Target, event: &str, action: &str, item: &Value) -> Result<GitEvent, ForgeError> {
    let mut body = json!({
        "action": action,
        "repository": { "full_name": at.repo.full_name() },
    });
    body[event] = item.clone();
    if let Credential::Installation(id) = &at.credential {
        body["installation"] = json!({ "id": id.get() });
    }
    // The repository's clone URL on the host that listed the item (never a
    // guess at github.com: on GitHub Enterprise the clone token would go there).
    if let Some(clone_url) = item["base"]["repo"]["clone_url"].as_str() {
        body["repository"]["clone_url"] = clone_url.into();
    } else if let Some((repository, _)) = item["html_url"].as_str().and_then(|url| url.split_once("/releases/")) {
        body["repository"]["clone_url"] = format!("{repository}.git").into();
    }
    payload::parse(event, body.to_string().as_bytes())
        .map_err(|e| ForgeError::Unavailable(format!("a listed {event} does not read as one: {e}")))
}

/// A listed release as its `published` (or `prereleased`) event.
pub fn listed_release(at: &Target, item: &Value) -> Result<GitEvent, ForgeError> {
    let action = if item["prerelease"] == true { "prereleased" } else { "published" };
    listed_event(at, "release", action, item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Detail;
    use crate::domain::{InstallationId, RepoName, Timestamp};

    fn target() -> Target {
        Target {
            repo: RepoName::parse("acme/api").unwrap(),
            credential: Credential::Installation(InstallationId::new(5)),
        }
    }

    #[test]
    fn a_listed_pull_request_reads_as_its_synchronize_event() {
        let item = json!({
            "number": 7, "updated_at": "2026-11-22T10:00:00Z", "draft": false, "labels": [{"name": "x"}],
            "user": {"login": "someone"}, "author_association": "CONTRIBUTOR",
            "head": {"ref": "f", "sha": "a".repeat(40), "repo": {"full_name": "someone/api"}},
            "base": {"ref": "main", "sha": "b".repeat(40), "repo": {"full_name": "acme/api", "clone_url": "https://github.com/acme/api.git"}},
        });
        let event = listed_event(&target(), "pull_request", "synchronize", &item).unwrap();
        assert_eq!((event.name.as_str(), event.action.as_deref()), ("pull_request", Some("synchronize")));
        assert_eq!(event.installation, Some(InstallationId::new(5)));
        assert_eq!(event.clone_url.as_deref(), Some("https://github.com/acme/api.git"));
        assert_eq!(event.happened_at, Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").ok());
        let Detail::PullRequest(pr) = event.detail else { panic!("a pull request") };
        assert!(pr.from_fork);
        assert_eq!(pr.labels, ["x"]);
    }

    #[test]
    fn a_listed_release_reads_as_published_or_prereleased() {
        let item = |prerelease: bool| {
            json!({"tag_name": "v1", "prerelease": prerelease, "draft": false, "target_commitish": "main",
                   "published_at": "2026-11-22T10:00:00Z"})
        };
        assert_eq!(listed_release(&target(), &item(false)).unwrap().action.as_deref(), Some("published"));
        assert_eq!(listed_release(&target(), &item(true)).unwrap().action.as_deref(), Some("prereleased"));
        assert!(listed_release(&target(), &json!({"prerelease": false})).is_err());
    }

    #[test]
    fn a_listed_release_clones_from_the_host_that_listed_it() {
        let item = json!({"tag_name": "v1", "prerelease": false, "draft": false, "target_commitish": "main",
                          "html_url": "https://ghe.example.com/acme/api/releases/tag/v1"});
        let event = listed_release(&target(), &item).unwrap();
        assert_eq!(event.clone_url.as_deref(), Some("https://ghe.example.com/acme/api.git"));
    }
}
