//! A Tekton event says a run ended (README.md, "Results in seconds"): the
//! run is read from the cluster and, if it is one of Ferry's and has
//! ended there, its result is reported exactly as the reconciler would,
//! once, and so is the health of the repository's previews still coming up. The event itself is believed in nothing: a forged or replayed one
//! can only make Ferry look at the cluster earlier.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::launch::LaunchError;
use super::launch::target;
use super::reconcile::{Ports, report_run};
use crate::cluster::{manifests, phase_of};
use crate::domain::Run;
use crate::domain::event::{Detail, GitEvent};
use crate::domain::repair::RunPhase;
use crate::domain::tekton::RunRef;
use crate::store::Key;

/// What an event came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// The run's result was posted now.
    pub reported: bool,
    /// Why not, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn nothing(reason: impl Into<String>) -> Answer {
    Answer { reported: false, reason: Some(reason.into()) }
}

#[tracing::instrument(skip_all, fields(kind = run.kind, namespace = %run.namespace, name = %run.name))]
pub async fn run_ended(ports: Ports<'_>, run: &RunRef) -> Result<Answer, LaunchError> {
    let cluster = ports.launch.cluster;
    let Some(object) = cluster.run(&run.namespace, run.kind, &run.name).await? else {
        return Ok(nothing("the cluster has no such run"));
    };
    let Some((repo, unit, sha)) = manifests::owner_of(&object) else {
        return Ok(nothing("not a run Ferry launched"));
    };
    let state = ports.launch.state;
    let Some(found) = state.load::<Run>(&Key::Run(repo.clone(), unit, sha)).await? else {
        return Ok(nothing("Ferry has no record of this run"));
    };
    // The record names the newest run of this unit and commit: only its end counts.
    if found.record.name != run.name || found.record.namespace != run.namespace || found.record.kind() != run.kind {
        return Ok(nothing("Ferry's record names another run of this unit and commit"));
    }
    let phase = phase_of(&object);
    if let RunPhase::Running { .. } = phase {
        return Ok(nothing("the run has not ended"));
    }
    let anchor = GitEvent::new("tekton", Some(repo.clone()), Detail::Other);
    let Some(target) = target(state, &anchor, &repo).await? else {
        return Ok(nothing(format!("Ferry no longer tracks {repo}")));
    };
    // A run's end often brings a preview's image: its health is reported as the reconciler would.
    let mut previews = super::reconcile::Report::default();
    if let Err(e) = super::reconcile::report_previews(ports, &target, &mut previews).await {
        tracing::warn!(error = %e, "could not report the repository's previews; the reconciler will");
    }
    if report_run(ports, &target, found, &phase).await? {
        tracing::info!(repo = %repo, "reported a run's result on Tekton's word");
        // Its slot goes to a run waiting for one; the reconciler does it otherwise.
        if let Err(e) = super::waiting::start_waiting(ports.launch, &target).await {
            tracing::warn!(error = %e, "could not start a waiting run; the reconciler will");
        }
        Ok(Answer { reported: true, reason: None })
    } else {
        Ok(nothing("its result was reported already"))
    }
}

/// At most one read of a run per interval, for any number of events:
/// Tekton sends several per run, and a flood of forged ones must not
/// become a flood of reads. A map of recent instants, bounded: hand-written
/// because governor's keyed limiter (the cluster's limit) keeps a key per
/// run until pruned, where this one refuses past its capacity.
pub struct ReadLimit {
    every: Duration,
    capacity: usize,
    last: Mutex<HashMap<String, Instant>>,
}

impl Default for ReadLimit {
    fn default() -> Self {
        Self::new(Duration::from_secs(1), 4096)
    }
}

impl ReadLimit {
    pub fn new(every: Duration, capacity: usize) -> Self {
        Self { every, capacity, last: Mutex::new(HashMap::new()) }
    }

    /// Whether `run` may be read now (and if so, it counts as read).
    pub fn allow(&self, run: &RunRef, now: Instant) -> bool {
        let key = format!("{}/{}/{}", run.kind, run.namespace, run.name);
        let mut last = self.last.lock().expect("not poisoned");
        if last.get(&key).is_some_and(|at| now.duration_since(*at) < self.every) {
            return false;
        }
        if last.len() >= self.capacity {
            last.retain(|_, at| now.duration_since(*at) < self.every);
            if last.len() >= self.capacity {
                // Every slot read within the interval: a flood. Refuse until one frees.
                return false;
            }
        }
        last.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str) -> RunRef {
        RunRef { kind: "PipelineRun", namespace: "ci".into(), name: name.into() }
    }

    #[test]
    fn a_run_is_read_at_most_once_a_second_and_the_map_stays_bounded() {
        let limit = ReadLimit::new(Duration::from_secs(1), 3);
        let start = Instant::now();
        assert!(limit.allow(&run("a"), start));
        assert!(!limit.allow(&run("a"), start + Duration::from_millis(999)), "the same run within a second");
        assert!(limit.allow(&run("a"), start + Duration::from_secs(1)), "a second later");
        assert!(limit.allow(&run("b"), start + Duration::from_secs(1)));
        assert!(limit.allow(&run("c"), start + Duration::from_secs(1)));
        assert!(!limit.allow(&run("d"), start + Duration::from_secs(1)), "full of this second's reads");
        assert!(limit.allow(&run("d"), start + Duration::from_secs(2)), "old reads make room");
        assert!(limit.last.lock().unwrap().len() <= 3);
    }
}
