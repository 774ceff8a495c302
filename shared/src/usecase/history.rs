//! How many finished runs a unit keeps (`keep_runs`, README.md "Limits for
//! a shared cluster"): once a run's result is reported, the unit's finished
//! runs beyond the newest N are deleted, their clone Secrets with them.

use super::launch::{LaunchError, LaunchPorts};
use crate::cluster::{manifests, to_prune};
use crate::domain::Run;

/// Deletes `run`'s unit's finished runs beyond its `keep_runs`, in the
/// run's namespace; how many went.
pub async fn keep_newest(ports: LaunchPorts<'_>, run: &Run) -> Result<usize, LaunchError> {
    let Some(keep) = run.keep_runs else { return Ok(0) };
    let labels = manifests::unit_labels(&run.repo, &run.unit);
    let selector: Vec<(&str, &str)> = labels.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let runs = ports.cluster.runs(&run.namespace, &selector).await?;
    let mut deleted = 0;
    for old in to_prune(&runs, keep) {
        ports.cluster.delete_run(old).await?;
        tracing::info!(run = %old.name, keep, "deleted a finished run beyond keep_runs");
        deleted += 1;
    }
    Ok(deleted)
}
