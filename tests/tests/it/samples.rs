//! `events/`: the wrapped samples match their payloads and the test secret,
//! and every one of them goes through the real Lambda handler.

use std::path::{Path, PathBuf};

use ferry_tests::events::{Front, SAMPLE_SECRET, signed};
use ferry_tests::webhook::Harness;
use serde_json::Value;

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// `(file stem, event name, payload)` of every sample payload.
fn payloads() -> Vec<(String, String, String)> {
    let mut found: Vec<(String, String, String)> = std::fs::read_dir(events_dir().join("github"))
        .expect("events/github")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let event = stem.split('.').next().unwrap().to_owned();
            (stem, event, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    found.sort();
    found
}

fn wrapped(front: Front, stem: &str, event: &str, payload: &str) -> Value {
    signed(front, event, &format!("sample-{}", stem.replace(['.', '_'], "-")), SAMPLE_SECRET, payload)
}

#[test]
fn events_are_current() {
    let update = std::env::var_os("FERRY_UPDATE_EVENTS").is_some();
    let mut stale = Vec::new();
    for front in Front::ALL {
        let dir = events_dir().join(front.folder());
        for (stem, event, payload) in payloads() {
            let path = dir.join(format!("{stem}.json"));
            let expected = serde_json::to_string_pretty(&wrapped(front, &stem, &event, &payload)).unwrap() + "\n";
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &expected).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(expected.as_str()) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale samples, run FERRY_UPDATE_EVENTS=1 cargo test -p ferry-tests events_are_current: {stale:?}"
    );
    assert_eq!(
        payloads().len(),
        7,
        "push, pull_request (opened, closed), release, installation (created, deleted), ping"
    );
}

#[tokio::test]
async fn every_sample_goes_through_the_lambda_handler() {
    for front in Front::ALL {
        let harness = Harness::embedded(SAMPLE_SECRET).await;
        for (stem, _, _) in payloads() {
            let path = events_dir().join(front.folder()).join(format!("{stem}.json"));
            let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let (status, reply) = harness.invoke(&event).await;
            assert!((200..300).contains(&status), "{}: {status} {reply}", path.display());
            assert_ne!(reply["outcome"], "failed", "{}: {reply}", path.display());
        }
    }
}
