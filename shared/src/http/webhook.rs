use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::limits::{MAX_BODY, Unread, cause, declared_length};
use crate::Context;
use crate::domain::{Outcome, RepoName};
use crate::usecase::intake::{self, BUDGET, Inbound, Ports};
use crate::usecase::launch::LaunchPorts;

/// `POST /webhook`: the body, read only up to the limit, to the intake use case.
pub async fn webhook(State(context): State<Context>, request: Request) -> Response {
    deliver(&context, request, None).await
}

/// `POST /api/v0/github/repositories/{owner}/{repo}/web_hook` (Kube Git
/// Deploy's per-repository webhook): checked exactly as `/webhook` is, and
/// a delivery about any other repository is refused before it is recorded.
pub async fn repository_webhook(
    State(context): State<Context>,
    Path((owner, repo)): Path<(String, String)>,
    request: Request,
) -> Response {
    match RepoName::parse(format!("{owner}/{repo}")) {
        Ok(repo) => deliver(&context, request, Some(&repo)).await,
        Err(problem) => rejected(StatusCode::BAD_REQUEST, problem.to_string()),
    }
}

async fn deliver(context: &Context, request: Request, repository: Option<&RepoName>) -> Response {
    let started = std::time::Instant::now();
    let refused = |response: Response| {
        crate::metrics::delivery(None, 400, Outcome::Rejected, &[], started.elapsed());
        response
    };
    let declared = declared_length(request.headers());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return refused(too_large());
    }
    let (parts, body) = request.into_parts();
    let body = match to_bytes(Body::new(body), MAX_BODY).await {
        Ok(body) => body,
        Err(error) => return refused(unreadable(&error)),
    };
    let header = |name: &str| parts.headers.get(name).map(|v| v.as_bytes());
    let inbound = Inbound {
        event: header("x-github-event").and_then(|v| std::str::from_utf8(v).ok()),
        delivery: header("x-github-delivery").and_then(|v| std::str::from_utf8(v).ok()),
        signature: header("x-hub-signature-256"),
        body: &body,
        repository,
    };
    // What needs no secret is refused before the secrets are read: a request
    // with no signature never makes Ferry ask the secret store.
    if let Err(refused) = crate::domain::signature::claimed_digest(inbound.signature) {
        tracing::warn!(reason = %refused, "refused a delivery");
        let reply = intake::Reply::rejected(401, refused);
        crate::metrics::delivery(None, 401, Outcome::Rejected, &[], started.elapsed());
        return (StatusCode::UNAUTHORIZED, Json(reply.body)).into_response();
    }
    let reply = match context.webhook_secrets.get().await {
        Ok(secrets) => {
            intake::intake(Ports { secrets: &secrets, launch: LaunchPorts::of(context) }, inbound, BUDGET).await
        }
        Err(error) => {
            tracing::error!(%error, "could not read the webhook secrets");
            intake::Reply::rejected(503, "the webhook secrets could not be read; redeliver it")
        }
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    crate::metrics::delivery(inbound.event, reply.status, reply.body.outcome, &reply.body.actions, started.elapsed());
    (status, Json(reply.body)).into_response()
}

/// Why the body could not be read, as the client should hear it.
fn unreadable(error: &axum::Error) -> Response {
    if let Some(unread) = cause::<Unread>(error) {
        return (*unread).into_response();
    }
    if cause::<http_body_util::LengthLimitError>(error).is_some() {
        return too_large();
    }
    rejected(StatusCode::BAD_REQUEST, format!("the body could not be read: {error}"))
}

fn too_large() -> Response {
    rejected(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {} MiB", MAX_BODY / 1024 / 1024))
}

fn rejected(status: StatusCode, reason: String) -> Response {
    (status, Json(json!({ "outcome": "rejected", "reason": reason }))).into_response()
}
