//! The AWS Secrets Manager adapter: `<prefix>/<name>`.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use secrecy::{ExposeSecret, SecretString};

use super::{SecretError, SecretName, SecretStore};
use crate::aws::{Fault, code, fault};

#[derive(Debug, Clone)]
pub struct SecretsManagerStore {
    client: Client,
    prefix: String,
}

impl SecretsManagerStore {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into().trim_end_matches('/').to_owned();
        Self { client, prefix }
    }

    /// A secret named by full id or ARN, outside the prefix (`…_SECRET_ID`).
    pub async fn get_by_id(&self, id: &str) -> Result<SecretString, SecretError> {
        let name =
            SecretName::parse(id.rsplit(':').next().unwrap_or(id)).unwrap_or_else(|_| SecretName::webhook_secret());
        match self.client.get_secret_value().secret_id(id).send().await {
            Ok(output) => output
                .secret_string
                .map(SecretString::from)
                .ok_or_else(|| SecretError::Failed { name, problem: "holds binary data, not text".into() }),
            Err(e) => Err(failure(e, &name)),
        }
    }

    fn id(&self, name: &SecretName) -> String {
        format!("{}/{name}", self.prefix)
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get(&self, name: &SecretName) -> Result<Option<SecretString>, SecretError> {
        match self.client.get_secret_value().secret_id(self.id(name)).send().await {
            Ok(output) => match output.secret_string {
                Some(value) => Ok(Some(SecretString::from(value))),
                None => Err(SecretError::Failed { name: name.clone(), problem: "holds binary data, not text".into() }),
            },
            Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(failure(e, name)),
        }
    }

    async fn put(&self, name: &SecretName, value: &SecretString) -> Result<(), SecretError> {
        let id = self.id(name);
        // Most puts rotate an existing secret: try that first.
        let put = self.client.put_secret_value().secret_id(&id).secret_string(value.expose_secret()).send().await;
        match put {
            Ok(_) => return Ok(()),
            Err(e) if code(&e) == Some("ResourceNotFoundException") => {}
            Err(e) => return Err(failure(e, name)),
        }
        let create = self.client.create_secret().name(&id).secret_string(value.expose_secret()).send().await;
        match create {
            Ok(_) => Ok(()),
            // Created by someone else between our two calls: ours becomes the new version.
            Err(e) if code(&e) == Some("ResourceExistsException") => self
                .client
                .put_secret_value()
                .secret_id(&id)
                .secret_string(value.expose_secret())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failure(e, name)),
            Err(e) => Err(failure(e, name)),
        }
    }

    async fn delete(&self, name: &SecretName) -> Result<(), SecretError> {
        // Without recovery: a token must not linger for a 7-day window, and the
        // name must be free for a reinstalled App at once.
        let deleted =
            self.client.delete_secret().secret_id(self.id(name)).force_delete_without_recovery(true).send().await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(failure(e, name)),
        }
    }
}

fn failure<E, R>(err: SdkError<E, R>, name: &SecretName) -> SecretError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    // The SDK marks secret values sensitive, so its errors never carry them.
    tracing::warn!(secret = %name, error = %DisplayErrorContext(&err), "Secrets Manager call failed");
    let denied = matches!(code(&err), Some("AccessDeniedException" | "DecryptionFailure"));
    match fault(&err) {
        Fault::Throttled => SecretError::Throttled(err.into()),
        Fault::Unavailable => SecretError::Unavailable(err.into()),
        Fault::Rejected if denied => SecretError::Denied { name: name.clone(), source: err.into() },
        Fault::Rejected => SecretError::Other(err.into()),
    }
}
