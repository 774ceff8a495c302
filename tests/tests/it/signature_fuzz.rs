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
