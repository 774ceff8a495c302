//! Process-wide setup every binary does first: logs and the TLS provider.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Structured logs: JSON on Lambda (CloudWatch indexes the fields), compact
/// text elsewhere. `RUST_LOG` filters; the default is `info`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs on stderr: stdout is for what a command prints for people and scripts.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder.json().with_current_span(false).without_time().try_init()
    } else {
        builder.compact().try_init()
    };
    // Already installed (tests, or a second call): keep the first.
    drop(installed);
    install_crypto_provider();
}

/// The AWS SDK, octocrab and kube all speak rustls: one provider for all
/// (aws-lc-rs), installed before the first TLS client is built.
pub fn install_crypto_provider() {
    // An error only means one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
