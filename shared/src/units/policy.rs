//! The operator's policy over what a repository's units may claim: where
//! their runs go, which service account they run as, and which host their
//! preview answers on. A `.ferry.toml` is the repository's word; the
//! policy is the operator's, and it wins.
//!
//! ```toml
//! [policy]                                   # for every repository
//! preview_hosts = [".preview.example.com"]   # a leading dot: any host under it
//! namespaces = ["ci", "ci-*"]                # globs
//! service_accounts = ["ferry-runner"]        # globs
//!
//! [repositories."acme/deploy".policy]        # this repository's rules instead
//! namespaces = ["prod"]
//! ```
//!
//! Each rule left out allows everything: with no `[policy]` at all, a
//! repository may claim any namespace, account and host (the permissive
//! default, so an existing install keeps working). An empty list allows
//! nothing. A repository's `policy` replaces the global rules it names and
//! keeps the others: an operator can grant one repository more than the
//! rest (`prod`), or less.

use serde::Deserialize;

use super::Unit;
use super::operator::Defaults;

/// The account a run has when neither the unit nor the operator names
/// one: Kubernetes gives the pod the namespace's `default`.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// `[policy]`: a rule left out (`None`) allows everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Host suffixes a preview may answer on.
    #[serde(default)]
    pub preview_hosts: Option<Vec<HostSuffix>>,
    /// Namespaces runs and helm releases may go to.
    #[serde(default)]
    pub namespaces: Option<Vec<NamePattern>>,
    /// Service accounts runs may run as.
    #[serde(default)]
    pub service_accounts: Option<Vec<NamePattern>>,
}

impl Policy {
    /// This policy with `narrower`'s rules in place of the ones it names.
    pub fn overridden_by(&self, narrower: Option<&Policy>) -> Policy {
        let Some(repo) = narrower else { return self.clone() };
        Policy {
            preview_hosts: repo.preview_hosts.clone().or_else(|| self.preview_hosts.clone()),
            namespaces: repo.namespaces.clone().or_else(|| self.namespaces.clone()),
            service_accounts: repo.service_accounts.clone().or_else(|| self.service_accounts.clone()),
        }
    }
}

/// `.preview.example.com` (any host under it) or `ci.example.com` (that
/// host only), compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HostSuffix(String);

impl TryFrom<String> for HostSuffix {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let bare = text.strip_prefix('.').unwrap_or(&text);
        if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            return Err(format!("`{text}` is not a host or a .suffix"));
        }
        Ok(Self(text.to_ascii_lowercase()))
    }
}

impl HostSuffix {
    /// Whether `host` is this host, or (for a `.suffix`) a host under it.
    /// The part before the suffix must be DNS letters, digits, `-` and `.`:
    /// a wildcard `*.preview.example.com` would answer for every preview.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self.0.strip_prefix('.') {
            None => host == self.0,
            Some(_) => host.strip_suffix(self.0.as_str()).is_some_and(|label| {
                !label.is_empty()
                    && !label.starts_with('.')
                    && !label.ends_with('.')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            }),
        }
    }
}

/// A name or a glob of names (`ci-*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct NamePattern {
    text: String,
    matcher: globset::GlobMatcher,
}

impl TryFrom<String> for NamePattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let glob = globset::Glob::new(&text).map_err(|e| format!("`{text}` is not a glob: {}", e.kind()))?;
        Ok(Self { matcher: glob.compile_matcher(), text })
    }
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for NamePattern {}

impl NamePattern {
    pub fn allows(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }
}

/// A unit claiming what the policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unit `{unit}`: {field} `{value}` is outside the allowed {rule}")]
pub struct PolicyViolation {
    pub unit: String,
    /// `namespace`, `helm namespace`, `service account` or `preview host`.
    pub field: &'static str,
    /// What the unit claims, or what it gets by default.
    pub value: String,
    /// The rule, as the policy says it: `namespaces ci, ci-*`.
    pub rule: String,
}

/// Whether every unit keeps within `policy`. A unit is judged by what it
/// would get, not only by what it writes: a run naming no namespace goes
/// to the operator's default, a helm action naming none deploys into its
/// run's namespace, and a run naming no account runs as the operator's
/// default or, without one, [`DEFAULT_SERVICE_ACCOUNT`]. Units that could
/// run something, or that name a run at all, are judged on namespace and
/// account (a preview alone runs nothing; its namespace is Ferry's own).
/// Answers the first violation, in unit order.
pub fn check(policy: &Policy, units: &[Unit], defaults: &Defaults) -> Result<(), PolicyViolation> {
    units.iter().try_for_each(|unit| check_unit(policy, unit, defaults))
}

fn check_unit(policy: &Policy, unit: &Unit, defaults: &Defaults) -> Result<(), PolicyViolation> {
    let violation = |field: &'static str, value: &str, rule: String| PolicyViolation {
        unit: unit.name.to_string(),
        field,
        value: value.to_owned(),
        rule,
    };
    if unit.runs_something() || unit.run.is_some() {
        let run = unit.run.as_ref();
        // As `cluster::manifests::run_namespace` chooses it.
        let namespace = run.and_then(|r| r.namespace.as_deref()).unwrap_or(&defaults.namespace);
        let account = run
            .and_then(|r| r.service_account.as_deref())
            .or(defaults.service_account.as_deref())
            .unwrap_or(DEFAULT_SERVICE_ACCOUNT);
        if let Some(rule) = names_refuse(policy.namespaces.as_deref(), namespace) {
            return Err(violation("namespace", namespace, format!("namespaces {rule}")));
        }
        for helm in &unit.helm {
            let target = helm.namespace.as_deref().unwrap_or(namespace);
            if let Some(rule) = names_refuse(policy.namespaces.as_deref(), target) {
                return Err(violation("helm namespace", target, format!("namespaces {rule}")));
            }
        }
        if let Some(rule) = names_refuse(policy.service_accounts.as_deref(), account) {
            return Err(violation("service account", account, format!("service accounts {rule}")));
        }
    }
    if let (Some(preview), Some(suffixes)) = (&unit.preview, &policy.preview_hosts)
        && !suffixes.iter().any(|s| s.allows(&preview.host))
    {
        let rule = suffixes.iter().map(|s| s.0.as_str()).collect::<Vec<_>>().join(", ");
        return Err(violation("preview host", &preview.host, format!("suffixes {}", or_nothing(rule))));
    }
    Ok(())
}

/// The rule, said in full, when `patterns` do not allow `name`.
fn names_refuse(patterns: Option<&[NamePattern]>, name: &str) -> Option<String> {
    let patterns = patterns?;
    if patterns.iter().any(|p| p.allows(name)) {
        return None;
    }
    Some(or_nothing(patterns.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(", ")))
}

fn or_nothing(rule: String) -> String {
    if rule.is_empty() { "(none)".to_owned() } else { rule }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cluster::manifests::{self, Cause, RunInput};
    use crate::domain::{RepoName, Sha, UnitName};
    use crate::units::{Helm, On, Preview, RunKind, RunSpec};

    fn policy(text: &str) -> Policy {
        toml::from_str(text).unwrap()
    }

    fn defaults(namespace: &str, account: Option<&str>) -> Defaults {
        Defaults { namespace: namespace.into(), service_account: account.map(Into::into), ..Defaults::default() }
    }

    /// A unit: its run's namespace and account (`None`: no run at all when
    /// both are `"-"`), its helm actions' namespaces, its preview host.
    fn unit(namespace: Option<&str>, account: Option<&str>, helm: &[Option<&str>], host: Option<&str>) -> Unit {
        let run = (namespace != Some("-")).then(|| RunSpec {
            kind: RunKind::Pipeline,
            namespace: namespace.map(Into::into),
            reference: Some("build".into()),
            service_account: account.map(Into::into),
            params: BTreeMap::new(),
        });
        Unit {
            run,
            helm: helm
                .iter()
                .map(|ns| Helm {
                    chart: "./deploy".into(),
                    release: None,
                    namespace: ns.map(Into::into),
                    values: BTreeMap::new(),
                })
                .collect(),
            preview: host.map(|h| Preview { image: "i".into(), port: 80, host: h.into() }),
            ..Unit::new(UnitName::parse("api").unwrap(), vec![On::Push])
        }
    }

    const NAMESPACES: &str = r#"namespaces = ["ci", "ci-*"]"#;
    const ACCOUNTS: &str = r#"service_accounts = ["ferry-runner", "team-*"]"#;
    const HOSTS: &str = r#"preview_hosts = [".preview.example.com", "ci.example.com"]"#;

    /// Allowed, or the violation's field, value and rule.
    type Judged = Result<(), (&'static str, String, String)>;

    #[test]
    fn check_judges_what_each_unit_would_get() {
        let ferry = defaults("ferry", None);
        let ci = defaults("ci", Some("ferry-runner"));
        let both = format!("{NAMESPACES}\n{ACCOUNTS}");
        let err = |field, value: &str, rule: &str| Err((field, value.to_owned(), rule.to_owned()));
        #[rustfmt::skip]
        let cases: Vec<(&str, Unit, &Defaults, Judged)> = vec![
            // No policy: everything goes (the permissive default).
            ("", unit(Some("kube-system"), Some("cluster-admin"), &[Some("prod")], Some("*.evil.com")), &ferry, Ok(())),
            // Namespaces: the run's, or the operator's default when it names none.
            (NAMESPACES, unit(Some("ci"), None, &[], None), &ferry, Ok(())),
            (NAMESPACES, unit(Some("ci-pr"), None, &[], None), &ferry, Ok(())),
            (NAMESPACES, unit(Some("prod"), None, &[], None), &ferry, err("namespace", "prod", "namespaces ci, ci-*")),
            (NAMESPACES, unit(Some("cia"), None, &[], None), &ferry, err("namespace", "cia", "namespaces ci, ci-*")),
            (NAMESPACES, unit(None, None, &[], None), &ferry, err("namespace", "ferry", "namespaces ci, ci-*")),
            (NAMESPACES, unit(None, None, &[], None), &ci, Ok(())),
            (r#"namespaces = []"#, unit(Some("ci"), None, &[], None), &ci, err("namespace", "ci", "namespaces (none)")),
            // Helm actions: their own namespace, or their run's.
            (NAMESPACES, unit(Some("ci"), None, &[None, Some("ci-2")], None), &ferry, Ok(())),
            (NAMESPACES, unit(Some("ci"), None, &[None, Some("prod")], None), &ferry, err("helm namespace", "prod", "namespaces ci, ci-*")),
            (NAMESPACES, unit(None, None, &[None], None), &ci, Ok(())),
            (NAMESPACES, unit(None, None, &[Some("ci")], None), &ferry, err("namespace", "ferry", "namespaces ci, ci-*")),
            // Service accounts: the run's, the operator's, or Kubernetes' `default`.
            (ACCOUNTS, unit(Some("x"), Some("team-a"), &[], None), &ferry, Ok(())),
            (ACCOUNTS, unit(Some("x"), None, &[], None), &ci, Ok(())),
            (ACCOUNTS, unit(Some("x"), None, &[], None), &ferry, err("service account", "default", "service accounts ferry-runner, team-*")),
            (ACCOUNTS, unit(Some("x"), Some("cluster-admin"), &[], None), &ci, err("service account", "cluster-admin", "service accounts ferry-runner, team-*")),
            // A preview alone runs nothing: only its host is judged.
            (&both, unit(Some("-"), None, &[], Some("a.preview.example.com")), &ferry, Ok(())),
            // Preview hosts: under a .suffix, or exactly a host.
            (HOSTS, unit(Some("-"), None, &[], Some("api-pr-1.preview.example.com")), &ferry, Ok(())),
            (HOSTS, unit(Some("-"), None, &[], Some("API.Preview.Example.COM")), &ferry, Ok(())),
            (HOSTS, unit(Some("-"), None, &[], Some("ci.example.com")), &ferry, Ok(())),
            (HOSTS, unit(Some("-"), None, &[], Some("evil.com")), &ferry, err("preview host", "evil.com", "suffixes .preview.example.com, ci.example.com")),
            (HOSTS, unit(Some("-"), None, &[], Some("preview.example.com")), &ferry, err("preview host", "preview.example.com", "suffixes .preview.example.com, ci.example.com")),
            (HOSTS, unit(Some("-"), None, &[], Some("evilpreview.example.com")), &ferry, err("preview host", "evilpreview.example.com", "suffixes .preview.example.com, ci.example.com")),
            (HOSTS, unit(Some("-"), None, &[], Some("*.preview.example.com")), &ferry, err("preview host", "*.preview.example.com", "suffixes .preview.example.com, ci.example.com")),
            (HOSTS, unit(Some("-"), None, &[], Some("a..preview.example.com")), &ferry, err("preview host", "a..preview.example.com", "suffixes .preview.example.com, ci.example.com")),
            (HOSTS, unit(Some("-"), None, &[], Some("x.ci.example.com")), &ferry, err("preview host", "x.ci.example.com", "suffixes .preview.example.com, ci.example.com")),
            (r#"preview_hosts = []"#, unit(Some("-"), None, &[], Some("a.b")), &ferry, err("preview host", "a.b", "suffixes (none)")),
            (HOSTS, unit(Some("prod"), None, &[], None), &ferry, Ok(())),
        ];
        for (text, unit, defaults, expected) in cases {
            let got =
                check(&policy(text), std::slice::from_ref(&unit), defaults).map_err(|v| (v.field, v.value, v.rule));
            assert_eq!(got, expected, "{text} / {unit:?}");
        }
    }

    #[test]
    fn a_run_table_is_judged_even_when_it_names_nothing_to_run() {
        let mut unit = unit(Some("prod"), Some("admin"), &[], Some("ok.preview.example.com"));
        unit.run.as_mut().unwrap().reference = None;
        assert!(!unit.runs_something());
        let violation = check(&policy("namespaces = [\"ci\"]"), &[unit], &defaults("ci", None)).unwrap_err();
        assert_eq!((violation.field, violation.value.as_str()), ("namespace", "prod"));
    }

    #[test]
    fn a_violation_names_the_unit_the_field_and_the_rule() {
        let units = [
            unit(Some("ci"), None, &[], Some("ok.preview.example.com")),
            unit(Some("ci"), None, &[], Some("evil.com")),
        ];
        let violation = check(&policy(HOSTS), &units, &defaults("ci", None)).unwrap_err();
        assert_eq!(
            violation.to_string(),
            "unit `api`: preview host `evil.com` is outside the allowed suffixes .preview.example.com, ci.example.com"
        );
    }

    #[test]
    fn the_namespace_judged_is_the_one_the_run_gets() {
        let (repo, sha) = (RepoName::parse("acme/api").unwrap(), Sha::parse("0".repeat(40)).unwrap());
        let only = policy(r#"namespaces = ["nowhere"]"#);
        for (unit, defaults) in [
            (unit(None, None, &[], None), defaults("ferry", None)),
            (unit(Some("ci"), None, &[], None), defaults("x", None)),
        ] {
            let input = RunInput {
                repo: &repo,
                unit: &unit,
                sha: &sha,
                cause: Cause::Push,
                lane: "refs/heads/main",
                clone_url: "https://github.com/acme/api.git",
                defaults: &defaults,
                happened_at: None,
                pending: false,
            };
            let judged = check(&only, std::slice::from_ref(&unit), &defaults).unwrap_err().value;
            assert_eq!(judged, manifests::run(&input).namespace());
        }
    }

    #[test]
    fn a_repository_policy_replaces_the_rules_it_names() {
        let global = policy(&format!("{NAMESPACES}\n{HOSTS}"));
        let cases = [
            (None, global.clone()),
            (Some(""), global.clone()),
            (Some(r#"namespaces = ["prod"]"#), policy(&format!("namespaces = [\"prod\"]\n{HOSTS}"))),
            (Some(r#"service_accounts = []"#), policy(&format!("{NAMESPACES}\n{HOSTS}\nservice_accounts = []"))),
            (Some(r#"preview_hosts = [".x.dev"]"#), policy(&format!("{NAMESPACES}\npreview_hosts = [\".x.dev\"]"))),
        ];
        for (repo, expected) in cases {
            let repo = repo.map(policy);
            assert_eq!(global.overridden_by(repo.as_ref()), expected, "{repo:?}");
        }
        assert_eq!(Policy::default().overridden_by(None), Policy::default());
    }

    #[test]
    fn patterns_and_suffixes_are_checked_when_read() {
        let cases = [
            (r#"namespaces = ["ci-["]"#, "is not a glob"),
            (r#"service_accounts = ["{a"]"#, "is not a glob"),
            (r#"preview_hosts = ["evil com"]"#, "is not a host"),
            (r#"preview_hosts = ["."]"#, "is not a host"),
            (r#"preview_hosts = ["*.example.com"]"#, "is not a host"),
            (r#"namespace = ["ci"]"#, "unknown field `namespace`"),
            (r#"namespaces = "ci""#, "invalid type"),
        ];
        for (text, says) in cases {
            let error = toml::from_str::<Policy>(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
