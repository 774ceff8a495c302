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

/// `cargo tree` of `package`'s normal dependencies, one `name version
/// (path) features` line each: Cargo is asked once per package.
fn tree(package: &str) -> String {
    static TREES: LazyLock<Mutex<BTreeMap<String, String>>> = LazyLock::new(Mutex::default);
    let mut trees = TREES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    trees.entry(package.to_owned()).or_insert_with(|| cargo_tree(package)).clone()
}

fn cargo_tree(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p} {f}",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("cargo tree prints UTF-8")
}

/// The packages `package` links, by name.
fn linked(package: &str) -> BTreeSet<String> {
    tree(package).lines().filter_map(|line| line.split_whitespace().next()).map(str::to_string).collect()
}

/// The features of the shared crate `package` is built with.
fn shared_features(package: &str) -> BTreeSet<String> {
    let tree = tree(package);
    let line = tree.lines().find(|line| line.starts_with("ferry v")).expect("every function links the shared crate");
    let features = line.rsplit_once(") ").map_or("", |(_, features)| features);
    features.split(',').filter(|f| !f.is_empty()).map(str::to_string).collect()
}

/// `item` is in the set `of` each of `have`, and in none of `others`'.
fn only(item: &str, of: fn(&str) -> BTreeSet<String>, have: &[&str], others: &[&str]) {
    for package in have {
        assert!(of(package).contains(item), "{package} lacks {item}");
    }
    for package in others {
        assert!(!of(package).contains(item), "{package} has {item}");
    }
}

const LAMBDAS: [&str; 4] = ["ferry-webhook", "ferry-poller", "ferry-token-rotator", "ferry-reconciler"];
const SCHEDULED: [&str; 3] = ["ferry-poller", "ferry-token-rotator", "ferry-reconciler"];

#[test]
fn only_the_local_binary_links_the_embedded_store() {
    for sqlite in ["rusqlite", "libsqlite3-sys"] {
        only(sqlite, linked, &["ferry-local"], &LAMBDAS);
    }
}

#[test]
fn only_the_webhook_links_the_http_router() {
    for router in ["axum", "lambda_http"] {
        only(router, linked, &["ferry-webhook"], &SCHEDULED);
    }
}

#[test]
fn only_the_poller_links_the_cloudevents_sender() {
    only("cloudevents-sdk", linked, &["ferry-poller"], &["ferry-webhook", "ferry-token-rotator", "ferry-reconciler"]);
}

#[test]
fn only_the_local_binary_renders_prometheus_text() {
    only("metrics-exporter-prometheus", linked, &["ferry-local"], &LAMBDAS);
    for lambda in LAMBDAS {
        assert!(linked(lambda).contains("metrics_cloudwatch_embedded"), "{lambda} writes EMF");
    }
}

#[test]
fn only_the_scheduled_functions_link_the_queue() {
    only("aws-sdk-sqs", linked, &SCHEDULED, &["ferry-webhook"]);
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
        only(feature, shared_features, &["ferry-local"], &LAMBDAS);
    }
}
