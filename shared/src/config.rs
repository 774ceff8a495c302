//! Every variable Ferry reads, in one place (README.md,
//! "Configuration"). `ferry serve` and every function read the same ones; a wrong
//! value fails at start with a message naming the variable.

use std::path::PathBuf;

use secrecy::SecretString;
use url::Url;

use crate::store::Durability;

/// Every variable, with what it means: the README's configuration table
/// lists exactly these (a test keeps the two in step).
pub const VARIABLES: &[(&str, &str)] = &[
    ("FERRY_WEBHOOK_SECRET", "one or more webhook secrets, comma-separated (two during a rotation)"),
    ("FERRY_WEBHOOK_SECRET_ID", "instead of FERRY_WEBHOOK_SECRET: the Secrets Manager id holding them"),
    ("FERRY_GITHUB_API_URL", "API base, default https://api.github.com (GHES: https://host/api/v3)"),
    ("FERRY_GITHUB_APP_ID", "the GitHub App's id"),
    (
        "FERRY_GITHUB_APP_PRIVATE_KEY_FILE",
        "path of the App's PEM private key (neither variable: the secret store's app-private-key)",
    ),
    ("FERRY_GITHUB_APP_PRIVATE_KEY_SECRET_ID", "instead of the file: the Secrets Manager id holding the key"),
    ("FERRY_TABLE", "DynamoDB table; unset means the embedded store"),
    ("FERRY_SECRET_PREFIX", "Secrets Manager prefix; unset means the embedded secret store"),
    ("FERRY_CLUSTER", "dry-run (default: manifests written under the data dir) or kube"),
    ("FERRY_CONFIG", "operator config file: units for repositories without .ferry.toml, tracked refs, defaults"),
    ("FERRY_DATA_DIR", "embedded state, secrets and dry-run output, default .ferry"),
    (
        "FERRY_EMBEDDED_DURABILITY",
        "what an acknowledged write to the embedded state survives: machine (default: a power cut, the file never corrupt) or process (a crash of Ferry only; nothing is fsynced, the fastest)",
    ),
    ("FERRY_PUBLIC_URL", "the webhook URL GitHub should call"),
    ("FERRY_ADMIN_TOKEN", "bearer token for the management API when not behind IAM"),
    (
        "FERRY_TEKTON_TOKEN",
        "opens POST /tekton/events to Tekton's CloudEvents sink, which gives it as ?token= or a bearer (unset: the secret store's tekton-token, if any)",
    ),
    (
        "FERRY_GITHUB_OAUTH_CLIENT_ID",
        "an OAuth app's client id, for the management API's GitHub login (its secret: the secret store's oauth-client-secret)",
    ),
    ("FERRY_CLUSTER_NAME", "optional; added to status contexts so two clusters do not overwrite each other"),
    (
        "FERRY_RECONCILE_QUEUE",
        "an SQS queue's URL: the scheduled reconciler only plans, one item per repository, and the queue's workers repair them (unset: it repairs every repository itself)",
    ),
    (
        "FERRY_ROTATE_QUEUE",
        "an SQS queue's URL: the scheduled token rotator only plans, one item per installation, and the queue's workers refresh their tokens (unset: it refreshes every token itself)",
    ),
    (
        "FERRY_POLL_QUEUE",
        "an SQS queue's URL: when more refs are due than `poll_in_flight`, the scheduled poller sends one item per due ref and the queue's workers poll them (unset: it polls every due ref itself)",
    ),
    ("AWS_ENDPOINT_URL", "the AWS SDK's own endpoint override; tests point it at a local emulator"),
];

pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
pub const DEFAULT_DATA_DIR: &str = ".ferry";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// Where the webhook secrets come from.
#[derive(Debug, Clone)]
pub enum WebhookSecrets {
    /// None configured: every delivery is refused (401).
    Unset,
    Inline(Vec<SecretString>),
    SecretId(String),
}

/// Where the App's private key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateKeySource {
    File(PathBuf),
    SecretId(String),
    /// `app-private-key` in the secret store (`<prefix>/app-private-key`).
    SecretStore,
}

/// The SQS queues the scheduled functions fan out over (README.md,
/// "Fan-out"), by URL; none: each cycle runs whole in its invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queues {
    pub reconcile: Option<String>,
    pub rotate: Option<String>,
    pub poll: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubApp {
    pub id: u64,
    pub private_key: PrivateKeySource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterMode {
    /// Manifests are written under the data dir; nothing is applied.
    #[default]
    DryRun,
    Kube,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub webhook_secrets: WebhookSecrets,
    pub github_api_url: Url,
    pub github_app: Option<GithubApp>,
    pub table: Option<String>,
    pub secret_prefix: Option<String>,
    pub cluster: ClusterMode,
    pub operator_config: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub embedded_durability: Durability,
    pub public_url: Option<Url>,
    pub admin_token: Option<SecretString>,
    pub tekton_token: Option<SecretString>,
    pub oauth_client_id: Option<String>,
    pub cluster_name: Option<String>,
    pub queues: Queues,
    pub aws_endpoint_url: Option<Url>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup`; an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| -> Option<(&'static str, String)> {
            debug_assert!(VARIABLES.iter().any(|(known, _)| *known == name), "{name} is undocumented");
            lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).map(|v| (name, v))
        };

        let webhook_secrets = match (get("FERRY_WEBHOOK_SECRET"), get("FERRY_WEBHOOK_SECRET_ID")) {
            (Some(_), Some(_)) => return Err(both("FERRY_WEBHOOK_SECRET", "FERRY_WEBHOOK_SECRET_ID")),
            (Some((name, list)), None) => WebhookSecrets::Inline(parse_secret_list(name, &list)?),
            (None, Some((name, id))) => WebhookSecrets::SecretId(secret_id(name, id)?),
            (None, None) => WebhookSecrets::Unset,
        };

        let github_api_url = match get("FERRY_GITHUB_API_URL") {
            Some((name, value)) => http_url(name, &value)?,
            None => Url::parse(DEFAULT_GITHUB_API_URL).expect("the default is a URL"),
        };

        let key = match (get("FERRY_GITHUB_APP_PRIVATE_KEY_FILE"), get("FERRY_GITHUB_APP_PRIVATE_KEY_SECRET_ID")) {
            (Some(_), Some(_)) => {
                return Err(both("FERRY_GITHUB_APP_PRIVATE_KEY_FILE", "FERRY_GITHUB_APP_PRIVATE_KEY_SECRET_ID"));
            }
            (Some((name, path)), None) => Some(PrivateKeySource::File(existing_file(name, path)?)),
            (None, Some((name, id))) => Some(PrivateKeySource::SecretId(secret_id(name, id)?)),
            (None, None) => None,
        };
        let github_app = match (get("FERRY_GITHUB_APP_ID"), key) {
            (Some((name, id)), Some(private_key)) => Some(GithubApp { id: app_id(name, &id)?, private_key }),
            // No key variable: the secret store's `app-private-key` holds it.
            (Some((name, id)), None) => {
                Some(GithubApp { id: app_id(name, &id)?, private_key: PrivateKeySource::SecretStore })
            }
            (None, Some(_)) => {
                return Err(problem("FERRY_GITHUB_APP_ID", "is required when a private key is configured"));
            }
            (None, None) => None,
        };

        let table = get("FERRY_TABLE").map(|(name, v)| table_name(name, v)).transpose()?;
        let secret_prefix = get("FERRY_SECRET_PREFIX").map(|(name, v)| secret_id(name, v)).transpose()?;
        let cluster = match get("FERRY_CLUSTER") {
            None => ClusterMode::DryRun,
            Some((_, v)) if v == "dry-run" => ClusterMode::DryRun,
            Some((_, v)) if v == "kube" => ClusterMode::Kube,
            Some((name, v)) => {
                return Err(problem(name, format!("expected `dry-run` or `kube`, got `{}`", cut(&v))));
            }
        };
        let operator_config = get("FERRY_CONFIG").map(|(name, v)| existing_file(name, v)).transpose()?;
        let data_dir = PathBuf::from(get("FERRY_DATA_DIR").map_or(DEFAULT_DATA_DIR.to_owned(), |(_, v)| v));
        let embedded_durability = match get("FERRY_EMBEDDED_DURABILITY") {
            None => Durability::default(),
            Some((_, v)) if v == "machine" => Durability::Machine,
            Some((_, v)) if v == "process" => Durability::Process,
            Some((name, v)) => {
                return Err(problem(name, format!("expected `machine` or `process`, got `{}`", cut(&v))));
            }
        };
        let public_url = get("FERRY_PUBLIC_URL").map(|(name, v)| http_url(name, &v)).transpose()?;
        let admin_token = get("FERRY_ADMIN_TOKEN").map(|(_, v)| SecretString::from(v));
        let tekton_token = get("FERRY_TEKTON_TOKEN").map(|(_, v)| SecretString::from(v));
        let oauth_client_id = get("FERRY_GITHUB_OAUTH_CLIENT_ID").map(|(_, v)| v);
        let cluster_name = get("FERRY_CLUSTER_NAME").map(|(name, v)| cluster_name(name, v)).transpose()?;
        let [reconcile, rotate, poll] = ["FERRY_RECONCILE_QUEUE", "FERRY_ROTATE_QUEUE", "FERRY_POLL_QUEUE"]
            .map(|variable| get(variable).map(|(name, v)| http_url(name, &v).map(|_| v)).transpose());
        let queues = Queues { reconcile: reconcile?, rotate: rotate?, poll: poll? };
        let aws_endpoint_url = get("AWS_ENDPOINT_URL").map(|(name, v)| http_url(name, &v)).transpose()?;

        Ok(Config {
            webhook_secrets,
            github_api_url,
            github_app,
            table,
            secret_prefix,
            cluster,
            operator_config,
            data_dir,
            embedded_durability,
            public_url,
            admin_token,
            tekton_token,
            oauth_client_id,
            cluster_name,
            queues,
            aws_endpoint_url,
        })
    }
}

fn problem(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { variable, problem: problem.into() }
}

fn both(a: &'static str, b: &'static str) -> ConfigError {
    problem(a, format!("set this or {b}, not both"))
}

/// Echo at most a short piece of a wrong value: enough to spot a typo.
fn cut(value: &str) -> String {
    value.chars().take(40).collect()
}

fn parse_secret_list(name: &'static str, list: &str) -> Result<Vec<SecretString>, ConfigError> {
    let secrets: Vec<&str> = list.split(',').map(str::trim).collect();
    // Never echo a secret: say which entry is wrong, by position.
    if let Some(position) = secrets.iter().position(|s| s.is_empty()) {
        return Err(problem(name, format!("entry {} of the comma-separated list is empty", position + 1)));
    }
    Ok(secrets.into_iter().map(|s| SecretString::from(s.to_owned())).collect())
}

fn http_url(name: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| problem(name, format!("`{}` is not a URL: {e}", cut(value))))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(problem(name, format!("`{}` is not an http(s) URL", cut(value))));
    }
    Ok(url)
}

fn existing_file(name: &'static str, path: String) -> Result<PathBuf, ConfigError> {
    // Echo only a cut: a PEM pasted here by mistake must not reach the logs.
    if !PathBuf::from(&path).is_file() {
        return Err(problem(name, format!("`{}` is not a readable file", cut(&path))));
    }
    let path = PathBuf::from(path);
    Ok(path)
}

fn app_id(name: &'static str, value: &str) -> Result<u64, ConfigError> {
    match value.parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(problem(name, format!("expected a positive number, got `{}`", cut(value)))),
    }
}

fn table_name(name: &'static str, value: String) -> Result<String, ConfigError> {
    let valid = (3..=255).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(value)
    } else {
        Err(problem(name, format!("`{}` is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ - .)", cut(&value))))
    }
}

fn secret_id(name: &'static str, value: String) -> Result<String, ConfigError> {
    // Full ARNs carry ':'; names carry Secrets Manager's own alphabet.
    let valid = value.len() <= 2048 && value.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c));
    if valid {
        Ok(value)
    } else {
        Err(problem(name, format!("`{}` is not a Secrets Manager name or ARN", cut(&value))))
    }
}

fn cluster_name(name: &'static str, value: String) -> Result<String, ConfigError> {
    let valid = value.len() <= 63 && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid { Ok(value) } else { Err(problem(name, format!("`{}` must be at most 63 of a-z 0-9 -", cut(&value)))) }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    fn error(vars: &[(&str, &str)]) -> ConfigError {
        config(vars).expect_err("config accepted")
    }

    #[test]
    fn nothing_set_means_embedded_defaults() {
        let c = config(&[]).unwrap();
        assert!(matches!(c.webhook_secrets, WebhookSecrets::Unset));
        assert_eq!(c.github_api_url.as_str(), "https://api.github.com/");
        assert_eq!(c.github_app, None);
        assert_eq!((c.table, c.secret_prefix), (None, None));
        assert_eq!(c.cluster, ClusterMode::DryRun);
        assert_eq!(c.data_dir, PathBuf::from(".ferry"));
        assert_eq!(c.embedded_durability, Durability::Machine);
        assert!(c.admin_token.is_none() && c.public_url.is_none() && c.cluster_name.is_none());
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = config(&[("FERRY_TABLE", ""), ("FERRY_CLUSTER", "  ")]).unwrap();
        assert_eq!((c.table, c.cluster), (None, ClusterMode::DryRun));
    }

    #[test]
    fn webhook_secrets_are_a_comma_separated_list() {
        let c = config(&[("FERRY_WEBHOOK_SECRET", "old-one, new-one")]).unwrap();
        let WebhookSecrets::Inline(secrets) = c.webhook_secrets else { panic!("not inline") };
        let plain: Vec<&str> = secrets.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(plain, ["old-one", "new-one"]);
    }

    #[test]
    fn a_wrong_secret_list_is_named_without_echoing_secrets() {
        let e = error(&[("FERRY_WEBHOOK_SECRET", "hunter2,,")]);
        assert_eq!(e.variable, "FERRY_WEBHOOK_SECRET");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let c = config(&[("FERRY_WEBHOOK_SECRET", "hunter2"), ("FERRY_ADMIN_TOKEN", "tok-123")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("tok-123"), "{shown}");
    }

    #[test]
    fn wrong_values_fail_naming_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("FERRY_CLUSTER", "minikube")], "FERRY_CLUSTER"),
            (&[("FERRY_GITHUB_API_URL", "not a url")], "FERRY_GITHUB_API_URL"),
            (&[("FERRY_GITHUB_API_URL", "ftp://x")], "FERRY_GITHUB_API_URL"),
            (&[("FERRY_PUBLIC_URL", "hooks.example.com")], "FERRY_PUBLIC_URL"),
            (&[("FERRY_TABLE", "a b")], "FERRY_TABLE"),
            (&[("FERRY_TABLE", "ab")], "FERRY_TABLE"),
            (&[("FERRY_SECRET_PREFIX", "ferry prod")], "FERRY_SECRET_PREFIX"),
            (&[("FERRY_CONFIG", "/no/such/ferry.toml")], "FERRY_CONFIG"),
            (&[("FERRY_CLUSTER_NAME", "Prod_EU")], "FERRY_CLUSTER_NAME"),
            (&[("FERRY_EMBEDDED_DURABILITY", "fsync")], "FERRY_EMBEDDED_DURABILITY"),
            (&[("FERRY_GITHUB_APP_PRIVATE_KEY_SECRET_ID", "ferry/key")], "FERRY_GITHUB_APP_ID"),
            (&[("FERRY_GITHUB_APP_ID", "x"), ("FERRY_GITHUB_APP_PRIVATE_KEY_SECRET_ID", "k")], "FERRY_GITHUB_APP_ID"),
            (&[("FERRY_GITHUB_APP_PRIVATE_KEY_FILE", "/no/such.pem")], "FERRY_GITHUB_APP_PRIVATE_KEY_FILE"),
            (&[("FERRY_WEBHOOK_SECRET", "a"), ("FERRY_WEBHOOK_SECRET_ID", "b")], "FERRY_WEBHOOK_SECRET"),
            (&[("AWS_ENDPOINT_URL", "localhost:5000")], "AWS_ENDPOINT_URL"),
        ];
        for (vars, variable) in cases {
            let e = error(vars);
            assert_eq!(e.variable, *variable, "{vars:?}: {e}");
            assert!(e.to_string().starts_with(variable), "{e}");
        }
    }

    #[test]
    fn app_credentials_come_as_a_pair() {
        let key = tempfile::NamedTempFile::new().unwrap();
        let path = key.path().to_str().unwrap();
        let c = config(&[("FERRY_GITHUB_APP_ID", "12345"), ("FERRY_GITHUB_APP_PRIVATE_KEY_FILE", path)]).unwrap();
        assert_eq!(
            c.github_app,
            Some(GithubApp { id: 12345, private_key: PrivateKeySource::File(key.path().to_owned()) })
        );
        let c = config(&[
            ("FERRY_GITHUB_APP_ID", "7"),
            ("FERRY_GITHUB_APP_PRIVATE_KEY_SECRET_ID", "ferry/app-private-key"),
        ])
        .unwrap();
        assert_eq!(c.github_app.unwrap().private_key, PrivateKeySource::SecretId("ferry/app-private-key".into()));
        let c = config(&[("FERRY_GITHUB_APP_ID", "12")]).unwrap();
        assert_eq!(c.github_app, Some(GithubApp { id: 12, private_key: PrivateKeySource::SecretStore }));
    }

    #[test]
    fn every_variable_is_read() {
        let key = tempfile::NamedTempFile::new().unwrap();
        let path = key.path().to_str().unwrap();
        let c = config(&[
            ("FERRY_WEBHOOK_SECRET_ID", "ferry/webhook-secret"),
            ("FERRY_GITHUB_API_URL", "https://ghe.example.com/api/v3"),
            ("FERRY_GITHUB_APP_ID", "9"),
            ("FERRY_GITHUB_APP_PRIVATE_KEY_FILE", path),
            ("FERRY_TABLE", "ferry-state"),
            ("FERRY_SECRET_PREFIX", "ferry"),
            ("FERRY_CLUSTER", "kube"),
            ("FERRY_CONFIG", path),
            ("FERRY_DATA_DIR", "/var/lib/ferry"),
            ("FERRY_EMBEDDED_DURABILITY", "process"),
            ("FERRY_PUBLIC_URL", "https://hooks.example.com/webhook"),
            ("FERRY_ADMIN_TOKEN", "t"),
            ("FERRY_CLUSTER_NAME", "prod-eu"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .unwrap();
        assert!(matches!(c.webhook_secrets, WebhookSecrets::SecretId(ref id) if id == "ferry/webhook-secret"));
        assert_eq!(c.github_api_url.host_str(), Some("ghe.example.com"));
        assert_eq!(c.table.as_deref(), Some("ferry-state"));
        assert_eq!(c.secret_prefix.as_deref(), Some("ferry"));
        assert_eq!(c.cluster, ClusterMode::Kube);
        assert_eq!(c.operator_config.as_deref(), Some(key.path()));
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/ferry"));
        assert_eq!(c.embedded_durability, Durability::Process);
        assert_eq!(c.public_url.unwrap().path(), "/webhook");
        assert!(c.admin_token.is_some());
        assert_eq!(c.cluster_name.as_deref(), Some("prod-eu"));
        assert_eq!(c.aws_endpoint_url.unwrap().port(), Some(5000));
    }
}
