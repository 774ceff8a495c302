//! A Kubernetes API server for `ferry serve` to talk to: kube-fake-client
//! (controller-runtime's fake, in memory, with the Tekton kinds
//! registered) behind a real HTTP listener, every request handed to it as
//! it came. The test reads and writes the same objects, as Tekton's
//! controller would.

use kube::CustomResource;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[kube(group = "tekton.dev", version = "v1", kind = "PipelineRun", namespaced)]
pub struct PipelineRunSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[kube(group = "tekton.dev", version = "v1", kind = "TaskRun", namespaced)]
pub struct TaskRunSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// The fake cluster with the Tekton kinds.
pub async fn fake_client() -> kube::Client {
    kube_fake_client::ClientBuilder::new()
        .with_resource::<PipelineRun>()
        .with_resource::<TaskRun>()
        .build()
        .await
        .expect("the fake client")
}

pub struct FakeApiServer {
    pub url: String,
    pub client: kube::Client,
    serving: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

impl FakeApiServer {
    pub async fn start() -> Self {
        let client = fake_client().await;
        let forward = client.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let client = forward.clone();
            async move { relay(client, request).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let serving = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the fake API server");
        });
        Self { url, client, serving }
    }

    /// A kubeconfig pointing at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: ferry\nusers:\n- name: ferry\n  user:\n    token: fake-token\n",
            self.url
        )
    }

    fn api(&self, namespace: &str, kind: &str) -> Api<DynamicObject> {
        let resource = kube::api::ApiResource {
            group: "tekton.dev".into(),
            version: "v1".into(),
            api_version: "tekton.dev/v1".into(),
            kind: kind.into(),
            plural: format!("{}s", kind.to_ascii_lowercase()),
        };
        Api::namespaced_with(self.client.clone(), namespace, &resource)
    }

    /// Every run of `kind` in `namespace`, as JSON.
    pub async fn runs(&self, namespace: &str, kind: &str) -> Vec<Value> {
        let listed = self.api(namespace, kind).list(&Default::default()).await.expect("listing runs");
        listed.items.into_iter().map(|o| serde_json::to_value(o).unwrap()).collect()
    }

    /// Sets a run's `status`, as Tekton's controller does.
    pub async fn set_status(&self, namespace: &str, kind: &str, name: &str, status: Value) {
        let patch = serde_json::json!({ "status": status });
        let api = self.api(namespace, kind);
        if api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await.is_err() {
            // Kinds registered without a status subresource take it on the object.
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("setting the status");
        }
    }
}

/// Hands one request to the fake client and its answer back.
async fn relay(client: kube::Client, request: axum::extract::Request) -> axum::response::Response {
    use http_body_util::BodyExt;
    let (parts, body) = request.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let request = http::Request::from_parts(parts, kube::client::Body::from(bytes.to_vec()));
    match client.send(request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
        }
        Err(e) => {
            let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": e.to_string(), "code": 500});
            let mut response = axum::response::Response::new(axum::body::Body::from(status.to_string()));
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}
