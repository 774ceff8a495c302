//! Use cases: each a function over the narrowest ports it needs.

pub mod commands;
pub mod cycle;
#[cfg(feature = "queue")]
pub mod fanout;
pub mod history;
pub mod installations;
pub mod intake;
pub mod launch;
pub mod oauth;
#[cfg(feature = "poll")]
pub mod poll;
pub mod reconcile;
pub mod rotate;
pub mod status;
pub mod tekton;
pub mod tokens;
pub mod track;
pub mod waiting;

/// For `skip_serializing_if`: a report leaves out a count that is nought.
fn is_zero(n: &usize) -> bool {
    *n == 0
}

pub use crate::domain::Action;
