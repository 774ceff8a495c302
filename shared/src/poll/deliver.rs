//! Sending a new commit to its endpoint: a CloudEvent in binary mode
//! (cloudevents-sdk), or a CDEvent, optionally signed with an HMAC header.

use std::time::Duration;

use cloudevents::{EventBuilder, EventBuilderV10};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::{Format, TrackedRef, event_id};

/// The signature header, as GitHub's `X-Hub-Signature-256`.
pub const SIGNATURE_HEADER: &str = "x-ferry-signature-256";

/// The CDEvents type for a change landing on a branch (CDEvents 0.4,
/// source code version control: "change merged").
pub const CDEVENT_TYPE: &str = "dev.cdevents.change.merged.0.2.0";

/// Delivery attempts within one cycle, with this first backoff, doubling.
pub const ATTEMPTS: u32 = 3;
pub const BACKOFF: Duration = Duration::from_millis(200);

/// The request for `sha` of `tracked`: method, headers and body.
pub fn request(tracked: &TrackedRef, sha: &str, body: &[u8]) -> Result<http::Request<Vec<u8>>, String> {
    let id = event_id(&tracked.url, &tracked.ref_path(), sha);
    let request = match tracked.format {
        Format::Cloudevents => {
            let data: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
            let event = EventBuilderV10::new()
                .id(id)
                .source(tracked.url.clone())
                .subject(tracked.ref_path())
                .ty("commit")
                .data("application/json", data)
                .build()
                .map_err(|e| format!("cannot build the CloudEvent: {e}"))?;
            let request = http::Request::<Option<Vec<u8>>>::try_from(event)
                .map_err(|e| format!("cannot encode the CloudEvent: {e}"))?;
            let (parts, body) = request.into_parts();
            http::Request::from_parts(parts, body.unwrap_or_default())
        }
        Format::Cdevents => {
            let event = serde_json::json!({
                "context": {
                    "specversion": "0.4.1",
                    "id": id,
                    "source": tracked.url,
                    "type": CDEVENT_TYPE,
                    "timestamp": crate::domain::Timestamp::now().to_rfc3339(),
                },
                "subject": {
                    "id": sha,
                    "source": tracked.url,
                    "content": { "repository": { "id": tracked.url }, "ref": tracked.ref_path() },
                },
            });
            http::Request::builder()
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&event).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?
        }
    };
    Ok(request)
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &SecretString, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends the event to `endpoint`, retrying a failure with backoff within
/// the cycle. Ok only after a 2xx.
pub async fn send(
    client: &reqwest::Client,
    endpoint: &str,
    request: http::Request<Vec<u8>>,
    secret: Option<&SecretString>,
) -> Result<(), String> {
    let (parts, body) = request.into_parts();
    let mut wait = BACKOFF;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let mut outgoing = client.post(endpoint).body(body.clone());
        for (name, value) in &parts.headers {
            outgoing = outgoing.header(name, value);
        }
        if let Some(secret) = secret {
            outgoing = outgoing.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        match outgoing.send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => last = format!("the endpoint answered {}", response.status().as_u16()),
            Err(e) => last = format!("the endpoint could not be reached: {}", e.without_url()),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::SourceKind;

    fn tracked(format: Format) -> TrackedRef {
        TrackedRef {
            url: "https://github.com/acme/api".into(),
            reference: "main".into(),
            kind: SourceKind::Github,
            frequency: "1m".into(),
            endpoint: Some("https://hooks.example.com".into()),
            secret: None,
            secret_name: None,
            launch: false,
            format,
            api_url: None,
            ca_file: None,
            token_secret: None,
        }
    }

    #[test]
    fn a_commit_becomes_a_binary_mode_cloudevent() {
        let body = br#"{"sha":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","commit":{"message":"x"}}"#;
        let request = request(&tracked(Format::Cloudevents), &"a".repeat(40), body).unwrap();
        let header = |name: &str| request.headers().get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(header("ce-specversion"), "1.0");
        assert_eq!(header("ce-type"), "commit");
        assert_eq!(header("ce-source"), "https://github.com/acme/api");
        assert_eq!(header("ce-subject"), "refs/heads/main");
        assert_eq!(header("ce-id"), event_id("https://github.com/acme/api", "refs/heads/main", &"a".repeat(40)));
        assert_eq!(header("content-type"), "application/json");
        let sent: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(sent["commit"]["message"], "x", "the body is the API's answer");
    }

    #[test]
    fn a_cdevent_names_the_change() {
        let request = request(&tracked(Format::Cdevents), &"b".repeat(40), b"{}").unwrap();
        let sent: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(sent["context"]["type"], CDEVENT_TYPE);
        assert_eq!(sent["subject"]["id"], "b".repeat(40));
        assert_eq!(sent["subject"]["content"]["ref"], "refs/heads/main");
    }

    #[test]
    fn signatures_match_githubs_scheme() {
        // GitHub's published test vector, under Ferry's header.
        let secret = SecretString::from("It's a Secret to Everybody".to_owned());
        assert_eq!(
            signature(&secret, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
