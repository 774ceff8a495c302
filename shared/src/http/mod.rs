//! Ferry's HTTP surface, one router for every host: `lambda_http` serves it
//! in `ferry-webhook`, axum's server in `ferry serve`. Handlers translate
//! requests into use-case calls and results into responses, nothing more.

mod health;
mod lambda;
pub mod limits;
mod management;
mod webhook;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::Context;

pub use lambda::service as lambda_service;
pub use limits::MAX_BODY;

pub fn router(context: Context) -> Router {
    let management = Router::new()
        .route("/api/v0/repositories", get(management::list))
        .route("/api/v0/repositories/{owner}/{repo}", post(management::track).delete(management::untrack))
        .route("/api/v0/github/login_url", get(management::login_url))
        .route_layer(axum::middleware::from_fn_with_state(context.clone(), management::authorize));
    Router::new()
        .route("/healthz", get(health::healthz))
        // The handler enforces the limit itself, Content-Length first.
        .route("/webhook", post(webhook::webhook).layer(DefaultBodyLimit::disable()))
        .merge(management)
        // Open: GitHub sends the person's browser here; the single-use state is the proof.
        .route("/api/v0/github/oauth_callback", get(management::oauth_callback))
        .with_state(context)
}
