//! The secret port: tokens, keys and webhook secrets, as `SecretString`s end
//! to end. Errors name the secret, never its value.

mod embedded;
mod secrets_manager;

use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::domain::{InstallationId, InvalidId, RepoName};

pub use embedded::EmbeddedSecrets;
pub use secrets_manager::SecretsManagerStore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A secret's name below the configured prefix (README.md, "Tokens").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);

impl SecretName {
    /// Names as Secrets Manager allows them: letters, digits and `/_+=.@-`.
    pub fn parse(name: impl Into<String>) -> Result<Self, InvalidId> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= 256
            && !name.starts_with('/')
            && !name.ends_with('/')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
        if valid {
            Ok(Self(name))
        } else {
            Err(InvalidId {
                kind: "secret name",
                value: name.chars().take(80).collect(),
                problem: "may hold only letters, digits and /_+=.@- and not start or end with /",
            })
        }
    }

    /// `installations/<id>`: the installation token, `{token, expires_at}`.
    pub fn installation(id: InstallationId) -> Self {
        Self(format!("installations/{id}"))
    }

    /// `repositories/<owner>/<name>`: a repository token (token mode), never rotated.
    pub fn repository(repo: &RepoName) -> Result<Self, InvalidId> {
        Self::parse(format!("repositories/{repo}"))
    }

    pub fn webhook_secret() -> Self {
        Self("webhook-secret".to_owned())
    }

    /// The token Tekton's CloudEvents sink gives (`POST /tekton/events`).
    pub fn tekton_token() -> Self {
        Self("tekton-token".to_owned())
    }

    pub fn app_private_key() -> Self {
        Self("app-private-key".to_owned())
    }

    /// `clusters/<name>`: a kubeconfig.
    pub fn cluster(name: &str) -> Result<Self, InvalidId> {
        Self::parse(format!("clusters/{name}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name Ferry keeps its own credentials under (GitHub tokens, the
    /// App's key, webhook and OAuth secrets, kubeconfigs): never a token the
    /// operator config may send to a host of its choosing.
    pub fn is_ferrys_own(&self) -> bool {
        const OWN: [&str; 4] = ["webhook-secret", "app-private-key", "oauth-client-secret", "tekton-token"];
        const OWN_PREFIXES: [&str; 4] = ["installations/", "repositories/", "oauth/", "clusters/"];
        OWN.contains(&self.0.as_str()) || OWN_PREFIXES.iter().any(|prefix| self.0.starts_with(prefix))
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret store is throttling requests, still after retries")]
    Throttled(#[source] BoxError),
    #[error("the secret store could not be reached")]
    Unavailable(#[source] BoxError),
    #[error("access to secret {name} was refused")]
    Denied { name: SecretName, source: BoxError },
    #[error("secret {name}: {problem}")]
    Failed { name: SecretName, problem: String },
    #[error("the secret store failed")]
    Other(#[source] BoxError),
}

impl SecretError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SecretError::Throttled(_) | SecretError::Unavailable(_))
    }
}

/// The secret port. Every adapter passes the contract suite in `tests/`.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The current value, or `None` when there is no such secret.
    async fn get(&self, name: &SecretName) -> Result<Option<SecretString>, SecretError>;

    /// Creates the secret, or stores `value` as its new current version.
    async fn put(&self, name: &SecretName, value: &SecretString) -> Result<(), SecretError>;

    /// Removes the secret at once; removing nothing is not an error.
    async fn delete(&self, name: &SecretName) -> Result<(), SecretError>;

    /// Stores `value` unless the secret exists; returns what is stored
    /// afterwards. Adapters that can make this atomic do.
    async fn put_if_absent(&self, name: &SecretName, value: &SecretString) -> Result<SecretString, SecretError> {
        if let Some(found) = self.get(name).await? {
            return Ok(found);
        }
        self.put(name, value).await?;
        Ok(value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_design() {
        assert_eq!(SecretName::installation(InstallationId::new(42)).as_str(), "installations/42");
        assert_eq!(SecretName::cluster("prod-eu").unwrap().as_str(), "clusters/prod-eu");
        for bad in ["", "/a", "a/", "a b", "a#b"] {
            assert!(SecretName::parse(bad).is_err(), "{bad:?} accepted");
        }
        let repo = RepoName::parse("acme/api".to_owned()).unwrap();
        let own = [
            SecretName::installation(InstallationId::new(42)),
            SecretName::repository(&repo).unwrap(),
            SecretName::webhook_secret(),
            SecretName::app_private_key(),
            SecretName::cluster("prod").unwrap(),
            SecretName::parse("oauth/octocat").unwrap(),
            SecretName::parse("oauth-client-secret").unwrap(),
        ];
        assert!(own.iter().all(SecretName::is_ferrys_own), "{own:?}");
        for theirs in ["gitlab-token", "mirrors/gitlab", "installation-token"] {
            assert!(!SecretName::parse(theirs).unwrap().is_ferrys_own(), "{theirs}");
        }
    }
}
