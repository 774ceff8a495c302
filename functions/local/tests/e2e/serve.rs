//! `ferry serve` as a newcomer runs it: no variables, a fresh directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Server, client, ferry_command, forged, serve_demo, serve_with};

/// Starts `ferry serve` in `dir` with no FERRY_ variable set, on a free port.
fn serve(dir: &Path) -> Server {
    serve_with(dir, &[])
}

async fn healthz(server: &Server) -> serde_json::Value {
    client().get(format!("{}/healthz", server.url)).send().await.unwrap().json().await.unwrap()
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
    assert!(dir.path().join(".ferry/state.sqlite3").is_file(), "the data dir holds the embedded state");
    assert!(dir.path().join(".ferry/secrets.json").is_file(), "and the embedded secrets");
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
    let output = Command::new(env!("CARGO_BIN_EXE_ferry")).arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for subcommand in
        ["serve", "demo", "app-manifest", "repos", "track", "untrack", "poll", "rotate", "reconcile", "replay"]
    {
        assert!(help.contains(subcommand), "{subcommand} missing from:\n{help}");
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

fn replay(dir: &Path, server: &Server, file: &str, delivery: &str) -> String {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events").join(file);
    let url = format!("{}/webhook", server.url);
    let output = ferry(dir, &["replay", sample.to_str().unwrap(), "--delivery", delivery, "--url", &url], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// `Server`'s drop is a SIGKILL: each restart here follows a crash.
#[tokio::test]
async fn replay_signs_with_the_generated_secret_and_a_restart_after_a_crash_remembers_the_delivery() {
    for durability in ["machine", "process"] {
        let dir = tempfile::tempdir().unwrap();
        let variables = [("FERRY_EMBEDDED_DURABILITY", durability)];
        let server = serve_with(dir.path(), &variables);
        let first = replay(dir.path(), &server, "github/ping.json", "replayed-1");
        assert!(first.contains("\"outcome\": \"processed\""), "{durability}: {first}");
        let wrapped = replay(dir.path(), &server, "apigw-v2/push.json", "replayed-2");
        assert!(wrapped.contains("push replayed-2: 200"), "{durability}: {wrapped}");
        drop(server);

        let restarted = serve_with(dir.path(), &variables);
        let again = replay(dir.path(), &restarted, "github/ping.json", "replayed-1");
        assert!(again.contains("\"outcome\": \"duplicate\""), "{durability}: the crash lost the delivery: {again}");
    }
}

#[tokio::test]
async fn a_forged_delivery_to_serve_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let response = forged(&server, "ping").await;
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn a_body_over_25_mib_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let client = client();
    let declared = client
        .post(format!("{}/webhook", server.url))
        .header("content-length", (26 * 1024 * 1024).to_string())
        .body(vec![b' '; 16])
        .send()
        .await;
    // The server refuses on the declared length; it may close before reading the rest.
    if let Ok(response) = declared {
        assert_eq!(response.status().as_u16(), 413);
    }
    let chunks = futures_stream(26);
    let streamed =
        client.post(format!("{}/webhook", server.url)).body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    assert_eq!(streamed.status().as_u16(), 413, "no Content-Length: the capped read refuses it");
}

/// `mebibytes` MiB of spaces in 1 MiB chunks, with no Content-Length.
fn futures_stream(
    mebibytes: usize,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + 'static {
    futures::stream::iter((0..mebibytes).map(|_| Ok(vec![b' '; 1024 * 1024])))
}

fn yaml_files(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

#[tokio::test]
async fn serve_launches_the_sample_push_on_the_dry_run_cluster_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_demo(dir.path(), &[]);
    let reply = replay(dir.path(), &server, "github/push.json", "e2e-push-1");
    assert!(reply.contains("pipelinerun.created"), "{reply}");
    assert!(reply.contains("docs: no changed path matches docs/**"), "the reply says why docs did not run: {reply}");
    let runs = dir.path().join(".ferry/cluster/ci/pipelinerun");
    let written = yaml_files(&runs);
    assert_eq!(written.len(), 1, "{written:?}");
    let run = std::fs::read_to_string(runs.join(&written[0])).unwrap();
    assert!(run.contains("name: build-and-deploy"), "{run}");
    assert!(run.contains("value: 9c2a4b7e1d3f5a6c8e0b2d4f6a8c0e2b4d6f8a0c"), "{run}");
    let status =
        dir.path().join(".ferry/forge/acme/api/statuses/9c2a4b7e1d3f5a6c8e0b2d4f6a8c0e2b4d6f8a0c/ferry_api.json");
    let status = std::fs::read_to_string(status).expect("the pending status Ferry would post");
    assert!(
        status.contains("\"pending\"") && status.contains("https://tekton.example.com/#/namespaces/ci/pipelineruns/"),
        "{status}"
    );

    // Replayed under a new id: a duplicate, nothing new.
    let again = replay(dir.path(), &server, "github/push.json", "e2e-push-2");
    assert!(again.contains("\"duplicate\""), "{again}");
    assert_eq!(yaml_files(&runs).len(), 1);
}

#[tokio::test]
async fn serve_opens_and_removes_a_preview_for_the_sample_pull_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_demo(dir.path(), &[]);
    let opened = replay(dir.path(), &server, "github/pull_request.opened.json", "e2e-pr-1");
    assert!(opened.contains("preview.applied"), "{opened}");
    let cluster = dir.path().join(".ferry/cluster");
    let previews: Vec<String> = yaml_files(&cluster).into_iter().filter(|n| n.starts_with("preview-")).collect();
    assert_eq!(previews.len(), 1, "{previews:?}");
    let closed = replay(dir.path(), &server, "github/pull_request.closed.json", "e2e-pr-2");
    assert!(closed.contains("preview.removed"), "{closed}");
    assert!(yaml_files(&cluster).iter().all(|n| !n.starts_with("preview-")), "the preview is gone");
}

/// `ferry demo` with no FERRY_ or AWS_ variable, in `dir`: its stdout up to
/// the line saying it keeps serving (it is then stopped).
fn demo(dir: &Path, data_dir: &str) -> Result<String, String> {
    let mut command = ferry_command(dir, &["demo", "--listen", "127.0.0.1:0", "--data-dir", data_dir], &[]);
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start ferry demo");
    let mut out = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            let status = child.wait().unwrap();
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return Err(format!("{status}: {err}"));
        }
        out.push_str(&line);
        if line.starts_with("Ctrl-C stops it.") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(out)
}

#[test]
fn demo_replays_the_samples_and_shows_what_ferry_did() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(dir.path(), "tour").unwrap();
    for expected in [
        "1. A push to main",
        "pipelinerun.created ci/ferry-api-",
        "wrote   cluster/ci/pipelinerun/ferry-api-",
        "(status ferry/api: pending",
        "why not more: docs: no changed path matches docs/**",
        "2. A member opens pull request #42",
        "preview.applied preview-api-api-pr-42-",
        "(deployment preview/api/pr-42 → https://api-pr-42.preview.example.com)",
        "(comment: **Preview `api`** is live at https://api-pr-42.preview.example.com)",
        "3. Pull request #42 is merged and closed",
        "removed cluster/preview-api-api-pr-42-",
        "4. Release v1.4.0 is published",
        "ferry-api-9c2a4b7-release-",
        "replay events/github/push.json",
        "/ui. In another terminal",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
    assert!(!out.contains("failed"), "{out}");
    let runs = std::fs::read_dir(dir.path().join("tour/cluster/ci/pipelinerun")).unwrap().count();
    assert_eq!(runs, 3, "push, pull request and release each wrote one run");
    // A second demo starts from scratch in its own directory.
    let again = demo(dir.path(), "tour").unwrap();
    assert_eq!(again.matches("pipelinerun.created").count(), 3, "{again}");
}

#[test]
fn demo_never_empties_a_directory_it_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mine")).unwrap();
    std::fs::write(dir.path().join("mine/notes.txt"), "keep me").unwrap();
    let refused = demo(dir.path(), "mine").unwrap_err();
    assert!(refused.contains("was not made by `ferry demo`"), "{refused}");
    assert_eq!(std::fs::read_to_string(dir.path().join("mine/notes.txt")).unwrap(), "keep me");
}

#[test]
fn app_manifest_prints_the_app_github_should_create() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["app-manifest", "--url", "https://ferry.example.com", "--name", "Ferry (acme)"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(manifest["name"], "Ferry (acme)");
    assert_eq!(manifest["hook_attributes"]["url"], "https://ferry.example.com/webhook");
    assert_eq!(manifest["default_permissions"]["statuses"], "write");
    let refused = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["app-manifest", "--url", "http://ferry.example.com"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("https://"));
}

#[test]
fn app_manifest_sends_webhooks_exactly_to_a_tunnel_given_as_the_webhook_url() {
    let manifest = |args: &[&str]| -> serde_json::Value {
        let output = Command::new(env!("CARGO_BIN_EXE_ferry")).arg("app-manifest").args(args).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let tunnel = manifest(&["--webhook-url", "https://smee.io/AbC123"]);
    assert_eq!(tunnel["hook_attributes"]["url"], "https://smee.io/AbC123");
    assert_eq!(tunnel["url"], "https://smee.io", "the homepage is public: never the channel itself");
    let both = manifest(&["--url", "https://ferry.example.com", "--webhook-url", "https://smee.io/AbC123"]);
    assert_eq!(both["hook_attributes"]["url"], "https://smee.io/AbC123");
    assert_eq!(both["url"], "https://ferry.example.com");
    let neither = Command::new(env!("CARGO_BIN_EXE_ferry")).arg("app-manifest").output().unwrap();
    assert!(!neither.status.success());
}

/// `ferry <args>` run to its end.
fn ferry(dir: &Path, args: &[&str], variables: &[(&str, &str)]) -> std::process::Output {
    ferry_command(dir, args, variables).output().expect("run ferry")
}

#[tokio::test]
async fn repositories_are_tracked_listed_and_untracked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let tracked = ferry(dir.path(), &["track", "acme/web"], &[]);
    assert!(tracked.status.success(), "{}", String::from_utf8_lossy(&tracked.stderr));
    let listed = String::from_utf8(ferry(dir.path(), &["repos"], &[]).stdout).unwrap();
    assert!(listed.contains("\"acme/web\""), "{listed}");
    let refused = ferry(dir.path(), &["track", "not a repo"], &[]);
    assert!(!refused.status.success());
    // The same through a running server, with the admin token.
    let server = serve_with(dir.path(), &[("FERRY_ADMIN_TOKEN", "cli-admin")]);
    let remote = ferry(dir.path(), &["repos", "--url", &server.url], &[("FERRY_ADMIN_TOKEN", "cli-admin")]);
    assert!(
        String::from_utf8_lossy(&remote.stdout).contains("\"acme/web\""),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    let wrong = ferry(dir.path(), &["repos", "--url", &server.url], &[("FERRY_ADMIN_TOKEN", "wrong")]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("401"), "{}", String::from_utf8_lossy(&wrong.stderr));
    let untracked =
        ferry(dir.path(), &["untrack", "acme/web", "--url", &server.url], &[("FERRY_ADMIN_TOKEN", "cli-admin")]);
    assert!(untracked.status.success(), "{}", String::from_utf8_lossy(&untracked.stderr));
    let listed = String::from_utf8(
        ferry(dir.path(), &["repos", "--url", &server.url], &[("FERRY_ADMIN_TOKEN", "cli-admin")]).stdout,
    )
    .unwrap();
    assert!(!listed.contains("acme/web"), "{listed}");
}

#[tokio::test]
async fn a_missing_kubeconfig_never_stops_the_webhook_and_the_deep_health_check_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let server = serve_with(
        dir.path(),
        &[
            ("FERRY_CLUSTER", "kube"),
            ("FERRY_ADMIN_TOKEN", "health-admin"),
            ("KUBECONFIG", missing.to_str().unwrap()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    assert_eq!(healthz(&server).await["ok"], true, "it started without a cluster");
    let deep: serde_json::Value = client()
        .get(format!("{}/healthz?deep=1", server.url))
        .bearer_auth("health-admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deep["ok"], false, "{deep}");
    assert_eq!(deep["checks"]["state"]["ok"], true, "{deep}");
    assert_eq!(deep["checks"]["cluster"]["ok"], false, "{deep}");
    assert!(deep["checks"]["cluster"]["error"].as_str().unwrap().contains("cluster"), "{deep}");
}

/// `host:port` of a running server, for raw connections.
fn address(server: &Server) -> &str {
    server.url.strip_prefix("http://").expect("an http:// address")
}

/// Whether the server still holds `connection` open (nothing to read, no end).
fn still_open(connection: &tokio::net::TcpStream) -> bool {
    matches!(connection.try_read(&mut [0; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn three_hundred_half_open_connections_leave_healthz_answering_in_under_a_second() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let mut half_open = Vec::new();
    for _ in 0..300 {
        let mut connection = tokio::net::TcpStream::connect(address(&server)).await.unwrap();
        connection.write_all(b"POST /webhook HTTP/1.1\r\nHost: ferry\r\nContent-Le").await.unwrap();
        half_open.push(connection);
    }
    // A new connection for each check, as a load balancer's probe makes.
    ferry::telemetry::install_crypto_provider();
    let probe = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut took = Vec::new();
    for _ in 0..5 {
        let asked = Instant::now();
        let health: serde_json::Value =
            probe.get(format!("{}/healthz", server.url)).send().await.unwrap().json().await.unwrap();
        took.push(asked.elapsed());
        assert_eq!(health["ok"], true);
    }
    eprintln!("/healthz beside 300 half-open connections: {took:?}");
    assert!(
        took.iter().all(|t| *t < Duration::from_secs(1)),
        "/healthz took {took:?} beside 300 half-open connections"
    );
    let open = half_open.iter().filter(|c| still_open(c)).count();
    assert_eq!(open, 300, "the half-open connections were still held while /healthz answered");
}

#[tokio::test]
async fn a_client_sending_its_head_a_byte_a_second_is_dropped_at_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let timeout = ferry::http::limits::HEADER_READ_TIMEOUT;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let connection = tokio::net::TcpStream::connect(address(&server)).await.unwrap();
    let connected = Instant::now();
    let (mut reader, mut writer) = connection.into_split();
    let mut closed = tokio::spawn(async move { reader.read_to_end(&mut Vec::new()).await });
    let head = b"GET /healthz HTTP/1.1\r\nHost: ferry\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a'));
    let mut dropped = false;
    // One byte a second, for at most three times the timeout.
    for &byte in head.take(usize::try_from(3 * timeout.as_secs()).unwrap()) {
        tokio::select! {
            _ = &mut closed => {
                dropped = true;
                break;
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                let _ = writer.write_all(&[byte]).await;
            }
        }
    }
    let after = connected.elapsed();
    assert!(dropped, "still connected after {after:?}");
    assert!(after >= timeout - Duration::from_secs(1), "dropped after {after:?}, before the {timeout:?} timeout");
    assert!(after < timeout + Duration::from_secs(5), "dropped only after {after:?}");
}

/// The status line's code in what a server answered, if it answered.
fn status_of(answer: &[u8]) -> Option<u16> {
    std::str::from_utf8(answer.get(9..12)?).ok()?.parse().ok()
}

/// Posts an unsigned delivery of `length` bytes (of `chunk`, repeated): the
/// status the server answered with, if any.
async fn unsigned_delivery(address: &str, delivery: &str, length: usize, chunk: &[u8]) -> Option<u16> {
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: ferry\r\nConnection: close\r\nX-GitHub-Event: push\r\n\
         X-GitHub-Delivery: {delivery}\r\nContent-Length: {length}\r\n\r\n"
    );
    raw_request(address, head.as_bytes(), length, chunk).await
}

/// Sends `head` then `length` bytes of `chunk`, repeated, over a raw
/// connection, reading while it writes, as a server may answer before it
/// has read everything: the status it answered with, if any.
async fn raw_request(address: &str, head: &[u8], length: usize, chunk: &[u8]) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connection = tokio::net::TcpStream::connect(address).await.ok()?;
    let (mut reader, mut writer) = connection.into_split();
    let write = async {
        writer.write_all(head).await?;
        let mut left = length;
        while left > 0 {
            let n = left.min(chunk.len());
            writer.write_all(&chunk[..n]).await?;
            left -= n;
        }
        Ok::<_, std::io::Error>(())
    };
    let read = async {
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        answer
    };
    let bounded = tokio::time::timeout(Duration::from_secs(120), async { tokio::join!(write, read) });
    let (_, answer) = bounded.await.ok()?;
    status_of(&answer)
}

#[tokio::test]
async fn a_request_head_over_the_connection_buffer_is_431() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let long = "a".repeat(ferry::http::limits::CONNECTION_BUFFER);
    let head = format!("GET /healthz HTTP/1.1\r\nHost: ferry\r\nConnection: close\r\nX-Long: {long}\r\n\r\n");
    assert_eq!(raw_request(address(&server), head.as_bytes(), 0, &[]).await, Some(431));
    assert_eq!(healthz(&server).await["ok"], true, "and the server answers the next client");
}

/// The most resident memory process `pid` has used, in kB.
fn peak_resident_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn twenty_25_mib_bodies_at_once_stay_under_256_mb_and_the_budget_refuses_the_excess() {
    let length = ferry::http::MAX_BODY;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let chunk = vec![b' '; 1024 * 1024];
    let deliveries: Vec<String> = (0..20).map(|i| format!("flood-{i}")).collect();
    let sends = deliveries.iter().map(|delivery| unsigned_delivery(address(&server), delivery, length, &chunk));
    let statuses = futures::future::join_all(sends).await;
    let peak_mb = peak_resident_kb(server.child.id()) / 1024;
    eprintln!("20 x 25 MiB: statuses {statuses:?}, peak resident {peak_mb} MB");

    let refused = statuses.iter().filter(|s| **s == Some(503)).count();
    let read = statuses.iter().filter(|s| **s == Some(401)).count();
    assert!(refused >= 1, "the budget refused none: {statuses:?}");
    assert!(read >= 1, "the budget let none be read and judged: {statuses:?}");
    assert_eq!(refused + read, 20, "each was refused (503) or read and found unsigned (401): {statuses:?}");
    assert!(peak_mb < 256, "peak resident memory {peak_mb} MB");

    // The budget is whole again: a body at the limit is read, a signed delivery processed.
    let again = unsigned_delivery(address(&server), "after-the-flood", length, &chunk).await;
    assert_eq!(again, Some(401));
    let reply = replay(dir.path(), &server, "github/ping.json", "after-the-flood-signed");
    assert!(reply.contains("\"outcome\": \"processed\""), "{reply}");
}
