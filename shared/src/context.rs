//! The composition root's one call: from a `Config`, the ports every use case
//! needs, each built once and shared across invocations.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use aws_config::SdkConfig;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::cluster::{Cluster, DryRunCluster};
use crate::config::{ClusterMode, Config, PrivateKeySource, WebhookSecrets};
use crate::domain::SystemClock;
use crate::domain::signature::WebhookSecret;
use crate::forge::github::GithubForge;
use crate::forge::github::{GithubApi, GithubApp, KeySource, NoApp};
use crate::forge::routed::{ByCredential, Forges};
use crate::forge::{AppHooks, TokenMinter};
use crate::forge::{DryRunForge, Forge};
use crate::poll::source::Sources;
use crate::secrets::{EmbeddedSecrets, SecretError, SecretName, SecretStore, SecretsManagerStore};
use crate::store::{DynamoStore, StateStore};
use crate::units::OperatorConfig;
use crate::usecase::tokens::TokenSource;
use crate::usecase::tokens::Tokens;

#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub state: Arc<dyn StateStore>,
    pub secrets: Arc<dyn SecretStore>,
    /// Every one of them is accepted (rotation). Read on first use: the
    /// scheduled functions never pay for them.
    pub webhook_secrets: Arc<WebhookSecretsCache>,
    /// Installation and repository tokens, cached across invocations.
    pub tokens: Arc<Tokens>,
    /// The App's webhook log (the reconciler redelivers what failed).
    pub app_hooks: Arc<dyn AppHooks>,
    /// Each call routed by its credential (`forge::routed`): GitHub when an
    /// App is configured; otherwise GitHub for a repository with its own
    /// token and the dry-run forge for any other. A repository polled on
    /// another host goes to that host (`report::hosted`).
    pub forge: Arc<dyn Forge>,
    /// The dry-run cluster (default) or a real one.
    pub cluster: Arc<dyn Cluster>,
    /// `FERRY_CONFIG`, or defaults.
    pub operator: Arc<OperatorConfig>,
    /// Where the poller reads refs.
    pub sources: Arc<Sources>,
    /// Sends the poller's events, `report_to` mirrors' statuses and OAuth's
    /// calls; built by its first use.
    pub http: crate::net::SharedClient,
    /// The secret store's `tekton-token`, read on the first Tekton event
    /// (see [`Context::tekton_token`]): no function pays for it at start.
    pub tekton_token: Arc<tokio::sync::OnceCell<Option<SecretString>>>,
    /// How often Tekton's events may make Ferry read one run.
    pub tekton_reads: Arc<crate::usecase::tekton::ReadLimit>,
    /// The status page opens without a token: `ferry serve` bound to
    /// loopback with no `FERRY_ADMIN_TOKEN` (README.md, "Status page").
    pub ui_open: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data dir {path}")]
    DataDir { path: String, source: std::io::Error },
    #[error("FERRY_TABLE is not set, and this build has no embedded state store (only `ferry` has one)")]
    NoTable,
    #[error("cannot open the embedded state store")]
    State(#[from] crate::store::StoreError),
    #[error("cannot read the secret store")]
    Secrets(#[from] SecretError),
    #[error("FERRY_CLUSTER: {0}")]
    Cluster(String),
    #[error("FERRY_CONFIG: {0}")]
    Operator(String),
}

impl Context {
    /// AWS adapters where `FERRY_TABLE` / `FERRY_SECRET_PREFIX` say so,
    /// embedded ones under the data dir otherwise.
    pub async fn connect(config: Config) -> Result<Self, StartError> {
        crate::telemetry::install_crypto_provider();
        let needs_aws = config.table.is_some()
            || config.secret_prefix.is_some()
            || matches!(config.webhook_secrets, WebhookSecrets::SecretId(_))
            || config.github_app.as_ref().is_some_and(|app| matches!(app.private_key, PrivateKeySource::SecretId(_)));
        let sdk = if needs_aws { Some(crate::aws::sdk_config().await) } else { None };
        let needs_data_dir = config.table.is_none() || config.secret_prefix.is_none();
        if needs_data_dir {
            // It holds the embedded secret store and the dry-run cluster's Secrets.
            crate::files::create_private_dirs(&config.data_dir)
                .map_err(|source| StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
        }
        let state = state_store(&config, sdk.as_ref())?;
        let secrets = secret_store(&config, sdk.as_ref())?;
        let webhook_secrets = Arc::new(WebhookSecretsCache::new(&config, sdk.as_ref(), secrets.clone()));
        webhook_secrets.make_local_now().await?;
        // One GitHub client for the minter and the forge: it reads the root
        // certificates when first used.
        let github_api = GithubApi::new(&config.github_api_url);
        let (minter, app_hooks) = github_app(&config, sdk.as_ref(), &secrets, &github_api);
        let tokens = Arc::new(Tokens::new(secrets.clone(), minter, Arc::new(SystemClock)));
        let operator = Arc::new(match &config.operator_config {
            Some(path) => OperatorConfig::load(path).map_err(StartError::Operator)?,
            None => OperatorConfig::default(),
        });
        let cluster = cluster(&config, sdk, &operator, &secrets).await?;
        let http = crate::net::SharedClient::default();
        let sources = Arc::new(Sources::new(&config.github_api_url));
        let token_source = Arc::new(TokenSource { tokens: tokens.clone(), state: state.clone() });
        let github = Arc::new(GithubForge::new(github_api, token_source));
        let forge = forge(&config, github, &secrets, &operator, &sources, &http);
        Ok(Self {
            config: Arc::new(config),
            state,
            secrets,
            webhook_secrets,
            tokens,
            app_hooks,
            forge,
            cluster,
            operator,
            sources,
            http,
            tekton_token: Arc::default(),
            tekton_reads: Arc::default(),
            ui_open: false,
        })
    }
}

/// The state store: DynamoDB where the configuration names a table, else
/// the embedded one in the data directory.
fn state_store(config: &Config, sdk: Option<&SdkConfig>) -> Result<Arc<dyn StateStore>, StartError> {
    Ok(match (&config.table, sdk) {
        (Some(table), Some(sdk)) => Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table)),
        _ => embedded_state(config)?,
    })
}

#[cfg(feature = "embedded")]
fn embedded_state(config: &Config) -> Result<Arc<dyn StateStore>, StartError> {
    use crate::store::EmbeddedStore;
    Ok(Arc::new(EmbeddedStore::open(&config.data_dir.join(EmbeddedStore::FILE), config.embedded_durability)?))
}

/// A Lambda's build links no embedded store: its state is in DynamoDB.
#[cfg(not(feature = "embedded"))]
fn embedded_state(_: &Config) -> Result<Arc<dyn StateStore>, StartError> {
    Err(StartError::NoTable)
}

/// The secret store: Secrets Manager where the configuration names a
/// prefix, else the embedded one in the data directory.
fn secret_store(config: &Config, sdk: Option<&SdkConfig>) -> Result<Arc<dyn SecretStore>, StartError> {
    Ok(match (&config.secret_prefix, sdk) {
        (Some(prefix), Some(sdk)) => {
            Arc::new(SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), prefix))
        }
        _ => Arc::new(EmbeddedSecrets::open(&config.data_dir.join(EmbeddedSecrets::FILE))?),
    })
}

/// What the GitHub App is to the rest: the minter of its installation
/// tokens, and its webhook log.
type AppPorts = (Arc<dyn TokenMinter>, Arc<dyn AppHooks>);

/// The GitHub App's token minter and webhook log, or none without an App.
fn github_app(config: &Config, sdk: Option<&SdkConfig>, secrets: &Arc<dyn SecretStore>, api: &GithubApi) -> AppPorts {
    let Some(app) = &config.github_app else { return (Arc::new(NoApp), Arc::new(NoApp)) };
    // The key is read on first use: a broken one is reported by every mint
    // (and fixed without a restart), never a crash here.
    let source = match (&app.private_key, sdk) {
        (PrivateKeySource::File(path), _) => KeySource::File(path.clone()),
        (PrivateKeySource::SecretId(id), Some(sdk)) => {
            KeySource::SecretId(SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), ""), id.clone())
        }
        (PrivateKeySource::SecretId(_), None) => unreachable!("a secret id needs the SDK, loaded above"),
        (PrivateKeySource::SecretStore, _) => KeySource::Store(secrets.clone()),
    };
    let app = Arc::new(GithubApp::new(app.id, source, api.clone(), Arc::new(SystemClock)));
    (app.clone(), app)
}

/// The dry-run cluster, or the configured one, connected on first use.
async fn cluster(
    config: &Config,
    sdk: Option<SdkConfig>,
    operator: &OperatorConfig,
    secrets: &Arc<dyn SecretStore>,
) -> Result<Arc<dyn Cluster>, StartError> {
    Ok(match config.cluster {
        ClusterMode::DryRun => Arc::new(DryRunCluster::new(&config.data_dir)),
        ClusterMode::Kube => {
            let name = config.cluster_name.clone().unwrap_or_else(|| "default".into());
            let secret = SecretName::cluster(&name).map_err(|e| StartError::Cluster(e.to_string()))?;
            let sdk = match sdk {
                Some(sdk) => sdk,
                None => crate::aws::sdk_config().await,
            };
            let limit = (operator.kubernetes.qps, operator.kubernetes.burst);
            // Connected on first use: a missing kubeconfig never stops intake.
            Arc::new(crate::cluster::lazy::LazyKube::new(secrets.clone(), secret, Some(sdk), limit))
        }
    })
}

/// Each call goes where its credential leads (`forge::routed`): a
/// repository polled on its own host there, never to GitHub or the dry run;
/// without an App, repository-token mode still talks to GitHub, and only a
/// repository Ferry holds no credential for is a dry run. Statuses go to the
/// other hosts the operator config names, too.
fn forge(
    config: &Config,
    github: Arc<GithubForge>,
    secrets: &Arc<dyn SecretStore>,
    operator: &Arc<OperatorConfig>,
    sources: &Arc<Sources>,
    http: &crate::net::SharedClient,
) -> Arc<dyn Forge> {
    let host = crate::report::hosted::Hosted::new(operator.clone(), secrets.clone(), sources.clone());
    let forges = Forges {
        github,
        dry_run: Arc::new(DryRunForge::new(&config.data_dir)),
        host: Arc::new(host),
        app: config.github_app.is_some(),
    };
    let forge: Arc<dyn Forge> = Arc::new(ByCredential::new(forges, secrets.clone()));
    if !operator.mirrors_statuses() {
        return forge;
    }
    Arc::new(crate::report::mirror::Mirrored::new(forge, operator.clone(), secrets.clone(), http.clone()))
}

impl Context {
    /// What Tekton's CloudEvents sink must give: `FERRY_TEKTON_TOKEN`, else
    /// the secret store's `tekton-token`; neither closes `POST /tekton/events`.
    /// Read once, on first use; a failed read is tried again next time.
    pub async fn tekton_token(&self) -> Result<Option<SecretString>, SecretError> {
        if let Some(token) = &self.config.tekton_token {
            return Ok(Some(token.clone()));
        }
        let name = SecretName::tekton_token();
        let stored = self.tekton_token.get_or_try_init(|| self.secrets.get(&name)).await?;
        Ok(stored.clone())
    }
}

/// The webhook secrets, from the first place that has them:
/// `FERRY_WEBHOOK_SECRET`, the secret `FERRY_WEBHOOK_SECRET_ID`, the secret
/// store's `webhook-secret`; read on first use and kept for
/// [`SECRETS_TTL`], so a warm instance fetches nothing per delivery and
/// still sees a rotated secret within minutes. The first read is every
/// caller's to wait for; a later one is made by one caller while the others
/// go on with the secrets kept, and when it fails they stay (tried again
/// after [`SECRETS_RETRY`]). With an
/// embedded secret store and none of these, one is generated and kept
/// there, so `ferry serve` and `ferry replay` agree on it from the first run.
pub struct WebhookSecretsCache {
    from: SecretsFrom,
    /// The secrets, and when to read them again.
    kept: std::sync::RwLock<Option<(Arc<[WebhookSecret]>, Instant)>>,
    reading: tokio::sync::Mutex<()>,
}

/// How long read webhook secrets are used before they are read again.
pub const SECRETS_TTL: Duration = Duration::from_secs(300);

/// After a failed read, how long the secrets it had are used before the next try.
pub const SECRETS_RETRY: Duration = Duration::from_secs(30);

/// How long a read past the TTL may take: the secrets kept verify meanwhile,
/// and no delivery waits for it.
pub const REREAD_LIMIT: Duration = Duration::from_secs(2);

enum SecretsFrom {
    Known(Arc<[WebhookSecret]>),
    SecretId(SecretsManagerStore, String),
    /// The secret store's `webhook-secret`, generated there when `local`.
    Store {
        store: Arc<dyn SecretStore>,
        local: Option<std::path::PathBuf>,
    },
}

impl WebhookSecretsCache {
    fn new(config: &Config, sdk: Option<&aws_config::SdkConfig>, store: Arc<dyn SecretStore>) -> Self {
        let from = match (&config.webhook_secrets, sdk) {
            (WebhookSecrets::Inline(secrets), _) => {
                SecretsFrom::Known(secrets.iter().cloned().map(WebhookSecret::new).collect())
            }
            (WebhookSecrets::SecretId(id), Some(sdk)) => SecretsFrom::SecretId(
                SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), ""),
                id.clone(),
            ),
            (WebhookSecrets::SecretId(_), None) => {
                unreachable!("an SDK configuration is loaded when a secret id is set")
            }
            (WebhookSecrets::Unset, _) => SecretsFrom::Store {
                store,
                local: config.secret_prefix.is_none().then(|| config.data_dir.join(EmbeddedSecrets::FILE)),
            },
        };
        Self::reading_from(from)
    }

    /// The `webhook-secret` of `store`, a remote one: read on first use,
    /// never generated.
    pub fn stored(store: Arc<dyn SecretStore>) -> Self {
        Self::reading_from(SecretsFrom::Store { store, local: None })
    }

    /// These secrets, already known (tests, and callers that hold them).
    pub fn known(secrets: impl Into<Arc<[WebhookSecret]>>) -> Self {
        Self::reading_from(SecretsFrom::Known(secrets.into()))
    }

    /// Nothing read yet.
    fn reading_from(from: SecretsFrom) -> Self {
        Self { from, kept: Default::default(), reading: Default::default() }
    }

    /// With an embedded secret store, reads (or makes) the secret now, so
    /// `ferry replay` finds it before the first delivery; a remote one
    /// waits for its first use.
    async fn make_local_now(&self) -> Result<(), SecretError> {
        if let SecretsFrom::Store { local: Some(_), .. } = &self.from {
            self.get().await?;
        }
        Ok(())
    }

    /// The secrets; an empty list refuses every delivery.
    pub async fn get(&self) -> Result<Arc<[WebhookSecret]>, SecretError> {
        let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner).clone();
        match kept {
            Some((secrets, until)) if Instant::now() < until => Ok(secrets),
            Some((secrets, _)) => Ok(self.read_again(secrets).await),
            None => self.read_first().await,
        }
    }

    /// The first read: every caller waits for it (nothing can be verified
    /// without it), and its failure is theirs.
    async fn read_first(&self) -> Result<Arc<[WebhookSecret]>, SecretError> {
        let _one_reader = self.reading.lock().await;
        if let Some((secrets, _)) = self.kept.read().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(secrets);
        }
        let secrets = self.read_them().await?;
        self.keep(secrets.clone(), SECRETS_TTL);
        Ok(secrets)
    }

    /// A read past the TTL: one caller reads, within [`REREAD_LIMIT`], while
    /// the others go on with the secrets kept. A read that fails, or finds
    /// none where there were some, keeps them for [`SECRETS_RETRY`].
    async fn read_again(&self, kept: Arc<[WebhookSecret]>) -> Arc<[WebhookSecret]> {
        let Ok(_one_reader) = self.reading.try_lock() else { return kept };
        let read = tokio::time::timeout(REREAD_LIMIT, self.read_them()).await;
        let (secrets, for_how_long) = match read {
            Ok(Ok(read)) if !read.is_empty() || kept.is_empty() => (read, SECRETS_TTL),
            Ok(Ok(_)) => {
                tracing::warn!("the webhook secret store holds none now; the ones read before still verify");
                (kept, SECRETS_RETRY)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the webhook secrets again; the ones read before still verify");
                (kept, SECRETS_RETRY)
            }
            Err(_) => {
                tracing::warn!("reading the webhook secrets again timed out; the ones read before still verify");
                (kept, SECRETS_RETRY)
            }
        };
        self.keep(secrets.clone(), for_how_long);
        secrets
    }

    fn keep(&self, secrets: Arc<[WebhookSecret]>, for_how_long: Duration) {
        *self.kept.write().unwrap_or_else(PoisonError::into_inner) = Some((secrets, Instant::now() + for_how_long));
    }

    async fn read_them(&self) -> Result<Arc<[WebhookSecret]>, SecretError> {
        let list = |value: &SecretString| -> Arc<[WebhookSecret]> {
            value
                .expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| WebhookSecret::new(SecretString::from(s.to_owned())))
                .collect()
        };
        let (store, local) = match &self.from {
            SecretsFrom::Known(secrets) => return Ok(secrets.clone()),
            SecretsFrom::SecretId(client, id) => return Ok(list(&client.get_by_id(id).await?)),
            SecretsFrom::Store { store, local } => (store, local),
        };
        let name = SecretName::webhook_secret();
        if let Some(stored) = store.get(&name).await? {
            return Ok(list(&stored));
        }
        let Some(file) = local else {
            tracing::error!("no webhook secret is configured: every delivery will be refused with 401");
            return Ok(Arc::from([]));
        };
        // Two processes starting on a fresh data dir agree on one: whoever
        // stores first wins, and the other takes what was stored.
        let generated = SecretString::from(WebhookSecret::generate().expose().to_owned());
        let stored = store.put_if_absent(&name, &generated).await?;
        if stored.expose_secret() == generated.expose_secret() {
            tracing::info!(file = %file.display(), "generated a webhook secret for local use");
        }
        Ok(list(&stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret store holding a `webhook-secret` a test changes, or none
    /// when it is down; counting reads.
    #[derive(Default)]
    struct Rotating {
        value: std::sync::Mutex<Option<&'static str>>,
        reads: std::sync::atomic::AtomicUsize,
        /// Never answers while set.
        hangs: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl SecretStore for Rotating {
        async fn get(&self, _: &SecretName) -> Result<Option<SecretString>, SecretError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.hangs.load(std::sync::atomic::Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            match *self.value.lock().unwrap() {
                Some(value) => Ok(Some(SecretString::from(value))),
                None => Err(SecretError::Unavailable("down".into())),
            }
        }
        async fn put(&self, _: &SecretName, _: &SecretString) -> Result<(), SecretError> {
            unreachable!("the webhook secret is only read")
        }
        async fn delete(&self, _: &SecretName) -> Result<(), SecretError> {
            unreachable!("the webhook secret is only read")
        }
    }

    /// Kept for the TTL (no read per delivery), then read again, so a
    /// rotation reaches a warm instance; a store that is down keeps the
    /// secrets read before, tried again after the retry delay.
    #[tokio::test(start_paused = true)]
    async fn webhook_secrets_are_kept_for_their_ttl_then_read_again() {
        let store = Arc::new(Rotating::default());
        let set = |value| *store.value.lock().unwrap() = value;
        let reads = || store.reads.load(std::sync::atomic::Ordering::SeqCst);
        let cache = WebhookSecretsCache::stored(store.clone());
        async fn secret(cache: &WebhookSecretsCache) -> String {
            let secrets = cache.get().await.unwrap();
            secrets.iter().map(|s| s.expose().to_owned()).collect::<Vec<_>>().join(",")
        }
        let second = Duration::from_secs(1);
        set(Some("one"));
        assert_eq!((secret(&cache).await, secret(&cache).await, reads()), ("one".into(), "one".into(), 1));
        set(Some("two, one"));
        tokio::time::advance(SECRETS_TTL - second).await;
        assert_eq!((secret(&cache).await, reads()), ("one".into(), 1), "kept within the TTL");
        tokio::time::advance(second).await;
        assert_eq!((secret(&cache).await, reads()), ("two,one".into(), 2), "read again after it");
        set(None);
        tokio::time::advance(SECRETS_TTL).await;
        assert_eq!((secret(&cache).await, reads()), ("two,one".into(), 3), "down: the kept ones verify");
        assert_eq!((secret(&cache).await, reads()), ("two,one".into(), 3), "not asked again at once");
        set(Some("three"));
        tokio::time::advance(SECRETS_RETRY).await;
        assert_eq!((secret(&cache).await, reads()), ("three".into(), 4));
        // Emptied: 401 for every delivery would be worse than the old secret.
        set(Some(" "));
        tokio::time::advance(SECRETS_TTL).await;
        assert_eq!((secret(&cache).await, reads()), ("three".into(), 5), "none found: the kept ones stay");
        // A store that never answers holds up one caller for the limit, then the kept ones stay.
        store.hangs.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::advance(SECRETS_TTL).await;
        let started = Instant::now();
        assert_eq!((secret(&cache).await, reads()), ("three".into(), 6));
        assert_eq!(started.elapsed(), REREAD_LIMIT);
        // Never read: a store that is down is the caller's error.
        let empty = WebhookSecretsCache::stored(Arc::new(Rotating::default()));
        assert!(empty.get().await.is_err());
    }

    #[tokio::test]
    async fn a_local_start_generates_one_webhook_secret_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap().to_owned();
        let config = || Config::from_lookup(|name| (name == "FERRY_DATA_DIR").then(|| data_dir.clone())).unwrap();
        let first = Context::connect(config()).await.unwrap();
        // Made at start, before any delivery: `ferry replay` reads it from the file.
        assert!(std::fs::read_to_string(dir.path().join(EmbeddedSecrets::FILE)).unwrap().contains("webhook-secret"));
        let again = Context::connect(config()).await.unwrap();
        let (first, again) = (first.webhook_secrets.get().await.unwrap(), again.webhook_secrets.get().await.unwrap());
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].expose(), again[0].expose());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_generated_webhook_secret_lies_in_a_private_data_dir() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join(".ferry");
        let config = Config::from_lookup(|name| (name == "FERRY_DATA_DIR").then(|| data_dir.display().to_string()));
        let context = Context::connect(config.unwrap()).await.unwrap();
        let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let file = data_dir.join(EmbeddedSecrets::FILE);
        let secrets = context.webhook_secrets.get().await.unwrap();
        assert!(std::fs::read_to_string(&file).unwrap().contains(secrets[0].expose()));
        assert_eq!((mode(&data_dir), mode(&file)), (0o700, 0o600));
    }

    #[tokio::test]
    async fn configured_secrets_win() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap().to_owned();
        let config = Config::from_lookup(|name| match name {
            "FERRY_DATA_DIR" => Some(data_dir.clone()),
            "FERRY_WEBHOOK_SECRET" => Some("a,b".into()),
            _ => None,
        })
        .unwrap();
        let context = Context::connect(config).await.unwrap();
        let secrets = context.webhook_secrets.get().await.unwrap();
        let secrets: Vec<&str> = secrets.iter().map(WebhookSecret::expose).collect();
        assert_eq!(secrets, ["a", "b"]);
    }

    /// A secret store that fails its first `failures` reads, counting them all.
    struct Flaky {
        reads: std::sync::atomic::AtomicUsize,
        failures: usize,
    }

    #[async_trait::async_trait]
    impl SecretStore for Flaky {
        async fn get(&self, _: &SecretName) -> Result<Option<SecretString>, SecretError> {
            let read = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if read < self.failures {
                return Err(SecretError::Unavailable("down".into()));
            }
            Ok(Some(SecretString::from("one, two".to_owned())))
        }
        async fn put(&self, _: &SecretName, _: &SecretString) -> Result<(), SecretError> {
            unreachable!("a remote store's webhook secret is never written")
        }
        async fn delete(&self, _: &SecretName) -> Result<(), SecretError> {
            unreachable!("nor deleted")
        }
    }

    /// Behind a remote secret store the secrets are read on first use, then
    /// kept; a failed first read is tried again on the next use.
    #[tokio::test]
    async fn remote_webhook_secrets_are_read_on_first_use_and_then_kept() {
        let config = Config::from_lookup(|name| match name {
            "FERRY_TABLE" => Some("ferry".into()),
            "FERRY_SECRET_PREFIX" => Some("ferry".into()),
            _ => None,
        })
        .unwrap();
        let store = Arc::new(Flaky { reads: Default::default(), failures: 1 });
        let secrets = WebhookSecretsCache::new(&config, None, store.clone());
        assert_eq!(store.reads.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing read at start");
        assert!(secrets.get().await.is_err(), "the store is down");
        let read = secrets.get().await.unwrap();
        assert_eq!(read.iter().map(WebhookSecret::expose).collect::<Vec<_>>(), ["one", "two"]);
        secrets.get().await.unwrap();
        assert_eq!(store.reads.load(std::sync::atomic::Ordering::SeqCst), 2, "kept once read");
    }
}
