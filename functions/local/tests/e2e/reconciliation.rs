//! `ferry serve --reconciliation-period`: how often the in-process
//! reconciler repairs what a lost delivery left undone.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, demo_config, sample, send};

fn runs(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(".ferry/cluster/ci/pipelinerun")).map(|entries| entries.count()).unwrap_or(0)
}

/// A Ferry on the sample operator config that knows acme/api through its
/// installation, started with `args`.
fn installed(dir: &Path, args: &[&str]) -> Server {
    std::fs::write(dir.join("ferry.toml"), demo_config()).unwrap();
    let server = common::serve_args(dir, args, &[("FERRY_CONFIG", "ferry.toml")]);
    send(dir, &server, "installation", "installed", &sample("installation.created.json"));
    server
}

/// GitHub lists pull request #42 open, though its webhook never arrived.
fn list_the_missed_pull_request(dir: &Path) {
    let forge = dir.join(".ferry/forge/acme/api");
    std::fs::create_dir_all(&forge).unwrap();
    let listed = serde_json::json!([sample("pull_request.opened.json")["pull_request"]]);
    std::fs::write(forge.join("pulls.json"), listed.to_string()).unwrap();
}

#[tokio::test]
async fn a_short_period_repairs_a_missed_pull_request_without_ferry_reconcile() {
    let fast = tempfile::tempdir().unwrap();
    let default = tempfile::tempdir().unwrap();
    let _fast = installed(fast.path(), &["--reconciliation-period", "1"]);
    // The default period (ten minutes) ran its first cycle at start.
    let _default = installed(default.path(), &[]);
    assert_eq!((runs(fast.path()), runs(default.path())), (0, 0), "an installation launches nothing");
    list_the_missed_pull_request(fast.path());
    list_the_missed_pull_request(default.path());
    let listed = Instant::now();

    // Generous: a cycle comes every second; a slow machine may take longer.
    while runs(fast.path()) == 0 {
        assert!(listed.elapsed() < Duration::from_secs(60), "no reconciliation cycle launched the pull request");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(listed.elapsed())).await;
    assert_eq!(runs(default.path()), 0, "with the default period no cycle has come yet");
}

#[test]
fn a_zero_period_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = common::ferry_command(dir.path(), &["serve", "--reconciliation-period", "0"], &[]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("reconciliation-period"));
}
