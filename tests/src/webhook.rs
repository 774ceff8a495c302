//! The webhook as Lambda runs it, over any state store: send a Lambda event
//! through the real service, read back the status and the JSON reply.

use std::sync::Arc;

use ferry::cluster::DryRunCluster;
use ferry::config::Config;
use ferry::domain::SystemClock;
use ferry::forge::DryRunForge;
use ferry::forge::TokenMinter;
use ferry::forge::github::NoApp;
use ferry::secrets::SecretStore;
use ferry::store::StateStore;
use ferry::units::OperatorConfig;
use ferry::usecase::tokens::Tokens;
use ferry::{Context, http as ferry_http};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::events::{self, Front};

pub struct Harness {
    pub context: Context,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Embedded state and secrets in a fresh directory, webhook secret `secret`.
    pub async fn embedded(secret: &str) -> Self {
        Self::embedded_with(secret, &[]).await
    }

    /// Embedded state and secrets, with these configuration variables too.
    pub async fn embedded_with(secret: &str, variables: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let state = Arc::new(crate::embedded::state_in(dir.path()));
        Self::build(dir, state, secret, Arc::new(NoApp), variables)
    }

    /// `state` as the store, embedded secrets, webhook secret `secret`.
    pub async fn with_state(state: Arc<dyn StateStore>, secret: &str) -> Self {
        Self::build(tempfile::tempdir().expect("a temporary dir"), state, secret, Arc::new(NoApp), &[])
    }

    /// `state` as the store, embedded secrets, with these configuration variables too.
    pub async fn with_state_and(state: Arc<dyn StateStore>, secret: &str, variables: &[(&str, &str)]) -> Self {
        Self::build(tempfile::tempdir().expect("a temporary dir"), state, secret, Arc::new(NoApp), variables)
    }

    /// `state` as the store, embedded secrets, tokens minted by `minter`.
    pub async fn with_state_and_minter(state: Arc<dyn StateStore>, minter: Arc<dyn TokenMinter>) -> Self {
        Self::build(tempfile::tempdir().expect("a temporary dir"), state, "unused", minter, &[])
    }

    /// Embedded state and secrets, tokens minted by `minter`.
    pub async fn with_minter(secret: &str, minter: Arc<dyn TokenMinter>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let state = Arc::new(crate::embedded::state_in(dir.path()));
        Self::build(dir, state, secret, minter, &[])
    }

    fn build(
        dir: tempfile::TempDir,
        state: Arc<dyn StateStore>,
        secret: &str,
        minter: Arc<dyn TokenMinter>,
        variables: &[(&str, &str)],
    ) -> Self {
        let data_dir = dir.path().to_str().expect("a UTF-8 path").to_owned();
        let config = Config::from_lookup(|name| match name {
            "FERRY_DATA_DIR" => Some(data_dir.clone()),
            "FERRY_WEBHOOK_SECRET" => Some(secret.to_owned()),
            other => variables.iter().find(|(n, _)| *n == other).map(|(_, v)| (*v).to_owned()),
        })
        .expect("a valid configuration");
        let secrets: Arc<dyn SecretStore> = Arc::new(crate::embedded::secrets_in(dir.path()));
        let tokens = Arc::new(Tokens::new(secrets.clone(), minter, Arc::new(SystemClock)));
        let context = Context {
            config: Arc::new(config),
            state,
            secrets,
            webhook_secrets: Arc::new(ferry::context::WebhookSecretsCache::known([events::secret(secret)])),
            tokens,
            app_hooks: Arc::new(NoApp),
            forge: Arc::new(DryRunForge::new(dir.path())),
            cluster: Arc::new(DryRunCluster::new(dir.path())),
            operator: Arc::new(OperatorConfig::default()),
            sources: Arc::new(ferry::poll::source::Sources::new(&url::Url::parse("https://api.github.com").unwrap())),
            http: ferry::net::SharedClient::default(),
            tekton_token: std::sync::Arc::default(),
            tekton_reads: Arc::default(),
            ui_open: false,
        };
        Self { context, _dir: dir }
    }

    /// The data dir: dry-run manifests under `cluster/`, forge output under `forge/`.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Gives repositories units through the operator config, as `FERRY_CONFIG` would.
    pub fn set_operator(&mut self, config: &str) {
        self.context.operator = Arc::new(OperatorConfig::parse(config).expect("a valid operator config"));
    }

    /// Every port, as the composition root would have built them.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Sends statuses to the operator config's `report_to` hosts too, as
    /// `Context::connect` arranges when the config names any.
    pub fn mirror_statuses(&mut self) {
        let context = &mut self.context;
        context.forge = Arc::new(ferry::report::mirror::Mirrored::new(
            context.forge.clone(),
            context.operator.clone(),
            context.secrets.clone(),
            context.http.clone(),
        ));
    }

    /// Reads and reports through `forge` instead of the dry-run forge.
    pub fn set_forge(&mut self, forge: Arc<dyn ferry::forge::Forge>) {
        self.context.forge = forge;
    }

    /// Runs one reconciliation cycle at `clock`'s time.
    pub async fn reconcile(&self, clock: &dyn ferry::domain::Clock) -> ferry::usecase::reconcile::Report {
        let mut ports = ferry::usecase::reconcile::Ports::of(&self.context);
        ports.launch.clock = clock;
        ferry::usecase::reconcile::reconcile(ports, None).await
    }

    /// Reads and replays the App's webhook log through `hooks`.
    pub fn set_app_hooks(&mut self, hooks: Arc<dyn ferry::forge::AppHooks>) {
        self.context.app_hooks = hooks;
    }

    pub fn state(&self) -> &dyn StateStore {
        self.context.state.as_ref()
    }

    /// Sends a Lambda event through the service `ferry-webhook` runs.
    pub async fn invoke(&self, event: &Value) -> (u16, Value) {
        let request = lambda_http::request::from_str(&event.to_string()).expect("a Lambda HTTP event");
        let service = ferry_http::lambda_service(ferry_http::router(self.context.clone()));
        let response = service.oneshot(request).await.expect("the router never fails");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.expect("a readable body").to_bytes();
        let body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, body)
    }

    /// A delivery signed with `secret`, through an HTTP API.
    pub async fn deliver(&self, event: &str, delivery: &str, secret: &str, body: &str) -> (u16, Value) {
        self.invoke(&events::signed(Front::HttpApi, event, delivery, secret, body)).await
    }
}
