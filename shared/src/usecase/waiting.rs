//! Runs waiting for a slot (`max_running`, README.md "Limits for a shared
//! cluster") start here, oldest first, whenever a run's result frees one:
//! after Tekton's event reports it, and at every reconciliation.

use super::launch::{LaunchError, LaunchPorts, clone_secret, status_context};
use crate::cluster::{Manifest, RunState, manifests};
use crate::domain::Run;
use crate::domain::queue::to_start;
use crate::forge::{CommitStatus, StatusState, Target};
use crate::store::{StoreError, Version};

/// Starts `target`'s waiting runs that now have room; how many started.
pub async fn start_waiting(ports: LaunchPorts<'_>, target: &Target) -> Result<usize, LaunchError> {
    let found: Vec<(Run, Version)> =
        ports.state.runs(&target.repo).await?.into_iter().map(|found| (found.record, found.version)).collect();
    let records: Vec<Run> = found.iter().map(|(run, _)| run.clone()).collect();
    let mut started = 0;
    for run in to_start(&records, ports.operator.max_running(&target.repo)) {
        let Some((_, version)) = found.iter().find(|(r, _)| r.name == run.name) else { continue };
        // Claimed first: of two reconcilers, one starts it.
        let claimed = Run { queued_at: None, ..run.clone() };
        let claim = match ports.state.update(&claimed.clone().into(), *version).await {
            Ok(claim) => claim,
            Err(StoreError::StaleVersion { .. } | StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        match start(ports, target, run).await {
            Ok(true) => started += 1,
            // Cancelled, superseded or gone while it waited: it leaves the
            // queue and is reported as the cluster has it.
            Ok(false) => {}
            Err(e) => {
                // Waiting again, in its place: the next result or cycle tries again.
                let _ = ports.state.update(&run.clone().into(), claim).await;
                return Err(e);
            }
        }
    }
    Ok(started)
}

/// Starts one waiting run with a fresh clone token; false when the
/// cluster no longer has it waiting.
async fn start(ports: LaunchPorts<'_>, target: &Target, run: &Run) -> Result<bool, LaunchError> {
    let Some(object) = ports.cluster.run(&run.namespace, run.kind(), &run.name).await? else { return Ok(false) };
    if object["spec"]["status"] != manifests::PENDING {
        return Ok(false);
    }
    let uid = object["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    clone_secret(ports, target, &Manifest(object), &uid).await?;
    ports.cluster.start(&RunState::of_record(run)).await?;
    let mut status = CommitStatus::new(
        status_context(ports.cluster_name, run.unit.as_str()),
        StatusState::Pending,
        format!("{} {} started", run.kind(), run.name),
    );
    status.target_url = ports.operator.dashboard_link(&run.namespace, &run.name);
    ports.forge.status(target, &run.sha, &status).await?;
    tracing::info!(run = %run.name, "started a run that waited for a slot");
    Ok(true)
}
