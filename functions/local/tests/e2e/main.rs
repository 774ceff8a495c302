//! `ferry serve` end to end: each module starts the real binary and talks to
//! it as a user, a forge, a cluster or an attacker would.

mod commands;
mod common;
mod hosted_launch;
mod hostile;
mod kube_git_deploy;
mod kube_git_deploy_routes;
mod metrics;
mod own_comments;
mod reconciliation;
mod serve;
mod status_page;
mod tekton_events;
mod tekton_kube;
mod token_mode;
