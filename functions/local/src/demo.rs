//! `ferry demo`: the README's first command. Starts Ferry on embedded
//! defaults with the sample operator config, replays the sample events
//! against it, and prints, step by step, what Ferry decided and what the
//! dry-run cluster and forge were asked for. Then it keeps serving, for the
//! reader's own `ferry replay`. No account, no cluster, no network.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::{cli, replay};

/// The operator config the demo runs with: units for the sample repository.
const OPERATOR_CONFIG: &str = include_str!("../../../events/ferry.toml");

/// Marks a directory the demo made, so it is only ever emptied if it did.
const MARKER: &str = ".ferry-demo";

/// Each step: the event, what it is, and its payload.
const STEPS: [(&str, &str, &str); 4] = [
    ("push", "A push to main that touches api/ and README.md", include_str!("../../../events/github/push.json")),
    (
        "pull_request",
        "A member opens pull request #42",
        include_str!("../../../events/github/pull_request.opened.json"),
    ),
    (
        "pull_request",
        "Pull request #42 is merged and closed",
        include_str!("../../../events/github/pull_request.closed.json"),
    ),
    ("release", "Release v1.4.0 is published", include_str!("../../../events/github/release.published.json")),
];

pub async fn demo(listen: SocketAddr, data_dir: &Path) -> anyhow::Result<()> {
    fresh(data_dir)?;
    let config_path = data_dir.join("ferry.toml");
    std::fs::write(&config_path, OPERATOR_CONFIG)?;
    // What the dry-run forge answers for the release's tag and branch: the
    // commit the sample push brought.
    let pushed: Value = serde_json::from_str(STEPS[0].2)?;
    let head = pushed["after"].as_str().context("the sample push has no `after`")?;
    let refs = data_dir.join("forge/acme/api/refs.json");
    std::fs::create_dir_all(refs.parent().context("a parent")?)?;
    std::fs::write(&refs, serde_json::json!({ "v1.4.0": head, "main": head }).to_string())?;
    // Embedded defaults whatever the environment says: the demo never
    // reaches AWS, a cluster or GitHub.
    let config = ferry::Config::from_lookup(|name| match name {
        "FERRY_DATA_DIR" => Some(data_dir.display().to_string()),
        "FERRY_CONFIG" => Some(config_path.display().to_string()),
        _ => None,
    })?;
    let (address, context, server) = cli::start(config, listen).await?;
    let server = tokio::spawn(server);
    let url = format!("http://{address}/webhook");
    let Some(secret) = context.webhook_secrets.get().await?.first().cloned() else {
        bail!("the demo found no webhook secret in {}", data_dir.display());
    };
    println!("Ferry is running at http://{address} on embedded defaults, data in {}.", data_dir.display());
    println!(
        "Operator config: {} (units for acme/api; the sample repository has no .ferry.toml).",
        config_path.display()
    );
    let mut before = written(data_dir);
    for (number, (event, what, body)) in STEPS.iter().enumerate() {
        println!("\n{}. {what}  ({event})", number + 1);
        let delivery = format!("demo-{}-{}", number + 1, uuid::Uuid::new_v4());
        let (status, reply) = replay::post(&url, &secret, event, &delivery, (*body).to_owned()).await?;
        println!("   Ferry answered {status}: {}", reply["outcome"].as_str().unwrap_or("?"));
        for action in reply["actions"].as_array().into_iter().flatten() {
            println!("   - {}", describe_action(action));
        }
        if let Some(reason) = reply["reason"].as_str() {
            println!("   why not more: {reason}");
        }
        let after = written(data_dir);
        for line in changes(&before, &after) {
            println!("   {line}");
        }
        before = after;
    }
    println!(
        "\nEverything above is on disk under {dir}/cluster (what a cluster would have been asked to apply) and \
         {dir}/forge (what GitHub would have been told).\nFerry keeps serving at http://{address}; its status \
         page, with each delivery's decisions per unit, is http://{address}/ui. In another terminal, send your own \
         events:\n\n    FERRY_DATA_DIR={dir} cargo run --bin ferry -- replay events/github/push.json --url {url}\n\n\
         Ctrl-C stops it.",
        dir = data_dir.display(),
    );
    server.await.context("the server stopped")?
}

/// Makes `dir` an empty demo directory: one the demo made before is emptied;
/// anything else that holds files is left alone.
fn fresh(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let ours = dir.join(MARKER).is_file();
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !ours && !empty {
            bail!("{} exists and was not made by `ferry demo`: pass another --data-dir", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot empty {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(MARKER), "made by `ferry demo`; emptied when it starts again\n")?;
    Ok(())
}

fn describe_action(action: &Value) -> String {
    let kind = action["kind"].as_str().unwrap_or("?");
    let name = action["name"].as_str().unwrap_or_default();
    match action["namespace"].as_str() {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Every file the dry-run cluster and forge wrote, by path under the data dir.
fn written(data_dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![data_dir.join("cluster"), data_dir.join("forge")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                let relative = path.strip_prefix(data_dir).unwrap_or(&path).to_path_buf();
                files.insert(relative, text);
            }
        }
    }
    files
}

/// One line per file written, changed or removed between two snapshots.
fn changes(before: &BTreeMap<PathBuf, String>, after: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let mut lines = Vec::new();
    for (path, text) in after {
        match before.get(path) {
            Some(old) if old == text => {}
            Some(_) => lines.push(format!("updated {}  {}", path.display(), summary(path, text))),
            None => lines.push(format!("wrote   {}  {}", path.display(), summary(path, text))),
        }
    }
    for path in before.keys().filter(|path| !after.contains_key(*path)) {
        lines.push(format!("removed {}", path.display()));
    }
    lines
}

/// What one written file says, in a few words.
fn summary(path: &Path, text: &str) -> String {
    let under_cluster = path.starts_with("cluster");
    if under_cluster {
        let Ok(object) = serde_yaml_ng::from_str::<Value>(text) else { return String::new() };
        let reference = object["spec"]["pipelineRef"]["name"].as_str().or(object["spec"]["taskRef"]["name"].as_str());
        return match reference {
            Some(reference) => format!("({} running {reference})", object["kind"].as_str().unwrap_or("?")),
            None => format!("({})", object["kind"].as_str().unwrap_or("?")),
        };
    }
    let Ok(json) = serde_json::from_str::<Value>(text) else { return String::new() };
    if let Some(context) = json["context"].as_str() {
        return format!(
            "(status {context}: {} — {})",
            json["state"].as_str().unwrap_or("?"),
            json["description"].as_str().unwrap_or_default()
        );
    }
    if let Some(url) = json["environment_url"].as_str() {
        return format!("(deployment {} → {url})", json["environment"].as_str().unwrap_or("?"));
    }
    if let Some(body) = json["body"].as_str() {
        let first = body.lines().find(|l| !l.starts_with("<!--")).unwrap_or_default();
        return format!("(comment: {first})");
    }
    String::new()
}
