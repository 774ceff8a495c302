//! What each function links, from Cargo's own resolution of its normal
//! dependencies (`cargo tree -p <function> -e normal`): a Lambda enables only
//! the features of the shared crate it runs (shared/Cargo.toml), so no
//! Lambda carries SQLite, the scheduled functions carry no HTTP router, and
//! only the poller sends CloudEvents; every function has one crypto library
//! and only `ferry` (local) the SDK's profile chain. Each Lambda is built by itself
//! (`scripts/build-lambdas`) so that these are the features it is built with.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::{LazyLock, Mutex};

/// The packages `package` links, by name: Cargo is asked once per package.
fn linked(package: &str) -> BTreeSet<String> {
    static TREES: LazyLock<Mutex<BTreeMap<String, BTreeSet<String>>>> = LazyLock::new(Mutex::default);
    let mut trees = TREES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    trees.entry(package.to_owned()).or_insert_with(|| cargo_tree(package)).clone()
}

fn cargo_tree(package: &str) -> BTreeSet<String> {
    tree(package, "{p}").lines().filter_map(|line| line.split_whitespace().next()).map(str::to_string).collect()
}

/// `cargo tree` of `package`'s normal dependencies, one package per line.
fn tree(package: &str, format: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--locked", "--offline", "-e", "normal", "--prefix", "none", "--format", format, "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("cargo tree prints UTF-8")
}

/// The features of the shared crate `package` is built with.
fn shared_features(package: &str) -> BTreeSet<String> {
    let tree = tree(package, "{p} {f}");
    let line = tree.lines().find(|line| line.starts_with("ferry v")).expect("every function links the shared crate");
    let features = line.rsplit_once(") ").map_or("", |(_, features)| features);
    features.split(',').filter(|f| !f.is_empty()).map(str::to_string).collect()
}

const LAMBDAS: [&str; 4] = ["ferry-webhook", "ferry-poller", "ferry-token-rotator", "ferry-reconciler"];
const SCHEDULED: [&str; 3] = ["ferry-poller", "ferry-token-rotator", "ferry-reconciler"];

#[test]
fn only_the_local_binary_links_the_embedded_store() {
    for sqlite in ["rusqlite", "libsqlite3-sys"] {
        assert!(linked("ferry-local").contains(sqlite), "ferry (local) runs on embedded state: {sqlite}");
        for lambda in LAMBDAS {
            assert!(!linked(lambda).contains(sqlite), "{lambda} links {sqlite}");
        }
    }
}

#[test]
fn only_the_webhook_links_the_http_router() {
    for router in ["axum", "lambda_http"] {
        assert!(linked("ferry-webhook").contains(router), "the webhook serves through {router}");
        for scheduled in SCHEDULED {
            assert!(!linked(scheduled).contains(router), "{scheduled} links {router}");
        }
    }
}

#[test]
fn only_the_poller_links_the_cloudevents_sender() {
    assert!(linked("ferry-poller").contains("cloudevents-sdk"));
    for lambda in ["ferry-webhook", "ferry-token-rotator", "ferry-reconciler"] {
        assert!(!linked(lambda).contains("cloudevents-sdk"), "{lambda} links cloudevents-sdk");
    }
}

#[test]
fn only_the_local_binary_renders_prometheus_text() {
    assert!(linked("ferry-local").contains("metrics-exporter-prometheus"));
    for lambda in LAMBDAS {
        assert!(!linked(lambda).contains("metrics-exporter-prometheus"), "{lambda} links the Prometheus exporter");
        assert!(linked(lambda).contains("metrics_cloudwatch_embedded"), "{lambda} writes EMF");
    }
}

#[test]
fn only_the_scheduled_functions_link_the_queue() {
    for scheduled in SCHEDULED {
        assert!(linked(scheduled).contains("aws-sdk-sqs"), "{scheduled} fans out over SQS");
    }
    assert!(!linked("ferry-webhook").contains("aws-sdk-sqs"), "the webhook links aws-sdk-sqs");
}

#[test]
fn every_function_links_one_crypto_library() {
    for function in LAMBDAS.into_iter().chain(["ferry-local"]) {
        assert!(linked(function).contains("ring"), "{function} runs TLS and the App JWT on ring");
        for second in ["aws-lc-rs", "aws-lc-sys", "openssl", "native-tls"] {
            assert!(!linked(function).contains(second), "{function} links {second}");
        }
    }
}

#[test]
fn only_the_local_binary_reads_aws_profiles_and_infers_the_cluster() {
    for feature in ["aws-profiles", "infer-cluster"] {
        assert!(shared_features("ferry-local").contains(feature), "ferry (local) has {feature}");
        for lambda in LAMBDAS {
            assert!(!shared_features(lambda).contains(feature), "{lambda} is built with {feature}");
        }
    }
}
