//! The kube adapter against kube-fake-client (controller-runtime's fake,
//! in memory) with the Tekton kinds registered, and against a recording
//! tower service where the fake falls short (cluster-scoped namespaces).

use std::sync::{Arc, Mutex};

use ferry::cluster::manifests::{self, Cause, PreviewOf, RunInput};
use ferry::cluster::{Cluster, KubeCluster, Label, Manifest, PodContainer, RunState};
use ferry::domain::repair::Health;
use ferry::domain::{PrNumber, RepoName, Sha, UnitName};
use ferry::units::operator::Defaults;
use ferry::units::{On, RunKind, RunSpec, Unit};
use ferry_tests::kube_api::{PipelineRun, TaskRun, fake_client};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

async fn fake() -> (kube::Client, KubeCluster) {
    let client = fake_client().await;
    (client.clone(), KubeCluster::new(client))
}

fn repo() -> RepoName {
    RepoName::parse("acme/api").unwrap()
}

fn sha(digit: char) -> Sha {
    Sha::parse(digit.to_string().repeat(40)).unwrap()
}

fn run_for(sha: &Sha, kind: RunKind) -> Manifest {
    let unit = Unit {
        name: UnitName::parse("api").unwrap(),
        on: vec![On::Push],
        branches: vec![],
        paths: vec![],
        drafts: false,
        skip_labels: vec![],
        run: Some(RunSpec {
            kind,
            namespace: Some("ci".into()),
            reference: Some("build".into()),
            service_account: None,
            params: [("revision".to_owned(), sha.to_string())].into(),
        }),
        docker: vec![],
        helm: vec![],
        preview: None,
        max_running: None,
        keep_runs: None,
    };
    manifests::run(&RunInput {
        repo: &repo(),
        unit: &unit,
        sha,
        cause: Cause::Push,
        lane: "refs/heads/main",
        clone_url: "https://github.com/acme/api.git",
        defaults: &Defaults::default(),
        happened_at: None,
        pending: false,
    })
}

#[tokio::test]
async fn a_run_is_created_once_and_a_redelivery_finds_it() {
    let (client, cluster) = fake().await;
    let run = run_for(&sha('1'), RunKind::Pipeline);
    let first = cluster.create(&run).await.unwrap();
    assert!(!first.existed && !first.uid.is_empty(), "{first:?}");
    let again = cluster.create(&run).await.unwrap();
    assert!(again.existed, "AlreadyExists is success");
    assert_eq!(again.uid, first.uid);
    let stored: Api<PipelineRun> = Api::namespaced(client, "ci");
    let stored = stored.get(run.name()).await.unwrap();
    assert_eq!(stored.spec.rest["pipelineRef"]["name"], "build");
    assert_eq!(stored.metadata.labels.unwrap()["ferry.dev/sha"], "1".repeat(40));
}

#[tokio::test]
async fn superseded_runs_are_found_by_lane_and_cancelled() {
    let (client, cluster) = fake().await;
    let old = run_for(&sha('1'), RunKind::Pipeline);
    let task = run_for(&sha('2'), RunKind::Task);
    cluster.create(&old).await.unwrap();
    cluster.create(&task).await.unwrap();
    let lane = old.label("ferry.dev/lane").unwrap().to_owned();
    let mut found = cluster.runs("ci", &[Label::Is("ferry.dev/lane", &lane)]).await.unwrap();
    found.sort_by(|a, b| a.kind.cmp(&b.kind));
    let names: Vec<(&str, bool)> = found.iter().map(|r| (r.kind.as_str(), r.running)).collect();
    assert_eq!(names, [("PipelineRun", true), ("TaskRun", true)]);
    for run in &found {
        cluster.cancel(run).await.unwrap();
    }
    let pipeline_runs: Api<PipelineRun> = Api::namespaced(client.clone(), "ci");
    assert_eq!(pipeline_runs.get(old.name()).await.unwrap().spec.status.as_deref(), Some("Cancelled"));
    let task_runs: Api<TaskRun> = Api::namespaced(client, "ci");
    assert_eq!(task_runs.get(task.name()).await.unwrap().spec.status.as_deref(), Some("TaskRunCancelled"));
    assert!(cluster.runs("ci", &[Label::Is("ferry.dev/lane", &lane)]).await.unwrap().iter().all(|r| !r.running));
    assert!(cluster.runs("ci", &[Label::Is("ferry.dev/lane", "other")]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_unit_s_own_runs_are_listed_without_a_pipeline_s_task_runs_and_deleted() {
    let (client, cluster) = fake().await;
    let run = run_for(&sha('1'), RunKind::Pipeline);
    cluster.create(&run).await.unwrap();
    // Tekton copies the PipelineRun's labels to its TaskRuns, and adds its own.
    let mut child = run_for(&sha('1'), RunKind::Task);
    child.0["metadata"]["name"] = format!("{}-build", run.name()).into();
    child.0["metadata"]["labels"]["tekton.dev/pipelineRun"] = run.name().into();
    cluster.create(&child).await.unwrap();
    let [(repo_key, repo_value), (unit_key, unit_value)] =
        manifests::unit_labels(&repo(), &UnitName::parse("api").unwrap());
    let selector = [
        Label::Is("app.kubernetes.io/managed-by", manifests::MANAGED_BY),
        Label::Is(repo_key, &repo_value),
        Label::Is(unit_key, &unit_value),
        Label::Absent("tekton.dev/pipelineRun"),
    ];
    let found = cluster.runs("ci", &selector).await.unwrap();
    let names: Vec<&str> = found.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, [run.name()], "the run, not its TaskRun");
    assert_eq!(found[0].repo.as_deref(), Some("acme/api"));
    cluster.delete_run(&found[0]).await.unwrap();
    cluster.delete_run(&found[0]).await.expect("deleting what is gone is fine");
    let pipeline_runs: Api<PipelineRun> = Api::namespaced(client, "ci");
    assert!(pipeline_runs.get_opt(run.name()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_pending_run_is_started_once_its_secret_is_there_and_a_cancelled_one_never() {
    let (client, cluster) = fake().await;
    let pending = |digit: char| {
        let mut run = run_for(&sha(digit), RunKind::Pipeline);
        run.0["spec"]["status"] = manifests::PENDING.into();
        run.0["metadata"]["annotations"][manifests::HAPPENED_AT] = "100".into();
        run
    };
    let (first, second) = (pending('1'), pending('2'));
    cluster.create(&first).await.unwrap();
    cluster.create(&second).await.unwrap();
    let lane = first.label("ferry.dev/lane").unwrap().to_owned();
    let found = cluster.runs("ci", &[Label::Is("ferry.dev/lane", &lane)]).await.unwrap();
    assert!(found.iter().all(|r| r.running), "a pending run can still be superseded: {found:?}");
    assert!(found.iter().all(|r| r.happened_at == Some(ferry::domain::Timestamp::from_unix(100))), "{found:?}");

    cluster.start(&RunState::of(&first)).await.unwrap();
    cluster.start(&RunState::of(&first)).await.unwrap();
    let runs: Api<PipelineRun> = Api::namespaced(client, "ci");
    assert_eq!(runs.get(first.name()).await.unwrap().spec.status, None, "started");

    cluster.cancel(&RunState::of(&second)).await.unwrap();
    cluster.start(&RunState::of(&second)).await.unwrap();
    assert_eq!(runs.get(second.name()).await.unwrap().spec.status.as_deref(), Some("Cancelled"));

    let mut gone = RunState::of(&first);
    gone.name = "ferry-gone".into();
    cluster.start(&gone).await.unwrap();
}

/// Applies unit `api`'s preview of pull request `pr` at `commit`; its namespace.
async fn apply_preview(cluster: &KubeCluster, pr: u64, commit: &Sha, image: &str) -> String {
    let unit = UnitName::parse("api").unwrap();
    let of = PreviewOf::PullRequest(PrNumber::new(pr));
    let host = format!("api-pr-{pr}.example.com");
    let objects = manifests::preview(&repo(), &unit, &of, commit, image, 8080, &host);
    // The Namespace is cluster-scoped: the recording-service test covers it.
    for object in objects.iter().filter(|o| o.kind() != "Namespace") {
        cluster.apply(object).await.unwrap();
    }
    manifests::preview_namespace(&repo(), &unit, &of)
}

#[tokio::test]
async fn preview_objects_and_the_clone_secret_are_server_side_applied() {
    let (client, cluster) = fake().await;
    let mut namespace = String::new();
    for (image, commit) in [("ghcr.io/acme/api:one", sha('1')), ("ghcr.io/acme/api:two", sha('2'))] {
        namespace = apply_preview(&cluster, 4, &commit, image).await;
    }
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), &namespace);
    let deployment = deployments.get("api").await.unwrap();
    let image = deployment.spec.unwrap().template.spec.unwrap().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some("ghcr.io/acme/api:two"), "a new push rolls the image");
    let ingresses: Api<k8s_openapi::api::networking::v1::Ingress> = Api::namespaced(client.clone(), &namespace);
    assert_eq!(
        ingresses.get("api").await.unwrap().spec.unwrap().rules.unwrap()[0].host.as_deref(),
        Some("api-pr-4.example.com")
    );

    let run = run_for(&sha('3'), RunKind::Pipeline);
    let created = cluster.create(&run).await.unwrap();
    cluster
        .apply(&manifests::git_secret(&run, &created.uid, manifests::GITHUB_CLONE_USER, "clone-token"))
        .await
        .unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, "ci");
    let secret = secrets.get(&manifests::git_secret_name(run.name())).await.unwrap();
    let owner = &secret.metadata.owner_references.unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("PipelineRun", created.uid.as_str()));
}

#[tokio::test]
async fn a_preview_s_health_is_read_from_its_deployment_and_its_pods() {
    let (client, cluster) = fake().await;
    let of = PreviewOf::PullRequest(PrNumber::new(5));
    let gone = manifests::preview_namespace(&repo(), &UnitName::parse("api").unwrap(), &of);
    assert_eq!(cluster.deployment_health(&gone, "api").await.unwrap(), Health::Gone);
    let namespace = apply_preview(&cluster, 5, &sha('1'), "ghcr.io/acme/api:one").await;
    assert_eq!(cluster.deployment_health(&namespace, "api").await.unwrap(), Health::Progressing);

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let labels = deployments.get("api").await.unwrap().spec.unwrap().selector.match_labels.unwrap();
    let pod = |name: &str, labels: serde_json::Value, reason: &str| {
        serde_json::from_value::<Pod>(serde_json::json!({
            "metadata": { "name": name, "namespace": namespace, "labels": labels },
            "spec": { "containers": [{ "name": "api", "image": "ghcr.io/acme/api:one" }] },
            "status": { "containerStatuses": [{
                "name": "api", "image": "ghcr.io/acme/api:one", "imageID": "", "ready": false, "restartCount": 0,
                "state": { "waiting": { "reason": reason, "message": "pull access denied" } }
            }] }
        }))
        .unwrap()
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    // Another deployment's pod, stuck too: not this preview's.
    let other = pod("other-1", serde_json::json!({ "app": "other" }), "CrashLoopBackOff");
    pods.create(&Default::default(), &other).await.unwrap();
    assert_eq!(cluster.deployment_health(&namespace, "api").await.unwrap(), Health::Progressing);
    let stuck = pod("api-1", serde_json::to_value(&labels).unwrap(), "ImagePullBackOff");
    pods.create(&Default::default(), &stuck).await.unwrap();
    assert_eq!(
        cluster.deployment_health(&namespace, "api").await.unwrap(),
        Health::Failed("ImagePullBackOff: pull access denied".into())
    );
}

type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A kube client over a service that records each request and answers as
/// a cluster would for namespaces: apply echoes, delete 200 then 404.
fn recording() -> (Seen, KubeCluster) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let log = log.clone();
        async move {
            let method = request.method().to_string();
            let uri = request.uri().to_string();
            let body = http_body_util::BodyExt::collect(request.into_body()).await.unwrap().to_bytes();
            let body = String::from_utf8_lossy(&body).into_owned();
            let deletes = {
                let mut log = log.lock().unwrap();
                log.push((method.clone(), uri.clone(), body.clone()));
                log.iter().filter(|(m, _, _)| m == "DELETE").count()
            };
            let (status, answer) = match method.as_str() {
                "DELETE" if deletes > 1 => (
                    404,
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "namespaces \"x\" not found"}),
                ),
                "DELETE" => {
                    (200, serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200}))
                }
                _ => (200, serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()),
            };
            let response = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    (seen, KubeCluster::new(kube::Client::new(service, "default")))
}

#[tokio::test]
async fn namespaces_are_applied_as_ferry_and_deleted_once() {
    let (seen, cluster) = recording();
    let unit = UnitName::parse("api").unwrap();
    let objects =
        manifests::preview(&repo(), &unit, &PreviewOf::PullRequest(PrNumber::new(4)), &sha('1'), "i", 80, "h");
    cluster.apply(&objects[0]).await.unwrap();
    let namespace = objects[0].name().to_owned();
    cluster.delete_namespace(&namespace).await.unwrap();
    cluster.delete_namespace(&namespace).await.expect("deleting what is gone is fine");
    let seen = seen.lock().unwrap();
    let (method, uri, body) = &seen[0];
    assert_eq!(method, "PATCH");
    assert!(uri.starts_with(&format!("/api/v1/namespaces/{namespace}?")), "{uri}");
    assert!(uri.contains("fieldManager=ferry") && uri.contains("force=true"), "server-side apply, forced: {uri}");
    let sent: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(sent["kind"], "Namespace");
    assert_eq!(sent["metadata"]["labels"]["app.kubernetes.io/managed-by"], "ferry");
    assert_eq!(
        (seen[1].0.as_str(), seen[1].1.as_str()),
        ("DELETE", format!("/api/v1/namespaces/{namespace}?").as_str())
    );
}

/// Round-trips `manifest` through the k8s-openapi type generated from
/// Kubernetes' OpenAPI description: a misspelt or misplaced field is
/// dropped on the way, and the difference fails the test.
fn conforms<K: serde::de::DeserializeOwned + serde::Serialize>(manifest: &Manifest) {
    let typed: K = serde_json::from_value(manifest.0.clone())
        .unwrap_or_else(|e| panic!("{} {} does not fit its schema: {e}", manifest.kind(), manifest.name()));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, manifest.0, "{} {} holds fields its schema does not know", manifest.kind(), manifest.name());
}

#[test]
fn every_core_object_ferry_writes_fits_the_kubernetes_schema() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
    use k8s_openapi::api::networking::v1::Ingress;
    let unit = UnitName::parse("api").unwrap();
    let objects = manifests::preview(
        &repo(),
        &unit,
        &PreviewOf::PullRequest(PrNumber::new(4)),
        &sha('1'),
        "i:1",
        8080,
        "h.example.com",
    );
    conforms::<Namespace>(&objects[0]);
    conforms::<Deployment>(&objects[1]);
    conforms::<Service>(&objects[2]);
    conforms::<Ingress>(&objects[3]);
    conforms::<k8s_openapi::api::rbac::v1::RoleBinding>(&objects[4]);
    assert_eq!(objects.len(), 5);
    let run = run_for(&sha('2'), RunKind::Pipeline);
    conforms::<Secret>(&manifests::git_secret(&run, "uid-1", manifests::GITHUB_CLONE_USER, "clone-token"));
}

/// A cluster where PipelineRun `r` failed in TaskRun `r-build`, step
/// `build`: the objects as the API server gives them, and the step's log.
fn failed_cluster() -> (Seen, KubeCluster) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let log = log.clone();
        async move {
            let uri = request.uri().to_string();
            log.lock().unwrap().push((request.method().to_string(), uri.clone(), String::new()));
            let path = request.uri().path().to_owned();
            let json = |value: serde_json::Value| (200, "application/json", serde_json::to_vec(&value).unwrap());
            let (status, kind, body) = match path.as_str() {
                "/apis/tekton.dev/v1/namespaces/ci/pipelineruns/r" => json(serde_json::json!({
                    "apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": "r", "namespace": "ci"},
                    "status": {"childReferences": [
                        {"kind": "TaskRun", "name": "r-clone"}, {"kind": "TaskRun", "name": "r-build"}
                    ]},
                })),
                "/apis/tekton.dev/v1/namespaces/ci/taskruns/r-clone" => json(serde_json::json!({
                    "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "r-clone", "namespace": "ci"},
                    "status": {"podName": "r-clone-pod", "conditions": [{"type": "Succeeded", "status": "True"}],
                               "steps": [{"name": "clone", "terminated": {"exitCode": 0}}]},
                })),
                "/apis/tekton.dev/v1/namespaces/ci/taskruns/r-build" => json(serde_json::json!({
                    "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "r-build", "namespace": "ci"},
                    "status": {"podName": "r-build-pod", "conditions": [{"type": "Succeeded", "status": "False"}],
                               "steps": [{"name": "build", "container": "step-build", "terminated": {"exitCode": 1}}]},
                })),
                "/api/v1/namespaces/ci/pods/r-build-pod/log" => (200, "text/plain", b"step 1\nerror: boom\n".to_vec()),
                _ => {
                    let not_found = serde_json::json!({
                        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404
                    });
                    (404, "application/json", serde_json::to_vec(&not_found).unwrap())
                }
            };
            let response = http::Response::builder()
                .status(status)
                .header("content-type", kind)
                .body(kube::client::Body::from(body))
                .unwrap();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    (seen, KubeCluster::new(kube::Client::new(service, "default")))
}

#[tokio::test]
async fn the_failed_step_s_log_is_read_from_its_pod_with_a_bounded_tail() {
    let (seen, cluster) = failed_cluster();
    let step = cluster.failed_step("ci", "PipelineRun", "r").await.unwrap().expect("a failed step");
    assert_eq!((step.task_run.as_str(), step.step.as_str()), ("r-build", "build"));
    assert_eq!(step.log, "step 1\nerror: boom\n");
    let log_read = seen.lock().unwrap().iter().find(|(_, uri, _)| uri.contains("/log")).cloned().unwrap();
    assert_eq!(log_read.0, "GET");
    for part in ["container=step-build", "tailLines=30", "limitBytes=65536"] {
        assert!(log_read.1.contains(part), "{part} in {}", log_read.1);
    }
    // A pod that is gone (pruned) is no log, not an error.
    assert_eq!(
        cluster.pod_log(&PodContainer { namespace: "ci", pod: "gone-pod", container: "step-build" }, 30).await.unwrap(),
        None
    );
    assert_eq!(cluster.failed_step("ci", "TaskRun", "r-clone").await.unwrap(), None, "it succeeded");
}
