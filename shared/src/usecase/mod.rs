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
pub mod tekton;
pub mod tokens;
pub mod track;
pub mod waiting;

use serde::Serialize;

/// For `skip_serializing_if`: a report leaves out a count that is nought.
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One thing a use case did, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl Action {
    pub fn new(kind: &'static str, name: impl ToString) -> Self {
        Self { kind, namespace: None, name: name.to_string() }
    }
}
