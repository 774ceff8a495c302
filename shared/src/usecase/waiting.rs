//! Runs waiting for a slot (`max_running`, README.md "Limits for a shared
//! cluster") start here, oldest first, whenever a run's result frees one:
//! after Tekton's event reports it, and at every reconciliation.

use super::launch::{LaunchError, LaunchPorts, status_context};
use crate::cluster::RunState;
use crate::domain::Run;
use crate::domain::queue::to_start;
use crate::forge::{CommitStatus, StatusState, Target};
use crate::store::{Collection, Record, StoreError};

/// Starts `target`'s waiting runs that now have room; how many started.
pub async fn start_waiting(ports: LaunchPorts<'_>, target: &Target) -> Result<usize, LaunchError> {
    let found: Vec<(Run, crate::store::Version)> = ports
        .state
        .query(&Collection::Runs(target.repo.clone()))
        .await?
        .into_iter()
        .filter_map(|found| match found.record {
            Record::Run(run) => Some((run, found.version)),
            _ => None,
        })
        .collect();
    let records: Vec<Run> = found.iter().map(|(run, _)| run.clone()).collect();
    let mut started = 0;
    for run in to_start(&records, ports.operator.max_running(&target.repo)) {
        let Some((_, version)) = found.iter().find(|(r, _)| r.name == run.name) else { continue };
        // Claimed first: of two reconcilers, one starts it.
        let claimed = Run { queued_at: None, ..run.clone() };
        match ports.state.update(&claimed.into(), *version).await {
            Ok(_) => {}
            Err(StoreError::StaleVersion { .. } | StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
        let state = RunState {
            kind: run.kind().to_owned(),
            namespace: run.namespace.clone(),
            name: run.name.clone(),
            running: true,
            happened_at: None,
        };
        ports.cluster.start(&state).await?;
        let mut status = CommitStatus::new(
            status_context(ports.cluster_name, run.unit.as_str()),
            StatusState::Pending,
            format!("{} {} started", run.kind(), run.name),
        );
        status.target_url = ports.operator.dashboard_link(&run.namespace, &run.name);
        ports.forge.status(target, &run.sha, &status).await?;
        tracing::info!(run = %run.name, "started a run that waited for a slot");
        started += 1;
    }
    Ok(started)
}
