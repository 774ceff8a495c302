//! The composition root's one call: from a `Config`, the ports every use case
//! needs, each built once and shared across invocations.

use std::sync::Arc;

use crate::config::Config;
use crate::secrets::{EmbeddedSecrets, SecretStore, SecretsManagerStore};
use crate::store::{DynamoStore, EmbeddedStore, StateStore};

#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub state: Arc<dyn StateStore>,
    pub secrets: Arc<dyn SecretStore>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data dir {path}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the embedded state store")]
    State(#[from] crate::store::StoreError),
    #[error("cannot open the embedded secret store")]
    Secrets(#[from] crate::secrets::SecretError),
}

impl Context {
    /// AWS adapters where `FERRY_TABLE` / `FERRY_SECRET_PREFIX` say so,
    /// embedded ones under the data dir otherwise.
    pub async fn connect(config: Config) -> Result<Self, StartError> {
        let needs_aws = config.table.is_some() || config.secret_prefix.is_some();
        let sdk = if needs_aws {
            Some(crate::aws::sdk_config().await)
        } else {
            None
        };
        let needs_data_dir = config.table.is_none() || config.secret_prefix.is_none();
        if needs_data_dir {
            std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
                path: config.data_dir.display().to_string(),
                source,
            })?;
        }
        let state: Arc<dyn StateStore> = match (&config.table, &sdk) {
            (Some(table), Some(sdk)) => {
                Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table))
            }
            _ => Arc::new(EmbeddedStore::open(&config.data_dir.join("state.sqlite3"))?),
        };
        let secrets: Arc<dyn SecretStore> = match (&config.secret_prefix, &sdk) {
            (Some(prefix), Some(sdk)) => Arc::new(SecretsManagerStore::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                prefix,
            )),
            _ => Arc::new(EmbeddedSecrets::open(
                &config.data_dir.join("secrets.json"),
            )?),
        };
        Ok(Self {
            config: Arc::new(config),
            state,
            secrets,
        })
    }
}
