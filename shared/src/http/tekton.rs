//! `POST /tekton/events`: Tekton's CloudEvents sink (README.md, "Results in
//! seconds"). Closed (404) without a token (`FERRY_TEKTON_TOKEN`, or the
//! secret store's `tekton-token`); with one, the sink gives it as `?token=`
//! (a Tekton sink is a bare URL) or a bearer header. Binary-mode CloudEvents: the type in `ce-type`, the run in the
//! body.

use std::time::Instant;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::Context;
use crate::domain::tekton::{Hint, hint};
use crate::usecase::{reconcile, tekton};

/// Tekton's events carry the whole run object: far below this.
pub const MAX_EVENT: usize = 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct Params {
    #[serde(default)]
    token: Option<String>,
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

pub async fn events(State(context): State<Context>, Query(params): Query<Params>, request: Request) -> Response {
    let token = match context.tekton_token().await {
        Ok(token) => token,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the Tekton token");
            return answer(StatusCode::SERVICE_UNAVAILABLE, json!({ "ok": false, "error": "cannot read the token" }));
        }
    };
    let Some(token) = &token else {
        let error = "closed: neither FERRY_TEKTON_TOKEN nor the secret store's tekton-token is set";
        return answer(StatusCode::NOT_FOUND, json!({ "ok": false, "error": error }));
    };
    let given = params.token.as_deref().or_else(|| super::bearer(request.headers()));
    if !given.is_some_and(|given| super::same_token(given, token)) {
        return answer(StatusCode::UNAUTHORIZED, json!({ "ok": false, "error": "give FERRY_TEKTON_TOKEN as ?token=" }));
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(Body::new(body), MAX_EVENT).await else {
        let error = format!("an event is at most {MAX_EVENT} bytes");
        return answer(StatusCode::PAYLOAD_TOO_LARGE, json!({ "ok": false, "error": error }));
    };
    let ce_type = parts.headers.get("ce-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let run = match hint(ce_type, &body) {
        Ok(Hint::Ended(run)) => run,
        Ok(Hint::NotAnEnd(reason)) => {
            crate::metrics::tekton_event("not_an_end");
            return answer(StatusCode::ACCEPTED, json!({ "ok": true, "reason": reason }));
        }
        Err(problem) => {
            crate::metrics::tekton_event("refused");
            return answer(StatusCode::BAD_REQUEST, json!({ "ok": false, "error": problem }));
        }
    };
    if !context.tekton_reads.allow(&run, Instant::now()) {
        crate::metrics::tekton_event("refused");
        let reason = "this run was read less than a second ago";
        return answer(StatusCode::TOO_MANY_REQUESTS, json!({ "ok": false, "error": reason }));
    }
    crate::metrics::tekton_event("ended");
    match tekton::run_ended(reconcile::Ports::of(&context), &run).await {
        Ok(done) => {
            let status = if done.reported { StatusCode::OK } else { StatusCode::ACCEPTED };
            answer(status, json!({ "ok": true, "reported": done.reported, "reason": done.reason }))
        }
        Err(error) => {
            tracing::warn!(%error, "could not act on Tekton's event; the reconciler reports the run");
            answer(StatusCode::SERVICE_UNAVAILABLE, json!({ "ok": false, "error": error.to_string() }))
        }
    }
}
