//! Ferry's HTTP surface, one router for every host: `lambda_http` serves it
//! in `ferry-webhook`, axum's server in `ferry serve`. Handlers translate
//! requests into use-case calls and results into responses, nothing more.

mod health;

use axum::Router;
use axum::routing::get;

use crate::Context;

pub fn router(context: Context) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .with_state(context)
}
