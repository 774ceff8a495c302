//! Verify-then-parse under mutation: no forgery accepted, no panic.

use ferry::domain::signature::{sign, verify};
use ferry::forge::github::parse;
use ferry_tests::events::secret;
use proptest::prelude::*;

const BODY: &str = include_str!("../../../events/github/push.json");

proptest! {
    #![proptest_config(ProptestConfig { cases: 50_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// A changed body under the original signature is refused.
    #[test]
    fn a_mutated_body_is_refused(position in 0..BODY.len(), byte in any::<u8>()) {
        let key = secret("fuzz");
        let header = sign(&key, BODY.as_bytes());
        let mut body = BODY.as_bytes().to_vec();
        prop_assume!(body[position] != byte);
        body[position] = byte;
        prop_assert!(verify(&[key], &body, Some(header.as_bytes())).is_err());
        // Whatever verify thought, parsing such bytes must not panic.
        let _ = parse("push", &body);
    }

    /// Arbitrary headers never verify, and never panic.
    #[test]
    fn an_arbitrary_signature_is_refused(header in proptest::collection::vec(any::<u8>(), 0..100)) {
        let key = secret("fuzz");
        prop_assume!(header != sign(&key, BODY.as_bytes()).into_bytes());
        prop_assert!(verify(&[key], BODY.as_bytes(), Some(&header)).is_err());
    }
}

/// Every sample payload, with the event GitHub names it by.
const SAMPLES: [(&str, &str); 7] = [
    ("push", BODY),
    ("pull_request", include_str!("../../../events/github/pull_request.opened.json")),
    ("pull_request", include_str!("../../../events/github/pull_request.closed.json")),
    ("installation", include_str!("../../../events/github/installation.created.json")),
    ("installation", include_str!("../../../events/github/installation.deleted.json")),
    ("release", include_str!("../../../events/github/release.published.json")),
    ("ping", include_str!("../../../events/github/ping.json")),
];

/// JSON of any shape, a few levels deep: what a hostile sender can put in a field.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
        "[0-9a-f]{40}".prop_map(serde_json::Value::from),
        "refs/(heads|tags)/[a-z/.]{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

/// The JSON pointer of every node of `value`.
fn pointers(value: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| pointers(v, format!("{at}/{k}"), out)),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, v)| pointers(v, format!("{at}/{i}"), out))
        }
        _ => {}
    }
    out.push(at);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// A correctly signed payload with any one node replaced by anything,
    /// under its own event name or another: verify accepts it, parse reads
    /// or refuses it, and what it reads routes, serialises for the ledger
    /// and comes back the same, without a panic.
    #[test]
    fn a_signed_hostile_payload_is_read_or_refused_and_routed(
        sample in 0..SAMPLES.len(),
        node in any::<prop::sample::Index>(),
        replacement in any_json(),
        other_name in prop_oneof![Just(None), "[a-z_]{0,24}".prop_map(Some)],
    ) {
        let (name, text) = SAMPLES[sample];
        let mut payload: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut nodes = Vec::new();
        pointers(&payload, String::new(), &mut nodes);
        let pointer = node.get(&nodes).clone();
        match payload.pointer_mut(&pointer) {
            Some(slot) => *slot = replacement,
            None => payload = replacement,
        }
        let body = payload.to_string();
        let key = secret("fuzz");
        prop_assert!(verify(std::slice::from_ref(&key), body.as_bytes(), Some(sign(&key, body.as_bytes()).as_bytes())).is_ok());
        let name = other_name.as_deref().unwrap_or(name);
        if let Ok(event) = parse(name, body.as_bytes()) {
            let _ = ferry::domain::route::route(&event);
            let kept = serde_json::to_string(&event).unwrap();
            let back: ferry::domain::event::GitEvent = serde_json::from_str(&kept).unwrap();
            prop_assert_eq!(back, event);
        }
    }
}
