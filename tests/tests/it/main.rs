//! All workspace integration tests, one binary (one link of the AWS SDK).

mod app_manifest;
mod aws_calls;
mod config_readme;
mod docs;
mod fanout;
mod forge;
mod infra_template;
mod kube_cluster;
mod kubernetes_manifests;
mod launch;
mod linked;
mod management;
mod octokit_examples;
mod poll;
mod poll_tls;
mod providers;
mod reconcile;
mod redirects;
mod samples;
mod secrets_contract;
mod signature_fuzz;
mod state_contract;
mod tokens;
mod webhook;
