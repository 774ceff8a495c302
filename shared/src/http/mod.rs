//! Ferry's HTTP surface, one router for every host: `lambda_http` serves it
//! in `ferry-webhook`, axum's server in `ferry serve`. Handlers translate
//! requests into use-case calls and results into responses, nothing more.

mod health;
mod kube_git_deploy;
mod lambda;
pub mod limits;
mod management;
mod tekton;
mod ui;
mod webhook;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::Context;

pub use lambda::service as lambda_service;
pub use limits::MAX_BODY;

/// Whether `given` is `token`, compared in time that does not depend on
/// where the two differ.
fn same_token(given: &str, token: &secrecy::SecretString) -> bool {
    use secrecy::ExposeSecret;
    use subtle::ConstantTimeEq;
    bool::from(given.as_bytes().ct_eq(token.expose_secret().as_bytes()))
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// `GET /metrics`: every metric in Prometheus's text format (`ferry serve`
/// installs its recorder; elsewhere there is none to render).
#[cfg(feature = "prometheus")]
async fn metrics() -> axum::response::Response {
    use axum::response::IntoResponse;
    match crate::metrics::prometheus::render() {
        Some(text) => ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        None => (http::StatusCode::NOT_FOUND, "no metrics recorder in this process").into_response(),
    }
}

pub fn router(context: Context) -> Router {
    let management = Router::new()
        .route("/api/v0/repositories", get(management::list))
        .route("/api/v0/repositories/{owner}/{repo}", post(management::track).delete(management::untrack))
        .route("/api/v0/github/login_url", get(management::login_url))
        // Kube Git Deploy's paths (`kube_git_deploy`).
        .route("/api/v0/github/repositories/tracked", get(kube_git_deploy::tracked))
        .route(
            "/api/v0/github/repositories/{owner}/{repo}",
            post(kube_git_deploy::track).delete(kube_git_deploy::untrack),
        );
    #[cfg(feature = "prometheus")]
    let management = management.route("/metrics", get(metrics));
    let management =
        management.route_layer(axum::middleware::from_fn_with_state(context.clone(), management::authorize));
    let ui = Router::new()
        .route("/ui", get(ui::page))
        .route("/ui/login", get(ui::login_form).post(ui::login).layer(DefaultBodyLimit::max(ui::LOGIN_BODY)))
        .route("/ui/logout", post(ui::logout))
        .route("/ui/ferry.css", get(ui::css))
        .route("/ui/icon.svg", get(ui::icon))
        .layer(axum::middleware::from_fn(ui::headers));
    Router::new()
        .route("/healthz", get(health::healthz))
        .merge(ui)
        // The handler enforces the limit itself, Content-Length first.
        .route("/webhook", post(webhook::webhook).layer(DefaultBodyLimit::disable()))
        // Open like `/webhook` and checked the same way, for one repository.
        .route(
            "/api/v0/github/repositories/{owner}/{repo}/web_hook",
            post(webhook::repository_webhook).layer(DefaultBodyLimit::disable()),
        )
        // Open to whoever holds FERRY_TEKTON_TOKEN (the handler checks it).
        .route("/tekton/events", post(tekton::events).layer(DefaultBodyLimit::disable()))
        .merge(management)
        // Open: GitHub sends the person's browser here; the single-use state is the proof.
        .route("/api/v0/github/oauth_callback", get(management::oauth_callback))
        .with_state(context)
}
