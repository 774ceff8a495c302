//! Verify + parse of a 25 KB push delivery: what the webhook does before it
//! touches any store. `cargo bench -p ferry --bench intake`.
//!
//! Criterion reports the mean; the percentiles printed first come from
//! timing 100,000 single runs, since a delivery's tail is what GitHub sees.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferry::domain::signature::{WebhookSecret, sign, verify};
use ferry::forge::github::parse;
use secrecy::SecretString;

const BODY: &[u8] = include_bytes!("data/push-25k.json");

fn verify_then_parse(secrets: &[WebhookSecret], header: &[u8]) {
    verify(secrets, black_box(BODY), Some(header)).expect("signed");
    black_box(parse("push", BODY).expect("a push"));
}

/// Times 100,000 single runs of `work` and prints their percentiles.
fn percentiles(name: &str, mut work: impl FnMut()) {
    let mut samples: Vec<Duration> = (0..100_000)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed()
        })
        .collect();
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "{name} of a {} B push, 100000 runs: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        BODY.len(),
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        at(0.999).as_secs_f64() * 1e6,
        samples[samples.len() - 1].as_secs_f64() * 1e6,
    );
}

fn intake(c: &mut Criterion) {
    let secrets = [WebhookSecret::new(SecretString::from("bench-secret".to_owned()))];
    let header = sign(&secrets[0], BODY);
    percentiles("verify+parse", || verify_then_parse(&secrets, header.as_bytes()));
    percentiles("verify", || verify(&secrets, black_box(BODY), Some(header.as_bytes())).expect("signed"));
    percentiles("parse", || drop(black_box(parse("push", BODY))));
    let mut group = c.benchmark_group("webhook");
    group.throughput(Throughput::Bytes(BODY.len() as u64));
    group.bench_function("verify+parse 25 KB push", |b| b.iter(|| verify_then_parse(&secrets, header.as_bytes())));
    group.bench_function("verify only", |b| b.iter(|| verify(&secrets, black_box(BODY), Some(header.as_bytes()))));
    group.bench_function("parse only", |b| b.iter(|| parse("push", black_box(BODY))));
    group.finish();
}

criterion_group!(benches, intake);
criterion_main!(benches);
