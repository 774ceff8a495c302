//! The kube adapter, connected on first use and again after a failed
//! connection: a missing or broken kubeconfig must not stop a function from
//! starting (the webhook still records every delivery, and launches fail
//! with the reason until the kubeconfig is fixed, with no restart).

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::kube::{KubeCluster, RateLimit};
use super::{Cluster, ClusterError, Created, Manifest, PodContainer, RunState};
use crate::domain::repair::Health;
use crate::secrets::{SecretName, SecretStore};

pub struct LazyKube {
    secrets: Arc<dyn SecretStore>,
    kubeconfig: SecretName,
    sdk: Option<aws_config::SdkConfig>,
    /// The client-side rate limit: requests per second, burst.
    limit: (f64, u32),
    connected: OnceCell<KubeCluster>,
}

impl LazyKube {
    pub fn new(
        secrets: Arc<dyn SecretStore>,
        kubeconfig: SecretName,
        sdk: Option<aws_config::SdkConfig>,
        limit: (f64, u32),
    ) -> Self {
        Self { secrets, kubeconfig, sdk, limit, connected: OnceCell::new() }
    }

    /// The connected adapter; a failure is not kept, so the next call tries again.
    async fn cluster(&self) -> Result<&KubeCluster, ClusterError> {
        self.connected
            .get_or_try_init(|| async {
                let kubeconfig = self
                    .secrets
                    .get(&self.kubeconfig)
                    .await
                    .map_err(|e| ClusterError::Unavailable(format!("reading {}: {e}", self.kubeconfig).into()))?;
                KubeCluster::connect(kubeconfig.as_ref(), self.sdk.as_ref(), RateLimit::new(self.limit.0, self.limit.1)).await.inspect_err(|e| {
                    tracing::error!(error = %e, secret = %self.kubeconfig, "cannot connect to the cluster; the next call tries again");
                })
            })
            .await
    }
}

#[async_trait]
impl Cluster for LazyKube {
    async fn create(&self, manifest: &Manifest) -> Result<Created, ClusterError> {
        self.cluster().await?.create(manifest).await
    }

    async fn apply(&self, manifest: &Manifest) -> Result<(), ClusterError> {
        self.cluster().await?.apply(manifest).await
    }

    async fn runs(&self, namespace: &str, labels: &[super::Label<'_>]) -> Result<Vec<RunState>, ClusterError> {
        self.cluster().await?.runs(namespace, labels).await
    }

    async fn delete_run(&self, run: &RunState) -> Result<(), ClusterError> {
        self.cluster().await?.delete_run(run).await
    }

    async fn cancel(&self, run: &RunState) -> Result<(), ClusterError> {
        self.cluster().await?.cancel(run).await
    }

    async fn start(&self, run: &RunState) -> Result<(), ClusterError> {
        self.cluster().await?.start(run).await
    }

    async fn run(&self, namespace: &str, kind: &str, name: &str) -> Result<Option<serde_json::Value>, ClusterError> {
        self.cluster().await?.run(namespace, kind, name).await
    }

    async fn pod_log(&self, of: &PodContainer<'_>, lines: usize) -> Result<Option<String>, ClusterError> {
        self.cluster().await?.pod_log(of, lines).await
    }

    async fn deployment_health(&self, namespace: &str, name: &str) -> Result<Health, ClusterError> {
        self.cluster().await?.deployment_health(namespace, name).await
    }

    async fn ping(&self) -> Result<String, ClusterError> {
        self.cluster().await?.ping().await
    }

    async fn delete_namespace(&self, name: &str) -> Result<(), ClusterError> {
        self.cluster().await?.delete_namespace(name).await
    }
}
