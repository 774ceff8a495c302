//! `ferry app-manifest` asks for permissions GitHub knows, at levels GitHub
//! offers, and for events GitHub sends: checked against `@octokit/openapi`
//! and `@octokit/webhooks-examples`.

use ferry::forge::github::manifest::{AppUrls, EVENTS, PERMISSIONS, app_manifest};
use ferry::forge::github::payload::HANDLED;
use ferry_tests::openapi;
use serde_json::Value;

#[test]
fn every_permission_is_one_github_apps_can_have() {
    let known = openapi::component("app-permissions")["properties"].as_object().expect("app permission properties");
    let manifest = app_manifest("Ferry", &AppUrls::new(Some("https://ferry.example.com"), None).unwrap());
    for (permission, access) in manifest["default_permissions"].as_object().unwrap() {
        let levels =
            known.get(permission).unwrap_or_else(|| panic!("GitHub Apps have no permission {permission}"))["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{permission} has no levels"));
        assert!(levels.contains(access), "{permission}: {access} is not one of {levels:?}");
    }
    assert_eq!(PERMISSIONS.iter().filter(|(p, _, _)| *p == "metadata").count(), 1, "metadata is mandatory");
}

#[test]
fn every_event_is_one_github_sends_and_every_routed_event_is_asked_for() {
    let path = std::env::var("FERRY_WEBHOOK_EXAMPLES")
        .unwrap_or_else(|_| panic!("FERRY_WEBHOOK_EXAMPLES is not set: run ./scripts/test"));
    let index: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let names: Vec<&str> = index.iter().filter_map(|w| w["name"].as_str()).collect();
    for event in EVENTS {
        assert!(names.contains(&event), "GitHub sends no {event} event");
    }
    // Sent to every App without a subscription (and not subscribable).
    let automatic = ["ping", "installation", "installation_repositories"];
    for routed in HANDLED.iter().filter(|e| !automatic.contains(e)) {
        assert!(EVENTS.contains(routed), "Ferry routes {routed} but the manifest does not subscribe to it");
    }
}
