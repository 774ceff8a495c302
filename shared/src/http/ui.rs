//! The status page (README.md, "Status page"): `GET /ui`, one
//! server-rendered page, no script. The management API's authorisation
//! (IAM on AWS, `Authorization: Bearer $FERRY_ADMIN_TOKEN` elsewhere), or a
//! cookie the login form sets from that token; open only where
//! [`Context::ui_open`] says so. Everything it shows was written by
//! strangers (repository, branch and unit names, reasons): the templates
//! escape every value, and the page's policy allows no script at all.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::Context;
use crate::domain::{Delivery, Preview, Repository, Run, RunStatus, Timestamp};
use crate::usecase::status::{self, Status};

/// The session cookie's name.
const COOKIE: &str = "ferry_ui";

/// How long a login lasts.
const SESSION_SECONDS: u32 = 12 * 3600;

/// The largest login form read.
pub const LOGIN_BODY: usize = 4096;

/// The page's own CSS: no build step, no framework.
const CSS: &str = include_str!("../../templates/ferry.css");

/// No script, no frames, nothing from elsewhere: an escaping mistake still runs nothing.
const POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /ui`: the page, or the login form for one not let in.
pub async fn page(State(context): State<Context>, request: Request) -> Response {
    if !allowed(&context, &request) {
        return Redirect::to("/ui/login").into_response();
    }
    let now = Timestamp::now();
    match status::status(context.state.as_ref(), now).await {
        Ok(status) => html(StatusCode::OK, &StatusPage::of(&context, &status, now)),
        Err(e) => {
            tracing::error!(error = %e, "the status page could not read the state store");
            html(StatusCode::SERVICE_UNAVAILABLE, &LoginPage { problem: Some(format!("{e}")), form: false })
        }
    }
}

/// `GET /ui/login`
pub async fn login_form(State(context): State<Context>) -> Response {
    html(StatusCode::OK, &LoginPage { problem: None, form: context.config.admin_token.is_some() })
}

/// `POST /ui/login` with `token=…`: the session cookie, or the form again.
pub async fn login(State(context): State<Context>, body: Bytes) -> Response {
    let Some(token) = &context.config.admin_token else {
        return html(StatusCode::UNAUTHORIZED, &LoginPage { problem: None, form: false });
    };
    let given = url::form_urlencoded::parse(&body).find(|(name, _)| name == "token").map(|(_, value)| value);
    if !given.is_some_and(|given| super::same_token(&given, token)) {
        tracing::warn!("a wrong token at the status page's login");
        let problem = Some("That is not the admin token.".to_owned());
        return html(StatusCode::UNAUTHORIZED, &LoginPage { problem, form: true });
    }
    let cookie = format!("{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}", session(token));
    let mut response = Redirect::to("/ui").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /ui/logout`: forgets the session cookie.
pub async fn logout() -> Response {
    let mut response = Redirect::to("/ui/login").into_response();
    let gone = HeaderValue::from_static("ferry_ui=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0");
    response.headers_mut().insert(header::SET_COOKIE, gone);
    response
}

/// `GET /ui/ferry.css`
pub async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

/// `GET /ui/icon.svg`: the tab's icon (else the browser asks for a favicon that is not there).
pub async fn icon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], ICON).into_response()
}

const ICON: &str = include_str!("../../templates/icon.svg");

/// Adds the page's policy and privacy headers to every `/ui` answer.
pub async fn headers(request: Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether `request` may see the page (see the module doc).
fn allowed(context: &Context, request: &Request) -> bool {
    context.ui_open || super::management::authorised(context, request) || has_session(context, request.headers())
}

/// The cookie's value for `token`: a MAC of it, so the cookie never holds
/// the token, and a new token ends every session.
fn session(token: &SecretString) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.expose_secret().as_bytes()).expect("HMAC takes any key");
    mac.update(b"ferry status page session");
    hex::encode(mac.finalize().into_bytes())
}

fn has_session(context: &Context, headers: &HeaderMap) -> bool {
    let Some(token) = &context.config.admin_token else { return false };
    let expected = SecretString::from(session(token));
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| name == COOKIE && super::same_token(value, &expected))
}

fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the status page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "the status page could not be rendered").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    problem: Option<String>,
    /// Whether there is a token to log in with.
    form: bool,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    now: String,
    tracked: usize,
    repositories: Vec<RepositoryRow>,
    deliveries: Vec<DeliveryRow>,
    runs: Vec<RunRow>,
    previews: Vec<PreviewRow>,
    reports: Vec<ReportRow>,
    /// Whether a logout button makes sense (a cookie may be set).
    session: bool,
}

struct RepositoryRow {
    name: String,
    mode: &'static str,
    last_event: String,
    last_error: String,
}

struct DeliveryRow {
    id: String,
    at: String,
    event: String,
    repo: String,
    outcome: &'static str,
    reason: String,
    /// The reason's start, for the one line a closed delivery shows.
    why: String,
    actions: Vec<String>,
    decisions: Vec<(String, bool, String)>,
}

struct RunRow {
    repo: String,
    unit: String,
    sha: String,
    status: &'static str,
    name: String,
    at: String,
    dashboard: Option<String>,
}

struct PreviewRow {
    repo: String,
    of: String,
    unit: String,
    url: Option<String>,
    health: &'static str,
}

struct ReportRow {
    name: String,
    at: String,
    summary: String,
    failures: Vec<String>,
    fields: String,
}

impl StatusPage {
    fn of(context: &Context, status: &Status, now: Timestamp) -> Self {
        Self {
            now: now.to_rfc3339(),
            tracked: status.tracked,
            repositories: status.repositories.iter().map(repository_row).collect(),
            deliveries: status.deliveries.iter().map(delivery_row).collect(),
            runs: status.runs.iter().map(|run| run_row(context, run)).collect(),
            previews: status.previews.iter().map(preview_row).collect(),
            reports: status
                .reports
                .iter()
                .map(|r| ReportRow {
                    name: r.name.clone(),
                    at: r.at.to_rfc3339(),
                    summary: r.summary.clone(),
                    failures: r.failures.clone(),
                    fields: r.fields.clone(),
                })
                .collect(),
            session: context.config.admin_token.is_some(),
        }
    }
}

fn time(at: Option<Timestamp>) -> String {
    at.map_or_else(String::new, Timestamp::to_rfc3339)
}

fn repository_row(repository: &Repository) -> RepositoryRow {
    use crate::domain::RepoMode;
    RepositoryRow {
        name: repository.name.to_string(),
        mode: match repository.mode {
            RepoMode::App => "app",
            RepoMode::Token => "token",
            RepoMode::Host => "host",
        },
        last_event: time(repository.last_event_at),
        last_error: repository.last_error.clone().unwrap_or_default(),
    }
}

fn delivery_row(delivery: &Delivery) -> DeliveryRow {
    DeliveryRow {
        id: delivery.id.to_string(),
        at: delivery.received_at.to_rfc3339(),
        event: delivery.event.clone(),
        repo: delivery.repo.as_ref().map(ToString::to_string).unwrap_or_default(),
        outcome: delivery.outcome.as_str(),
        reason: delivery.reason.clone().unwrap_or_default(),
        why: delivery.reason.as_deref().map(|reason| first_words(reason, WHY)).unwrap_or_default(),
        actions: delivery.actions.iter().map(ToString::to_string).collect(),
        decisions: delivery.decisions.iter().map(|d| (d.unit.to_string(), d.runs, d.what.clone())).collect(),
    }
}

fn run_row(context: &Context, run: &Run) -> RunRow {
    RunRow {
        repo: run.repo.to_string(),
        unit: run.unit.to_string(),
        sha: run.sha.short().to_owned(),
        status: match run.status {
            RunStatus::Pending if run.queued_at.is_some() => "queued",
            RunStatus::Pending => "running",
            RunStatus::Success => "success",
            RunStatus::Failure => "failure",
            RunStatus::Error => "error",
        },
        name: format!("{}/{}", run.namespace, run.name),
        at: time(run.launched_at),
        dashboard: context.operator.dashboard_link(&run.namespace, &run.name).filter(|url| is_web(url)),
    }
}

fn preview_row(preview: &Preview) -> PreviewRow {
    PreviewRow {
        repo: preview.repo.to_string(),
        of: preview.of.clone(),
        unit: preview.unit.to_string(),
        url: Some(preview.url.clone()).filter(|url| is_web(url)),
        health: match preview.reported.as_deref() {
            Some("success") => "healthy",
            Some(_) => "failing",
            None => "coming up",
        },
    }
}

/// How much of a reason a closed delivery shows.
const WHY: usize = 160;

/// `text`, cut to at most `bytes` bytes at a character boundary, `…` if cut.
fn first_words(text: &str, bytes: usize) -> String {
    if text.len() <= bytes {
        return text.to_owned();
    }
    format!("{}…", &text[..text.floor_char_boundary(bytes)])
}

/// Only a web address becomes a link: escaping keeps a `javascript:` URL
/// from breaking out of the attribute, not from running when clicked.
fn is_web(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_at_a_character_boundary() {
        assert_eq!(first_words("short", 10), "short");
        assert_eq!(first_words("ééééé", 5), "éé…");
        assert_eq!(first_words(&"a".repeat(200), WHY).len(), WHY + '…'.len_utf8());
    }

    #[test]
    fn only_web_addresses_become_links() {
        for (url, web) in [
            ("https://api-pr-1.preview.example.com", true),
            ("http://localhost:9097/#/namespaces/ci/pipelineruns/x", true),
            ("javascript:alert(1)", false),
            ("JAVASCRIPT:alert(1)", false),
            ("data:text/html,<script>", false),
            ("//evil.example", false),
        ] {
            assert_eq!(is_web(url), web, "{url}");
        }
    }

    #[test]
    fn a_session_is_a_mac_of_the_token_never_the_token() {
        let token = SecretString::from("s3cret-admin-token");
        let cookie = session(&token);
        assert_eq!(cookie.len(), 64);
        assert!(!cookie.contains("s3cret"));
        assert_eq!(cookie, session(&SecretString::from("s3cret-admin-token")));
        assert_ne!(cookie, session(&SecretString::from("another-token")));
    }

    #[test]
    fn what_strangers_wrote_is_escaped() {
        let row = DeliveryRow {
            id: "d-1".into(),
            at: "2026-12-03T00:00:00Z".into(),
            event: "push".into(),
            repo: "acme/api".into(),
            outcome: "processed",
            reason: "<script>alert(1)</script>: no changed path".into(),
            why: "<script>alert(3)</script>".into(),
            actions: vec!["pipelinerun.created ci/<img src=x onerror=alert(1)>".into()],
            decisions: vec![("docs".into(), false, "\"><script>alert(2)</script>".into())],
        };
        let page = StatusPage {
            now: String::new(),
            tracked: 0,
            repositories: Vec::new(),
            deliveries: vec![row],
            runs: Vec::new(),
            previews: Vec::new(),
            reports: Vec::new(),
            session: false,
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>") && !html.contains("<img"), "{html}");
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
    }
}
