//! The cluster port: where Tekton runs and previews go. The dry-run adapter
//! writes each object as YAML under the data dir (the local default); the
//! kube adapter applies them to a real cluster.

pub mod dry_run;
pub mod kube;
pub mod lazy;
pub mod logs;
pub mod manifests;

use async_trait::async_trait;

use crate::domain::Timestamp;
use crate::domain::repair::{CANCELLED_REASONS, Health, RunPhase};

pub use dry_run::DryRunCluster;
pub use kube::KubeCluster;
pub use manifests::Manifest;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the cluster refused {what}: {problem}")]
    Refused { what: String, problem: String },
    #[error("the cluster could not be reached")]
    Unavailable(#[source] BoxError),
}

impl ClusterError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, ClusterError::Unavailable(_))
    }
}

/// One term of a label selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label<'a> {
    /// `key=value`
    Is(&'a str, &'a str),
    /// `!key`: objects without the label (a PipelineRun's own TaskRuns carry
    /// `tekton.dev/pipelineRun`).
    Absent(&'a str),
}

impl Label<'_> {
    /// Whether an object with `labels` is selected.
    pub fn selects(&self, labels: &serde_json::Value) -> bool {
        match self {
            Label::Is(key, value) => labels[*key].as_str() == Some(*value),
            Label::Absent(key) => labels.get(*key).is_none(),
        }
    }

    /// The term as the API server reads it.
    pub fn selector(&self) -> String {
        match self {
            Label::Is(key, value) => format!("{key}={value}"),
            Label::Absent(key) => format!("!{key}"),
        }
    }
}

/// A failed run's failed step, and the end of its log as the pod has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    pub task_run: String,
    pub step: String,
    pub log: String,
}

/// What creating an object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub uid: String,
    /// It was there already (a redelivered event): nothing new started.
    pub existed: bool,
}

/// A Tekton run as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// False once it succeeded, failed or was cancelled.
    pub running: bool,
    /// When the event that launched it happened (its `ferry.dev/happened-at`).
    pub happened_at: Option<Timestamp>,
    /// The repository its `ferry.dev/repo` annotation names, when listed.
    pub repo: Option<String>,
}

impl RunState {
    /// The run `manifest` describes, as if it were running.
    pub fn of(manifest: &Manifest) -> Self {
        Self {
            kind: manifest.kind().to_owned(),
            namespace: manifest.namespace().to_owned(),
            name: manifest.name().to_owned(),
            running: true,
            happened_at: happened_at(&manifest.0),
            repo: manifest.0["metadata"]["annotations"]["ferry.dev/repo"].as_str().map(str::to_owned),
        }
    }

    /// The run Ferry's record names, as if it were running.
    pub fn of_record(run: &crate::domain::Run) -> Self {
        Self {
            kind: run.kind().to_owned(),
            namespace: run.namespace.clone(),
            name: run.name.clone(),
            running: true,
            happened_at: None,
            repo: Some(run.repo.full_name().to_owned()),
        }
    }
}

/// The `ferry.dev/happened-at` annotation of a run object.
pub fn happened_at(object: &serde_json::Value) -> Option<Timestamp> {
    object["metadata"]["annotations"][manifests::HAPPENED_AT]
        .as_str()
        .and_then(|v| v.parse().ok())
        .map(Timestamp::from_unix)
}

/// One container of a pod: whose log [`Cluster::pod_log`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodContainer<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
}

#[async_trait]
pub trait Cluster: Send + Sync {
    /// Creates `manifest` unless an object of that name exists: runs are
    /// never replaced, so `existed` says a redelivery changed nothing.
    async fn create(&self, manifest: &Manifest) -> Result<Created, ClusterError>;

    /// Server-side applies `manifest` as field manager `ferry`, forced:
    /// for objects Ferry owns (previews, secrets).
    async fn apply(&self, manifest: &Manifest) -> Result<(), ClusterError>;

    /// The Tekton runs in `namespace` that every one of `labels` selects.
    async fn runs(&self, namespace: &str, labels: &[Label<'_>]) -> Result<Vec<RunState>, ClusterError>;

    /// Deletes a run; the Secrets it owns go with it (Kubernetes' garbage
    /// collector). Deleting one already gone is fine.
    async fn delete_run(&self, run: &RunState) -> Result<(), ClusterError>;

    /// Asks Tekton to cancel a run (`spec.status`).
    async fn cancel(&self, run: &RunState) -> Result<(), ClusterError>;

    /// Starts a run created pending (clears `spec.status` if it is still
    /// `PipelineRunPending`; a cancelled or gone run stays as it is).
    async fn start(&self, run: &RunState) -> Result<(), ClusterError>;

    /// The run `name` of `kind` (`PipelineRun`, `TaskRun`) in `namespace`,
    /// as the cluster has it; `None` when there is none.
    async fn run(&self, namespace: &str, kind: &str, name: &str) -> Result<Option<serde_json::Value>, ClusterError>;

    /// What became of that run.
    async fn run_phase(&self, namespace: &str, kind: &str, name: &str) -> Result<RunPhase, ClusterError> {
        Ok(self.run(namespace, kind, name).await?.map_or(RunPhase::Gone, |object| phase_of(&object)))
    }

    /// The last `lines` lines the container wrote; `None` when its pod is
    /// gone.
    async fn pod_log(&self, of: &PodContainer<'_>, lines: usize) -> Result<Option<String>, ClusterError>;

    /// The failed step of a failed run, and the end of its log: the first
    /// of its TaskRuns (itself, for a TaskRun) whose step exited non-zero.
    async fn failed_step(&self, namespace: &str, kind: &str, name: &str) -> Result<Option<FailedStep>, ClusterError> {
        let task_runs = if kind == "TaskRun" {
            vec![name.to_owned()]
        } else {
            let Some(run) = self.run(namespace, kind, name).await? else { return Ok(None) };
            logs::child_task_runs(&run)
        };
        for task_run in task_runs.iter().take(logs::TASK_RUNS_READ) {
            let Some(object) = self.run(namespace, "TaskRun", task_run).await? else { continue };
            let Some((pod, container, step)) = logs::failed_step(&object) else { continue };
            let of = PodContainer { namespace, pod: &pod, container: &container };
            let Some(log) = self.pod_log(&of, logs::TAIL_LINES).await? else {
                return Ok(None);
            };
            return Ok(Some(FailedStep { task_run: task_run.clone(), step, log }));
        }
        Ok(None)
    }

    /// Whether the Deployment `name` in `namespace` is available, still
    /// coming up, or failing (and why, from its pods).
    async fn deployment_health(&self, namespace: &str, name: &str) -> Result<Health, ClusterError>;

    /// Whether the cluster answers (its version, for a deep health check).
    async fn ping(&self) -> Result<String, ClusterError>;

    /// Deletes a namespace and everything in it; deleting nothing is fine.
    async fn delete_namespace(&self, name: &str) -> Result<(), ClusterError>;
}

/// What a Tekton run object says of itself: its `Succeeded` condition.
pub fn phase_of(object: &serde_json::Value) -> RunPhase {
    let condition = object["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Succeeded");
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    match condition.map(|c| (c["status"].as_str(), c)) {
        Some((Some("True"), _)) => RunPhase::Succeeded,
        Some((Some("False"), c)) if CANCELLED_REASONS.contains(&c["reason"].as_str().unwrap_or_default()) => {
            RunPhase::Cancelled { reason: text(&c["reason"]) }
        }
        Some((Some("False"), c)) => RunPhase::Failed { reason: text(&c["reason"]), message: text(&c["message"]) },
        // Since it started: a run that waited for a slot is not late for it.
        _ => RunPhase::Running {
            created_at: object["status"]["startTime"]
                .as_str()
                .or(object["metadata"]["creationTimestamp"].as_str())
                .and_then(|t| Timestamp::parse_rfc3339(t).ok()),
        },
    }
}

/// Container states that mean a pod will not come up without a change.
const STUCK_REASONS: [&str; 6] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// A Deployment's health from the object and its pods: available, a pod
/// stuck for a reason that will not pass, a missed progress deadline, or
/// still progressing.
pub fn health_of(deployment: &serde_json::Value, pods: &[serde_json::Value]) -> Health {
    let status = &deployment["status"];
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let condition = |kind: &str| conditions.iter().find(|c| c["type"] == kind);
    // Rolled out, as `kubectl rollout status` says: every replica updated
    // and available, for the current generation.
    let replicas = deployment["spec"]["replicas"].as_u64().unwrap_or(1);
    let count = |field: &str| status[field].as_u64().unwrap_or(0);
    let current = match (status["observedGeneration"].as_u64(), deployment["metadata"]["generation"].as_u64()) {
        (Some(observed), Some(generation)) => observed >= generation,
        _ => true,
    };
    if current
        && count("updatedReplicas") >= replicas
        && count("availableReplicas") >= replicas
        && condition("Available").is_some_and(|c| c["status"] == "True")
    {
        return Health::Available;
    }
    for pod in pods {
        let statuses = pod["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
        for status in statuses {
            let waiting = &status["state"]["waiting"];
            if let Some(reason) = waiting["reason"].as_str().filter(|r| STUCK_REASONS.contains(r)) {
                let message = waiting["message"].as_str().unwrap_or_default();
                let text = if message.is_empty() { reason.to_owned() } else { format!("{reason}: {message}") };
                return Health::Failed(text.chars().take(200).collect());
            }
        }
    }
    if let Some(progressing) = condition("Progressing")
        && progressing["status"] == "False"
    {
        return Health::Failed(progressing["reason"].as_str().unwrap_or("ProgressDeadlineExceeded").to_owned());
    }
    Health::Progressing
}

/// The finished runs to delete so that only the newest `keep` finished
/// ones stay (`keep_runs`); running runs always stay. Newest by the time of
/// the event that launched them, then by name.
pub fn to_prune(runs: &[RunState], keep: u32) -> Vec<&RunState> {
    let mut finished: Vec<&RunState> = runs.iter().filter(|r| !r.running).collect();
    finished.sort_by(|a, b| (b.happened_at, &b.name).cmp(&(a.happened_at, &a.name)));
    finished.into_iter().skip(keep as usize).collect()
}

/// The `spec.status` value that cancels a run of `kind`.
pub fn cancel_status(kind: &str) -> &'static str {
    match kind {
        "TaskRun" => "TaskRunCancelled",
        _ => "Cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_finished_runs_beyond_the_newest_kept_are_pruned() {
        let run = |name: &str, running: bool, at: Option<i64>| RunState {
            kind: "PipelineRun".into(),
            namespace: "ci".into(),
            name: name.into(),
            running,
            happened_at: at.map(Timestamp::from_unix),
            repo: None,
        };
        let runs = [
            run("old", false, Some(10)),
            run("running-oldest", true, Some(5)),
            run("newest", false, Some(40)),
            run("middle", false, Some(20)),
            run("untimed", false, None),
        ];
        let names = |pruned: Vec<&RunState>| pruned.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(to_prune(&runs, 2)), ["old", "untimed"]);
        assert_eq!(names(to_prune(&runs, 1)), ["middle", "old", "untimed"]);
        assert_eq!(names(to_prune(&runs, 10)), Vec::<String>::new());
    }
}
