//! The management API: `/api/v0/repositories`, to list, track and untrack
//! repositories, and the GitHub login. On AWS it sits behind API Gateway's IAM
//! authorisation; elsewhere behind `Authorization: Bearer $FERRY_ADMIN_TOKEN`.
//! Without either, every call is refused with 401 and changes nothing.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::Context;
use crate::domain::{RepoMode, RepoName};
use crate::usecase::track::{self, TrackError};

/// Whether `request` may use the management API (see the module doc).
pub fn authorised(context: &Context, request: &Request) -> bool {
    match &context.config.admin_token {
        Some(token) => super::bearer(request.headers()).is_some_and(|given| super::same_token(given, token)),
        // No token set: only a request API Gateway authorised with IAM.
        None => matches!(
            request.request_context_ref(),
            Some(RequestContext::ApiGatewayV2(c)) if c.authorizer.as_ref().and_then(|a| a.iam.as_ref()).is_some()
        ),
    }
}

/// Lets a call through when it is authorised.
pub async fn authorize(State(context): State<Context>, request: Request, next: Next) -> Response {
    if !authorised(&context, &request) {
        return refuse(StatusCode::UNAUTHORIZED, "the management API needs Authorization: Bearer <FERRY_ADMIN_TOKEN>");
    }
    next.run(request).await
}

/// A refusal: `ok` false (as Kube Git Deploy's clients read it) and why.
pub(super) fn refuse(status: StatusCode, message: impl ToString) -> Response {
    (status, Json(json!({ "ok": false, "error": message.to_string() }))).into_response()
}

pub(super) fn failure(error: TrackError) -> Response {
    let status = match &error {
        TrackError::Invalid(_) => StatusCode::BAD_REQUEST,
        TrackError::NotTracked(_) => StatusCode::NOT_FOUND,
        TrackError::Forge(_) => StatusCode::BAD_GATEWAY,
        TrackError::Store(_) | TrackError::Secrets(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    refuse(status, error)
}

pub(super) fn repo_name(owner: &str, repo: &str) -> Result<RepoName, String> {
    RepoName::parse(format!("{owner}/{repo}")).map_err(|e| e.to_string())
}

/// `GET /api/v0/repositories`
pub async fn list(State(context): State<Context>) -> Response {
    match track::list(context.state.as_ref()).await {
        Ok(tracked) => Json(json!({ "repositories": tracked })).into_response(),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackBody {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    token: Option<SecretString>,
}

/// The secret a repository webhook Ferry creates is signed with: the first
/// configured one, which every delivery is verified against.
/// A secret store that cannot be read is the refusal to answer (503).
pub(super) async fn hook_secret(context: &Context) -> Result<Option<SecretString>, Response> {
    let secrets = context.webhook_secrets.get().await.map_err(|e| {
        tracing::error!(error = %e, "could not read the webhook secrets");
        failure(TrackError::Secrets(e))
    })?;
    Ok(secrets.first().map(|s| SecretString::from(s.expose().to_owned())))
}

/// A request body that may be empty (the default) or must be JSON of
/// `shape`: the body, or the problem to answer 400 with.
pub(super) fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8], shape: &str) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| format!("the body is not {shape}: {e}"))
}

/// A track request: `owner/repo` and its optional JSON body of `shape`, or
/// why it is refused (400).
pub(super) fn track_request<T: serde::de::DeserializeOwned + Default>(
    owner: &str,
    repo: &str,
    body: &[u8],
    shape: &str,
) -> Result<(RepoName, T), String> {
    Ok((repo_name(owner, repo)?, optional_json(body, shape)?))
}

/// `POST /api/v0/repositories/{owner}/{repo}`: `{"mode": "token", "token": …}`
/// or `{"mode": "app"}` (the default).
pub async fn track(
    State(context): State<Context>,
    Path((owner, repo)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    // No body is App mode; a body must be the JSON above.
    let (repo, body) = match track_request::<TrackBody>(&owner, &repo, &body, "{\"mode\", \"token\"}") {
        Ok(request) => request,
        Err(problem) => return refuse(StatusCode::BAD_REQUEST, problem),
    };
    let mode = match body.mode.as_deref() {
        None | Some("app") => RepoMode::App,
        Some("token") => RepoMode::Token,
        Some(other) => return refuse(StatusCode::BAD_REQUEST, format!("mode {other:?} is not app or token")),
    };
    let secret = match hook_secret(&context).await {
        Ok(secret) => secret,
        Err(refused) => return refused,
    };
    match track::track(track::Ports::of(&context, secret.as_ref()), &repo, mode, body.token).await {
        Ok(outcome) => {
            let status = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
            (status, Json(json!(outcome))).into_response()
        }
        Err(e) => failure(e),
    }
}

/// `DELETE /api/v0/repositories/{owner}/{repo}`
pub async fn untrack(State(context): State<Context>, Path((owner, repo)): Path<(String, String)>) -> Response {
    match untracked(&context, &owner, &repo).await {
        Ok(repo) => Json(json!({ "untracked": repo.to_string() })).into_response(),
        Err(refused) => refused,
    }
}

/// Untracks `owner/repo`: the repository, or the refusal to answer.
pub(super) async fn untracked(context: &Context, owner: &str, repo: &str) -> Result<RepoName, Response> {
    let repo = repo_name(owner, repo).map_err(|problem| refuse(StatusCode::BAD_REQUEST, problem))?;
    track::untrack(track::Ports::of(context, None), &repo).await.map_err(failure)?;
    Ok(repo)
}

/// `GET /api/v0/github/login_url`: where to send a person to log in with
/// GitHub, as `login_url` (Kube Git Deploy's name) and `url`.
pub async fn login_url(State(context): State<Context>) -> Response {
    match crate::usecase::oauth::login_url(crate::usecase::oauth::Ports::of(&context)).await {
        Ok(url) => Json(json!({ "ok": true, "login_url": url, "url": url })).into_response(),
        Err(e) => oauth_failure(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
}

/// `GET /api/v0/github/oauth_callback?code=…&state=…`: where GitHub sends
/// the person back. Open (a browser carries no admin token); the state is
/// the proof, and it works once.
pub async fn oauth_callback(State(context): State<Context>, Query(callback): Query<Callback>) -> Response {
    let ports = crate::usecase::oauth::Ports::of(&context);
    match crate::usecase::oauth::callback(ports, &callback.code, &callback.state).await {
        Ok(login) => Json(json!({ "ok": true, "login": login, "stored_as": format!("oauth/{login}") })).into_response(),
        Err(e) => oauth_failure(e),
    }
}

fn oauth_failure(error: crate::usecase::oauth::OauthError) -> Response {
    use crate::usecase::oauth::OauthError;
    let status = match &error {
        OauthError::BadState | OauthError::Refused(_) => StatusCode::BAD_REQUEST,
        OauthError::NotConfigured => StatusCode::NOT_IMPLEMENTED,
        OauthError::Unavailable(_) => StatusCode::BAD_GATEWAY,
        OauthError::Store(_) | OauthError::Secrets(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    refuse(status, error)
}
