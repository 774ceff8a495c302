//! Process-wide setup every binary does first: logs and the TLS provider.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Structured logs: JSON on Lambda (CloudWatch indexes the fields) unless
/// the function's logging config says `Text`, compact text elsewhere. The
/// level is Lambda's `AWS_LAMBDA_LOG_LEVEL` when set, else `RUST_LOG`, else
/// `info`. Lambda's controls are read here rather than through
/// lambda_runtime's subscriber, which panics when installed twice, colours
/// its text for a terminal, and writes text unless the log format is JSON.
pub fn init() {
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let filter = match std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref().and_then(lambda_level) {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // Logs on stderr: stdout is for what a command prints for people and scripts.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!on_lambda && std::io::stderr().is_terminal());
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("text"));
    let installed = match (on_lambda, text) {
        (true, false) => builder.json().with_current_span(false).without_time().try_init(),
        (true, true) => builder.without_time().try_init(),
        (false, _) => builder.compact().try_init(),
    };
    // Already installed (tests, or a second call): keep the first.
    drop(installed);
    if on_lambda {
        crate::metrics::emf::install();
    }
    install_crypto_provider();
}

/// Lambda's log levels in tracing's words (it has no `fatal`).
fn lambda_level(level: &str) -> Option<&'static str> {
    Some(match level.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

/// An error and its causes on one line, `outer: inner: innermost`: what a
/// log line or an answer says of a failure (only the outer one is otherwise
/// shown).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The AWS SDK, octocrab, kube and reqwest all speak rustls: one provider
/// for all (ring), installed before the first TLS client is built, and the
/// App JWT's signer on the same library.
pub fn install_crypto_provider() {
    // An error only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    crate::forge::github::jwt::install();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_log_levels_read_as_tracing_levels() {
        let read: Vec<_> = ["TRACE", "debug", "INFO", "WARN", "ERROR", "FATAL", "loud", ""].map(lambda_level).into();
        let want = [Some("trace"), Some("debug"), Some("info"), Some("warn"), Some("error"), Some("error"), None, None];
        assert_eq!(read, want);
    }
}
