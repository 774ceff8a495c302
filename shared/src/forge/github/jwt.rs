//! The App JWT's RS256 signature on ring, the crypto library every TLS
//! client in Ferry already links: jsonwebtoken's own providers would add
//! aws-lc or RustCrypto's RSA to each Lambda (BENCHMARKS.md, "Lambda
//! packages"). jsonwebtoken still writes the token; this only signs it.

use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

static RING: CryptoProvider =
    CryptoProvider { signer_factory: signer, verifier_factory: verifier, jwk_utils: JwkUtils::new_unimplemented() };

/// Makes `jsonwebtoken::encode` sign RS256 with ring. Called at start with
/// the TLS provider and again before a key is first used; only the first
/// call does anything.
pub(crate) fn install() {
    // An error only means a provider is installed already: this one.
    let _ = RING.install_default();
}

/// The App's RSA key, parsed by ring from the PKCS#1 DER jsonwebtoken keeps
/// (it unwraps a PKCS#8 PEM to that too).
struct Rs256(RsaKeyPair);

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if *algorithm != Algorithm::RS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    // ring's reason names the check that failed, never the key's bytes.
    let pair = RsaKeyPair::from_der(key.inner()).map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
    Ok(Box::new(Rs256(pair)))
}

/// Ferry signs JWTs and never reads one.
fn verifier(_: &Algorithm, _: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

impl Signer<Vec<u8>> for Rs256 {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut out = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut out)
            // ring's error says nothing more than that signing failed.
            .map_err(|_| signature::Error::new())?;
        Ok(out)
    }
}

impl JwtSigner for Rs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}
