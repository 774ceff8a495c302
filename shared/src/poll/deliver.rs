//! Sending a new commit to its endpoint: a CloudEvent in HTTP binary mode
//! (cloudevents-sdk) carrying the host's answer or a CDEvent, optionally
//! signed with an HMAC header.

use std::time::Duration;

use cloudevents::{EventBuilder, EventBuilderV10};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::{Format, TrackedRef, event_id};

/// The signature header, as GitHub's `X-Hub-Signature-256`.
pub const SIGNATURE_HEADER: &str = "x-ferry-signature-256";

/// The CDEvents release whose events Ferry sends (the context's `version`).
pub const CDEVENTS_VERSION: &str = "0.4.1";

/// The CDEvents type for a new commit on a tracked ref: "change merged"
/// (source code version control), as a commit reaching a watched branch is
/// a change landing on its target branch; `repository.modified` is about the
/// repository itself, and `branch` events only cover creation and deletion.
pub const CDEVENT_TYPE: &str = "dev.cdevents.change.merged.0.2.0";

/// Delivery attempts within one cycle, with this first backoff, doubling.
pub const ATTEMPTS: u32 = 3;
pub const BACKOFF: Duration = Duration::from_millis(200);

/// The request for `sha` of `tracked`: a CloudEvent in HTTP binary mode
/// (the context in `ce-*` headers, the data as the body). Its data is the
/// host's answer, or with CDEvents the CDEvent itself, as the CDEvents
/// CloudEvents binding has it.
pub fn request(tracked: &TrackedRef, sha: &str, body: &[u8]) -> Result<http::Request<Vec<u8>>, String> {
    let id = event_id(&tracked.url, &tracked.ref_path(), sha);
    let event = match tracked.format {
        Format::Cloudevents => {
            let data: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
            EventBuilderV10::new()
                .id(id)
                .source(tracked.url.clone())
                .subject(tracked.ref_path())
                .ty("commit")
                .data("application/json", data)
                .build()
        }
        Format::Cdevents => {
            let timestamp = crate::domain::Timestamp::now().to_rfc3339();
            let event = cdevent(tracked, sha, &id, &timestamp);
            EventBuilderV10::new()
                .id(id)
                .source(tracked.url.clone())
                .subject(sha)
                .ty(CDEVENT_TYPE)
                .time(timestamp.as_str())
                .data("application/json", event)
                .build()
        }
    }
    .map_err(|e| format!("cannot build the CloudEvent: {e}"))?;
    let request =
        http::Request::<Option<Vec<u8>>>::try_from(event).map_err(|e| format!("cannot encode the CloudEvent: {e}"))?;
    let (parts, body) = request.into_parts();
    Ok(http::Request::from_parts(parts, body.unwrap_or_default()))
}

/// The CDEvent (`context` and `subject`) for `sha` landing on the tracked
/// ref; the ref and commit, which the change subject has no field for, are
/// its custom data.
pub fn cdevent(tracked: &TrackedRef, sha: &str, id: &str, timestamp: &str) -> serde_json::Value {
    let origin = url::Url::parse(&tracked.url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    serde_json::json!({
        "context": {
            "version": CDEVENTS_VERSION,
            "id": id,
            "source": tracked.url,
            "type": CDEVENT_TYPE,
            "timestamp": timestamp,
        },
        "subject": {
            "id": sha,
            "source": tracked.url,
            "type": "change",
            "content": { "repository": { "id": tracked.project_path(), "source": origin } },
        },
        "customData": { "ref": tracked.ref_path(), "sha": sha },
        "customDataContentType": "application/json",
    })
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

    fn tracked(format: Format) -> TrackedRef {
        TrackedRef {
            frequency: "1m".into(),
            endpoint: Some("https://hooks.example.com".into()),
            format,
            ..TrackedRef::sample("https://github.com/acme/api")
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
    fn a_cdevent_is_a_binary_mode_cloudevent_carrying_the_whole_cdevent() {
        let sha = "b".repeat(40);
        let request = request(&tracked(Format::Cdevents), &sha, b"{}").unwrap();
        let header = |name: &str| request.headers().get(name).unwrap().to_str().unwrap().to_owned();
        let sent: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        let id = event_id("https://github.com/acme/api", "refs/heads/main", &sha);
        assert_eq!(header("ce-specversion"), "1.0");
        assert_eq!(header("ce-type"), CDEVENT_TYPE);
        assert_eq!(header("ce-source"), "https://github.com/acme/api");
        assert_eq!(header("ce-subject"), sha);
        assert_eq!(header("ce-id"), id);
        assert_eq!(header("content-type"), "application/json");
        let stamp = sent["context"]["timestamp"].as_str().unwrap();
        let instant = |text: &str| crate::domain::Timestamp::parse_rfc3339(text).unwrap();
        assert_eq!(instant(&header("ce-time")), instant(stamp), "ce-time is the CDEvent's timestamp");
        assert_eq!(sent, cdevent(&tracked(Format::Cdevents), &sha, &id, stamp));
        assert_eq!(sent["context"]["version"], CDEVENTS_VERSION);
        assert_eq!(sent["subject"]["type"], "change");
        assert_eq!(sent["subject"]["content"]["repository"]["id"], "acme/api");
        assert_eq!(sent["subject"]["content"]["repository"]["source"], "https://github.com");
        assert_eq!(sent["customData"]["ref"], "refs/heads/main");
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
