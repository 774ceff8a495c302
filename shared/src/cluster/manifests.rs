//! The Kubernetes objects Ferry creates, built as plain data (pure): Tekton
//! runs (a `pipelineRef`/`taskRef`, or a pipeline generated from docker and
//! helm actions), the Secret holding a run's clone token, and previews.
//! Names are deterministic, so a redelivered event names the same run.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Namespace, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    ServiceBackendPort,
};
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::domain::{PrNumber, RepoName, Sha, Timestamp, UnitName};
use crate::units::operator::Defaults;
use crate::units::{RunKind, Unit};

pub const TEKTON_API: &str = "tekton.dev/v1";
pub const MANAGED_BY: &str = "ferry";

/// The ClusterRole (in `infra/kubernetes/rbac.yaml`) that each preview
/// namespace binds for Ferry: read its Deployment and pods, nothing else.
pub const PREVIEW_READER: &str = "ferry-preview-reader";

/// A Kubernetes object as Ferry sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest(pub Value);

impl Manifest {
    pub fn kind(&self) -> &str {
        self.0["kind"].as_str().unwrap_or_default()
    }
    pub fn api_version(&self) -> &str {
        self.0["apiVersion"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.0["metadata"]["name"].as_str().unwrap_or_default()
    }
    /// Empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        self.0["metadata"]["namespace"].as_str().unwrap_or_default()
    }
    pub fn label(&self, key: &str) -> Option<&str> {
        self.0["metadata"]["labels"][key].as_str()
    }
}

/// Why a run is launched: part of its name, so each event names its own run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Push,
    PullRequest(PrNumber),
    Release,
    /// `/retest` or a re-requested check: a new run beside the failed one,
    /// named after the request (the comment's id), so each request starts
    /// one run and its redelivery none.
    Retry(u64),
}

impl Cause {
    /// What the run's name shows of its cause.
    fn slug(self) -> String {
        match self {
            Cause::Push => "push".into(),
            Cause::PullRequest(n) => format!("pr{n}"),
            Cause::Release => "release".into(),
            Cause::Retry(_) => "retry".into(),
        }
    }

    /// Everything that tells this cause apart, for the name's hash.
    fn identity(self) -> String {
        match self {
            Cause::Retry(request) => format!("retry{request}"),
            other => other.slug(),
        }
    }
}

/// The annotation holding when a run's event happened (Unix seconds).
pub const HAPPENED_AT: &str = "ferry.dev/happened-at";

/// The `spec.status` a PipelineRun waits in until its clone Secret exists.
pub const PENDING: &str = "PipelineRunPending";

/// Everything a run's objects are built from.
#[derive(Debug, Clone)]
pub struct RunInput<'a> {
    pub repo: &'a RepoName,
    pub unit: &'a Unit,
    pub sha: &'a Sha,
    pub cause: Cause,
    /// The branch (or PR) the run builds: runs in one lane supersede each other.
    pub lane: &'a str,
    pub clone_url: &'a str,
    pub defaults: &'a Defaults,
    /// When the event happened: an older event's run never supersedes a newer one.
    pub happened_at: Option<Timestamp>,
    /// Create it pending (`PipelineRunPending`), to be started once its
    /// clone Secret is in place. TaskRuns have no pending state.
    pub pending: bool,
}

/// A DNS-1123 label: lowercase letters, digits and `-`, at most `max` long.
pub fn dns_label(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    out.truncate(max);
    out.trim_end_matches('-').to_owned()
}

/// A label value: at most 63 of letters, digits, `-`, `_`, `.`.
pub fn label_value(text: &str) -> String {
    let mut out: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '.' }).collect();
    out.truncate(63);
    out.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned()
}

/// A unit's name as a Kubernetes object name (DNS-1035: starts with a
/// letter, `-` only inside, at most `max`): a name that does not map as it
/// is (`API_v2`, `2fa`, `__`) gets a hash of the original, so two units
/// never fold into one name.
pub fn object_name(unit: &UnitName, max: usize) -> String {
    let label = dns_label(unit.as_str(), max);
    if label == unit.as_str() && label.starts_with(|c: char| c.is_ascii_lowercase()) {
        return label;
    }
    let hash = short_hash(&[unit.as_str()]);
    let stem = if label.starts_with(|c: char| c.is_ascii_lowercase()) { label } else { format!("u-{label}") };
    let stem = dns_label(&stem, max - hash.len() - 1);
    format!("{stem}-{hash}")
}

fn short_hash(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\n").as_bytes());
    hex::encode(&digest[..4])
}

/// `ferry-<unit>-<short sha>-<cause>-<hash>`: the same event always names
/// the same run; different repositories, lanes (one commit on two branches,
/// or under an rc tag and the final one) and retries never collide. At most
/// 59 characters, so `<run name>-git` (its clone secret) is a valid name too.
pub fn run_name(repo: &RepoName, unit: &UnitName, sha: &Sha, lane: &str, cause: Cause) -> String {
    let hash = short_hash(&[repo.full_name(), unit.as_str(), sha.as_str(), lane, &cause.identity()]);
    let stem = dns_label(&format!("ferry-{}-{}-{}", unit.as_str(), sha.short(), cause.slug()), 59 - 9);
    format!("{stem}-{hash}")
}

/// The label every run of one unit in one lane (branch or PR) carries.
pub fn lane_label(repo: &RepoName, unit: &UnitName, lane: &str) -> String {
    // 128 bits: no one can name a branch of theirs into another repository's lane.
    let digest = Sha256::digest([repo.full_name(), unit.as_str(), lane].join("\n").as_bytes());
    hex::encode(&digest[..16])
}

/// The namespace a run goes to.
pub fn run_namespace(input: &RunInput<'_>) -> String {
    input.unit.run.as_ref().and_then(|r| r.namespace.clone()).unwrap_or_else(|| input.defaults.namespace.clone())
}

/// The labels every run of `unit` of `repo` carries, whatever its lane.
pub fn unit_labels(repo: &RepoName, unit: &UnitName) -> [(&'static str, String); 2] {
    [
        ("ferry.dev/repo", label_value(&repo.full_name().replace('/', "."))),
        ("ferry.dev/unit", label_value(unit.as_str())),
    ]
}

fn labels(repo: &RepoName, unit: &UnitName, sha: &Sha, pr: Option<PrNumber>) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> =
        unit_labels(repo, unit).into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
    labels.insert("app.kubernetes.io/managed-by".to_owned(), MANAGED_BY.to_owned());
    labels.insert("ferry.dev/sha".to_owned(), label_value(sha.as_str()));
    if let Some(pr) = pr {
        labels.insert("ferry.dev/pr".to_owned(), pr.to_string());
    }
    labels
}

/// Whose run `object` is, if Ferry made it: its managed-by label, the
/// repository annotation, and the unit and commit labels.
pub fn owner_of(object: &Value) -> Option<(RepoName, UnitName, Sha)> {
    let metadata = &object["metadata"];
    let label = |key: &str| metadata["labels"][key].as_str();
    if label("app.kubernetes.io/managed-by") != Some(MANAGED_BY) {
        return None;
    }
    let repo = RepoName::parse(metadata["annotations"]["ferry.dev/repo"].as_str()?).ok()?;
    let unit = UnitName::parse(label("ferry.dev/unit")?).ok()?;
    let sha = Sha::parse(label("ferry.dev/sha")?).ok()?;
    Some((repo, unit, sha))
}

/// The Tekton run for a unit: a PipelineRun or TaskRun naming the unit's
/// `ref`, or a PipelineRun with a pipeline generated from its actions.
pub fn run(input: &RunInput<'_>) -> Manifest {
    let RunInput { repo, unit, sha, cause, .. } = *input;
    let name = run_name(repo, &unit.name, sha, input.lane, cause);
    let namespace = run_namespace(input);
    let pr = match cause {
        Cause::PullRequest(n) => Some(n),
        _ => None,
    };
    let mut labels = labels(repo, &unit.name, sha, pr);
    labels.insert("ferry.dev/lane".to_owned(), lane_label(repo, &unit.name, input.lane));
    let mut metadata = json!({
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "annotations": {
            "ferry.dev/repo": repo.full_name(),
            "ferry.dev/lane": input.lane,
            "ferry.dev/git-secret": git_secret_name(&name),
        },
    });
    if let Some(at) = input.happened_at {
        metadata["annotations"][HAPPENED_AT] = at.unix().to_string().into();
    }
    let spec = unit.run.as_ref();
    let service_account =
        spec.and_then(|s| s.service_account.clone()).or_else(|| input.defaults.service_account.clone());
    let params: Vec<Value> =
        spec.map(|s| s.params.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect()).unwrap_or_default();
    let reference = spec.and_then(|s| s.reference.as_deref());
    let kind = spec.map_or(RunKind::Pipeline, |s| s.kind);
    let mut body = match (kind, reference) {
        (RunKind::Task, Some(task)) => {
            let mut spec = json!({ "taskRef": { "name": task }, "params": params });
            if let Some(sa) = &service_account {
                spec["serviceAccountName"] = sa.clone().into();
            }
            json!({ "apiVersion": TEKTON_API, "kind": "TaskRun", "metadata": metadata, "spec": spec })
        }
        (_, Some(pipeline)) => {
            let mut spec = json!({ "pipelineRef": { "name": pipeline }, "params": params });
            if let Some(sa) = &service_account {
                spec["taskRunTemplate"] = json!({ "serviceAccountName": sa });
            }
            json!({ "apiVersion": TEKTON_API, "kind": "PipelineRun", "metadata": metadata, "spec": spec })
        }
        (_, None) => {
            let mut spec = generated(input, &name);
            if !params.is_empty() {
                spec["params"] = params.into();
            }
            if let Some(sa) = &service_account {
                spec["taskRunTemplate"] = json!({ "serviceAccountName": sa });
            }
            json!({ "apiVersion": TEKTON_API, "kind": "PipelineRun", "metadata": metadata, "spec": spec })
        }
    };
    if body["spec"]["params"].as_array().is_some_and(Vec::is_empty) {
        body["spec"].as_object_mut().map(|s| s.remove("params"));
    }
    if input.pending && body["kind"] == "PipelineRun" {
        body["spec"]["status"] = PENDING.into();
    }
    Manifest(body)
}

/// The Secret holding a run's clone token.
pub fn git_secret_name(run_name: &str) -> String {
    format!("{run_name}-git")
}

/// A pipeline from the unit's actions, in the seed's order: clone, then a
/// build per docker action, then a `helm upgrade --install` per chart.
fn generated(input: &RunInput<'_>, run_name: &str) -> Value {
    let unit = input.unit;
    let defaults = input.defaults;
    let mut tasks = vec![json!({
        "name": "clone",
        "workspaces": [{ "name": "source", "workspace": "source" }],
        "taskSpec": {
            "workspaces": [{ "name": "source" }],
            "steps": [{
                "name": "clone",
                "image": "alpine/git:2.47.2",
                // Optional: a public repository clones without one.
                "env": [{
                    "name": "GIT_TOKEN",
                    "valueFrom": { "secretKeyRef": {
                        "name": git_secret_name(run_name), "key": "token", "optional": true
                    } }
                }, {
                    "name": "GIT_USERNAME",
                    "valueFrom": { "secretKeyRef": {
                        "name": git_secret_name(run_name), "key": "username", "optional": true
                    } }
                }],
                "script": clone_script(input.clone_url, input.sha),
            }],
        },
    })];
    let mut previous = "clone".to_owned();
    for (i, docker) in unit.docker.iter().enumerate() {
        let name = format!("docker-{i}");
        let mut args = vec![
            format!("--context=$(workspaces.source.path)/{}", docker.directory.trim_start_matches("./")),
            format!("--destination={}", docker.tag),
        ];
        if let Some(file) = &docker.dockerfile {
            args.push(format!("--dockerfile={file}"));
        }
        tasks.push(action_task(&name, &previous, "build", &defaults.builder_image, args));
        previous = name;
    }
    for (i, helm) in unit.helm.iter().enumerate() {
        let name = format!("helm-{i}");
        let release = helm.release.clone().unwrap_or_else(|| object_name(&unit.name, 53));
        let mut args = vec![
            "upgrade".to_owned(),
            "--install".to_owned(),
            release,
            format!("$(workspaces.source.path)/{}", helm.chart.trim_start_matches("./")),
            "--wait".to_owned(),
        ];
        if let Some(namespace) = &helm.namespace {
            args.push(format!("--namespace={namespace}"));
        }
        for (key, value) in &helm.values {
            args.push(format!("--set={key}={value}"));
        }
        tasks.push(action_task(&name, &previous, "deploy", &defaults.helm_image, args));
        previous = name;
    }
    json!({
        "pipelineSpec": {
            "workspaces": [{ "name": "source" }],
            "tasks": tasks,
        },
        "workspaces": [{
            "name": "source",
            "volumeClaimTemplate": {
                "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } }
            },
        }],
    })
}

/// One step of the generated pipeline, on the shared source workspace, after `previous`.
fn action_task(name: &str, previous: &str, step: &str, image: &str, args: Vec<String>) -> Value {
    json!({
        "name": name,
        "runAfter": [previous],
        "workspaces": [{ "name": "source", "workspace": "source" }],
        "taskSpec": {
            "workspaces": [{ "name": "source" }],
            "steps": [{ "name": step, "image": image, "args": args }],
        },
    })
}

/// Fetches exactly `sha`. The token reaches git through a credential
/// helper reading the environment, never a command line or the URL; git
/// follows no redirect, so the helper answers only the clone URL's host.
fn clone_script(clone_url: &str, sha: &Sha) -> String {
    format!(
        "#!/bin/sh\nset -eu\ncd \"$(workspaces.source.path)\"\ngit init -q .\n\
         git -c http.followRedirects=false -c credential.helper='!f() {{ echo \"username=${{GIT_USERNAME:-{GITHUB_CLONE_USER}}}\"; echo \"password=$GIT_TOKEN\"; }}; f' \\\n  \
         fetch -q --depth 1 \"{clone_url}\" {sha}\ngit checkout -q FETCH_HEAD\n"
    )
}

/// The user name GitHub expects beside an installation token.
pub const GITHUB_CLONE_USER: &str = "x-access-token";

/// The Secret with a run's clone credential (the user name its host
/// expects, and the token), owned by the run so it goes with it.
pub fn git_secret(run: &Manifest, run_uid: &str, username: &str, token: &str) -> Manifest {
    Manifest(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": git_secret_name(run.name()),
            "namespace": run.namespace(),
            "labels": run.0["metadata"]["labels"],
            "ownerReferences": [{
                "apiVersion": run.api_version(),
                "kind": run.kind(),
                "name": run.name(),
                "uid": run_uid,
                "controller": true,
                "blockOwnerDeletion": false,
            }],
        },
        "type": "Opaque",
        "stringData": { "token": token, "username": username },
    }))
}

/// What a preview is for: a pull request, or a prerelease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewOf {
    PullRequest(PrNumber),
    Release(String),
}

/// `preview-<repo>-<unit>-pr-<n>-<hash>` (or `-rel-<hash>`), a DNS label of at most 63.
pub fn preview_namespace(repo: &RepoName, unit: &UnitName, of: &PreviewOf) -> String {
    let (suffix, what) = match of {
        PreviewOf::PullRequest(n) => (format!("pr-{n}"), format!("pr/{n}")),
        PreviewOf::Release(tag) => ("rel".to_owned(), format!("tag/{tag}")),
    };
    // The hash tells apart owners, units and tags the readable part cuts or folds.
    let hash = short_hash(&[repo.full_name(), unit.as_str(), &what]);
    let stem = dns_label(&format!("preview-{}-{}", repo.name(), unit.as_str()), 63 - suffix.len() - hash.len() - 2);
    format!("{stem}-{suffix}-{hash}")
}

/// The preview environment: Namespace, Deployment, Service, Ingress, and
/// the binding that lets Ferry read, in this namespace only, whether the
/// preview came up (its Deployment and pods): the reconciler reports it.
pub fn preview(
    repo: &RepoName,
    unit: &UnitName,
    of: &PreviewOf,
    sha: &Sha,
    image: &str,
    port: u16,
    host: &str,
) -> Vec<Manifest> {
    let namespace = preview_namespace(repo, unit, of);
    let pr = match of {
        PreviewOf::PullRequest(n) => Some(*n),
        PreviewOf::Release(_) => None,
    };
    let labels = labels(repo, unit, sha, pr);
    let app = object_name(unit, 63);
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.clone()),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    };
    let namespace_meta =
        ObjectMeta { name: Some(namespace.clone()), labels: Some(labels.clone()), ..ObjectMeta::default() };
    vec![
        typed(Namespace { metadata: namespace_meta, ..Namespace::default() }),
        typed(Deployment {
            metadata: meta(&app),
            spec: Some(deployment(&app, &labels, image, port)),
            ..Deployment::default()
        }),
        typed(Service { metadata: meta(&app), spec: Some(service(&app, port)), ..Service::default() }),
        typed(Ingress { metadata: meta(&app), spec: Some(ingress(&app, host)), ..Ingress::default() }),
        typed(RoleBinding {
            metadata: meta(PREVIEW_READER),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: PREVIEW_READER.into(),
            },
            subjects: Some(vec![Subject {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "User".into(),
                name: MANAGED_BY.into(),
                namespace: None,
            }]),
        }),
    ]
}

/// The pods of `app` are the ones it selects.
fn selector(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_owned(), app.to_owned())])
}

/// One replica of `image`, listening on `port`.
fn deployment(app: &str, labels: &BTreeMap<String, String>, image: &str, port: u16) -> DeploymentSpec {
    let mut pod_labels = labels.clone();
    pod_labels.extend(selector(app));
    let container = Container {
        name: app.to_owned(),
        image: Some(image.to_owned()),
        ports: Some(vec![ContainerPort { container_port: i32::from(port), ..ContainerPort::default() }]),
        ..Container::default()
    };
    DeploymentSpec {
        replicas: Some(1),
        selector: LabelSelector { match_labels: Some(selector(app)), ..LabelSelector::default() },
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some(pod_labels), ..ObjectMeta::default() }),
            spec: Some(PodSpec { containers: vec![container], ..PodSpec::default() }),
        },
        ..DeploymentSpec::default()
    }
}

/// Port 80 to the app's `port`.
fn service(app: &str, port: u16) -> ServiceSpec {
    ServiceSpec {
        selector: Some(selector(app)),
        ports: Some(vec![ServicePort {
            port: 80,
            target_port: Some(IntOrString::Int(i32::from(port))),
            ..ServicePort::default()
        }]),
        ..ServiceSpec::default()
    }
}

/// Every path of `host` to the app's Service.
fn ingress(app: &str, host: &str) -> IngressSpec {
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: app.to_owned(),
            port: Some(ServiceBackendPort { number: Some(80), ..ServiceBackendPort::default() }),
        }),
        ..IngressBackend::default()
    };
    IngressSpec {
        rules: Some(vec![IngressRule {
            host: Some(host.to_owned()),
            http: Some(HTTPIngressRuleValue {
                paths: vec![HTTPIngressPath { path: Some("/".into()), path_type: "Prefix".into(), backend }],
            }),
        }]),
        ..IngressSpec::default()
    }
}

/// A typed Kubernetes object as the manifest Ferry applies.
fn typed(object: impl serde::Serialize) -> Manifest {
    // k8s-openapi's objects are plain data: they always serialise.
    Manifest(serde_json::to_value(object).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{Docker, Helm, On, RunSpec};

    fn repo() -> RepoName {
        RepoName::parse("acme/api").unwrap()
    }

    fn sha() -> Sha {
        Sha::parse("0123456789abcdef0123456789abcdef01234567").unwrap()
    }

    fn unit(run: Option<RunSpec>) -> Unit {
        Unit { run, ..Unit::new(UnitName::parse("api").unwrap(), vec![On::Push]) }
    }

    fn spec(kind: RunKind, reference: Option<&str>) -> RunSpec {
        RunSpec {
            kind,
            namespace: Some("ci".into()),
            reference: reference.map(str::to_owned),
            service_account: Some("ferry-runner".into()),
            params: [
                ("revision".to_owned(), sha().to_string()),
                ("url".to_owned(), "https://github.com/acme/api.git".to_owned()),
            ]
            .into(),
        }
    }

    fn build(unit: &Unit, cause: Cause) -> Manifest {
        let defaults = Defaults::default();
        run(&RunInput {
            repo: &repo(),
            unit,
            sha: &sha(),
            cause,
            lane: "refs/heads/main",
            clone_url: "https://github.com/acme/api.git",
            defaults: &defaults,
            happened_at: Some(Timestamp::from_unix(1_790_000_000)),
            pending: false,
        })
    }

    #[test]
    fn a_pipeline_ref_becomes_a_pipeline_run() {
        insta::assert_yaml_snapshot!(
            build(&unit(Some(spec(RunKind::Pipeline, Some("build-and-deploy")))), Cause::Push).0
        );
    }

    #[test]
    fn a_task_ref_becomes_a_task_run() {
        insta::assert_yaml_snapshot!(
            build(&unit(Some(spec(RunKind::Task, Some("lint")))), Cause::PullRequest(PrNumber::new(7))).0
        );
    }

    #[test]
    fn docker_and_helm_actions_become_a_generated_pipeline_in_the_seeds_order() {
        let mut unit = unit(None);
        unit.docker = vec![
            Docker { directory: "./api".into(), tag: "ghcr.io/acme/api:0123456".into(), dockerfile: None },
            Docker {
                directory: "./worker".into(),
                tag: "ghcr.io/acme/worker:0123456".into(),
                dockerfile: Some("Dockerfile.prod".into()),
            },
        ];
        unit.helm = vec![Helm {
            chart: "./api/deploy".into(),
            release: None,
            namespace: Some("prod".into()),
            values: [("image.tag".to_owned(), "0123456".to_owned())].into(),
        }];
        let manifest = build(&unit, Cause::Release);
        let tasks: Vec<&str> = manifest.0["spec"]["pipelineSpec"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(tasks, ["clone", "docker-0", "docker-1", "helm-0"]);
        assert_eq!(manifest.namespace(), "ferry", "the operator's default namespace");
        insta::assert_yaml_snapshot!(manifest.0);
    }

    #[test]
    fn a_pending_pipeline_run_waits_for_its_secret_and_a_task_run_cannot() {
        let defaults = Defaults::default();
        let pending = |unit: &Unit| {
            run(&RunInput {
                repo: &repo(),
                unit,
                sha: &sha(),
                cause: Cause::Push,
                lane: "refs/heads/main",
                clone_url: "https://github.com/acme/api.git",
                defaults: &defaults,
                happened_at: None,
                pending: true,
            })
        };
        assert_eq!(pending(&unit(None)).0["spec"]["status"], PENDING);
        assert_eq!(pending(&unit(Some(spec(RunKind::Pipeline, Some("b"))))).0["spec"]["status"], PENDING);
        assert!(pending(&unit(Some(spec(RunKind::Task, Some("lint"))))).0["spec"].get("status").is_none());
        assert!(pending(&unit(None)).0["metadata"]["annotations"].get(HAPPENED_AT).is_none());
    }

    #[test]
    fn the_clone_token_secret_is_owned_by_its_run() {
        let run = build(&unit(Some(spec(RunKind::Pipeline, Some("b")))), Cause::Push);
        let secret = git_secret(&run, "6f1c2b1e-0000-4000-8000-000000000001", GITHUB_CLONE_USER, "clone-token");
        assert_eq!(secret.name(), run.0["metadata"]["annotations"]["ferry.dev/git-secret"]);
        insta::assert_yaml_snapshot!(secret.0);
    }

    #[test]
    fn a_preview_is_a_namespace_deployment_service_ingress_and_a_reader_binding() {
        let objects = preview(
            &repo(),
            &UnitName::parse("api").unwrap(),
            &PreviewOf::PullRequest(PrNumber::new(42)),
            &sha(),
            "ghcr.io/acme/api:pr-42-0123456",
            8080,
            "api-pr-42.preview.example.com",
        );
        let kinds: Vec<&str> = objects.iter().map(Manifest::kind).collect();
        assert_eq!(kinds, ["Namespace", "Deployment", "Service", "Ingress", "RoleBinding"]);
        let values: Vec<&Value> = objects.iter().map(|m| &m.0).collect();
        insta::assert_yaml_snapshot!(values);
    }

    #[test]
    fn names_are_deterministic_distinct_and_valid() {
        let unit_name = UnitName::parse("Api_Service").unwrap();
        let main = "refs/heads/main";
        let a = run_name(&repo(), &unit_name, &sha(), main, Cause::Push);
        assert_eq!(a, run_name(&repo(), &unit_name, &sha(), main, Cause::Push), "a redelivery names the same run");
        let others = [
            run_name(&RepoName::parse("acme/web").unwrap(), &unit_name, &sha(), main, Cause::Push),
            run_name(&repo(), &unit_name, &Sha::parse("f".repeat(40)).unwrap(), main, Cause::Push),
            run_name(&repo(), &unit_name, &sha(), "pull/1", Cause::PullRequest(PrNumber::new(1))),
            run_name(&repo(), &unit_name, &sha(), main, Cause::Retry(1)),
            run_name(&repo(), &unit_name, &sha(), main, Cause::Retry(2)),
            run_name(&repo(), &unit_name, &sha(), "refs/heads/release/1.x", Cause::Push),
            run_name(&repo(), &unit_name, &sha(), "release/v1.0.0-rc1", Cause::Release),
            run_name(&repo(), &unit_name, &sha(), "release/v1.0.0", Cause::Release),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(&a, other);
            for later in &others[i + 1..] {
                assert_ne!(other, later, "the same commit in two lanes, or two retries, are two runs");
            }
        }
        let long = UnitName::parse("x".repeat(63)).unwrap();
        for name in others.iter().chain([&a, &run_name(&repo(), &long, &sha(), main, Cause::Retry(12))]) {
            assert!(name.len() <= 59 && name == &dns_label(name, 63), "{name}");
        }
        let long_repo = RepoName::parse(format!("acme/{}", "r".repeat(90))).unwrap();
        let namespace = preview_namespace(&long_repo, &long, &PreviewOf::PullRequest(PrNumber::new(123_456)));
        assert!(namespace.len() <= 63 && namespace.contains("-pr-123456-"), "{namespace}");
        let api = UnitName::parse("api").unwrap();
        let ours = preview_namespace(&repo(), &api, &PreviewOf::PullRequest(PrNumber::new(3)));
        assert!(ours.starts_with("preview-api-api-pr-3-"), "{ours}");
        let theirs =
            preview_namespace(&RepoName::parse("evil/api").unwrap(), &api, &PreviewOf::PullRequest(PrNumber::new(3)));
        assert_ne!(ours, theirs, "another owner's repository of the same name gets its own namespace");
        let rc = |tag: &str| preview_namespace(&repo(), &api, &PreviewOf::Release(tag.into()));
        assert_ne!(rc("release-2024-01-15-rc1"), rc("release-2024-01-15-rc2"), "long tags do not fold together");
        for name in [rc("---"), rc("v1"), ours] {
            assert!(name.len() <= 63 && name == dns_label(&name, 63), "{name}");
        }
        assert_eq!(label_value("acme/api"), "acme.api");
        let object = |name: &str| object_name(&UnitName::parse(name).unwrap(), 63);
        assert_eq!(object("api"), "api", "a name that is valid stays as it is");
        let mapped: Vec<String> =
            ["API", "api_v2", "api-v2-", "2fa", "__", "-", "_-_", &"Y".repeat(63)].map(object).to_vec();
        for name in &mapped {
            assert!(name.len() <= 63 && name == &dns_label(name, 63), "{name}");
            assert!(name.starts_with(|c: char| c.is_ascii_lowercase()), "a Service name starts with a letter: {name}");
        }
        assert_ne!(object("api_v2"), object("api-v2"), "two units never fold into one name");
        assert_ne!(object("__"), object("_-_"));
        assert!(object_name(&UnitName::parse("Release_Manager").unwrap(), 53).len() <= 53);
        assert_eq!(dns_label("Feature/Über_x--y-", 63), "feature-ber-x-y");
    }

    #[test]
    fn only_a_run_with_ferrys_labels_is_owner_of() {
        let run = |managed: &str, repo: &str, unit: &str, sha: &str| {
            json!({ "metadata": {
                "labels": { "app.kubernetes.io/managed-by": managed, "ferry.dev/unit": unit, "ferry.dev/sha": sha },
                "annotations": { "ferry.dev/repo": repo },
            } })
        };
        let sha = "a".repeat(40);
        let (repo, unit, found) = owner_of(&run("ferry", "acme/api", "api", &sha)).unwrap();
        assert_eq!((repo.full_name(), unit.as_str(), found.as_str()), ("acme/api", "api", sha.as_str()));
        assert_eq!(owner_of(&run("someone-else", "acme/api", "api", &sha)), None);
        assert_eq!(owner_of(&run("ferry", "not a repo", "api", &sha)), None);
        assert_eq!(owner_of(&run("ferry", "acme/api", "a#b", &sha)), None);
        assert_eq!(owner_of(&run("ferry", "acme/api", "api", "main")), None);
        assert_eq!(owner_of(&json!({})), None);
    }
}
