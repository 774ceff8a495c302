//! Polling Git hosts that cannot send webhooks (README.md, "Polling"): the
//! tracked refs, when each is due, and the event a new commit becomes.
//! Fetching and delivering are in `source` and `deliver`; the cycle is
//! `usecase::poll`.

#[cfg(feature = "poll")]
pub mod deliver;
pub mod pktline;
pub mod source;

use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::domain::{RefName, RepoName, Timestamp};
use crate::report::{HostRepo, Provider};

/// Which API a tracked ref is read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Github,
    Gitlab,
    /// Any smart-HTTP Git server (`info/refs`).
    Git,
}

/// The event format sent to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Cloudevents,
    Cdevents,
}

/// One `[[poll]]` entry of the operator config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackedRef {
    /// The repository's web or clone URL (`https://github.com/acme/api`).
    pub url: String,
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(rename = "type")]
    pub kind: SourceKind,
    /// `30s`, `5m`, `1h`…
    #[serde(default = "one_minute")]
    pub frequency: String,
    /// Where the CloudEvent goes; without one, only `launch` acts.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// HMAC key for `X-Ferry-Signature-256`, inline…
    #[serde(default)]
    pub secret: Option<String>,
    /// …or the secret store's name for it.
    #[serde(default)]
    pub secret_name: Option<String>,
    /// Run the repository's units as a push would.
    #[serde(default)]
    pub launch: bool,
    #[serde(default)]
    pub format: Format,
    /// The API base (GitHub Enterprise, self-managed GitLab).
    #[serde(default)]
    pub api_url: Option<String>,
    /// PEM bundle of extra CA certificates for a private host.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// A token for GitLab or a Git server, by its secret store name. With
    /// `launch` on another host, it also reads the units and posts statuses.
    #[serde(default)]
    pub token_secret: Option<String>,
    /// The host's kind, for a repository launched off GitHub: its units
    /// are read and its statuses posted there. `type = "gitlab"` implies it.
    #[serde(default)]
    pub provider: Option<Provider>,
    /// A read-only token the runs clone with (a private repository off
    /// GitHub), by its secret store name; without one they clone anonymously.
    #[serde(default)]
    pub clone_secret: Option<String>,
}

fn one_minute() -> String {
    "1m".into()
}

impl TrackedRef {
    /// Checks what the operator wrote; the problem names the entry.
    pub fn validate(&self) -> Result<(), String> {
        let at = format!("[[poll]] {} {}", self.url, self.reference);
        let url = url::Url::parse(&self.url).map_err(|e| format!("{at}: url: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!("{at}: url must be http(s)"));
        }
        // It is logged and given to runs: a credential goes in token_secret.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{at}: url may not carry a user or password: name a token_secret"));
        }
        RefName::parse(self.reference.clone()).map_err(|e| format!("{at}: {e}"))?;
        frequency(&self.frequency).map_err(|e| format!("{at}: frequency {e}"))?;
        self.owner_name().map_err(|e| format!("{at}: {e}"))?;
        if let Some(endpoint) = &self.endpoint {
            url::Url::parse(endpoint).map_err(|e| format!("{at}: endpoint: {e}"))?;
        }
        if self.secret.is_some() && self.secret_name.is_some() {
            return Err(format!("{at}: give secret or secret_name, not both"));
        }
        if self.endpoint.is_none() && !self.launch {
            return Err(format!("{at}: nothing to do: give an endpoint, or launch = true"));
        }
        // A launch is cleared as a push, which only writers make: a branch or
        // a tag, never a pull request's ref (`refs/pull/7/head`), whoever wrote it.
        let path = self.ref_path();
        if self.launch && !(path.starts_with("refs/heads/") || path.starts_with("refs/tags/")) {
            return Err(format!("{at}: launch = true needs a branch or a tag (refs/heads/…, refs/tags/…)"));
        }
        self.validate_host().map_err(|e| format!("{at}: {e}"))
    }

    /// A provider that contradicts the entry's type.
    fn validate_host(&self) -> Result<(), String> {
        if self.provider.is_some() && self.kind == SourceKind::Github {
            return Err("provider names a host other than GitHub: give type = \"gitlab\" or \"git\"".into());
        }
        if self.provider == Some(Provider::Gitlab) && self.kind == SourceKind::Git {
            return Err("a GitLab repository is read with type = \"gitlab\"".into());
        }
        Ok(())
    }

    /// Why this entry cannot launch, if it cannot: off the GitHub at
    /// `github_api`, launching needs a provider, its token and an API.
    /// Reported for this ref alone at each poll, so one entry never stops
    /// the others (or the config) from loading.
    pub fn launch_problem(&self, github_api: &url::Url) -> Option<String> {
        if !self.launch || self.on_github(github_api) {
            return None;
        }
        let Some(provider) = self.host() else {
            return Some(format!(
                "launch = true needs a repository on {github_api}, or a provider (gitlab, bitbucket, azure_devops, gitea)"
            ));
        };
        if self.token_secret.is_none() {
            return Some("launch = true on another host needs token_secret (to read units, post statuses)".into());
        }
        let checked =
            self.host_repo(provider).parts(provider).map(|_| ()).and_then(|()| self.host_api(provider).map(|_| ()));
        checked.err().map(|e| format!("url: {e}"))
    }

    /// The host whose API serves this repository's units and statuses, off
    /// GitHub: an entry with one is never on GitHub (`validate`).
    pub fn host(&self) -> Option<Provider> {
        match (self.provider, self.kind) {
            (Some(provider), _) => Some(provider),
            (None, SourceKind::Gitlab) => Some(Provider::Gitlab),
            (None, _) => None,
        }
    }

    /// The repository as `provider` names it in its API.
    pub fn host_repo(&self, provider: Provider) -> HostRepo {
        let path = self.project_path();
        match provider {
            // The web URL is `organization/project/_git/repository`.
            Provider::AzureDevops => HostRepo::new(path.replacen("/_git/", "/", 1)),
            _ => HostRepo::new(path),
        }
    }

    /// The host's API root: `api_url` (without GitLab's `/api/v4` or
    /// Gitea's `/api/v1`), else Bitbucket Cloud's API for `bitbucket.org`,
    /// else the repository URL's origin. The poller and the statuses both
    /// go here.
    pub fn host_api(&self, provider: Provider) -> Result<url::Url, String> {
        let given = self.api_url.as_deref().map(|u| u.trim_end_matches('/'));
        let url = url::Url::parse(&self.url).map_err(|e| e.to_string())?;
        let base = match (given, provider) {
            (Some(api), Provider::Gitlab) => api.trim_end_matches("/api/v4").to_owned(),
            (Some(api), Provider::Gitea) => api.trim_end_matches("/api/v1").to_owned(),
            (Some(api), _) => api.to_owned(),
            (None, Provider::Bitbucket) if url.host_str() == Some("bitbucket.org") => {
                "https://api.bitbucket.org".into()
            }
            // Bitbucket Cloud's token never goes to another server's API by default.
            (None, Provider::Bitbucket) => return Err("a Bitbucket other than bitbucket.org needs api_url".into()),
            (None, _) => url.origin().ascii_serialization(),
        };
        url::Url::parse(&base).map_err(|e| format!("api_url: {e}"))
    }

    /// The name Ferry keys this repository by. On the GitHub at
    /// `github_api`, `owner/name`; elsewhere the host and the whole path
    /// (`gitlab.com/group.sub.project`), whose owner holds a `.` or `_`
    /// that no GitHub login has: a repository on another host never shares
    /// a GitHub repository's records, units or credentials.
    pub fn repo(&self, github_api: &url::Url) -> Result<RepoName, String> {
        if self.on_github(github_api) { self.owner_name() } else { self.host_identity() }
    }

    /// The name of a repository off GitHub (see [`TrackedRef::repo`]). An
    /// entry with a provider is never GitHub's, so this is its name.
    pub fn host_identity(&self) -> Result<RepoName, String> {
        let url = url::Url::parse(&self.url).map_err(|e| e.to_string())?;
        let host = url.host_str().ok_or("url names no host")?.trim_matches(['[', ']']).replace(':', "_");
        let mut owner = match url.port() {
            Some(port) => format!("{host}_{port}"),
            None => host,
        };
        // No GitHub login holds a `.` or starts with `_`.
        if !owner.contains('.') {
            owner.insert(0, '_');
        }
        let path = self.project_path();
        if path.is_empty() {
            return Err("url names no repository".into());
        }
        RepoName::parse(format!("{owner}/{}", path_name(&path))).map_err(|e| e.to_string())
    }

    /// `owner/name`: the URL's last two path segments (GitHub's API path).
    pub fn owner_name(&self) -> Result<RepoName, String> {
        let url = url::Url::parse(&self.url).map_err(|e| e.to_string())?;
        let segments: Vec<&str> =
            url.path_segments().map(|s| s.filter(|p| !p.is_empty()).collect()).unwrap_or_default();
        let [.., owner, name] = segments[..] else {
            return Err("url names no owner/name".into());
        };
        RepoName::parse(format!("{owner}/{}", name.trim_end_matches(".git"))).map_err(|e| e.to_string())
    }

    /// Whether this entry is a repository on the GitHub at `github_api`
    /// (`FERRY_GITHUB_API_URL`): a `github` entry read through that API's
    /// origin whose URL is on that GitHub's web host. Only such an entry may
    /// use a GitHub credential or launch units, which are found by
    /// owner/name: a repository of the same name on another host is not
    /// the GitHub one, and its host never sees a GitHub token.
    pub fn on_github(&self, github_api: &url::Url) -> bool {
        let read_through = match &self.api_url {
            Some(api) => url::Url::parse(api).ok(),
            None => Some(github_api.clone()),
        };
        let web = url::Url::parse(&crate::usecase::oauth::web_base(github_api)).ok();
        let url = url::Url::parse(&self.url).ok();
        let same = |a: Option<&url::Url>, b: Option<&url::Url>| match (a, b) {
            (Some(a), Some(b)) => crate::net::same_origin(a, b),
            _ => false,
        };
        self.kind == SourceKind::Github
            && same(read_through.as_ref(), Some(github_api))
            && same(url.as_ref(), web.as_ref())
    }

    /// The path of the repository below the host (`group/sub/project`), decoded.
    pub fn project_path(&self) -> String {
        url::Url::parse(&self.url)
            .map(|u| {
                let path = percent_encoding::percent_decode_str(u.path()).decode_utf8_lossy().into_owned();
                path.trim_matches('/').trim_end_matches(".git").to_owned()
            })
            .unwrap_or_default()
    }

    /// Where a run clones from: the URL with `.git`, but Azure DevOps's as
    /// it is (its repositories have no `.git` form).
    pub fn clone_url(&self) -> String {
        let url = self.url.trim_end_matches('/');
        match self.host() {
            Some(Provider::AzureDevops) => url.to_owned(),
            _ => format!("{}.git", url.trim_end_matches(".git")),
        }
    }

    /// The ref as a path (`refs/heads/main`): the CloudEvent's subject.
    pub fn ref_path(&self) -> String {
        if self.reference.starts_with("refs/") {
            self.reference.clone()
        } else {
            format!("refs/heads/{}", self.reference)
        }
    }

    pub fn period(&self) -> Duration {
        frequency(&self.frequency).unwrap_or(Duration::from_secs(60))
    }

    /// A fixed offset within a tenth of the period, so refs sharing a
    /// frequency do not all come due in the same second.
    pub fn jitter(&self) -> Duration {
        let spread = self.period().as_secs() / 10;
        if spread == 0 {
            return Duration::ZERO;
        }
        let digest = Sha256::digest(format!("{}\n{}", self.url, self.reference));
        let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        Duration::from_secs(n % spread)
    }

    /// When to look again after a poll at `now`.
    pub fn next_poll(&self, now: Timestamp) -> Timestamp {
        now.plus(self.period()).plus(self.jitter())
    }
}

/// A repository path as one name: its segments joined by `.`. A path whose
/// segments hold a `.` or anything a name may not (`a.b/c` and `a/b.c`, an
/// Azure project with a space) also gets a hash of the exact path, so two
/// paths never share a name.
fn path_name(path: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut name: String = path
        .chars()
        .map(|c| {
            if c == '/' {
                '.'
            } else if plain(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if path.chars().all(|c| c == '/' || plain(c)) && name.len() <= 100 {
        return name;
    }
    let hash = hex::encode(&Sha256::digest(path.as_bytes())[..4]);
    name.truncate(name.floor_char_boundary(90));
    format!("{name}-{hash}")
}

/// `30s`, `5m`, `2h`, `1h30m`, or plain seconds.
pub fn frequency(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return if seconds > 0 { Ok(Duration::from_secs(seconds)) } else { Err("must be above zero".into()) };
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("{text:?} is not a duration like 30s, 5m or 1h")),
        };
        let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 30s, 5m or 1h"))?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(format!("{text:?} is not a duration like 30s, 5m or 1h"));
    }
    Ok(Duration::from_secs(total))
}

/// The CloudEvent id of a commit on a tracked ref: the same commit always
/// has the same id, so a receiver can drop a repeat.
pub fn event_id(url: &str, reference: &str, sha: &str) -> String {
    hex::encode(&Sha256::digest(format!("{url}\n{reference}\n{sha}"))[..16])
}

/// A GitHub ref `main` at `url`, polled every 5 minutes for CloudEvents.
#[cfg(test)]
impl TrackedRef {
    pub(crate) fn sample(url: &str) -> Self {
        TrackedRef {
            url: url.into(),
            reference: "main".into(),
            kind: SourceKind::Github,
            frequency: "5m".into(),
            endpoint: Some("https://hooks.example.com/ce".into()),
            secret: None,
            secret_name: None,
            launch: false,
            format: Format::Cloudevents,
            api_url: None,
            ca_file: None,
            token_secret: None,
            provider: None,
            clone_secret: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(url: &str) -> TrackedRef {
        TrackedRef::sample(url)
    }

    #[test]
    fn frequencies_read_like_people_write_them() {
        for (text, seconds) in [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("90", 90), ("1d", 86_400)] {
            assert_eq!(frequency(text).unwrap(), Duration::from_secs(seconds), "{text}");
        }
        for bad in ["", "0", "0s", "5x", "m", "1.5m", "-1m"] {
            assert!(frequency(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn repositories_and_paths_come_from_the_url() {
        let github = url::Url::parse("https://api.github.com").unwrap();
        let repo = |url: &str| tracked(url).repo(&github).map(|r| r.full_name().to_owned());
        assert_eq!(repo("https://github.com/acme/api").unwrap(), "acme/api");
        assert_eq!(tracked("https://git.example.com/scm/acme/api.git").owner_name().unwrap().full_name(), "acme/api");
        assert_eq!(tracked("https://gitlab.com/group/sub/project").project_path(), "group/sub/project");
        assert!(tracked("https://github.com/").repo(&github).is_err());
        assert_eq!(tracked("https://github.com/acme/api").ref_path(), "refs/heads/main");
    }

    #[test]
    fn a_repository_off_github_is_named_by_its_host_and_whole_path() {
        let github = url::Url::parse("https://api.github.com").unwrap();
        let entry =
            |url: &str, kind: SourceKind, provider: Option<Provider>| TrackedRef { kind, provider, ..tracked(url) };
        let cases = [
            (entry("https://gitlab.com/group/sub/project", SourceKind::Gitlab, None), "gitlab.com/group.sub.project"),
            (entry("https://gitlab.com/acme/api.git", SourceKind::Gitlab, None), "gitlab.com/acme.api"),
            (
                entry("https://dev.azure.com/acme/platform/_git/api", SourceKind::Git, Some(Provider::AzureDevops)),
                "dev.azure.com/acme.platform._git.api",
            ),
            (
                entry("http://127.0.0.1:8080/acme/api", SourceKind::Git, Some(Provider::Gitea)),
                "127.0.0.1_8080/acme.api",
            ),
            // A host without a dot still has an owner no GitHub login has.
            (entry("http://gitea:3000/acme/api", SourceKind::Git, None), "_gitea_3000/acme.api"),
            (entry("https://gitea/acme/api", SourceKind::Git, None), "_gitea/acme.api"),
            // The same owner/name elsewhere is not GitHub's acme/api.
            (entry("https://git.example.com/acme/api", SourceKind::Github, None), "git.example.com/acme.api"),
            (entry("https://github.com/acme/api", SourceKind::Github, None), "acme/api"),
        ];
        for (entry, expected) in cases {
            assert_eq!(entry.repo(&github).unwrap().full_name(), expected, "{}", entry.url);
        }
        // Dots and spaces in a path: a readable name, and a hash of the exact path.
        let name = |url: &str| entry(url, SourceKind::Gitlab, None).repo(&github).unwrap().full_name().to_owned();
        let (a, b) = (name("https://gitlab.com/group/sub.project"), name("https://gitlab.com/group.sub/project"));
        assert!(
            a.starts_with("gitlab.com/group.sub-project-") && b.starts_with("gitlab.com/group-sub.project-"),
            "{a} {b}"
        );
        assert_ne!(a, b, "two paths, two names");
        let spaced = name("https://dev.azure.com/acme/My%20Project/_git/api");
        assert!(spaced.starts_with("dev.azure.com/acme.My-Project._git.api-"), "{spaced}");
        let long = name(&format!("https://gitlab.com/group/{}", "p".repeat(150)));
        assert!(RepoName::parse(long.clone()).is_ok() && long.len() < 120, "{long}");
        assert!(!RepoName::parse(a).unwrap().is_githubs());
    }

    #[test]
    fn a_host_is_reached_at_its_api_with_the_path_it_names_repositories_by() {
        let entry = |url: &str, provider: Provider, api: Option<&str>| TrackedRef {
            kind: if provider == Provider::Gitlab { SourceKind::Gitlab } else { SourceKind::Git },
            provider: Some(provider),
            api_url: api.map(str::to_owned),
            ..tracked(url)
        };
        let cases = [
            (entry("https://gitlab.com/g/sub/p", Provider::Gitlab, None), "https://gitlab.com/", "g/sub/p"),
            (
                entry("https://gl.example.com/g/p", Provider::Gitlab, Some("https://gl.example.com/api/v4/")),
                "https://gl.example.com/",
                "g/p",
            ),
            (entry("https://bitbucket.org/ws/api", Provider::Bitbucket, None), "https://api.bitbucket.org/", "ws/api"),
            (entry("https://dev.azure.com/o/p/_git/r", Provider::AzureDevops, None), "https://dev.azure.com/", "o/p/r"),
            (entry("http://gitea:3000/o/r.git", Provider::Gitea, None), "http://gitea:3000/", "o/r"),
            (
                entry("https://git.example.com/o/r", Provider::Gitea, Some("https://git.example.com/api/v1")),
                "https://git.example.com/",
                "o/r",
            ),
            // Decoded once here, encoded once by the adapter.
            (
                entry("https://dev.azure.com/o/My%20Project/_git/r", Provider::AzureDevops, None),
                "https://dev.azure.com/",
                "o/My Project/r",
            ),
        ];
        for (entry, api, path) in cases {
            let provider = entry.host().unwrap();
            assert_eq!(entry.host_api(provider).unwrap().as_str(), api, "{}", entry.url);
            assert_eq!(entry.host_repo(provider).path, path, "{}", entry.url);
        }
        assert_eq!(
            entry("https://dev.azure.com/o/p/_git/r", Provider::AzureDevops, None).clone_url(),
            "https://dev.azure.com/o/p/_git/r"
        );
        assert_eq!(entry("https://gitlab.com/g/p", Provider::Gitlab, None).clone_url(), "https://gitlab.com/g/p.git");
        // Bitbucket Cloud's API is only for bitbucket.org's repositories.
        let own_server = entry("https://bitbucket.corp.example/proj/repo", Provider::Bitbucket, None);
        assert!(own_server.host_api(Provider::Bitbucket).unwrap_err().contains("needs api_url"));
    }

    #[test]
    fn launching_off_github_needs_a_provider_and_a_token() {
        let github = url::Url::parse("https://api.github.com").unwrap();
        let launching = |url: &str, kind: SourceKind, provider: Option<Provider>, token: bool| TrackedRef {
            kind,
            provider,
            launch: true,
            token_secret: token.then(|| "hosts/acme".to_owned()),
            ..tracked(url)
        };
        // Problems of one ref, reported at its poll.
        let cases = [
            (launching("https://gitlab.com/g/p", SourceKind::Gitlab, None, true), None),
            (launching("https://gitlab.com/g/p", SourceKind::Gitlab, None, false), Some("needs token_secret")),
            (launching("https://gitea.example.com/o/r", SourceKind::Git, None, true), Some("or a provider")),
            (launching("https://gitea.example.com/o/r", SourceKind::Git, Some(Provider::Gitea), true), None),
            (
                launching("https://bitbucket.org/ws/a/b", SourceKind::Git, Some(Provider::Bitbucket), true),
                Some("workspace/repo_slug"),
            ),
            (
                launching("https://dev.azure.com/o/_git/r", SourceKind::Git, Some(Provider::AzureDevops), true),
                Some("organization/project"),
            ),
            (
                launching("https://bitbucket.corp.example/p/r", SourceKind::Git, Some(Provider::Bitbucket), true),
                Some("needs api_url"),
            ),
            (launching("https://github.com/o/r", SourceKind::Github, None, false), None),
        ];
        for (entry, problem) in cases {
            assert!(entry.validate().is_ok(), "{}: the config loads", entry.url);
            match (entry.launch_problem(&github), problem) {
                (None, None) => {}
                (Some(e), Some(problem)) => assert!(e.contains(problem), "{}: {e}", entry.url),
                (got, _) => panic!("{} {:?}: {got:?}, expected {problem:?}", entry.url, entry.provider),
            }
        }
        // Contradictions and credentials in the URL stop the config.
        let contradictions = [
            (launching("https://github.com/o/r", SourceKind::Github, Some(Provider::Gitea), true), "other than GitHub"),
            (launching("https://gitlab.com/g/p", SourceKind::Git, Some(Provider::Gitlab), true), "type = \"gitlab\""),
            (launching("https://ci:s3cret@gitlab.com/g/p", SourceKind::Gitlab, None, true), "user or password"),
        ];
        for (entry, problem) in contradictions {
            let e = entry.validate().unwrap_err();
            assert!(e.contains(problem), "{}: {e}", entry.url);
        }
    }

    #[test]
    fn refs_of_one_frequency_spread_within_a_tenth_of_it() {
        let jitters: Vec<Duration> =
            (0..50).map(|i| tracked(&format!("https://github.com/acme/r{i}")).jitter()).collect();
        assert!(jitters.iter().all(|j| *j < Duration::from_secs(30)));
        let distinct: std::collections::BTreeSet<_> = jitters.iter().collect();
        assert!(distinct.len() > 10, "spread, not bunched: {distinct:?}");
        let one = tracked("https://github.com/acme/api");
        assert_eq!(one.jitter(), one.jitter(), "stable across cycles");
    }

    #[test]
    fn only_an_entry_on_the_configured_github_is_githubs() {
        let public = url::Url::parse("https://api.github.com").unwrap();
        let enterprise = url::Url::parse("https://ghe.example.com/api/v3").unwrap();
        use SourceKind::{Git, Github, Gitlab};
        let entry = |url: &str, kind: SourceKind, api: Option<&str>| TrackedRef {
            kind,
            api_url: api.map(str::to_owned),
            ..tracked(url)
        };
        let cases = [
            (entry("https://github.com/acme/api", Github, None), &public, true),
            (entry("https://github.com/acme/api.git", Github, Some("https://api.github.com/")), &public, true),
            (entry("https://ghe.example.com/acme/api", Github, None), &enterprise, true),
            // Another host, whatever the owner/name.
            (entry("https://git.example.com/acme/api", Github, None), &public, false),
            (entry("https://gitlab.com/acme/api", Gitlab, None), &public, false),
            (entry("https://github.com/acme/api", Git, None), &public, false),
            // Read through another API, or over plain http.
            (entry("https://github.com/acme/api", Github, Some("https://evil.example.com")), &public, false),
            (entry("http://github.com/acme/api", Github, None), &public, false),
            (entry("https://github.com/acme/api", Github, None), &enterprise, false),
            (entry("https://ghe.example.com/acme/api", Github, Some("not a url")), &enterprise, false),
        ];
        for (entry, api, expected) in cases {
            assert_eq!(
                entry.on_github(api),
                expected,
                "{} {:?} {:?} against {api}",
                entry.url,
                entry.kind,
                entry.api_url
            );
        }
    }

    #[test]
    fn entries_are_checked() {
        assert!(tracked("https://github.com/acme/api").validate().is_ok());
        let mut nothing = tracked("https://github.com/acme/api");
        nothing.endpoint = None;
        assert!(nothing.validate().unwrap_err().contains("nothing to do"));
        for (reference, launches) in
            [("main", true), ("refs/heads/main", true), ("refs/tags/v1", true), ("refs/pull/7/head", false)]
        {
            let mut launching = tracked("https://github.com/acme/api");
            (launching.launch, launching.reference) = (true, reference.into());
            assert_eq!(launching.validate().is_ok(), launches, "{reference}");
        }
        let mut bad = tracked("ftp://github.com/acme/api");
        assert!(bad.validate().is_err());
        bad = tracked("https://github.com/acme/api");
        bad.frequency = "often".into();
        assert!(bad.validate().unwrap_err().contains("frequency"));
        assert_eq!(event_id("u", "main", "a"), event_id("u", "main", "a"));
        assert_ne!(event_id("u", "main", "a"), event_id("u", "main", "b"));
    }
}
