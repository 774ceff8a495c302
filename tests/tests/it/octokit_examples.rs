//! Every example payload GitHub's own `@octokit/webhooks-examples` publishes,
//! signed and sent through the real Lambda handler. `scripts/test` installs
//! the package and says where with `FERRY_WEBHOOK_EXAMPLES`.

use ferry::forge::github::events::handles;
use ferry_tests::events::{Front, signed};
use ferry_tests::webhook::Harness;
use serde_json::Value;

const SECRET: &str = "octokit-examples";

fn examples() -> Vec<(String, Value)> {
    let path = std::env::var("FERRY_WEBHOOK_EXAMPLES").unwrap_or_else(|_| {
        panic!(
            "FERRY_WEBHOOK_EXAMPLES must name @octokit/webhooks-examples' api.github.com/index.json: run ./scripts/test"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let index: Vec<Value> = serde_json::from_str(&text).expect("the examples index");
    index
        .into_iter()
        .flat_map(|webhook| {
            let name = webhook["name"].as_str().expect("a webhook name").to_owned();
            webhook["examples"].as_array().cloned().unwrap_or_default().into_iter().map(move |e| (name.clone(), e))
        })
        .collect()
}

#[tokio::test]
async fn every_octokit_example_is_answered_2xx() {
    let harness = Harness::embedded(SECRET).await;
    let examples = examples();
    assert!(examples.len() > 300, "only {} examples", examples.len());
    let mut handled = 0;
    for (n, (name, payload)) in examples.iter().enumerate() {
        let body = payload.to_string();
        let event = signed(Front::HttpApi, name, &format!("octokit-{n}"), SECRET, &body);
        let (status, reply) = harness.invoke(&event).await;
        if handles(name) {
            handled += 1;
            assert!((200..300).contains(&status), "{name} #{n}: {status} {reply}");
            assert_ne!(reply["outcome"], "failed", "{name} #{n}: {reply}");
        } else {
            assert_eq!((status, &reply["outcome"]), (202, &Value::from("ignored")), "{name} #{n}: {reply}");
        }
    }
    assert!(handled > 80, "only {handled} examples of handled events");
}

/// GitHub's own suspend and unsuspend examples carry the same `updated_at`:
/// ordering by GitHub's time must not take the unsuspension for a late event.
#[tokio::test]
async fn githubs_own_suspend_then_unsuspend_leaves_the_installation_unsuspended() {
    let harness = Harness::embedded(SECRET).await;
    let of = |action: &str| {
        examples()
            .into_iter()
            .find(|(name, e)| name == "installation" && e["action"] == action)
            .unwrap_or_else(|| panic!("no installation.{action} example"))
            .1
    };
    let id = of("suspend")["installation"]["id"].as_u64().unwrap();
    let key = ferry::store::Key::Installation(ferry::domain::InstallationId::new(id));
    for (n, action) in ["suspend", "unsuspend"].into_iter().enumerate() {
        let event = signed(Front::HttpApi, "installation", &format!("order-{n}"), SECRET, &of(action).to_string());
        let (status, reply) = harness.invoke(&event).await;
        assert_eq!(status, 200, "{action}: {reply}");
        let suspended =
            harness.state().load::<ferry::domain::Installation>(&key).await.unwrap().unwrap().record.suspended;
        assert_eq!(suspended, action == "suspend", "{action}: {reply}");
    }
}
