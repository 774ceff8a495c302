//! The dry-run cluster: every object Ferry would create is written as YAML
//! to `<data dir>/cluster/<namespace>/<kind>/<name>.yaml` (a Namespace to
//! `<data dir>/cluster/<name>/namespace/<name>.yaml`), so the whole loop can
//! be watched without a cluster. Deleting a namespace removes its folder.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Mutex;

use super::{Cluster, ClusterError, Created, Manifest, PodContainer, RunState, cancel_status, manifests};
use crate::domain::repair::Health;

pub struct DryRunCluster {
    root: PathBuf,
    /// One writer at a time: create-unless-exists must not race itself.
    lock: Mutex<()>,
}

impl DryRunCluster {
    pub fn new(data_dir: &Path) -> Self {
        Self { root: data_dir.join("cluster"), lock: Mutex::new(()) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `manifest` is written.
    pub fn path_of(&self, manifest: &Manifest) -> PathBuf {
        let kind = manifest.kind().to_ascii_lowercase();
        let namespace = if manifest.kind() == "Namespace" { manifest.name() } else { manifest.namespace() };
        let namespace = if namespace.is_empty() { "_cluster" } else { namespace };
        self.root.join(safe(namespace)).join(safe(&kind)).join(format!("{}.yaml", safe(manifest.name())))
    }

    /// Reads back every object of `kind` in `namespace`.
    pub fn objects(&self, namespace: &str, kind: &str) -> Vec<Value> {
        let dir = self.root.join(safe(namespace)).join(safe(&kind.to_ascii_lowercase()));
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut objects: Vec<(PathBuf, Value)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .filter_map(|p| {
                let text = std::fs::read_to_string(&p).ok()?;
                Some((p, serde_yaml_ng::from_str(&text).ok()?))
            })
            .collect();
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        objects.into_iter().map(|(_, v)| v).collect()
    }

    fn run_path(&self, run: &RunState) -> PathBuf {
        self.root
            .join(safe(&run.namespace))
            .join(safe(&run.kind.to_ascii_lowercase()))
            .join(format!("{}.yaml", safe(&run.name)))
    }

    fn write(&self, path: &Path, object: &Value) -> Result<(), ClusterError> {
        let unavailable = |e: std::io::Error| ClusterError::Unavailable(format!("{}: {e}", path.display()).into());
        // A run's git Secret holds its clone token: every folder and file
        // here is the user's alone.
        if let Some(parent) = path.parent() {
            crate::files::own_private_dir(parent).map_err(unavailable)?;
        }
        let yaml = serde_yaml_ng::to_string(object)
            .map_err(|e| ClusterError::Refused { what: path.display().to_string(), problem: e.to_string() })?;
        let temporary = path.with_extension("yaml.tmp");
        crate::files::write_private(&temporary, yaml.as_bytes()).map_err(unavailable)?;
        std::fs::rename(&temporary, path).map_err(unavailable)?;
        Ok(())
    }
}

/// A path segment that cannot climb out of the folder.
fn safe(segment: &str) -> String {
    let cleaned: String =
        segment.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') { "_".into() } else { cleaned }
}

fn uid(manifest: &Manifest) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{}/{}/{}", manifest.kind(), manifest.namespace(), manifest.name()));
    let hex = hex::encode(&digest[..16]);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// The run written at `path`, if there is one.
fn read_run(path: &Path) -> Result<Option<Value>, ClusterError> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(None) };
    serde_yaml_ng::from_str(&text)
        .map(Some)
        .map_err(|e| ClusterError::Refused { what: path.display().to_string(), problem: e.to_string() })
}

#[async_trait]
impl Cluster for DryRunCluster {
    async fn create(&self, manifest: &Manifest) -> Result<Created, ClusterError> {
        let _one = self.lock.lock().await;
        let path = self.path_of(manifest);
        if path.exists() {
            return Ok(Created { uid: uid(manifest), existed: true });
        }
        self.write(&path, &manifest.0)?;
        tracing::info!(path = %path.display(), "dry-run: wrote {} {}", manifest.kind(), manifest.name());
        Ok(Created { uid: uid(manifest), existed: false })
    }

    async fn apply(&self, manifest: &Manifest) -> Result<(), ClusterError> {
        let _one = self.lock.lock().await;
        let path = self.path_of(manifest);
        self.write(&path, &manifest.0)?;
        tracing::info!(path = %path.display(), "dry-run: applied {} {}", manifest.kind(), manifest.name());
        Ok(())
    }

    async fn runs(&self, namespace: &str, labels: &[super::Label<'_>]) -> Result<Vec<RunState>, ClusterError> {
        let mut runs = Vec::new();
        for kind in ["PipelineRun", "TaskRun"] {
            for object in self.objects(namespace, kind) {
                if !labels.iter().all(|label| label.selects(&object["metadata"]["labels"])) {
                    continue;
                }
                // Any status but pending is a cancellation.
                let cancelled = object["spec"]["status"].as_str().is_some_and(|s| s != manifests::PENDING);
                let done = object["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Succeeded" && c["status"] != "Unknown");
                runs.push(RunState {
                    kind: kind.to_owned(),
                    namespace: namespace.to_owned(),
                    name: object["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                    running: !cancelled && !done,
                    happened_at: super::happened_at(&object),
                    repo: object["metadata"]["annotations"]["ferry.dev/repo"].as_str().map(str::to_owned),
                });
            }
        }
        Ok(runs)
    }

    /// Removes the run's file and its clone Secret's (the garbage collector's part).
    async fn delete_run(&self, run: &RunState) -> Result<(), ClusterError> {
        let _one = self.lock.lock().await;
        let secret = self
            .root
            .join(safe(&run.namespace))
            .join("secret")
            .join(format!("{}.yaml", safe(&manifests::git_secret_name(&run.name))));
        for path in [self.run_path(run), secret] {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "dry-run: deleted"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ClusterError::Unavailable(format!("{}: {e}", path.display()).into())),
            }
        }
        Ok(())
    }

    async fn cancel(&self, run: &RunState) -> Result<(), ClusterError> {
        let _one = self.lock.lock().await;
        let path = self.run_path(run);
        let Some(mut object) = read_run(&path)? else { return Ok(()) };
        object["spec"]["status"] = cancel_status(&run.kind).into();
        self.write(&path, &object)?;
        tracing::info!(path = %path.display(), "dry-run: cancelled {} {}", run.kind, run.name);
        Ok(())
    }

    async fn start(&self, run: &RunState) -> Result<(), ClusterError> {
        let _one = self.lock.lock().await;
        let path = self.run_path(run);
        let Some(mut object) = read_run(&path)? else { return Ok(()) };
        if object["spec"]["status"] != manifests::PENDING {
            return Ok(());
        }
        object["spec"].as_object_mut().map(|spec| spec.remove("status"));
        self.write(&path, &object)?;
        tracing::info!(path = %path.display(), "dry-run: started {} {}", run.kind, run.name);
        Ok(())
    }

    async fn run(&self, namespace: &str, kind: &str, name: &str) -> Result<Option<Value>, ClusterError> {
        let run = RunState {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            running: true,
            happened_at: None,
            repo: None,
        };
        read_run(&self.run_path(&run))
    }

    /// From `<namespace>/pod/<pod>/<container>.log`, written by whoever
    /// plays the cluster (a test); a dry run runs nothing.
    async fn pod_log(&self, of: &PodContainer<'_>, lines: usize) -> Result<Option<String>, ClusterError> {
        let PodContainer { namespace, pod, container } = *of;
        let path = self.root.join(safe(namespace)).join("pod").join(safe(pod)).join(format!("{}.log", safe(container)));
        let Ok(bytes) = std::fs::read(&path) else { return Ok(None) };
        // As the API server does: at most LOG_BYTES, of the end.
        let start = bytes.len().saturating_sub(super::logs::LOG_BYTES);
        let text = String::from_utf8_lossy(&bytes[start..]);
        let all: Vec<&str> = text.lines().collect();
        Ok(Some(all[all.len().saturating_sub(lines)..].join("\n")))
    }

    async fn ping(&self) -> Result<String, ClusterError> {
        crate::files::create_private_dirs(&self.root)
            .map_err(|e| ClusterError::Unavailable(format!("{}: {e}", self.root.display()).into()))?;
        Ok(format!("dry-run at {}", self.root.display()))
    }

    /// From the Deployment's file: its `status`, written by whoever plays
    /// the cluster (a test), or still progressing; a dry run has no pods.
    async fn deployment_health(&self, namespace: &str, name: &str) -> Result<Health, ClusterError> {
        let path = self.root.join(safe(namespace)).join("deployment").join(format!("{}.yaml", safe(name)));
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(Health::Gone) };
        let object: Value = serde_yaml_ng::from_str(&text)
            .map_err(|e| ClusterError::Refused { what: path.display().to_string(), problem: e.to_string() })?;
        let pods: Vec<Value> = object["status"]["pods"].as_array().cloned().unwrap_or_default();
        Ok(super::health_of(&object, &pods))
    }

    async fn delete_namespace(&self, name: &str) -> Result<(), ClusterError> {
        let _one = self.lock.lock().await;
        let dir = self.root.join(safe(name));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::info!(path = %dir.display(), "dry-run: deleted namespace {name}");
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClusterError::Unavailable(format!("{}: {e}", dir.display()).into())),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use serde_json::json;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn run_in(namespace: &str) -> Manifest {
        Manifest(json!({
            "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": { "name": "api-1", "namespace": namespace, "labels": {} },
        }))
    }

    #[tokio::test]
    async fn a_runs_git_secret_is_written_private() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = DryRunCluster::new(dir.path());
        let secret = manifests::git_secret(&run_in("ci"), "uid-1", "x-access-token", "ghs_clonetoken");
        cluster.apply(&secret).await.unwrap();
        let file = cluster.path_of(&secret);
        assert!(std::fs::read_to_string(&file).unwrap().contains("ghs_clonetoken"));
        let folders = ["cluster", "cluster/ci", "cluster/ci/secret"].map(|f| mode(&dir.path().join(f)));
        assert_eq!((mode(&file), folders), (0o600, [0o700; 3]));

        // A folder an older version left open to others is closed again.
        let open = dir.path().join("cluster/old/secret");
        std::fs::create_dir_all(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let secret = manifests::git_secret(&run_in("old"), "uid-2", "x-access-token", "ghs_clonetoken");
        cluster.apply(&secret).await.unwrap();
        assert_eq!(cluster.path_of(&secret).parent().unwrap(), open);
        assert_eq!((mode(&cluster.path_of(&secret)), mode(&open)), (0o600, 0o700));
    }

    #[tokio::test]
    async fn deleting_a_run_takes_its_secret_and_deleting_nothing_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = DryRunCluster::new(dir.path());
        let run = run_in("ci");
        cluster.create(&run).await.unwrap();
        let secret = manifests::git_secret(&run, "uid-1", "x-access-token", "ghs_clonetoken");
        cluster.apply(&secret).await.unwrap();
        let state = RunState::of(&run);
        cluster.delete_run(&state).await.unwrap();
        assert!(!cluster.path_of(&run).exists() && !cluster.path_of(&secret).exists());
        cluster.delete_run(&state).await.expect("already gone is fine");
    }
}
