//! The status page (README.md, "Status page"): `GET /ui`, one
//! server-rendered page, no script. The management API's authorisation
//! (IAM on AWS, `Authorization: Bearer $FERRY_ADMIN_TOKEN` elsewhere), or a
//! cookie the login form sets from that token; open only where
//! [`Context::ui_open`] says so, and then only to a request that names this
//! machine and came through no proxy. Everything it shows was written by
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

/// How long a login lasts: the cookie says when it was issued, under the MAC.
const SESSION_SECONDS: i64 = 12 * 3600;

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
pub async fn login(State(context): State<Context>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token) = &context.config.admin_token else {
        return html(StatusCode::UNAUTHORIZED, &LoginPage { problem: None, form: false });
    };
    let given = url::form_urlencoded::parse(&body).find(|(name, _)| name == "token").map(|(_, value)| value);
    if !given.is_some_and(|given| super::same_token(&given, token)) {
        tracing::warn!("a wrong token at the status page's login");
        let problem = Some("That is not the admin token.".to_owned());
        return html(StatusCode::UNAUTHORIZED, &LoginPage { problem, form: true });
    }
    let issued = Timestamp::now().unix();
    // Over plain HTTP (ferry serve) a browser drops a Secure cookie.
    let secure = if over_https(&headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={issued}.{}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}",
        session(token, issued)
    );
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
    let headers = request.headers();
    (context.ui_open && names_this_machine(headers) && !proxied(headers))
        || super::management::authorised(context, request)
        || has_session(context, headers, Timestamp::now().unix())
}

/// The request names this machine (`Host: localhost:3000`, `127.0.0.1`,
/// `[::1]`): a page elsewhere that a rebound name points here names itself.
fn names_this_machine(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A proxy or a tunnel on this machine says it forwarded the request: from
/// anywhere, then. (A proxy that says nothing cannot be told from a browser
/// here: README.md, "Status page".)
fn proxied(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with("x-forwarded-")
            || ["forwarded", "via", "x-real-ip", "cf-connecting-ip", "true-client-ip"].contains(&name)
    })
}

/// The request reached the first proxy over HTTPS, as it says (API
/// Gateway does): only then may the cookie be `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    let said = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_ascii_lowercase);
    said("x-forwarded-proto").is_some_and(|proto| proto.split(',').next().is_some_and(|p| p.trim() == "https"))
        || said("forwarded").is_some_and(|forwarded| forwarded.contains("proto=https"))
}

/// The cookie's MAC for `token` and the time it was `issued`: the cookie
/// never holds the token, a new token ends every session, and a copied
/// cookie ends when its time does.
fn session(token: &SecretString, issued: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.expose_secret().as_bytes()).expect("HMAC takes any key");
    mac.update(format!("ferry status page session issued {issued}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A session cookie for the admin token, issued less than
/// [`SESSION_SECONDS`] before `now`.
fn has_session(context: &Context, headers: &HeaderMap, now: i64) -> bool {
    let Some(token) = &context.config.admin_token else { return false };
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .any(|(_, value)| valid_session(token, value, now))
}

fn valid_session(token: &SecretString, value: &str, now: i64) -> bool {
    let Some((issued, mac)) = value.split_once('.') else { return false };
    let Ok(issued) = issued.parse::<i64>() else { return false };
    // A minute of clocks' disagreement either way; no overflow whatever the cookie says.
    let fresh = now.checked_sub(issued).is_some_and(|age| (-60..SESSION_SECONDS).contains(&age));
    fresh && super::same_token(mac, &SecretString::from(session(token, issued)))
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
    repositories: Vec<RepositoryRow>,
    /// The page shows only the first so many repositories, and has as many.
    more_repositories: bool,
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
            repositories: status.repositories.iter().map(repository_row).collect(),
            more_repositories: status.more_repositories,
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
        reason: delivery.reason.as_deref().map(|reason| first_words(reason, REASON)).unwrap_or_default(),
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

/// How much of a reason an open one shows: a hundred of them stay a page.
const REASON: usize = 2000;

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
    fn a_session_is_a_mac_of_the_token_and_its_time_never_the_token() {
        let token = SecretString::from("s3cret-admin-token");
        let issued = 1_800_000_000;
        let cookie = format!("{issued}.{}", session(&token, issued));
        assert!(!cookie.contains("s3cret"));
        let cases = [
            (cookie.clone(), issued, true),
            (cookie.clone(), issued + SESSION_SECONDS - 1, true),
            (cookie.clone(), issued + SESSION_SECONDS, false),
            (cookie.clone(), issued - 61, false),
            (format!("{}.{}", issued + 3600, session(&token, issued)), issued + 3600, false),
            (format!("{issued}.{}", session(&SecretString::from("another-token"), issued)), issued, false),
            (session(&token, issued), issued, false),
            ("1.".into(), 1, false),
            (format!("{}.{}", i64::MIN, session(&token, i64::MIN)), issued, false),
            (format!("{}.{}", i64::MAX, session(&token, i64::MAX)), issued, false),
            (format!("{}.{}", i64::MIN, session(&token, i64::MIN)), i64::MAX, false),
            (String::new(), issued, false),
        ];
        for (value, now, valid) in cases {
            assert_eq!(valid_session(&token, &value, now), valid, "{value} at {now}");
        }
    }

    #[test]
    fn only_a_request_naming_this_machine_through_no_proxy_is_local() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(
                    axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            headers
        };
        for (host, local) in [
            ("localhost:3000", true),
            ("LOCALHOST", true),
            ("127.0.0.1:3000", true),
            ("127.0.0.2", true),
            ("[::1]:3000", true),
            ("evil.example", false),
            ("localhost.evil.example:3000", false),
            ("127.0.0.1.nip.io", false),
            ("[::ffff:10.0.0.1]:3000", false),
            ("10.0.0.1:3000", false),
        ] {
            assert_eq!(names_this_machine(&headers(&[("host", host)])), local, "{host}");
        }
        assert!(!names_this_machine(&headers(&[])), "no Host");
        assert!(proxied(&headers(&[("host", "localhost"), ("x-forwarded-for", "203.0.113.9")])));
        assert!(proxied(&headers(&[("forwarded", "for=203.0.113.9")])));
        for name in ["via", "x-forwarded-proto", "x-forwarded-port", "cf-connecting-ip", "true-client-ip"] {
            assert!(proxied(&headers(&[("host", "localhost"), (name, "x")])), "{name}");
        }
        assert!(!proxied(&headers(&[("host", "localhost"), ("user-agent", "curl")])));
        assert!(over_https(&headers(&[("x-forwarded-proto", "https")])));
        assert!(over_https(&headers(&[("x-forwarded-proto", "HTTPS, http")])));
        assert!(over_https(&headers(&[("forwarded", "for=1.2.3.4;proto=https")])));
        assert!(!over_https(&headers(&[("x-forwarded-proto", "http")])));
        assert!(!over_https(&headers(&[("host", "ferry.example")])));
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
        let run = RunRow {
            repo: "acme/api".into(),
            unit: "api".into(),
            sha: "abc1234".into(),
            status: "running",
            name: "ci/run".into(),
            at: String::new(),
            dashboard: Some("https://tekton.example/\" onmouseover=\"alert(5)\"><script>alert(6)</script>".into()),
        };
        let preview = PreviewRow {
            repo: "acme/api".into(),
            of: "pr-1".into(),
            unit: "api".into(),
            url: Some("https://x.example/'><script>alert(7)</script>".into()),
            health: "coming up",
        };
        let page = StatusPage {
            now: String::new(),
            repositories: Vec::new(),
            more_repositories: false,
            deliveries: vec![DeliveryRow { id: "\"><script>alert(4)</script>".into(), ..row }],
            runs: vec![run],
            previews: vec![preview],
            reports: Vec::new(),
            session: false,
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>") && !html.contains("<img"), "{html}");
        assert!(!html.contains("\" onmouseover") && !html.contains("'><"), "attributes stay closed: {html}");
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
    }
}
