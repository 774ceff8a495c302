//! What each function links, from Cargo's own resolution of its normal
//! dependencies (`cargo tree -p <function> -e normal`): a Lambda enables only
//! the features of the shared crate it runs (shared/Cargo.toml), so no
//! Lambda carries SQLite, the scheduled functions carry no HTTP router, and
//! only the poller sends CloudEvents. Each Lambda is built by itself
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
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--locked", "--offline", "-e", "normal", "--prefix", "none", "--format", "{p}", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).expect("cargo tree prints UTF-8");
    tree.lines().filter_map(|line| line.split_whitespace().next()).map(str::to_string).collect()
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
