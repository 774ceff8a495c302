//! `ferry serve` as a newcomer runs it: no variables, a fresh directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ferry serve` in `dir` with no FERRY_ variable set, on a free port.
fn serve(dir: &Path) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("FERRY_") || name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferry serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the listening line");
    let address = line
        .trim()
        .strip_prefix("ferry listening on ")
        .unwrap_or_else(|| panic!("unexpected: {line:?}"));
    Server {
        child,
        url: address.to_owned(),
    }
}

async fn healthz(server: &Server) -> serde_json::Value {
    reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn serve_with_no_environment_answers_healthz_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let asked = Instant::now();
    let health = healthz(&server).await;
    assert!(asked.elapsed() < Duration::from_secs(1));
    assert_eq!(health["ok"], true);
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        dir.path().join(".ferry/state.sqlite3").is_file(),
        "the data dir holds the embedded state"
    );
    assert!(
        dir.path().join(".ferry/secrets.json").is_file(),
        "and the embedded secrets"
    );
}

#[tokio::test]
async fn serve_starts_again_on_what_it_left() {
    let dir = tempfile::tempdir().unwrap();
    drop(serve(dir.path()));
    let again = serve(dir.path());
    assert_eq!(healthz(&again).await["ok"], true);
}

#[test]
fn help_lists_every_subcommand() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for subcommand in ["serve", "poll", "rotate", "reconcile", "replay"] {
        assert!(
            help.contains(subcommand),
            "{subcommand} missing from:\n{help}"
        );
    }
}

#[test]
fn a_wrong_variable_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("FERRY_CLUSTER", "minikube")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FERRY_CLUSTER"), "{stderr}");
}
