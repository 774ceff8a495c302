//! Starting `ferry serve` and talking to it as a client would, for the
//! end-to-end tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ferry <args>` in `dir`, with no FERRY_ or AWS_ variable but these.
pub fn ferry_command(dir: &Path, args: &[&str], variables: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("FERRY_") || name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command.envs(variables.iter().copied());
    command
}

/// Starts `ferry serve` in `dir` on a free port, with these variables.
pub fn serve_with(dir: &Path, variables: &[(&str, &str)]) -> Server {
    serve_args(dir, &[], variables)
}

/// As [`serve_with`], on the operator config of the samples in `events/`.
pub fn serve_demo(dir: &Path, variables: &[(&str, &str)]) -> Server {
    std::fs::write(dir.join("ferry.toml"), demo_config()).unwrap();
    let mut all = vec![("FERRY_CONFIG", "ferry.toml")];
    all.extend_from_slice(variables);
    serve_with(dir, &all)
}

/// As [`serve_with`], with more arguments to `ferry serve`.
pub fn serve_args(dir: &Path, args: &[&str], variables: &[(&str, &str)]) -> Server {
    start_serve(dir, args, variables, Stdio::null())
}

/// As [`serve_with`], its log (stderr) going to `log`.
pub fn serve_logging(dir: &Path, variables: &[(&str, &str)], log: impl Into<Stdio>) -> Server {
    start_serve(dir, &[], variables, log)
}

fn start_serve(dir: &Path, args: &[&str], variables: &[(&str, &str)], log: impl Into<Stdio>) -> Server {
    let mut arguments = vec!["serve", "--listen", "127.0.0.1:0"];
    arguments.extend_from_slice(args);
    let mut command = ferry_command(dir, &arguments, variables);
    let mut child = command.stdout(Stdio::piped()).stderr(log).spawn().expect("start ferry serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read the listening line");
    let address = line.trim().strip_prefix("ferry listening on ").unwrap_or_else(|| panic!("unexpected: {line:?}"));
    Server { child, url: address.to_owned() }
}

/// An HTTP client on the crypto provider Ferry installs (reqwest brings none).
pub fn client() -> reqwest::Client {
    ferry::telemetry::install_crypto_provider();
    reqwest::Client::new()
}

/// A sample payload from `events/github/`.
pub fn sample(file: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/github").join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The operator config for the samples in `events/`.
pub fn demo_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/ferry.toml");
    std::fs::read_to_string(path).expect("events/ferry.toml")
}

/// Signs `payload` as event `event` with the server's secret and posts it
/// under `delivery` through `ferry replay`: what the server answered.
pub fn send(dir: &Path, server: &Server, event: &str, delivery: &str, payload: &serde_json::Value) -> String {
    send_text(dir, server, event, delivery, &payload.to_string())
}

/// As [`send`], with the body as it is.
pub fn send_text(dir: &Path, server: &Server, event: &str, delivery: &str, body: &str) -> String {
    send_to(dir, &server.url, event, delivery, body)
}

/// As [`send_text`], to the server at `base`.
pub fn send_to(dir: &Path, base: &str, event: &str, delivery: &str, body: &str) -> String {
    send_with(dir, base, event, delivery, body, &[])
}

/// As [`send_to`], with `ferry replay` run with these variables (such as
/// the `FERRY_WEBHOOK_SECRET` the server was given).
pub fn send_with(
    dir: &Path,
    base: &str,
    event: &str,
    delivery: &str,
    body: &str,
    variables: &[(&str, &str)],
) -> String {
    let file: PathBuf = dir.join(format!("payload-{delivery}.json"));
    std::fs::write(&file, body).unwrap();
    let url = format!("{base}/webhook");
    let output = ferry_command(
        dir,
        &["replay", file.to_str().unwrap(), "--event", event, "--delivery", delivery, "--url", &url],
        variables,
    )
    .output()
    .expect("run ferry replay");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// A comment `body` by `author` (`association`) on the sample pull request #42.
pub fn comment(id: u64, body: &str, author: &str, association: &str) -> serde_json::Value {
    let base = sample("pull_request.opened.json");
    serde_json::json!({
        "action": "created",
        "issue": {"number": 42, "pull_request": {"url": "https://api.github.com/repos/acme/api/pulls/42"}},
        "comment": {"id": id, "body": body, "author_association": association, "user": {"login": author},
                    "created_at": "2026-11-20T12:00:00Z"},
        "repository": base["repository"], "installation": base["installation"], "sender": {"login": author}
    })
}

/// A delivery of `event` to `server`'s `/webhook` under a signature no
/// secret made: what the server answered.
pub async fn forged(server: &Server, event: &str) -> reqwest::Response {
    client()
        .post(format!("{}/webhook", server.url))
        .header("x-github-event", event)
        .header("x-github-delivery", "forged-1")
        .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))
        .body("{}")
        .send()
        .await
        .unwrap()
}
