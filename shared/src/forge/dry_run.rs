//! The dry-run forge (local, no GitHub credentials): statuses, deployments
//! and comments Ferry would post are written as JSON under
//! `<data dir>/forge/<owner>/<repo>/` and logged. Files are read from
//! `<data dir>/forge/<owner>/<repo>/files/`: put a `.ferry.toml` there to try
//! one without a repository.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::Digest;

use super::github::listing::{listed_event, listed_release};
use super::{CheckRun, CommitStatus, DeploymentStatus, Forge, ForgeError, Listed, Target, comment_marker};
use crate::domain::event::GitEvent;
use crate::domain::{PrNumber, Sha};

pub struct DryRunForge {
    root: PathBuf,
}

impl DryRunForge {
    pub fn new(data_dir: &Path) -> Self {
        Self { root: data_dir.join("forge") }
    }

    pub fn repo_dir(&self, at: &Target) -> PathBuf {
        self.root.join(segment(at.repo.owner())).join(segment(at.repo.name()))
    }

    /// Where the status `context` for `sha` is written.
    pub fn status_path(&self, at: &Target, sha: &Sha, context: &str) -> PathBuf {
        self.repo_dir(at).join("statuses").join(sha.as_str()).join(format!("{}.json", segment(context)))
    }

    fn write(&self, path: &Path, value: &Value) -> Result<(), ForgeError> {
        let failed = |e: std::io::Error| ForgeError::Unavailable(format!("{}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let text = serde_json::to_string_pretty(value).map_err(|e| ForgeError::Unavailable(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(failed)?;
        Ok(())
    }
}

impl DryRunForge {
    /// A JSON array the operator (or a test) put beside the repository's files.
    fn listing(&self, at: &Target, file: &str) -> Result<Option<Vec<serde_json::Value>>, ForgeError> {
        self.read(at, file)
    }

    /// The JSON file `file` beside the repository's files, if there is one.
    fn read<T: serde::de::DeserializeOwned>(&self, at: &Target, file: &str) -> Result<Option<T>, ForgeError> {
        let path = self.repo_dir(at).join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ForgeError::Unavailable(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ForgeError::Unavailable(e.to_string())),
        }
    }
}

/// A file-name-safe form of `text` (`ferry/api` → `ferry_api`).
fn segment(text: &str) -> String {
    let cleaned: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') { "_".into() } else { cleaned }
}

#[async_trait]
impl Forge for DryRunForge {
    async fn file(&self, at: &Target, _sha: &Sha, path: &str) -> Result<Option<String>, ForgeError> {
        if path.split('/').any(|part| part == ".." || part.is_empty()) {
            return Ok(None);
        }
        match std::fs::read_to_string(self.repo_dir(at).join("files").join(path)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ForgeError::Unavailable(e.to_string())),
        }
    }

    async fn pull_request_files(&self, _: &Target, _: PrNumber) -> Result<Option<Vec<String>>, ForgeError> {
        Ok(None)
    }

    /// A SHA names itself; a branch or tag is looked up in `refs.json`
    /// beside the repository's files (`{"v1.4.0": "<sha>"}`), when there is one.
    async fn commit_of(&self, at: &Target, reference: &str) -> Result<Option<Sha>, ForgeError> {
        if let Ok(sha) = Sha::parse(reference) {
            return Ok(Some(sha));
        }
        let refs: Option<std::collections::BTreeMap<String, String>> = self.read(at, "refs.json")?;
        Ok(refs.and_then(|refs| refs.get(reference).and_then(|sha| Sha::parse(sha.clone()).ok())))
    }

    async fn status(&self, at: &Target, sha: &Sha, status: &CommitStatus) -> Result<(), ForgeError> {
        let path = self.status_path(at, sha, &status.context);
        self.write(&path, &json!(status))?;
        tracing::info!(
            repo = %at.repo, sha = %sha, context = %status.context, state = ?status.state,
            description = %status.description, "dry-run: commit status"
        );
        Ok(())
    }

    async fn deployment(&self, at: &Target, sha: &Sha, environment: &str, url: &str) -> Result<u64, ForgeError> {
        let path = self.repo_dir(at).join("deployments").join(format!("{}.json", segment(environment)));
        // A stable id per environment and commit, as GitHub's would be one.
        let digest = sha2::Sha256::digest(format!("{environment}\n{sha}").as_bytes());
        let id = u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8])) >> 12;
        self.write(
            &path,
            &json!({ "id": id, "ref": sha, "environment": environment, "state": "in_progress", "environment_url": url }),
        )?;
        tracing::info!(repo = %at.repo, %environment, %url, "dry-run: deployment");
        Ok(id)
    }

    async fn check_run(&self, at: &Target, sha: &Sha, check: &CheckRun<'_>) -> Result<(), ForgeError> {
        let CheckRun { name, conclusion, title, summary } = *check;
        let path = self.repo_dir(at).join("checks").join(sha.as_str()).join(format!("{}.json", segment(name)));
        let check = json!({ "name": name, "conclusion": conclusion, "output": { "title": title, "summary": summary } });
        self.write(&path, &check)?;
        tracing::info!(repo = %at.repo, sha = %sha, %name, %conclusion, "dry-run: check run");
        Ok(())
    }

    async fn deployment_status(&self, at: &Target, status: &DeploymentStatus<'_>) -> Result<(), ForgeError> {
        let DeploymentStatus { id, environment, state, url, description } = *status;
        let path = self.repo_dir(at).join("deployments").join(format!("{}.json", segment(environment)));
        let mut deployment: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| json!({ "id": id, "environment": environment }));
        deployment["state"] = state.into();
        deployment["description"] = description.into();
        if let Some(url) = url {
            deployment["environment_url"] = url.into();
        }
        self.write(&path, &deployment)?;
        tracing::info!(repo = %at.repo, %environment, %state, %description, "dry-run: deployment status");
        Ok(())
    }

    async fn comment(&self, at: &Target, number: PrNumber, key: &str, body: &str) -> Result<(), ForgeError> {
        let path = self.repo_dir(at).join("comments").join(format!("pr-{number}-{}.json", segment(key)));
        let body = format!("{}\n{body}", comment_marker(key));
        self.write(&path, &json!({ "pull_request": number, "body": body }))?;
        tracing::info!(repo = %at.repo, pr = %number, "dry-run: pull request comment");
        Ok(())
    }

    async fn hooks(&self, at: &Target) -> Result<Vec<(u64, String)>, ForgeError> {
        Ok(self
            .listing(at, "hooks.json")?
            .unwrap_or_default()
            .iter()
            .filter_map(|h| Some((h["id"].as_u64()?, h["url"].as_str()?.to_owned())))
            .collect())
    }

    /// Writes the hook into `hooks.json` (the secret never: it is Ferry's own).
    async fn create_hook(&self, at: &Target, url: &str, _secret: &secrecy::SecretString) -> Result<u64, ForgeError> {
        let mut hooks = self.listing(at, "hooks.json")?.unwrap_or_default();
        let id = hooks.iter().filter_map(|h| h["id"].as_u64()).max().unwrap_or(0) + 1;
        hooks.push(json!({ "id": id, "url": url, "events": super::github::events::hook_events() }));
        self.write(&self.repo_dir(at).join("hooks.json"), &Value::from(hooks))?;
        tracing::info!(repo = %at.repo, %url, "dry-run: repository webhook");
        Ok(id)
    }

    async fn delete_hook(&self, at: &Target, id: u64) -> Result<(), ForgeError> {
        let mut hooks = self.listing(at, "hooks.json")?.unwrap_or_default();
        hooks.retain(|h| h["id"].as_u64() != Some(id));
        self.write(&self.repo_dir(at).join("hooks.json"), &Value::from(hooks))
    }

    /// From `pulls.json` beside the repository's files (GitHub's listing
    /// of open pull requests), when there is one.
    async fn open_pull_requests(&self, at: &Target, _: Option<&str>) -> Result<Listed<GitEvent>, ForgeError> {
        let Some(items) = self.listing(at, "pulls.json")? else { return Ok(Listed::Incomplete) };
        items
            .iter()
            .map(|item| listed_event(at, "pull_request", "synchronize", item))
            .collect::<Result<_, _>>()
            .map(Listed::all)
    }

    /// From `releases.json` beside the repository's files, when there is one.
    async fn releases(&self, at: &Target, _: Option<&str>) -> Result<Listed<GitEvent>, ForgeError> {
        let Some(items) = self.listing(at, "releases.json")? else { return Ok(Listed::all(Vec::new())) };
        items
            .iter()
            .filter(|item| item["draft"] != true)
            .map(|item| listed_release(at, item))
            .collect::<Result<_, _>>()
            .map(Listed::all)
    }

    /// From `permissions.json` beside the repository's files (`{"login":
    /// "write"}`), when there is one.
    async fn can_push(&self, at: &Target, login: &str) -> Result<Option<bool>, ForgeError> {
        let permissions: Option<std::collections::BTreeMap<String, String>> = self.read(at, "permissions.json")?;
        Ok(permissions.map(|permissions| permissions.get(login).is_some_and(|p| super::grants_push(p))))
    }
}
