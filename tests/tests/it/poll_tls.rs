//! A `[[poll]]` entry's `ca_file`: a host whose certificate comes from a
//! private CA is polled only when that CA is given. The CA, the loopback
//! server's certificate and the TLS server are made per run.

use std::sync::Arc;

use ferry::poll::source::{Polled, Sources};
use ferry::poll::{Format, SourceKind, TrackedRef};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHA: &str = "cccccccccccccccccccccccccccccccccccccccc";

/// A private CA (its PEM) and a server certificate it signed for 127.0.0.1
/// and localhost, with the server's key.
struct Pki {
    ca_pem: String,
    server: rustls::ServerConfig,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &Issuer::from_params(&ca_params, &ca_key)).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
    Pki { ca_pem: ca.pem(), server }
}

/// Serves GitHub's commit answer for any request over TLS on loopback;
/// returns the API base URL.
async fn serve_tls(config: rustls::ServerConfig) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client refusing the certificate ends the handshake here.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = serde_json::json!({ "sha": SHA }).to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://127.0.0.1:{}", address.port())
}

fn tracked(api: &str, ca_file: Option<String>) -> TrackedRef {
    TrackedRef {
        url: "https://git.example.com/acme/api".into(),
        reference: "main".into(),
        kind: SourceKind::Github,
        frequency: "1m".into(),
        endpoint: Some("https://hooks.example.com/events".into()),
        secret: None,
        secret_name: None,
        launch: false,
        format: Format::Cloudevents,
        api_url: Some(api.to_owned()),
        ca_file,
        token_secret: None,
        provider: None,
        clone_secret: None,
    }
}

#[tokio::test]
async fn a_host_signed_by_a_private_ca_is_polled_only_with_its_ca_file() {
    ferry::telemetry::install_crypto_provider();
    let Pki { ca_pem, server } = pki();
    let api = serve_tls(server).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let sources = Sources::new(&url::Url::parse("https://api.github.com").unwrap());

    let trusted = sources.fetch(&tracked(&api, Some(ca_file.display().to_string())), None, None).await;
    let Polled::Head { sha, .. } = trusted else { panic!("with the CA the poll succeeds: {trusted:?}") };
    assert_eq!(sha, SHA);

    let untrusted = sources.fetch(&tracked(&api, None), None, None).await;
    let Polled::Failed(problem) = untrusted else { panic!("without the CA the poll fails: {untrusted:?}") };
    assert!(problem.contains("certificate"), "a certificate error: {problem}");

    let missing =
        sources.fetch(&tracked(&api, Some(dir.path().join("none.pem").display().to_string())), None, None).await;
    let Polled::Failed(problem) = missing else { panic!("a missing CA file fails: {missing:?}") };
    assert!(problem.contains("cannot read"), "{problem}");
}
