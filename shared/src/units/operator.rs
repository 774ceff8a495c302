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

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub repositories: BTreeMap<String, RepositoryConfig>,
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
    pub units: String,
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
        for name in config.repositories.keys() {
            RepoName::parse(name.clone()).map_err(|e| format!("[repositories.\"{name}\"]: {e}"))?;
        }
        Ok(config)
    }

    /// The units text the operator gives `repo`, if any.
    pub fn units_for(&self, repo: &RepoName) -> Option<&str> {
        self.repositories.get(repo.full_name()).map(|r| r.units.as_str())
    }

    /// The dashboard link for a run, if one is configured.
    pub fn dashboard_link(&self, namespace: &str, name: &str) -> Option<String> {
        self.defaults.dashboard_url.as_ref().map(|t| t.replace("{namespace}", namespace).replace("{name}", name))
    }
}
