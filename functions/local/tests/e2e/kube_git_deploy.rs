//! A repository that still keeps Kube Git Deploy's `kube-git-deploy.toml`
//! (and no `.ferry.toml`) runs unchanged through `ferry serve`: the
//! documentation's two examples, verbatim, on the dry-run forge and cluster.

use crate::common;

use std::path::{Path, PathBuf};

use common::{sample, send, serve_with};
use serde_json::json;

const SHA: &str = "9c2a4b7e1d3f5a6c8e0b2d4f6a8c0e2b4d6f8a0c";

/// Kube Git Deploy's basic example, verbatim.
const BASIC_EXAMPLE: &str = include_str!("../../../../events/kube-git-deploy/basic.toml");

/// Its template example, verbatim (the tag's closing quote is missing there).
const TEMPLATE_EXAMPLE: &str = include_str!("../../../../events/kube-git-deploy/template.toml");

/// Puts `text` as acme/api's `kube-git-deploy.toml` on the dry-run forge.
fn repository_file(dir: &Path, text: &str) {
    let files = dir.join(".ferry/forge/acme/api/files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("kube-git-deploy.toml"), text).unwrap();
}

/// Every PipelineRun the dry-run cluster wrote, in any namespace.
fn pipeline_runs(dir: &Path) -> Vec<PathBuf> {
    let Ok(namespaces) = std::fs::read_dir(dir.join(".ferry/cluster")) else { return Vec::new() };
    let mut runs: Vec<PathBuf> = namespaces
        .flatten()
        .filter_map(|namespace| std::fs::read_dir(namespace.path().join("pipelinerun")).ok())
        .flat_map(|entries| entries.flatten().map(|entry| entry.path()))
        .collect();
    runs.sort();
    runs
}

/// A generated step's name (`build`, `deploy`) and arguments.
type Step = (String, Vec<String>);

/// The unit a run is for, and its generated steps in order.
fn unit_and_steps(run: &Path) -> (String, Vec<Step>) {
    let yaml: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(run).unwrap()).unwrap();
    let unit = yaml["metadata"]["labels"]["ferry.dev/unit"].as_str().unwrap_or_default().to_owned();
    let steps = yaml["spec"]["pipelineSpec"]["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("not a generated pipeline: {yaml}"))
        .iter()
        .flat_map(|task| task["taskSpec"]["steps"].as_array().cloned().unwrap_or_default())
        .filter(|step| step["name"] != "clone")
        .map(|step| {
            let args = step["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
            (step["name"].as_str().unwrap().to_owned(), args)
        })
        .collect();
    (unit, steps)
}

#[test]
fn the_basic_example_runs_api_and_ui_each_a_docker_build_then_a_helm_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    repository_file(dir, BASIC_EXAMPLE);
    let server = serve_with(dir, &[]);

    let reply = send(dir, &server, "push", "kgd-1", &sample("push.json"));
    assert_eq!(reply.matches("pipelinerun.created").count(), 2, "{reply}");
    let mut units: Vec<(String, Vec<Step>)> = pipeline_runs(dir).iter().map(|run| unit_and_steps(run)).collect();
    units.sort();
    assert_eq!(units.len(), 2, "{units:?}");
    for ((unit, steps), name) in units.iter().zip(["api", "ui"]) {
        assert_eq!(unit, name);
        let kinds: Vec<&str> = steps.iter().map(|(kind, _)| kind.as_str()).collect();
        assert_eq!(kinds, ["build", "deploy"], "{name}: docker first, then helm");
        let tag = format!("--destination=noahhuppert/example-{name}:{SHA}");
        assert!(steps[0].1.contains(&tag), "{name}: {steps:?}");
        assert!(steps[0].1.iter().any(|a| a.ends_with(&format!("/{name}"))), "{name}: {steps:?}");
        assert!(steps[1].1.iter().any(|a| a.ends_with(&format!("/{name}/deploy"))), "{name}: {steps:?}");
    }
}

#[test]
fn the_template_example_runs_api_on_master_and_nothing_elsewhere_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    repository_file(dir, TEMPLATE_EXAMPLE);
    let server = serve_with(dir, &[]);

    let mut master = sample("push.json");
    master["ref"] = json!("refs/heads/master");
    let reply = send(dir, &server, "push", "kgd-master", &master);
    assert_eq!(reply.matches("pipelinerun.created").count(), 1, "{reply}");
    let runs = pipeline_runs(dir);
    assert_eq!(runs.len(), 1);
    let (unit, steps) = unit_and_steps(&runs[0]);
    assert_eq!(unit, "api");
    let kinds: Vec<&str> = steps.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["build", "deploy"]);
    assert!(steps[0].1.contains(&format!("--destination=noahhuppert/example-api:{SHA}")), "{steps:?}");

    let reply = send(dir, &server, "push", "kgd-main", &sample("push.json"));
    assert!(reply.contains("kube-git-deploy.toml defines no unit for this push"), "{reply}");
    assert!(!reply.contains("pipelinerun.created"), "{reply}");
    assert_eq!(pipeline_runs(dir).len(), 1, "nothing more ran");
}
