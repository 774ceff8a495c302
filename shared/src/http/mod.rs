//! Ferry's HTTP surface, one router for every host: `lambda_http` serves it
//! in `ferry-webhook`, axum's server in `ferry serve`. Handlers translate
//! requests into use-case calls and results into responses, nothing more.

mod health;
mod lambda;
mod webhook;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::Context;

pub use lambda::service as lambda_service;
pub use webhook::MAX_BODY;

pub fn router(context: Context) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        // The handler enforces the limit itself, Content-Length first.
        .route("/webhook", post(webhook::webhook).layer(DefaultBodyLimit::disable()))
        .with_state(context)
}
