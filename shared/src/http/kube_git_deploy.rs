//! Kube Git Deploy's routes, so its users' scripts work unchanged:
//! `/api/v0/github/repositories/…` to list, track and untrack, answering
//! `{"ok": …}`. Tracking here is the seed's flow: no token in the request,
//! the token of a GitHub login stored by the OAuth callback instead. The
//! login URL, the callback and the per-repository webhook are Ferry's own
//! handlers (`management`, `webhook`), on the seed's paths.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::management::{failure, refuse, track_request};
use crate::Context;
use crate::usecase::track;

/// `GET /api/v0/github/repositories/tracked`: every tracked repository as
/// `{"owner": …, "name": …}`, sorted by full name.
pub async fn tracked(State(context): State<Context>) -> Response {
    match track::list(context.state.as_ref()).await {
        Ok(tracked) => {
            let repositories: Vec<_> = tracked
                .iter()
                .filter_map(|t| t.repository.split_once('/'))
                .map(|(owner, name)| json!({ "owner": owner, "name": name }))
                .collect();
            Json(json!({ "ok": true, "repositories": repositories })).into_response()
        }
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackBody {
    /// Whose stored token to use; needed only when several are stored.
    #[serde(default)]
    login: Option<String>,
}

/// `POST /api/v0/github/repositories/{user}/{repo}`, no body or
/// `{"login": …}`: creates the repository's webhook with the login's token
/// and tracks it in token mode.
pub async fn track(
    State(context): State<Context>,
    Path((owner, repo)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let (repo, body) = match track_request::<TrackBody>(&owner, &repo, &body, "{\"login\": …}") {
        Ok(request) => request,
        Err(problem) => return refuse(StatusCode::BAD_REQUEST, problem),
    };
    let secret = match super::management::hook_secret(&context).await {
        Ok(secret) => secret,
        Err(refused) => return refused,
    };
    let ports = track::Ports::of(&context, secret.as_ref());
    match track::track_with_login(ports, &repo, body.login.as_deref()).await {
        Ok(_) => Json(json!({ "ok": true })).into_response(),
        Err(e) => failure(e),
    }
}

/// `DELETE /api/v0/github/repositories/{user}/{repo}`: as Ferry's own untrack.
pub async fn untrack(State(context): State<Context>, Path((owner, repo)): Path<(String, String)>) -> Response {
    match super::management::untracked(&context, &owner, &repo).await {
        Ok(_) => Json(json!({ "ok": true })).into_response(),
        Err(refused) => refused,
    }
}
