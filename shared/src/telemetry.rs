//! Process-wide setup every binary does first: logs and the TLS provider.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Structured logs: on Lambda as its logging controls say (JSON in the
/// template, so CloudWatch indexes the fields), compact text elsewhere.
/// `RUST_LOG` filters where Lambda's `AWS_LAMBDA_LOG_LEVEL` does not; the
/// default is `info`.
pub fn init() {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        // Lambda's logging controls decide the level and format
        // (AWS_LAMBDA_LOG_LEVEL, AWS_LAMBDA_LOG_FORMAT: JSON in the template),
        // as lambda_runtime reads them.
        lambda_runtime::tracing::init_default_subscriber_with_writer(std::io::stderr);
    } else {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        // Logs on stderr: stdout is for what a command prints for people and scripts.
        let installed = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .compact()
            .try_init();
        // Already installed (tests, or a second call): keep the first.
        drop(installed);
    }
    install_crypto_provider();
}

/// The AWS SDK, octocrab and kube all speak rustls: one provider for all
/// (aws-lc-rs), installed before the first TLS client is built.
pub fn install_crypto_provider() {
    // An error only means one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
