//! `ferry replay FILE`: sends a sample delivery to a running Ferry, signed
//! with the configured webhook secret, under a fresh delivery id.

use std::path::Path;

use anyhow::{Context as _, bail};
use base64::Engine;
use ferry::domain::signature::sign;
use serde_json::Value;

pub struct Replay<'a> {
    pub file: &'a Path,
    pub url: &'a str,
    pub event: Option<&'a str>,
    pub delivery: Option<&'a str>,
}

pub async fn replay(replay: Replay<'_>) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(replay.file).with_context(|| format!("cannot read {}", replay.file.display()))?;
    let (event, body) = delivery_of(replay.file, &text, replay.event)?;
    let context = ferry::Context::connect(ferry::Config::from_env()?).await?;
    let secrets = context.webhook_secrets.get().await?;
    let Some(secret) = secrets.first() else {
        bail!("no webhook secret is configured: set FERRY_WEBHOOK_SECRET");
    };
    let delivery = replay.delivery.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let (status, reply) = post(replay.url, secret, &event, &delivery, body).await?;
    println!("{event} {delivery}: {status}");
    println!("{}", serde_json::to_string_pretty(&reply)?);
    if !status.is_success() {
        bail!("the server answered {status}");
    }
    Ok(())
}

/// Posts one delivery as GitHub would, signed with `secret`: the status and
/// the JSON answer.
pub async fn post(
    url: &str,
    secret: &ferry::domain::signature::WebhookSecret,
    event: &str,
    delivery: &str,
    body: String,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    ferry::telemetry::install_crypto_provider();
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "ferry-replay")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign(secret, body.as_bytes()))
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}: is `ferry serve` running?"))?;
    let status = response.status();
    let reply: Value = response.json().await.unwrap_or(Value::Null);
    Ok((status, reply))
}

/// The event name and body of a file: a Lambda HTTP event from `events/`
/// carries both; a raw payload takes its name from `--event` or the file
/// name (`pull_request.opened.json` is a `pull_request`).
fn delivery_of(file: &Path, text: &str, event: Option<&str>) -> anyhow::Result<(String, String)> {
    let json: Value = serde_json::from_str(text).with_context(|| format!("{} is not JSON", file.display()))?;
    if json.get("requestContext").is_some() {
        let header = json["headers"]
            .as_object()
            .and_then(|headers| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-github-event")))
            .and_then(|(_, v)| v.as_str());
        let name = event.or(header).context("the event has no X-GitHub-Event header: pass --event")?;
        let body = json["body"].as_str().context("the event has no body")?;
        let body = if json["isBase64Encoded"] == true {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(body)?)?
        } else {
            body.to_owned()
        };
        return Ok((name.to_owned(), body));
    }
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let name = event.unwrap_or_else(|| stem.split('.').next().unwrap_or_default());
    if name.is_empty() {
        bail!("cannot tell the event of {}: pass --event", file.display());
    }
    Ok((name.to_owned(), text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_payloads_are_named_by_their_file() {
        let (event, body) = delivery_of(Path::new("events/github/pull_request.opened.json"), "{}", None).unwrap();
        assert_eq!((event.as_str(), body.as_str()), ("pull_request", "{}"));
        let (event, _) = delivery_of(Path::new("x.json"), "{}", Some("push")).unwrap();
        assert_eq!(event, "push");
    }

    #[test]
    fn lambda_events_carry_their_event_and_body() {
        let wrapped =
            r#"{"requestContext":{},"headers":{"X-GitHub-Event":"ping"},"body":"e30=","isBase64Encoded":true}"#;
        let (event, body) = delivery_of(Path::new("e.json"), wrapped, None).unwrap();
        assert_eq!((event.as_str(), body.as_str()), ("ping", "{}"));
    }
}
