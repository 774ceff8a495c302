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
//! [policy]                             # what repositories' units may claim (units::policy)
//! preview_hosts = [".preview.example.com"]
//! namespaces = ["ci", "ci-*"]
//!
//! [repositories."acme/api"]
//! units = '''
//! [api]
//! [api.pipeline]
//! ref = "build"
//! '''
//! [repositories."acme/api".policy]       # replaces the global rules it names
//! namespaces = ["ci", "staging"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::Unit;
use super::policy::{self, Policy, PolicyViolation};
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
    /// `[policy]`: what every repository's units may claim.
    #[serde(default)]
    pub policy: Policy,
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
    /// Reported runs and closed pull requests (their approvals with them)
    /// are forgotten this many days later.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Each repository's newest releases kept; older ones are forgotten.
    #[serde(default = "default_keep_releases")]
    pub keep_releases: usize,
    /// Repositories repaired at once by one process.
    #[serde(default = "default_reconcile_in_flight")]
    pub in_flight: usize,
    /// Fanned out over a queue: each installation's items are sent this
    /// many a minute (GitHub's rate limits are per installation).
    #[serde(default = "default_items_per_minute")]
    pub items_per_minute: usize,
}

fn default_run_timeout() -> u64 {
    120
}

fn default_preview_removals() -> usize {
    10
}

fn default_retention_days() -> u32 {
    14
}

fn default_keep_releases() -> usize {
    30
}

fn default_reconcile_in_flight() -> usize {
    16
}

/// At two listings an item, 80 calls a minute when every listing changed:
/// under an installation's 5,000 an hour (83 a minute).
fn default_items_per_minute() -> usize {
    40
}

impl Default for Reconciler {
    fn default() -> Self {
        Self {
            run_timeout_minutes: default_run_timeout(),
            max_preview_removals: default_preview_removals(),
            retention_days: default_retention_days(),
            keep_releases: default_keep_releases(),
            in_flight: default_reconcile_in_flight(),
            items_per_minute: default_items_per_minute(),
        }
    }
}

impl Reconciler {
    /// The releases each repository keeps: at least one, so a listed
    /// release can be told from a forgotten one.
    pub fn releases_kept(&self) -> usize {
        self.keep_releases.max(1)
    }

    /// Until when what finishes at `now` is kept.
    pub fn retain_from(&self, now: crate::domain::Timestamp) -> crate::domain::Timestamp {
        now.plus(std::time::Duration::from_secs(u64::from(self.retention_days) * 24 * 3600))
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
            policy: Policy::default(),
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
    /// A pull request closed or merged cancels its runs still running.
    #[serde(default = "yes")]
    pub cancel_on_close: bool,
    /// At most this many runs of one repository run at once; more wait,
    /// created pending, and start in order as earlier ones finish.
    #[serde(default)]
    pub max_running: Option<u32>,
}

fn yes() -> bool {
    true
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            namespace: default_namespace(),
            service_account: None,
            dashboard_url: None,
            builder_image: default_builder(),
            helm_image: default_helm(),
            cancel_on_close: true,
            max_running: None,
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
    /// This repository's rules in place of the global ones they name.
    #[serde(default)]
    pub policy: Option<Policy>,
    /// At most this many of its runs at once (instead of `[defaults]`'s).
    #[serde(default)]
    pub max_running: Option<u32>,
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

/// Entries launching one repository on another host describe it one way
/// (the same provider, type, API, CA and tokens, whichever ref launched),
/// and two repositories never share a name.
fn hosts_agree(poll: &[crate::poll::TrackedRef]) -> Result<(), String> {
    type How =
        (Option<crate::report::Provider>, String, Option<String>, Option<String>, Option<String>, Option<String>);
    let how = |t: &crate::poll::TrackedRef| -> How {
        let kind = format!("{:?}", t.kind);
        (t.host(), kind, t.api_url.clone(), t.ca_file.clone(), t.token_secret.clone(), t.clone_secret.clone())
    };
    let place = |t: &crate::poll::TrackedRef| {
        let origin = url::Url::parse(&t.url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        (origin, t.project_path())
    };
    let mut seen: BTreeMap<RepoName, &crate::poll::TrackedRef> = BTreeMap::new();
    for tracked in poll.iter().filter(|t| t.launch && t.host().is_some()) {
        let Ok(repo) = tracked.host_identity() else { continue };
        let Some(first) = seen.get(&repo) else {
            seen.insert(repo, tracked);
            continue;
        };
        let at = format!("[[poll]] {} {}", tracked.url, tracked.reference);
        if place(first) != place(tracked) {
            return Err(format!("{at}: {} is another repository named {repo}", first.url));
        }
        if how(first) != how(tracked) {
            return Err(format!(
                "{at}: another entry of {repo} names a different provider, type, api_url, ca_file, token_secret or clone_secret"
            ));
        }
    }
    Ok(())
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
            let line = e.span().map(|s| super::line_at(text, s.start));
            format!("{}{}", line.map(|l| format!("line {l}: ")).unwrap_or_default(), e.message().trim_end())
        })?;
        if !(config.kubernetes.qps > 0.0 && config.kubernetes.qps.is_finite()) || config.kubernetes.burst == 0 {
            return Err("[kubernetes]: qps must be above 0 and burst at least 1".into());
        }
        for tracked in &config.poll {
            tracked.validate()?;
            for (field, name) in [("token_secret", &tracked.token_secret), ("clone_secret", &tracked.clone_secret)] {
                if let Some(name) = name {
                    not_ferrys_own(name)
                        .map_err(|e| format!("[[poll]] {} {}: {field} {e}", tracked.url, tracked.reference))?;
                }
            }
            if tracked.period() < std::time::Duration::from_secs(60) {
                tracing::warn!(url = %tracked.url, frequency = %tracked.frequency, "polling more often than once a minute");
            }
        }
        hosts_agree(&config.poll)?;
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

    /// The policy `repo`'s units are held to: the global one, with the
    /// rules the repository's own names in their place.
    pub fn policy_for(&self, repo: &RepoName) -> Policy {
        self.policy.overridden_by(self.repositories.get(repo.full_name()).and_then(|r| r.policy.as_ref()))
    }

    /// Whether `repo`'s units keep within its policy ([`policy::check`]).
    pub fn check_units(&self, repo: &RepoName, units: &[Unit]) -> Result<(), PolicyViolation> {
        policy::check(&self.policy_for(repo), units, &self.defaults)
    }

    /// The `[[poll]]` entry of `repo` on a host other than GitHub, and that host.
    pub fn hosted(&self, repo: &RepoName) -> Option<(&crate::poll::TrackedRef, crate::report::Provider)> {
        self.poll.iter().find_map(|tracked| {
            let provider = tracked.host()?;
            (tracked.host_identity().ok().as_ref() == Some(repo)).then_some((tracked, provider))
        })
    }

    /// How many of `repo`'s runs may run at once, if the config limits it.
    pub fn max_running(&self, repo: &RepoName) -> Option<u32> {
        self.repositories.get(repo.full_name()).and_then(|r| r.max_running).or(self.defaults.max_running)
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
    fn the_policy_reads_globally_and_per_repository() {
        let text = r#"
[policy]
preview_hosts = [".preview.example.com"]
namespaces = ["ci", "ci-*"]
service_accounts = ["ferry-runner"]

[repositories."acme/deploy"]
policy = { namespaces = ["prod"] }

[repositories."acme/api"]
units = ""
"#;
        let config = OperatorConfig::parse(text).unwrap();
        let api = config.policy_for(&RepoName::parse("acme/api").unwrap());
        let deploy = config.policy_for(&RepoName::parse("acme/deploy").unwrap());
        let unknown = config.policy_for(&RepoName::parse("someone/else").unwrap());
        assert_eq!((&api, &unknown), (&config.policy, &config.policy));
        assert_eq!(deploy.preview_hosts, config.policy.preview_hosts, "kept: the repository names no hosts");
        assert_eq!(deploy.service_accounts, config.policy.service_accounts);
        assert_ne!(deploy.namespaces, config.policy.namespaces, "replaced");
        let prod = crate::units::file::parse(
            "[app.pipeline]\nref = \"deploy\"\nnamespace = \"prod\"\nservice_account = \"ferry-runner\"\n",
            &context(),
        )
        .unwrap();
        assert_eq!(config.check_units(&RepoName::parse("acme/deploy").unwrap(), &prod), Ok(()));
        let refused = config.check_units(&RepoName::parse("acme/api").unwrap(), &prod).unwrap_err();
        assert_eq!(refused.to_string(), "unit `app`: namespace `prod` is outside the allowed namespaces ci, ci-*");
        assert_eq!(OperatorConfig::parse("").unwrap().policy, Policy::default(), "no [policy]: everything allowed");
    }

    /// The demo's units still render in the template box.
    #[test]
    fn the_samples_render_in_the_template_box() {
        let sample = OperatorConfig::parse(include_str!("../../../events/ferry.toml")).unwrap();
        let units = sample.units_for(&RepoName::parse("acme/api").unwrap()).unwrap();
        let names: Vec<String> =
            crate::units::file::parse(units, &context()).unwrap().iter().map(|u| u.name.to_string()).collect();
        assert_eq!(names, ["api", "docs"]);
    }

    fn context() -> crate::units::TemplateContext {
        crate::units::push_context("main", &"0".repeat(40))
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
            (
                "[[poll]]\nurl = \"https://gitlab.com/acme/api\"\nref = \"main\"\ntype = \"gitlab\"\nlaunch = true\ntoken_secret = \"hosts/a\"\nclone_secret = \"installations/7\"\n",
                "clone_secret \"installations/7\" is a secret Ferry keeps",
            ),
            (
                "[[poll]]\nurl = \"https://gitlab.com/acme/api\"\nref = \"main\"\ntype = \"gitlab\"\nlaunch = true\ntoken_secret = \"hosts/a\"\n\
                 [[poll]]\nurl = \"https://gitlab.com/acme/api.git\"\nref = \"dev\"\ntype = \"gitlab\"\nlaunch = true\ntoken_secret = \"hosts/b\"\n",
                "another entry of gitlab.com/acme.api names a different",
            ),
            ("[policy]\nnamespace = [\"ci\"]\n", "line 2: unknown field `namespace`"),
            ("[policy]\nnamespaces = [\"ci-[\"]\n", "line 2: `ci-[` is not a glob"),
            ("[policy]\npreview_hosts = [\"evil com\"]\n", "line 2: `evil com` is not a host"),
            ("[repositories.\"acme/api\".policy]\nhosts = []\n", "line 2: unknown field `hosts`"),
        ];
        for (text, says) in cases {
            let problem = OperatorConfig::parse(text).unwrap_err();
            assert!(problem.contains(says), "{text:?}: {problem}");
        }
    }
}
