//! A repository on GitLab or Gitea that Ferry polls with `launch = true`,
//! through the `ferry poll` and `ferry reconcile` commands: its units are
//! read there, its runs clone with the entry's clone token, and its
//! statuses (pending, the result, a broken file's line) are posted there.

use crate::common;

use std::path::Path;

use common::ferry_command;
use ferry::report::Provider;
use ferry::secrets::{EmbeddedSecrets, SecretName, SecretStore};
use ferry_tests::providers::ProviderFake;
use secrecy::SecretString;
use serde_json::Value;

const TOKEN: &str = "glpat-hosted-launch-token-0123456789";
const CLONE_TOKEN: &str = "glpat-hosted-clone-token-9876543210";
const GOOD: &str = "1a2b3c4d5e6f70819a2b3c4d5e6f70819a2b3c4d";
const BROKEN: &str = "2b3c4d5e6f70819a2b3c4d5e6f70819a2b3c4d5e";
const UNITS: &str = "[api.pipeline]\nnamespace = \"ci\"\n[[api.docker]]\ndirectory = \".\"\ntag = \"registry.example.com/api:{{ git.sha }}\"\n";

async fn secrets(dir: &Path, token: &str) {
    ferry::files::create_private_dirs(&dir.join(".ferry")).unwrap();
    let store = EmbeddedSecrets::open(&dir.join(".ferry/secrets.json")).unwrap();
    for (name, value) in [("hosts/acme", token), ("hosts/acme-clone", CLONE_TOKEN)] {
        store.put(&SecretName::parse(name).unwrap(), &SecretString::from(value.to_owned())).await.unwrap();
    }
}

fn ferry(dir: &Path, args: &[&str]) -> String {
    let config = dir.join("ferry.toml");
    let output = ferry_command(dir, args, &[("FERRY_CONFIG", config.to_str().unwrap())]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "ferry {args:?}: {stdout}\n{stderr}");
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN), "the token stays out of the output");
    stdout.into_owned()
}

/// `(context, state, description)` of each status the host accepted.
fn statuses(fake: &ProviderFake) -> Vec<(String, String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    fake.accepted()
        .iter()
        .map(|b| {
            (
                match (&b["name"], &b["context"]) {
                    (Value::String(name), _) => name.clone(),
                    // Azure DevOps: `{genre, name}`.
                    (_, Value::Object(c)) => format!("{}/{}", text(&c["genre"]), text(&c["name"])),
                    (_, context) => text(context),
                },
                text(&b["state"]),
                text(&b["description"]),
            )
        })
        .collect()
}

fn runs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join(".ferry/cluster/ci/pipelinerun")) else { return Vec::new() };
    entries.map(|e| e.unwrap().path()).collect()
}

/// Marks the one run succeeded, as Tekton would.
fn succeed(run: &Path) {
    let mut object: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(run).unwrap()).unwrap();
    object["status"] = serde_json::json!({"conditions": [{"type": "Succeeded", "status": "True"}]});
    std::fs::write(run, serde_yaml_ng::to_string(&object).unwrap()).unwrap();
}

#[tokio::test]
async fn a_gitlab_repository_polled_there_runs_and_gets_its_statuses_there() {
    ferry::telemetry::install_crypto_provider();
    let fake = ProviderFake::start(Provider::Gitlab, TOKEN).await;
    fake.set_head("main", GOOD);
    fake.set_head("dev", BROKEN);
    fake.put_file(GOOD, ".ferry.toml", UNITS);
    fake.put_file(BROKEN, ".ferry.toml", "[api.pipeline]\nnamespace = \"ci\"\nref = \n");
    let dir = tempfile::tempdir().unwrap();
    let base = fake.url().as_str().trim_end_matches('/').to_owned();
    let entry = |reference: &str| {
        format!(
            "[[poll]]\nurl = \"{base}/acme/platform/api\"\nref = \"{reference}\"\ntype = \"gitlab\"\n\
             api_url = \"{base}/api/v4\"\nlaunch = true\ntoken_secret = \"hosts/acme\"\nclone_secret = \"hosts/acme-clone\"\n"
        )
    };
    std::fs::write(dir.path().join("ferry.toml"), entry("main") + &entry("dev")).unwrap();
    secrets(dir.path(), TOKEN).await;

    ferry(dir.path(), &["poll"]);
    assert_eq!(fake.violations(), Vec::<String>::new());
    let reads: Vec<&str> = fake.reads().iter().map(|(sha, _)| if sha == GOOD { "good" } else { "broken" }).collect();
    assert!(reads.contains(&"good") && reads.contains(&"broken"), "both commits' units read on GitLab: {reads:?}");
    let posted = statuses(&fake);
    assert!(posted.iter().any(|(context, state, _)| context == "ferry/api" && state == "pending"), "{posted:?}");
    let config = posted.iter().find(|(context, ..)| context == "ferry/config").expect("the broken file's status");
    assert_eq!(config.1, "failed");
    assert!(config.2.contains("line 3"), "names the line: {config:?}");

    // The run clones from GitLab with the clone token, as GitLab expects it.
    let found = runs(dir.path());
    let [run] = found.as_slice() else { panic!("one run: {found:?}") };
    let manifest = std::fs::read_to_string(run).unwrap();
    assert!(manifest.contains(&format!("{base}/acme/platform/api.git")), "{manifest}");
    assert!(!manifest.contains(CLONE_TOKEN) && !manifest.contains(TOKEN), "no token in the run");
    let secret_dir = dir.path().join(".ferry/cluster/ci/secret");
    let secret = std::fs::read_dir(&secret_dir).unwrap().next().unwrap().unwrap().path();
    let secret: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(secret).unwrap()).unwrap();
    assert_eq!(secret["stringData"]["username"], "oauth2");
    assert_eq!(secret["stringData"]["token"], CLONE_TOKEN, "the clone token, not the API token");

    // Tekton finishes the run; the reconciler reports it on GitLab.
    succeed(run);
    ferry(dir.path(), &["reconcile"]);
    let last = statuses(&fake).into_iter().rfind(|(context, ..)| context == "ferry/api").unwrap();
    assert_eq!(last.1, "success", "{last:?}");
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// Gitea, Bitbucket (an app password, through `api_url`) and Azure DevOps
/// (a project with a space), each read over Git with its own credential form.
#[tokio::test]
async fn a_repository_polled_over_git_runs_and_gets_its_statuses_on_its_host() {
    ferry::telemetry::install_crypto_provider();
    let hosts = [
        (Provider::Gitea, "gitea", "acme/api", TOKEN, false),
        (Provider::Bitbucket, "bitbucket", "acme/api", "ci-bot:app-password-0123456789", true),
        (Provider::AzureDevops, "azure_devops", "acme/My%20Project/_git/api", TOKEN, false),
    ];
    for (provider, name, path, token, api_url) in hosts {
        let fake = ProviderFake::start(provider, token).await;
        fake.set_head("main", GOOD);
        fake.put_file(GOOD, ".ferry.toml", UNITS);
        let dir = tempfile::tempdir().unwrap();
        let base = fake.url().as_str().trim_end_matches('/').to_owned();
        let api = if api_url { format!("api_url = \"{base}\"\n") } else { String::new() };
        let config = format!(
            "[[poll]]\nurl = \"{base}/{path}\"\nref = \"main\"\ntype = \"git\"\nprovider = \"{name}\"\n\
             launch = true\ntoken_secret = \"hosts/acme\"\n{api}"
        );
        std::fs::write(dir.path().join("ferry.toml"), config).unwrap();
        secrets(dir.path(), token).await;

        ferry(dir.path(), &["poll"]);
        assert_eq!(fake.reads(), [(GOOD.to_owned(), ".ferry.toml".to_owned())], "{name}");
        let found = runs(dir.path());
        let [run] = found.as_slice() else { panic!("{name}: one run: {found:?}") };
        assert!(!dir.path().join(".ferry/cluster/ci/secret").exists(), "no clone_secret: it clones anonymously");
        succeed(run);
        ferry(dir.path(), &["reconcile"]);
        let states: Vec<String> =
            statuses(&fake).into_iter().map(|(context, state, _)| format!("{context} {state}")).collect();
        let (pending, success) = match provider {
            Provider::Bitbucket => ("INPROGRESS", "SUCCESSFUL"),
            Provider::AzureDevops => ("pending", "succeeded"),
            _ => ("pending", "success"),
        };
        assert_eq!(states, [format!("ferry/api {pending}"), format!("ferry/api {success}")], "{name}");
        assert_eq!(fake.violations(), Vec::<String>::new(), "{name}");
    }
}
