use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Context;
use crate::usecase::intake::{self, BUDGET, Inbound, Ports};

/// GitHub's own limit for a delivery: larger bodies are refused unread.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// `POST /webhook`: the body, read only up to the limit, to the intake use case.
pub async fn webhook(State(context): State<Context>, request: Request) -> Response {
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(Body::new(body), MAX_BODY).await else {
        return too_large();
    };
    let header = |name: &str| parts.headers.get(name).map(|v| v.as_bytes());
    let inbound = Inbound {
        event: header("x-github-event").and_then(|v| std::str::from_utf8(v).ok()),
        delivery: header("x-github-delivery").and_then(|v| std::str::from_utf8(v).ok()),
        signature: header("x-hub-signature-256"),
        body: &body,
    };
    let ports = Ports::of(&context);
    let reply = intake::intake(ports, inbound, BUDGET).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(reply.body)).into_response()
}

fn too_large() -> Response {
    let reason = format!("the body is over {} MiB", MAX_BODY / 1024 / 1024);
    (StatusCode::PAYLOAD_TOO_LARGE, Json(json!({ "outcome": "rejected", "reason": reason }))).into_response()
}
