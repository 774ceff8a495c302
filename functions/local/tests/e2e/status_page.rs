//! `GET /ui` on `ferry serve`: private as the management API is (or open on
//! loopback with no token), and, in a real browser, the answer to "why
//! didn't my push run?" in one click, with what strangers wrote as text.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};

use crate::common::{Server, ferry_command, sample, send, serve_demo};

const TOKEN: &str = "status-page-admin-token";

/// A client that shows redirects instead of following them.
fn browser_like() -> reqwest::Client {
    ferry::telemetry::install_crypto_provider();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn the_page_needs_the_admin_token_or_the_cookie_its_login_form_sets() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_demo(dir.path(), &[("FERRY_ADMIN_TOKEN", TOKEN)]);
    let client = browser_like();
    let page = format!("{}/ui", server.url);

    let anonymous = client.get(&page).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers()[LOCATION], "/ui/login");
    let bearer = client.get(&page).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let policy = bearer.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(policy.starts_with("default-src 'none'") && !policy.contains("script"), "{policy}");
    assert!(bearer.text().await.unwrap().contains("Last deliveries"));

    let login = format!("{}/ui/login", server.url);
    let form = client.get(&login).send().await.unwrap().text().await.unwrap();
    assert!(form.contains("name=\"token\"") && form.contains("type=\"password\""), "{form}");
    let wrong = client.post(&login).body("token=guess").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());

    let right = client.post(&login).body(format!("token={TOKEN}")).send().await.unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()[LOCATION], "/ui");
    let cookie = right.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains(TOKEN), "the cookie never holds the token: {cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP on loopback keeps it: {cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = client.get(&page).header(COOKIE, &session).send().await.unwrap();
    assert_eq!(with_cookie.status(), StatusCode::OK);
    let made_up = client.get(&page).header(COOKIE, "ferry_ui=00ff").send().await.unwrap();
    assert_eq!(made_up.status(), StatusCode::SEE_OTHER);

    let gone = client.post(format!("{}/ui/logout", server.url)).send().await.unwrap();
    assert!(gone.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn without_a_token_the_page_is_open_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let client = browser_like();
    let loopback = serve_demo(dir.path(), &[]);
    let open = client.get(format!("{}/ui", loopback.url)).send().await.unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    // A page elsewhere whose name was rebound to 127.0.0.1, and a tunnel or
    // proxy on this machine: not this machine asking.
    let rebound = client.get(format!("{}/ui", loopback.url)).header("host", "evil.example").send().await.unwrap();
    assert_eq!(rebound.status(), StatusCode::SEE_OTHER);
    let tunnelled =
        client.get(format!("{}/ui", loopback.url)).header("x-forwarded-for", "203.0.113.9").send().await.unwrap();
    assert_eq!(tunnelled.status(), StatusCode::SEE_OTHER);
    drop(loopback);

    let everywhere = serve_on(dir.path(), "0.0.0.0:0");
    let port = everywhere.url.rsplit(':').next().unwrap();
    let closed = client.get(format!("http://127.0.0.1:{port}/ui")).send().await.unwrap();
    assert_eq!(closed.status(), StatusCode::SEE_OTHER, "bound beyond loopback, no token: closed");
    let login = client.get(format!("http://127.0.0.1:{port}/ui/login")).send().await.unwrap();
    assert!(login.text().await.unwrap().contains("FERRY_ADMIN_TOKEN"));
}

/// `ferry serve` on `listen`, with no token.
fn serve_on(dir: &Path, listen: &str) -> Server {
    let mut command = ferry_command(dir, &["serve", "--listen", listen], &[]);
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start ferry serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read the listening line");
    let address = line.trim().strip_prefix("ferry listening on ").unwrap_or_else(|| panic!("unexpected: {line:?}"));
    Server { child, url: address.to_owned() }
}

/// Where the browser test leaves its screenshots for a person to look at.
fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots")
}

#[tokio::test]
async fn in_chromium_one_click_shows_why_a_unit_did_not_run_and_a_hostile_branch_stays_text() {
    let python = std::env::var("FERRY_BROWSER_PYTHON")
        .expect("FERRY_BROWSER_PYTHON names a Python with Playwright (scripts/test sets it, and installs Chromium)");
    let dir = tempfile::tempdir().unwrap();
    let server = serve_demo(dir.path(), &[("FERRY_ADMIN_TOKEN", TOKEN)]);
    send(dir.path(), &server, "push", "ui-push-1", &sample("push.json"));
    send(dir.path(), &server, "pull_request", "ui-pr-1", &sample("pull_request.opened.json"));
    let mut hostile = sample("push.json");
    hostile["ref"] = "refs/heads/<script>document.title='pwned';alert(1)</script>".into();
    hostile["after"] = "1111111111111111111111111111111111111111".into();
    let answer = send(dir.path(), &server, "push", "ui-hostile-1", &hostile);
    assert!(answer.contains("<script>"), "the hostile branch reaches the reason: {answer}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/status_page.py");
    let shots = screenshots();
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args([server.url.as_str(), TOKEN, shots.to_str().unwrap()])
        .output()
        .await
        .expect("run the browser");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let found: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let texts = |name: &str| -> Vec<String> {
        found[name].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect()
    };

    assert!(found["login_url"].as_str().unwrap().ends_with("/ui/login"), "{found}");
    assert_eq!(found["title"], "Ferry · status");
    assert_eq!(found["push_open"], true, "one click opens the delivery: {found}");
    assert!(texts("push_decisions").contains(&"docs\tskipped: no changed path matches docs/**".to_owned()), "{found}");
    assert!(texts("push_decisions").contains(&"api\trun api".to_owned()), "{found}");
    assert!(texts("push_actions").iter().any(|a| a.starts_with("pipelinerun.created ci/ferry-api-9c2a4b7-push-")));
    let runs = texts("runs");
    assert!(runs.iter().any(|r| r.starts_with("running") && r.contains("ferry-api-9c2a4b7-push-")), "{runs:?}");
    assert!(runs.iter().any(|r| r.contains("-pr42-")), "the pull request's run too: {runs:?}");
    assert!(texts("previews").iter().any(|p| p.contains("https://api-pr-42.preview.example.com")), "{found}");

    let hostile = texts("hostile_text");
    assert!(hostile.iter().any(|t| t.contains("<script>document.title='pwned';alert(1)</script>")), "{found}");
    assert_eq!(found["script_elements"], 0, "no script element came from a branch name");
    assert_eq!(found["dialogs"], serde_json::json!([]), "nothing ran: {found}");
    assert_eq!(found["title_after"], "Ferry · status", "nothing ran: {found}");
    assert_eq!(found["console_errors"], serde_json::json!([]), "{found}");
    assert_eq!(found["stylesheet_applied"], "flex", "its own CSS is loaded under its policy");
    assert_eq!(found["phone_overflow"], false, "readable on a phone: nothing wider than the screen");
    for shot in ["status-page.png", "status-page-phone.png"] {
        let size = std::fs::metadata(shots.join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{shot}: {size} bytes");
    }
}
