//! Every log line the test binary writes, kept so a test can prove that no
//! secret reached a log: a global subscriber at `trace` for Ferry and its
//! GitHub client, installed once per binary.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LINES.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        Capture
    }
}

/// Starts capturing (idempotent).
pub fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("debug,ferry=trace,octocrab=trace,hyper=info,h2=info"))
            .with_writer(Capture)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
}

/// Everything captured so far.
pub fn captured() -> String {
    String::from_utf8_lossy(&LINES.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Fails if any captured line holds a token (`ghs_…`), a JWT (`eyJ….….…`)
/// or a PEM key, or one of `values` (the exact secrets a test handled).
pub fn assert_no_secrets(values: &[String]) {
    let text = captured();
    assert!(text.lines().count() > 0, "no log line was captured: is capture() called?");
    for line in text.lines() {
        if let Some(found) = secret_in(line) {
            panic!("a log line holds {found}: {line}");
        }
        if let Some(value) = values.iter().filter(|v| v.len() >= 8).find(|v| line.contains(v.as_str())) {
            panic!("a log line holds a secret value ({} characters): {line}", value.len());
        }
    }
}

/// What kind of secret `text` holds, if it looks like it holds one.
pub fn secret_in(text: &str) -> Option<&'static str> {
    let word = |at: usize| -> &str {
        let rest = &text[at..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))).unwrap_or(rest.len());
        &rest[..end]
    };
    for (at, _) in text.match_indices("ghs_") {
        if word(at).len() >= 4 + 30 {
            return Some("an installation token");
        }
    }
    for (at, _) in text.match_indices("eyJ") {
        if word(at).split('.').filter(|part| part.len() >= 2).count() >= 3 {
            return Some("a JWT");
        }
    }
    ["-----BEGIN", "PRIVATE KEY-----"].into_iter().find(|m| text.contains(m)).map(|_| "a PEM key")
}

#[cfg(test)]
mod tests {
    use super::secret_in;

    #[test]
    fn secrets_are_told_from_lookalikes() {
        assert_eq!(secret_in("token=ghs_16C7e42F292c6912E7710c838347Ae178B4a"), Some("an installation token"));
        assert_eq!(secret_in("Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiI0MiJ9.c2lnbmF0dXJl"), Some("a JWT"));
        assert_eq!(secret_in("-----BEGIN RSA PRIVATE KEY-----"), Some("a PEM key"));
        assert_eq!(secret_in(r#"request_id=Some("p0sSPhLZQWnK5G7X6YYFw3gL4OwwXAznzXbKL09aeyJADKhbZAiR")"#), None);
        assert_eq!(secret_in("the ghs_ prefix"), None);
    }
}
