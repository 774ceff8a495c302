//! `infra/kubernetes/`: least-privilege RBAC and the example Pipeline, read
//! as a cluster would read them and checked against what Ferry calls.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

fn documents(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/kubernetes").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).unwrap_or_else(|e| panic!("{file}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

#[test]
fn rbac_grants_what_ferry_calls_and_nothing_more() {
    let docs = documents("rbac.yaml");
    for doc in &docs {
        assert!(
            doc["apiVersion"].is_string() && doc["kind"].is_string() && doc["metadata"]["name"].is_string(),
            "{doc}"
        );
    }
    // The preview reader is a ClusterRole only to be bound inside each
    // preview namespace (by Ferry, per namespace): never cluster-wide.
    let reader = ferry::cluster::manifests::PREVIEW_READER;
    assert!(
        !docs.iter().any(|d| d["kind"] == "ClusterRoleBinding" && d["roleRef"]["name"] == reader),
        "{reader} is never bound cluster-wide"
    );
    let reader_rules = &docs.iter().find(|d| d["metadata"]["name"] == reader).expect("the reader role")["rules"];
    assert_eq!(
        reader_rules,
        &serde_json::json!([
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}
        ])
    );
    let rules: Vec<(&str, &Value)> = docs
        .iter()
        .filter(|d| d["kind"] == "Role" || (d["kind"] == "ClusterRole" && d["metadata"]["name"] != reader))
        .flat_map(|d| d["rules"].as_array().unwrap().iter().map(move |r| (d["kind"].as_str().unwrap(), r)))
        .collect();
    let mut granted: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (kind, rule) in &rules {
        for field in ["apiGroups", "resources", "verbs"] {
            assert!(!strings(&rule[field]).contains(&"*"), "a wildcard in {kind}: {rule}");
        }
        // Names pin a rule down; the one cluster-wide rule with names is `bind` of the reader.
        if rule.get("resourceNames").is_some() && *kind == "ClusterRole" {
            assert_eq!((strings(&rule["verbs"]), strings(&rule["resourceNames"])), (vec!["bind"], vec![reader]));
        }
        for resource in strings(&rule["resources"]) {
            for verb in strings(&rule["verbs"]) {
                granted.insert((kind.to_string(), resource.to_owned(), verb.to_owned()));
            }
        }
    }
    let secrets: BTreeSet<&str> =
        granted.iter().filter(|(_, r, _)| r == "secrets").map(|(_, _, v)| v.as_str()).collect();
    assert_eq!(secrets, BTreeSet::from(["create", "patch"]), "Ferry never reads Secrets");
    let cluster_wide: BTreeSet<&str> =
        granted.iter().filter(|(k, _, _)| k == "ClusterRole").map(|(_, r, _)| r.as_str()).collect();
    assert_eq!(
        cluster_wide,
        BTreeSet::from(["clusterroles", "deployments", "ingresses", "namespaces", "rolebindings", "services"]),
        "only what previews need"
    );
    for resource in ["pipelineruns", "taskruns"] {
        for verb in ["create", "get", "list", "patch", "delete"] {
            assert!(granted.contains(&("Role".into(), resource.into(), verb.into())), "{resource} {verb} is needed");
        }
    }
    // The failed step's log, in run namespaces only; nothing else of pods there.
    let pod_grants: BTreeSet<(&str, &str, &str)> = granted
        .iter()
        .filter(|(k, r, _)| k == "Role" && r.starts_with("pods"))
        .map(|(k, r, v)| (k.as_str(), r.as_str(), v.as_str()))
        .collect();
    assert_eq!(pod_grants, BTreeSet::from([("Role", "pods/log", "get")]));
    for (resource, verb) in
        [("namespaces", "delete"), ("namespaces", "patch"), ("deployments", "patch"), ("ingresses", "patch")]
    {
        assert!(granted.contains(&("ClusterRole".into(), resource.into(), verb.into())), "{resource} {verb} is needed");
    }
    let policy = docs.iter().find(|d| d["kind"] == "ValidatingAdmissionPolicy").expect("writes are confined");
    let binding =
        docs.iter().find(|d| d["kind"] == "ValidatingAdmissionPolicyBinding").expect("and the policy is bound");
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    assert!(policy["spec"]["validations"][0]["expression"].as_str().unwrap().contains("app.kubernetes.io/managed-by"));
}

#[test]
fn the_example_pipeline_takes_the_params_of_designs_example() {
    let docs = documents("pipeline.yaml");
    let pipeline = &docs[0];
    assert_eq!((pipeline["apiVersion"].as_str(), pipeline["kind"].as_str()), (Some("tekton.dev/v1"), Some("Pipeline")));
    assert_eq!(pipeline["metadata"]["name"], "build-and-deploy");
    let params: Vec<&str> =
        pipeline["spec"]["params"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(params, ["revision", "url"]);
}
