//! `ferry app-manifest` asks for permissions GitHub knows, at levels GitHub
//! offers, and for events GitHub sends: checked against `@octokit/openapi`
//! and `@octokit/webhooks-examples`.

use ferry::forge::github::events::{HANDLED, Reaches, subscribed};
use ferry::forge::github::manifest::{AppUrls, PERMISSIONS, app_manifest};
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
    // Every event of the table is one GitHub sends: adding one it would not fails here.
    for (event, _) in HANDLED {
        assert!(names.contains(&event), "GitHub sends no {event} event");
    }
    // Sent to every App without a subscription (and not subscribable): exactly these.
    let every_app: Vec<&str> = HANDLED.iter().filter(|(_, how)| *how == Reaches::EveryApp).map(|(e, _)| *e).collect();
    assert_eq!(every_app, ["ping", "installation", "installation_repositories"]);
    let manifest =
        app_manifest("Ferry", &AppUrls { homepage: "https://x".into(), webhook: "https://x/webhook".into() });
    assert_eq!(
        manifest["default_events"],
        serde_json::json!(subscribed()),
        "the manifest subscribes to the table's events"
    );
}
