//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body with a webhook secret.
//! Checked in constant time, against every configured secret (during a
//! rotation two are valid at once), before anything else looks at the body.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A webhook secret. No `Debug` of its value, no `Display`.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl WebhookSecret {
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    /// A fresh random secret: 32 bytes, hex-encoded.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        Self(SecretString::from(hex::encode(bytes)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.0.expose_secret().as_bytes()).expect("HMAC takes keys of any length")
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// Why a delivery's signature was refused; each is a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 must be sha256= and 64 hex digits")]
    Malformed,
    #[error("only sha256 signatures are accepted")]
    UnsupportedAlgorithm,
    #[error("signature does not match")]
    Mismatch,
    #[error("no webhook secret is configured")]
    NoSecret,
}

/// The header value GitHub would send for `body`: `sha256=<hex>`.
pub fn sign(secret: &WebhookSecret, body: &[u8]) -> String {
    let mut mac = secret.mac();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The digest an `X-Hub-Signature-256` header claims: what can be refused
/// without any secret (missing, malformed, another algorithm).
pub fn claimed_digest(header: Option<&[u8]>) -> Result<[u8; 32], SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let Some(hex_digest) = header.strip_prefix(b"sha256=") else {
        return Err(if header.starts_with(b"sha1=") {
            SignatureError::UnsupportedAlgorithm
        } else {
            SignatureError::Malformed
        });
    };
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| SignatureError::Malformed)?;
    Ok(digest)
}

/// Accepts `body` if `header` is its HMAC under any of `secrets`.
pub fn verify(secrets: &[WebhookSecret], body: &[u8], header: Option<&[u8]>) -> Result<(), SignatureError> {
    let expected = claimed_digest(header)?;
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let matches = secrets.iter().any(|secret| {
        let mut mac = secret.mac();
        mac.update(body);
        // verify_slice compares in constant time.
        mac.verify_slice(&expected).is_ok()
    });
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> WebhookSecret {
        WebhookSecret::new(SecretString::from(s.to_owned()))
    }

    /// GitHub's published test vector ("Validating webhook deliveries").
    #[test]
    fn github_test_vector() {
        let key = secret("It's a Secret to Everybody");
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(&key, b"Hello, World!"), expected);
        assert_eq!(verify(&[key], b"Hello, World!", Some(expected.as_bytes())), Ok(()));
    }

    #[test]
    fn either_secret_of_a_rotation_is_accepted() {
        let (old, new) = (secret("old"), secret("new"));
        let body = b"{}";
        for signer in [&old, &new] {
            let header = sign(signer, body);
            assert_eq!(verify(&[old.clone(), new.clone()], body, Some(header.as_bytes())), Ok(()));
        }
        let header = sign(&secret("other"), body);
        assert_eq!(verify(&[old, new], body, Some(header.as_bytes())), Err(SignatureError::Mismatch));
    }

    #[test]
    fn every_bad_header_is_refused_with_its_reason() {
        let key = secret("k");
        let good = sign(&key, b"body");
        let cases: Vec<(Option<&[u8]>, SignatureError)> = vec![
            (None, SignatureError::Missing),
            (Some(b""), SignatureError::Malformed),
            (Some(b"sha256="), SignatureError::Malformed),
            (Some(b"sha256=zz"), SignatureError::Malformed),
            (Some(&good.as_bytes()[..good.len() - 2]), SignatureError::Malformed),
            (Some(b"sha1=0123456789abcdef0123456789abcdef01234567"), SignatureError::UnsupportedAlgorithm),
            (Some(good.as_bytes().strip_prefix(b"sha256=").unwrap()), SignatureError::Malformed),
        ];
        for (header, expected) in cases {
            assert_eq!(verify(std::slice::from_ref(&key), b"body", header), Err(expected), "{header:?}");
        }
        assert_eq!(verify(std::slice::from_ref(&key), b"body!", Some(good.as_bytes())), Err(SignatureError::Mismatch));
        assert_eq!(verify(&[], b"body", Some(good.as_bytes())), Err(SignatureError::NoSecret));
    }

    #[test]
    fn uppercase_hex_is_accepted_as_github_may_send_it() {
        let key = secret("k");
        let header = sign(&key, b"x").to_uppercase().replace("SHA256=", "sha256=");
        assert_eq!(verify(&[key], b"x", Some(header.as_bytes())), Ok(()));
    }

    #[test]
    fn secrets_never_show_in_debug() {
        assert!(!format!("{:?}", secret("hunter2")).contains("hunter2"));
        assert_ne!(WebhookSecret::generate().expose(), WebhookSecret::generate().expose());
    }
}
