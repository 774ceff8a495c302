//! The kube adapter (`FERRY_CLUSTER=kube`): Tekton runs are created (never
//! replaced: `AlreadyExists` is a redelivery), Ferry's own objects are
//! server-side applied as field manager `ferry`, forced. Requests pass a
//! client-side rate limit (5 per second, bursts of 10).
//!
//! Where the cluster is: a kubeconfig in the secret store
//! (`clusters/<FERRY_CLUSTER_NAME or default>`), else, for `ferry` (local)
//! only, `KUBECONFIG` or the in-cluster service account, as kubectl finds
//! them. A kubeconfig whose
//! user runs `aws eks get-token` gets that token made here instead (a
//! presigned STS `GetCallerIdentity`), so a Lambda needs no `aws` CLI.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::sync::RwLock;
use tokio::time::Instant;

use super::{Cluster, ClusterError, Created, Manifest, PodContainer, RunState, cancel_status, health_of, manifests};
use crate::domain::Timestamp;
use crate::domain::repair::Health;

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "ferry";

/// EKS tokens live 15 minutes; the client is rebuilt well before.
const EKS_TOKEN_REFRESH: Duration = Duration::from_secs(10 * 60);

/// At most `rate` requests per second, in bursts of `burst`: client-go's QPS
/// and burst, which kube-rs leaves to its callers.
pub struct RateLimit(governor::DefaultDirectRateLimiter);

impl RateLimit {
    pub fn new(rate: f64, burst: u32) -> Self {
        let one_every = Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX);
        let quota = governor::Quota::with_period(one_every).unwrap_or(governor::Quota::per_second(NonZeroU32::MAX));
        Self(governor::RateLimiter::direct(quota.allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))))
    }

    /// Waits until a request may go.
    pub async fn acquire(&self) {
        self.0.until_ready().await;
    }
}

/// How the client is made, so an expiring credential can be renewed.
#[derive(Clone)]
enum Source {
    /// Built once by the caller (tests, or inferred config with no expiry).
    Fixed,
    /// A kubeconfig whose user gets EKS tokens from us.
    Eks(Box<Eks>),
}

#[derive(Clone)]
struct Eks {
    kubeconfig: Kubeconfig,
    cluster: String,
    region: String,
    sdk: aws_config::SdkConfig,
}

pub struct KubeCluster {
    client: RwLock<(kube::Client, Instant)>,
    source: Source,
    limit: RateLimit,
}

impl KubeCluster {
    /// Over an existing client (a test's fake, or one built by the caller).
    pub fn new(client: kube::Client) -> Self {
        Self { client: RwLock::new((client, Instant::now())), source: Source::Fixed, limit: RateLimit::new(5.0, 10) }
    }

    /// The same cluster behind another rate limit.
    pub fn with_limit(mut self, limit: RateLimit) -> Self {
        self.limit = limit;
        self
    }

    /// From a kubeconfig's text (the secret store's `clusters/<name>`), or,
    /// with `infer-cluster`, from `KUBECONFIG` / the in-cluster account when
    /// there is none.
    pub async fn connect(
        kubeconfig: Option<&SecretString>,
        sdk: Option<&aws_config::SdkConfig>,
        limit: RateLimit,
    ) -> Result<Self, ClusterError> {
        let refused = |problem: String| ClusterError::Refused { what: "the cluster configuration".into(), problem };
        let Some(text) = kubeconfig else {
            return Ok(Self::new(inferred().await.map_err(refused)?).with_limit(limit));
        };
        let kubeconfig = parse_kubeconfig(text.expose_secret()).map_err(refused)?;
        match eks_user(&kubeconfig) {
            Some((cluster, region)) => {
                let sdk = sdk.cloned().ok_or_else(|| refused("an EKS kubeconfig needs AWS credentials".into()))?;
                let region =
                    region.or_else(|| sdk.region().map(ToString::to_string)).unwrap_or_else(|| "us-east-1".into());
                let source = Source::Eks(Box::new(Eks { kubeconfig, cluster, region, sdk }));
                let client = build(&source).await?;
                Ok(Self { client: RwLock::new((client, Instant::now())), source, limit })
            }
            None => {
                let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| refused(e.to_string()))?;
                Ok(Self::new(kube::Client::try_from(config).map_err(|e| refused(e.to_string()))?).with_limit(limit))
            }
        }
    }

    /// The client, rebuilt first when its EKS token is about to expire; and
    /// a turn of the rate limit.
    async fn client(&self) -> Result<kube::Client, ClusterError> {
        self.limit.acquire().await;
        {
            let current = self.client.read().await;
            if matches!(self.source, Source::Fixed) || current.1.elapsed() < EKS_TOKEN_REFRESH {
                return Ok(current.0.clone());
            }
        }
        let mut current = self.client.write().await;
        if current.1.elapsed() >= EKS_TOKEN_REFRESH {
            *current = (build(&self.source).await?, Instant::now());
        }
        Ok(current.0.clone())
    }

    async fn api(&self, manifest: &Manifest) -> Result<Api<DynamicObject>, ClusterError> {
        let resource = api_resource(manifest)?;
        let client = self.client().await?;
        Ok(match manifest.namespace() {
            "" => Api::all_with(client, &resource),
            namespace => Api::namespaced_with(client, namespace, &resource),
        })
    }
}

/// `ApiResource` for a manifest's kind: the few kinds Ferry writes.
fn api_resource(manifest: &Manifest) -> Result<ApiResource, ClusterError> {
    let plural = match manifest.kind() {
        "PipelineRun" => "pipelineruns",
        "TaskRun" => "taskruns",
        "Namespace" => "namespaces",
        "Deployment" => "deployments",
        "Service" => "services",
        "Ingress" => "ingresses",
        "RoleBinding" => "rolebindings",
        "Secret" => "secrets",
        other => {
            return Err(ClusterError::Refused {
                what: manifest.name().into(),
                problem: format!("unknown kind {other}"),
            });
        }
    };
    let (group, version) = match manifest.api_version().split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", manifest.api_version()),
    };
    Ok(ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: manifest.api_version().into(),
        kind: manifest.kind().into(),
        plural: plural.into(),
    })
}

fn tekton(kind: &str) -> ApiResource {
    let plural = if kind == "TaskRun" { "taskruns" } else { "pipelineruns" };
    ApiResource {
        group: "tekton.dev".into(),
        version: "v1".into(),
        api_version: "tekton.dev/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn object(manifest: &Manifest) -> Result<DynamicObject, ClusterError> {
    serde_json::from_value(manifest.0.clone())
        .map_err(|e| ClusterError::Refused { what: manifest.name().into(), problem: e.to_string() })
}

fn failure(what: &str, error: kube::Error) -> ClusterError {
    match error {
        kube::Error::Api(status) if status.code < 500 && status.code != 429 => {
            ClusterError::Refused { what: what.into(), problem: format!("{} ({})", status.message, status.code) }
        }
        other => ClusterError::Unavailable(format!("{what}: {other}").into()),
    }
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn create(&self, manifest: &Manifest) -> Result<Created, ClusterError> {
        let api = self.api(manifest).await?;
        match api.create(&PostParams::default(), &object(manifest)?).await {
            Ok(created) => Ok(Created { uid: created.metadata.uid.unwrap_or_default(), existed: false }),
            Err(e) if is_status(&e, 409) => {
                let found = api.get(manifest.name()).await.map_err(|e| failure(manifest.name(), e))?;
                Ok(Created { uid: found.metadata.uid.unwrap_or_default(), existed: true })
            }
            Err(e) => Err(failure(manifest.name(), e)),
        }
    }

    async fn apply(&self, manifest: &Manifest) -> Result<(), ClusterError> {
        let api = self.api(manifest).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(manifest.name(), &params, &Patch::Apply(&manifest.0))
            .await
            .map_err(|e| failure(manifest.name(), e))?;
        Ok(())
    }

    async fn runs(&self, namespace: &str, labels: &[super::Label<'_>]) -> Result<Vec<RunState>, ClusterError> {
        let selector: Vec<String> = labels.iter().map(super::Label::selector).collect();
        let mut runs = Vec::new();
        for kind in ["PipelineRun", "TaskRun"] {
            let api: Api<DynamicObject> = Api::namespaced_with(self.client().await?, namespace, &tekton(kind));
            let listed = api
                .list(&ListParams::default().labels(&selector.join(",")))
                .await
                .map_err(|e| failure(&format!("{kind}s in {namespace}"), e))?;
            for run in listed {
                // Any status but pending is a cancellation.
                let cancelled = run.data["spec"]["status"].as_str().is_some_and(|s| s != manifests::PENDING);
                let done = run.data["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Succeeded" && c["status"] != "Unknown");
                let happened_at = run
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(manifests::HAPPENED_AT))
                    .and_then(|v| v.parse().ok())
                    .map(Timestamp::from_unix);
                let repo = run.metadata.annotations.as_ref().and_then(|a| a.get("ferry.dev/repo")).cloned();
                runs.push(RunState {
                    kind: kind.into(),
                    namespace: namespace.into(),
                    name: run.metadata.name.unwrap_or_default(),
                    running: !cancelled && !done,
                    happened_at,
                    repo,
                });
            }
        }
        Ok(runs)
    }

    async fn delete_run(&self, run: &RunState) -> Result<(), ClusterError> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client().await?, &run.namespace, &tekton(&run.kind));
        match api.delete(&run.name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(failure(&run.name, e)),
        }
    }

    async fn cancel(&self, run: &RunState) -> Result<(), ClusterError> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client().await?, &run.namespace, &tekton(&run.kind));
        let patch = json!({ "spec": { "status": cancel_status(&run.kind) } });
        match api.patch(&run.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(failure(&run.name, e)),
        }
    }

    async fn start(&self, run: &RunState) -> Result<(), ClusterError> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client().await?, &run.namespace, &tekton(&run.kind));
        // Read, then clear the status at that resourceVersion: a run
        // cancelled in between (409) is read again, never started.
        for _ in 0..3 {
            let found = match api.get_opt(&run.name).await {
                Ok(Some(found)) => found,
                Ok(None) => return Ok(()),
                Err(e) => return Err(failure(&run.name, e)),
            };
            if found.data["spec"]["status"] != manifests::PENDING {
                return Ok(());
            }
            let patch = json!({
                "metadata": { "resourceVersion": found.metadata.resource_version },
                "spec": { "status": null },
            });
            match api.patch(&run.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => return Ok(()),
                Err(e) if is_status(&e, 404) => return Ok(()),
                Err(e) if is_status(&e, 409) => continue,
                Err(e) => return Err(failure(&run.name, e)),
            }
        }
        Err(ClusterError::Refused { what: run.name.clone(), problem: "kept changing while being started".into() })
    }

    async fn run(&self, namespace: &str, kind: &str, name: &str) -> Result<Option<serde_json::Value>, ClusterError> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client().await?, namespace, &tekton(kind));
        match api.get_opt(name).await {
            Ok(Some(found)) => serde_json::to_value(&found)
                .map(Some)
                .map_err(|e| ClusterError::Refused { what: name.to_owned(), problem: e.to_string() }),
            Ok(None) => Ok(None),
            Err(e) => Err(failure(name, e)),
        }
    }

    async fn pod_log(&self, of: &PodContainer<'_>, lines: usize) -> Result<Option<String>, ClusterError> {
        let PodContainer { namespace, pod, container } = *of;
        let pods: Api<Pod> = Api::namespaced(self.client().await?, namespace);
        let params = LogParams {
            container: Some(container.to_owned()),
            tail_lines: Some(i64::try_from(lines).unwrap_or(i64::MAX)),
            limit_bytes: Some(super::logs::LOG_BYTES as i64),
            ..LogParams::default()
        };
        match pods.log_stream(pod, &params).await {
            Ok(stream) => {
                use futures::AsyncReadExt;
                let mut bytes = Vec::new();
                let limit = super::logs::LOG_BYTES as u64;
                stream.take(limit).read_to_end(&mut bytes).await.map_err(|e| ClusterError::Unavailable(Box::new(e)))?;
                // limitBytes may cut a character in two: the log is still worth reading.
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            // Pruned with its run, or never scheduled.
            Err(e) if is_status(&e, 404) || is_status(&e, 400) => Ok(None),
            Err(e) => Err(failure(pod, e)),
        }
    }

    async fn ping(&self) -> Result<String, ClusterError> {
        let version = self.client().await?.apiserver_version().await.map_err(|e| failure("the API server", e))?;
        Ok(version.git_version)
    }

    async fn deployment_health(&self, namespace: &str, name: &str) -> Result<Health, ClusterError> {
        use k8s_openapi::api::apps::v1::Deployment;
        // Read as JSON (`health_of` reads a few fields): the typed Deployment
        // and Pod readers are a quarter of a megabyte of each Lambda.
        let client = self.client().await?;
        let deployments: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<Deployment>(&()));
        let Some(deployment) = deployments.get_opt(name).await.map_err(|e| failure(name, e))? else {
            return Ok(Health::Gone);
        };
        let deployment = serde_json::to_value(&deployment).unwrap_or_default();
        let selector = deployment["spec"]["selector"]["matchLabels"]
            .as_object()
            .map(|labels| {
                let label = |(k, v): (&String, &serde_json::Value)| format!("{k}={}", v.as_str().unwrap_or_default());
                labels.iter().map(label).collect::<Vec<_>>().join(",")
            })
            .unwrap_or_default();
        let pods: Api<DynamicObject> = Api::namespaced_with(client, namespace, &ApiResource::erase::<Pod>(&()));
        let pods = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| failure(&format!("pods of {name}"), e))?;
        let pods: Vec<serde_json::Value> =
            pods.items.iter().map(|p| serde_json::to_value(p).unwrap_or_default()).collect();
        Ok(health_of(&deployment, &pods))
    }

    async fn delete_namespace(&self, name: &str) -> Result<(), ClusterError> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client().await?);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(failure(name, e)),
        }
    }
}

/// A kubeconfig's text, read with the YAML parser Ferry already links for
/// manifests (kube's own reader brings a second one, about half a megabyte
/// of each Lambda). As kube reads it: empty documents skipped and `<<`
/// merge keys applied; but one document, as a secret holds, not several
/// to merge.
fn parse_kubeconfig(text: &str) -> Result<Kubeconfig, String> {
    use serde::Deserialize;
    // Where, never the parser's message: it quotes the value it refused,
    // which in a kubeconfig can be a token or a key (the error is logged).
    let invalid = |e: serde_yaml_ng::Error| match e.location() {
        Some(at) => format!("the kubeconfig is not valid: line {}, column {}", at.line(), at.column()),
        None => "the kubeconfig is not valid: its fields are not a kubeconfig's".to_owned(),
    };
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = serde_yaml_ng::Value::deserialize(document).map_err(invalid)?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    let mut value = match <[_; 1]>::try_from(documents) {
        Ok([value]) => value,
        Err(documents) => {
            return Err(format!("the kubeconfig has {} YAML documents: Ferry reads exactly one", documents.len()));
        }
    };
    value.apply_merge().map_err(invalid)?;
    serde_yaml_ng::from_value(value).map_err(invalid)
}

/// The cluster as kubectl finds it: `KUBECONFIG`, `~/.kube/config` or the
/// in-cluster account. Only where those can exist (`ferry`, local); a
/// Lambda has none of them and reads its kubeconfig from the secret store.
#[cfg(feature = "infer-cluster")]
async fn inferred() -> Result<kube::Client, String> {
    let config = kube::Config::infer().await.map_err(|e| e.to_string())?;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

#[cfg(not(feature = "infer-cluster"))]
async fn inferred() -> Result<kube::Client, String> {
    Err("no kubeconfig in the secret store (`clusters/<FERRY_CLUSTER_NAME or default>`): \
         a Lambda cannot find its cluster any other way"
        .into())
}

/// The EKS cluster (and region) a kubeconfig's current user asks
/// `aws eks get-token` for, if it does.
fn eks_user(kubeconfig: &Kubeconfig) -> Option<(String, Option<String>)> {
    let context = kubeconfig.current_context.as_deref()?;
    let user = kubeconfig.contexts.iter().find(|c| c.name == context)?.context.as_ref()?.user.clone()?;
    let auth = kubeconfig.auth_infos.iter().find(|a| a.name == user)?.auth_info.as_ref()?;
    let exec = auth.exec.as_ref()?;
    let args = exec.args.clone().unwrap_or_default();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let is_aws = exec.command.as_deref().is_some_and(|c| c.ends_with("aws"));
    if !is_aws || !args.windows(2).any(|w| w[0] == "eks" && w[1] == "get-token") {
        return None;
    }
    Some((value("--cluster-name")?, value("--region")))
}

async fn build(source: &Source) -> Result<kube::Client, ClusterError> {
    let Source::Eks(eks) = source else {
        return Err(ClusterError::Refused { what: "the cluster".into(), problem: "nothing to rebuild".into() });
    };
    let Eks { kubeconfig, cluster, region, sdk } = eks.as_ref();
    use aws_credential_types::provider::ProvideCredentials;
    let refused = |problem: String| ClusterError::Refused { what: format!("EKS cluster {cluster}"), problem };
    let provider = sdk.credentials_provider().ok_or_else(|| refused("no AWS credentials provider".into()))?;
    let credentials = provider.provide_credentials().await.map_err(|e| refused(format!("no AWS credentials: {e}")))?;
    let token = eks_token(cluster, region, credentials, SystemTime::now()).map_err(refused)?;
    let mut kubeconfig = kubeconfig.clone();
    let context = kubeconfig.current_context.clone().unwrap_or_default();
    let user = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone())
        .unwrap_or_default();
    for named in kubeconfig.auth_infos.iter_mut().filter(|a| a.name == user) {
        if let Some(auth) = named.auth_info.as_mut() {
            auth.exec = None;
            auth.token = Some(token.clone());
        }
    }
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| refused(e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| refused(e.to_string()))
}

/// An EKS bearer token: `k8s-aws-v1.` and the base64url of a presigned STS
/// `GetCallerIdentity` URL whose signature covers `x-k8s-aws-id: <cluster>`
/// (what `aws eks get-token` prints), valid 60 s for the presign.
pub fn eks_token(
    cluster: &str,
    region: &str,
    credentials: aws_credential_types::Credentials,
    at: SystemTime,
) -> Result<SecretString, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let base = format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let request = SignableRequest::new("GET", &base, [("x-k8s-aws-id", cluster)].into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
    let mut url = url::Url::parse(&base).map_err(|e| e.to_string())?;
    for (name, value) in instructions.params() {
        url.query_pairs_mut().append_pair(name, value);
    }
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url.as_str());
    Ok(SecretString::from(format!("k8s-aws-v1.{encoded}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_rate_limit_lets_a_burst_through_then_makes_the_next_wait() {
        let limit = RateLimit::new(0.001, 3);
        for _ in 0..3 {
            limit.acquire().await;
        }
        // The next slot is 1,000 s away.
        assert!(tokio::time::timeout(Duration::from_millis(50), limit.acquire()).await.is_err());
    }

    /// Past its burst the limit lets requests through again at its rate.
    #[tokio::test]
    async fn the_rate_limit_refills_at_its_rate() {
        let limit = RateLimit::new(1000.0, 1);
        for _ in 0..20 {
            // One slot a millisecond: twenty go within the generous bound.
            tokio::time::timeout(Duration::from_secs(10), limit.acquire()).await.expect("refilled");
        }
    }

    #[test]
    fn an_eks_token_is_a_presigned_get_caller_identity() {
        let credentials = aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret-key", None, None, "test");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let token = eks_token("prod", "eu-west-1", credentials, at).unwrap();
        let encoded = token.expose_secret().strip_prefix("k8s-aws-v1.").expect("the EKS prefix");
        let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap();
        assert!(
            url.starts_with("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Signature=",
            "X-Amz-Credential=AKIDEXAMPLE",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
        assert!(!url.contains("secret-key"));
    }

    #[test]
    fn an_aws_eks_get_token_user_is_recognised() {
        let text = r#"
apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: prod
  cluster: { server: "https://ABC.gr7.eu-west-1.eks.amazonaws.com", certificate-authority-data: "" }
contexts:
- name: prod
  context: { cluster: prod, user: prod }
users:
- name: prod
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod"]
"#;
        let kubeconfig = parse_kubeconfig(text).unwrap();
        assert_eq!(eks_user(&kubeconfig), Some(("prod".into(), Some("eu-west-1".into()))));
        let plain = parse_kubeconfig(&text.replace("command: aws", "command: kubelogin")).unwrap();
        assert_eq!(eks_user(&plain), None);
    }

    #[test]
    fn a_kubeconfig_is_read_as_kube_reads_one_document() {
        let text = r#"---
apiVersion: v1
kind: Config
current-context: prod
defaults: &defaults { server: "https://k8s.example.com", certificate-authority-data: "Q0E=" }
clusters:
- name: prod
  cluster: { <<: *defaults }
contexts:
- name: prod
  context: { cluster: prod, user: prod }
users:
- name: prod
  user: { token: abc }
---
"#;
        let kubeconfig = parse_kubeconfig(text).unwrap();
        let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://k8s.example.com"), "the merge key is applied");
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
        assert_eq!(kubeconfig.current_context.as_deref(), Some("prod"));

        let two = format!("{text}\n{text}");
        assert_eq!(parse_kubeconfig(&two).unwrap_err(), "the kubeconfig has 2 YAML documents: Ferry reads exactly one");
        assert!(parse_kubeconfig("").unwrap_err().contains("0 YAML documents"));
        let broken = parse_kubeconfig("clusters: [").unwrap_err();
        assert!(broken.starts_with("the kubeconfig is not valid: "), "{broken}");
        let leaky = parse_kubeconfig("users:\n- name: u\n  user: { exec: { command: x, args: sekret-token } }\n");
        let leaky = leaky.unwrap_err();
        assert!(leaky.starts_with("the kubeconfig is not valid: ") && !leaky.contains("sekret"), "{leaky}");
    }
}
