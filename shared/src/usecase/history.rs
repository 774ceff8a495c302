//! How many finished runs a unit keeps (`keep_runs`, README.md "Limits for
//! a shared cluster"): once a run's result is reported, the unit's finished
//! runs beyond the newest N are deleted, their clone Secrets with them.

use super::launch::{LaunchError, LaunchPorts};
use crate::cluster::{Label, manifests, to_prune};
use crate::domain::{Run, RunStatus};

/// Deletes `run`'s unit's finished runs beyond its `keep_runs`, in the
/// run's namespace; how many went. Only Ferry's own runs of that
/// repository and unit (never a PipelineRun's TaskRuns), and never one
/// whose result Ferry has yet to report.
pub async fn keep_newest(ports: LaunchPorts<'_>, run: &Run) -> Result<usize, LaunchError> {
    let Some(keep) = run.keep_runs else { return Ok(0) };
    let [(repo_key, repo_value), (unit_key, unit_value)] = manifests::unit_labels(&run.repo, &run.unit);
    let selector = [
        Label::Is("app.kubernetes.io/managed-by", manifests::MANAGED_BY),
        Label::Is(repo_key, &repo_value),
        Label::Is(unit_key, &unit_value),
        Label::Absent("tekton.dev/pipelineRun"),
    ];
    let listed = ports.cluster.runs(&run.namespace, &selector).await?;
    // Label values are cut to 63 characters: the annotation names the repository whole.
    let ours: Vec<_> = listed.into_iter().filter(|r| r.repo.as_deref() == Some(run.repo.full_name())).collect();
    let unreported: Vec<String> = ports
        .state
        .runs(&run.repo)
        .await?
        .into_iter()
        .filter(|found| found.record.status == RunStatus::Pending)
        .map(|found| found.record.name)
        .collect();
    let mut deleted = 0;
    for old in to_prune(&ours, keep).into_iter().filter(|r| !unreported.contains(&r.name)) {
        ports.cluster.delete_run(old).await?;
        tracing::info!(run = %old.name, keep, "deleted a finished run beyond keep_runs");
        deleted += 1;
    }
    Ok(deleted)
}
