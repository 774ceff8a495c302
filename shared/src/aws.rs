//! What every AWS adapter shares: one SDK configuration (retries, timeouts)
//! and one reading of SDK errors.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::ConnectorBuilder;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// The SDK configuration every AWS adapter uses, with retries sized for a
/// webhook that must answer within 10 s: throttling and transient faults are
/// retried with jittered exponential backoff before an error reaches Ferry.
/// `ferry` (local, feature `aws-profiles`) finds credentials and region the
/// SDK's usual way; a Lambda reads the ones Lambda sets ([`from_environment`]).
/// Loaded once per process: every AWS client (DynamoDB, Secrets Manager,
/// SQS, the EKS token) then shares one HTTPS client, so one connection pool
/// and one read of the root certificates.
pub async fn sdk_config() -> SdkConfig {
    static LOADED: tokio::sync::OnceCell<SdkConfig> = tokio::sync::OnceCell::const_new();
    LOADED.get_or_init(load).await.clone()
}

async fn load() -> SdkConfig {
    // `#[cfg]`, not `cfg!`: an `if` on a constant in an async fn still links
    // the branch not taken (measured: 0.3 MB of the webhook's zip).
    #[cfg(feature = "aws-profiles")]
    {
        from_profiles().await
    }
    #[cfg(not(feature = "aws-profiles"))]
    {
        from_environment()
    }
}

/// The SDK's whole chain: environment, profiles (SSO, credential processes),
/// web identity, the container and instance metadata; `AWS_ENDPOINT_URL` and
/// the per-service endpoint variables.
#[cfg(feature = "aws-profiles")]
pub async fn from_profiles() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .http_client(https_client())
        .load()
        .await
}

/// What Lambda provides: `AWS_REGION` and the function's credentials in
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`;
/// also `AWS_ENDPOINT_URL` (an emulator), `AWS_USE_FIPS_ENDPOINT` and
/// `AWS_USE_DUALSTACK_ENDPOINT`. The SDK's chain would find the same there
/// first; the rest of it (profiles, IMDS, web identity through STS,
/// per-service endpoint variables) is code a Lambda never runs: 0.3 MB of
/// the webhook's zip (BENCHMARKS.md, "Lambda packages").
pub fn from_environment() -> SdkConfig {
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let flag = |name: &str| env(name).is_some_and(|value| value.eq_ignore_ascii_case("true"));
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).map(Region::new))
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .use_fips(flag("AWS_USE_FIPS_ENDPOINT"))
        .use_dual_stack(flag("AWS_USE_DUALSTACK_ENDPOINT"))
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .http_client(https_client());
    config.set_endpoint_url(env("AWS_ENDPOINT_URL"));
    config.build()
}

fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .build()
}

/// The SDK's HTTPS client on ring, the crypto library behind every TLS
/// client in Ferry (`telemetry::install_crypto_provider`), built as the SDK
/// builds its own on aws-lc: through `HTTPS_PROXY` unless `NO_PROXY` says
/// otherwise, and one connector per connection settings (so one pool).
fn https_client() -> SharedHttpClient {
    let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    SharedHttpClient::new(ConnectOnFirstUse(client))
}

/// The SDK's client, its connector made by the first request. The SDK's
/// check of each client it builds makes a connector and drops it: the first
/// check reads every root certificate of the system, each parses them, and
/// a Lambda's init need not wait for either (BENCHMARKS.md, "Cold starts").
#[derive(Debug)]
struct ConnectOnFirstUse(SharedHttpClient);

impl HttpClient for ConnectOnFirstUse {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(6)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(2))
}

/// How a failed AWS call should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The service asked us to slow down, still after the SDK's retries.
    Throttled,
    /// Network, timeout or a 5xx: the request may succeed later.
    Unavailable,
    /// The request itself is wrong or not allowed.
    Rejected,
}

const THROTTLING_CODES: [&str; 6] = [
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
];

pub(crate) fn fault<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Fault {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Fault::Unavailable,
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if THROTTLING_CODES.contains(&code) {
                Fault::Throttled
            } else if matches!(code, "InternalServerError" | "InternalFailure" | "ServiceUnavailable") {
                Fault::Unavailable
            } else {
                Fault::Rejected
            }
        }
        _ => Fault::Rejected,
    }
}

/// The service's error code, for matching one known condition.
pub(crate) fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}
