//! `GET /metrics` on `ferry serve`: what Ferry counted, in Prometheus's text
//! format, read by a Prometheus text-format parser; private as the
//! management API is.

use prometheus_parse::{Scrape, Value};

use crate::common::{client, forged, sample, send, serve_demo};

const TOKEN: &str = "metrics-admin-token";

fn counter(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_count_deliveries_and_actions_in_prometheus_text_behind_the_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_demo(dir.path(), &[("FERRY_ADMIN_TOKEN", TOKEN)]);
    send(dir.path(), &server, "push", "metrics-push-1", &sample("push.json"));
    // A signed body under an event name of the sender's choosing (the
    // header is not signed): counted, as `other`, never by that name.
    send(dir.path(), &server, "evil-event-name", "metrics-evil-1", &serde_json::json!({}));
    // A forged delivery: refused, and counted without the event it claimed.
    let forged = forged(&server, "evil<script>").await;
    assert_eq!(forged.status(), 401);

    let url = format!("{}/metrics", server.url);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 401, "private, as the management API is");
    let answer = client().get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format");

    assert_eq!(counter(&scrape, "ferry_deliveries", &[("outcome", "processed")]), 1.0, "{text}");
    assert_eq!(counter(&scrape, "ferry_deliveries_by_event", &[("event", "push")]), 1.0, "{text}");
    assert_eq!(counter(&scrape, "ferry_actions", &[("kind", "pipelinerun.created")]), 1.0, "{text}");
    assert_eq!(counter(&scrape, "ferry_deliveries", &[("outcome", "rejected")]), 1.0, "{text}");
    assert!(!text.contains("evil"), "an event's name of the sender's choosing is no label: {text}");
    assert_eq!(counter(&scrape, "ferry_deliveries_by_event", &[("event", "other")]), 1.0, "{text}");
    let count = scrape.samples.iter().find(|s| s.metric == "ferry_intake_duration_count").expect("a histogram");
    assert!(
        matches!(count.value, Value::Untyped(2.0) | Value::Counter(2.0)),
        "the two deliveries taken in, not the refusal: {text}"
    );
    assert!(text.contains("# TYPE ferry_intake_duration histogram"), "{text}");
    assert!(text.contains("ferry_intake_duration_bucket{le=\"10\"}"), "GitHub's 10 s among the buckets: {text}");
}
