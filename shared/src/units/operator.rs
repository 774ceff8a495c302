//! The operator's config (`FERRY_CONFIG`): defaults for every unit, and
//! units for repositories that have no `.ferry.toml` (what the local demo
//! uses). Read once at start; a broken file stops the start.
//!
//! ```toml
//! [defaults]
//! namespace = "ci"                       # where runs go when a unit names none
//! service_account = "ferry-runner"
//! dashboard_url = "https://tekton.example.com/#/namespaces/{namespace}/pipelineruns/{name}"
//!
//! [kubernetes]                           # FERRY_CLUSTER=kube: the client-side rate limit
//! qps = 5
//! burst = 10
//!
//! [repositories."acme/api"]
//! units = '''
//! [api]
//! [api.pipeline]
//! ref = "build"
//! '''
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::domain::RepoName;

pub const DEFAULT_NAMESPACE: &str = "ferry";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub repositories: BTreeMap<String, RepositoryConfig>,
    #[serde(default)]
    pub kubernetes: Kubernetes,
    /// Refs the poller watches (`[[poll]]`).
    #[serde(default)]
    pub poll: Vec<crate::poll::TrackedRef>,
    /// How many poll requests may be in flight at once.
    #[serde(default = "default_in_flight")]
    pub poll_in_flight: usize,
    /// `[reconciler]`: limits of the repairs.
    #[serde(default)]
    pub reconciler: Reconciler,
}

/// `[reconciler]` in the operator config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reconciler {
    /// A run with no result this long after its creation is reported as an error.
    #[serde(default = "default_run_timeout")]
    pub run_timeout_minutes: u64,
    /// At most this many previews are removed in one cycle.
    #[serde(default = "default_preview_removals")]
    pub max_preview_removals: usize,
}

fn default_run_timeout() -> u64 {
    120
}

fn default_preview_removals() -> usize {
    10
}

impl Default for Reconciler {
    fn default() -> Self {
        Self { run_timeout_minutes: default_run_timeout(), max_preview_removals: default_preview_removals() }
    }
}

fn default_in_flight() -> usize {
    10
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            defaults: Defaults::default(),
            repositories: BTreeMap::new(),
            kubernetes: Kubernetes::default(),
            poll: Vec::new(),
            poll_in_flight: default_in_flight(),
            reconciler: Reconciler::default(),
        }
    }
}

/// How hard Ferry may press the Kubernetes API (`FERRY_CLUSTER=kube`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// Requests per second, sustained.
    #[serde(default = "default_qps")]
    pub qps: f64,
    /// Requests allowed at once after a quiet spell.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

impl Default for Kubernetes {
    fn default() -> Self {
        Self { qps: default_qps(), burst: default_burst() }
    }
}

impl Eq for Kubernetes {}

fn default_qps() -> f64 {
    5.0
}

fn default_burst() -> u32 {
    10
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub service_account: Option<String>,
    /// The commit status link: `{namespace}` and `{name}` are the run's.
    #[serde(default)]
    pub dashboard_url: Option<String>,
    /// The image the generated pipeline builds with (docker actions).
    #[serde(default = "default_builder")]
    pub builder_image: String,
    /// The image the generated pipeline deploys with (helm actions).
    #[serde(default = "default_helm")]
    pub helm_image: String,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            namespace: default_namespace(),
            service_account: None,
            dashboard_url: None,
            builder_image: default_builder(),
            helm_image: default_helm(),
        }
    }
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_owned()
}

fn default_builder() -> String {
    "gcr.io/kaniko-project/executor:v1.23.2".to_owned()
}

fn default_helm() -> String {
    "alpine/helm:3.16.2".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// The units, in `.ferry.toml` format (a template too).
    #[serde(default)]
    pub units: String,
    /// Other hosts that get a copy of every commit status Ferry posts for
    /// this repository (a GitLab, Bitbucket, Azure DevOps or Gitea mirror).
    #[serde(default)]
    pub report_to: Vec<ReportTo>,
}

/// `[[repositories."o/r".report_to]]`: one more host for the statuses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportTo {
    pub provider: crate::report::Provider,
    /// The host's root URL; the public service's by default (Gitea has none).
    #[serde(default)]
    pub url: Option<url::Url>,
    /// The repository as that host names it (`group/project`, `workspace/slug`,
    /// `organization/project/repository`, `owner/repo`).
    pub repository: String,
    /// The secret-store name of the token for that host.
    pub token_secret: String,
}

/// A token the operator config sends to a host it names may not be one of
/// Ferry's own credentials (a GitHub token above all).
fn not_ferrys_own(name: &str) -> Result<(), String> {
    match crate::secrets::SecretName::parse(name.to_owned()) {
        Ok(name) if name.is_ferrys_own() => {
            Err(format!("\"{name}\" is a secret Ferry keeps for GitHub or itself; name one of your own"))
        }
        // An invalid name is reported where it is read.
        _ => Ok(()),
    }
}

impl OperatorConfig {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| 1 + text[..s.start.min(text.len())].matches('\n').count());
            format!("{}{}", line.map(|l| format!("line {l}: ")).unwrap_or_default(), e.message().trim_end())
        })?;
        if !(config.kubernetes.qps > 0.0 && config.kubernetes.qps.is_finite()) || config.kubernetes.burst == 0 {
            return Err("[kubernetes]: qps must be above 0 and burst at least 1".into());
        }
        for tracked in &config.poll {
            tracked.validate()?;
            if let Some(name) = &tracked.token_secret {
                not_ferrys_own(name)
                    .map_err(|e| format!("[[poll]] {} {}: token_secret {e}", tracked.url, tracked.reference))?;
            }
            if tracked.period() < std::time::Duration::from_secs(60) {
                tracing::warn!(url = %tracked.url, frequency = %tracked.frequency, "polling more often than once a minute");
            }
        }
        if config.poll_in_flight == 0 {
            return Err("poll_in_flight must be at least 1".into());
        }
        for (name, repository) in &config.repositories {
            RepoName::parse(name.clone()).map_err(|e| format!("[repositories.\"{name}\"]: {e}"))?;
            for to in &repository.report_to {
                not_ferrys_own(&to.token_secret)
                    .map_err(|e| format!("[repositories.\"{name}\"] report_to: token_secret {e}"))?;
            }
        }
        Ok(config)
    }

    /// The units text the operator gives `repo`, if any.
    pub fn units_for(&self, repo: &RepoName) -> Option<&str> {
        self.repositories.get(repo.full_name()).map(|r| r.units.as_str()).filter(|units| !units.trim().is_empty())
    }

    /// The other hosts that get `repo`'s statuses.
    pub fn report_to(&self, repo: &RepoName) -> &[ReportTo] {
        self.repositories.get(repo.full_name()).map_or(&[], |r| r.report_to.as_slice())
    }

    /// Whether any repository's statuses go to another host too.
    pub fn mirrors_statuses(&self) -> bool {
        self.repositories.values().any(|r| !r.report_to.is_empty())
    }

    /// The dashboard link for a run, if one is configured.
    pub fn dashboard_link(&self, namespace: &str, name: &str) -> Option<String> {
        self.defaults.dashboard_url.as_ref().map(|t| t.replace("{namespace}", namespace).replace("{name}", name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_reads() {
        let text = r#"
[defaults]
namespace = "ci"
service_account = "ferry-runner"
dashboard_url = "https://tekton.example.com/#/namespaces/{namespace}/pipelineruns/{name}"

[kubernetes]
qps = 2.5
burst = 4

[repositories."acme/api"]
units = '''
[api]
[api.pipeline]
ref = "build"
'''
"#;
        let config = OperatorConfig::parse(text).unwrap();
        assert_eq!(config.defaults.namespace, "ci");
        assert_eq!(config.kubernetes, Kubernetes { qps: 2.5, burst: 4 });
        assert!(config.units_for(&RepoName::parse("acme/api").unwrap()).unwrap().contains("[api.pipeline]"));
        assert_eq!(config.units_for(&RepoName::parse("acme/web").unwrap()), None);
        assert_eq!(
            config.dashboard_link("ci", "run-1").as_deref(),
            Some("https://tekton.example.com/#/namespaces/ci/pipelineruns/run-1")
        );
        let empty = OperatorConfig::parse("").unwrap();
        assert_eq!(
            (empty.defaults.namespace.as_str(), empty.kubernetes.qps, empty.kubernetes.burst),
            ("ferry", 5.0, 10)
        );
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("[defaults]\nnamespce = \"ci\"\n", "line 2: unknown field `namespce`"),
            ("[repositories.\"not a repo\"]\nunits = \"\"\n", "[repositories.\"not a repo\"]"),
            ("[kubernetes]\nqps = 0.0\n", "qps must be above 0"),
            ("[repositories.\"acme/api\"]\nunits = 3\n", "line 2: invalid type"),
            (
                "[[repositories.\"acme/api\".report_to]]\nprovider = \"gitlab\"\nrepository = \"a/b\"\ntoken_secret = \"installations/7\"\n",
                "report_to: token_secret \"installations/7\" is a secret Ferry keeps",
            ),
            (
                "[[poll]]\nurl = \"https://gitlab.com/acme/api\"\nref = \"main\"\ntype = \"gitlab\"\nlaunch = true\ntoken_secret = \"repositories/acme/api\"\n",
                "token_secret \"repositories/acme/api\" is a secret Ferry keeps",
            ),
        ];
        for (text, says) in cases {
            let problem = OperatorConfig::parse(text).unwrap_err();
            assert!(problem.contains(says), "{text:?}: {problem}");
        }
    }
}
