//! What every AWS adapter shares: one SDK configuration (retries, timeouts)
//! and one reading of SDK errors.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Loads credentials and region the SDK's usual way (`AWS_ENDPOINT_URL`
/// included), with retries sized for a webhook that must answer within 10 s:
/// throttling and transient faults are retried with jittered exponential
/// backoff before an error reaches Ferry.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .build(),
        )
        .load()
        .await
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
