//! DynamoDB's item size rules, applied by every adapter so that an item the
//! embedded store accepts is one DynamoDB accepts too.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// 400 KB, DynamoDB's limit for one item.
pub const ITEM_SIZE_LIMIT: usize = 400 * 1024;

/// The size DynamoDB counts for an item: attribute names plus values.
pub fn item_size(attributes: &Map<String, Value>) -> usize {
    attributes.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::String(s) => s.len(),
        // About one byte per two significant digits, plus one.
        Value::Number(n) => number_size(n),
        Value::Array(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        Value::Object(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
    }
}

/// [`item_size`] of the JSON object in `text`, read without building a
/// `Value`: the embedded store measures what it is about to write.
pub fn json_item_size(text: &str) -> Result<usize, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let size = TopLevel.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(size)
}

/// A bound on [`json_item_size`] of `text`, a JSON object, that costs
/// nothing to compute: twice its length. Each value counts at most twice
/// its JSON, plus one: a string counts its bytes (JSON adds quotes), a
/// number of d digits d/2 + 1 (its text has d; a float read back may gain
/// digits, hence the one), null or a boolean 1; a list or map of n members
/// counts 3 + n plus its members' own, where the JSON has 2 brackets and
/// n - 1 commas, and a map each name's quotes and colon. The top-level map
/// counts no brackets and gives each member those 4 bytes of slack, which
/// absorb the one.
#[cfg(any(test, feature = "embedded"))]
pub(crate) fn at_most_twice_the_text(text: &str) -> usize {
    2 * text.len()
}

/// The top-level map: names count, with no per-element overhead.
struct TopLevel;

impl<'de> DeserializeSeed<'de> for TopLevel {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut size = 0;
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            size += name.len() + map.next_value_seed(ValueSize)?;
        }
        Ok(size)
    }
}

/// The size of one value, by the rules of `value_size`.
struct ValueSize;

impl<'de> DeserializeSeed<'de> for ValueSize {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_any(self)
    }
}

pub(crate) fn number_size(n: impl fmt::Display) -> usize {
    n.to_string().chars().filter(char::is_ascii_digit).count().div_ceil(2) + 1
}

impl<'de> Visitor<'de> for ValueSize {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<usize, E> {
        Ok(1)
    }
    fn visit_bool<E>(self, _: bool) -> Result<usize, E> {
        Ok(1)
    }
    fn visit_u64<E>(self, n: u64) -> Result<usize, E> {
        Ok(number_size(n))
    }
    fn visit_i64<E>(self, n: i64) -> Result<usize, E> {
        Ok(number_size(n))
    }
    fn visit_f64<E>(self, n: f64) -> Result<usize, E> {
        // As serde_json::Number shows it, so both measures agree.
        Ok(serde_json::Number::from_f64(n).map_or(1, number_size))
    }
    fn visit_str<E>(self, s: &str) -> Result<usize, E> {
        Ok(s.len())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut size = 3;
        while let Some(element) = seq.next_element_seed(ValueSize)? {
            size += 1 + element;
        }
        Ok(size)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut size = 3;
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            size += 1 + name.len() + map.next_value_seed(ValueSize)?;
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn size(v: Value) -> usize {
        item_size(v.as_object().unwrap())
    }

    #[test]
    fn counts_names_and_values() {
        assert_eq!(size(json!({"pk": "abc"})), 5);
        assert_eq!(size(json!({"a": true, "b": null})), 4);
        assert_eq!(size(json!({"n": 12345})), 1 + 4);
    }

    #[test]
    fn counts_nested_documents_with_overhead() {
        assert_eq!(size(json!({"l": ["ab", "c"]})), 1 + 3 + (1 + 2) + (1 + 1));
        assert_eq!(size(json!({"m": {"k": "vv"}})), 1 + 3 + 1 + 1 + 2);
    }

    #[test]
    fn both_measures_agree() {
        let values = [
            json!({"pk": "abc", "n": -12345, "f": 1.5, "b": true, "z": null}),
            json!({"l": ["ab", 7, [1, 2], {"k": "v"}], "m": {"k": "vv", "e": "\"é\n"}}),
            json!({"paths": (0..500).map(|i| format!("src/{i}.rs")).collect::<Vec<_>>()}),
        ];
        for value in values {
            assert_eq!(json_item_size(&value.to_string()).unwrap(), size(value.clone()), "{value}");
        }
    }

    /// Any JSON value, nested a few levels: lists and maps of any of them.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (0u64..10).prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,4}", inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn no_item_counts_more_than_twice_its_text(
            fields in proptest::collection::btree_map(".{0,6}", any_json(), 0..8)
        ) {
            let text = Value::Object(fields.into_iter().collect()).to_string();
            proptest::prop_assert!(json_item_size(&text).unwrap() <= at_most_twice_the_text(&text), "{}", text);
        }
    }

    #[test]
    fn the_worst_cases_stay_within_the_bound() {
        // A lone digit counts 2 for its 1 byte; an empty list 3 for 2.
        for text in [r#"{"":[0]}"#, r#"{"":[[0]]}"#, r#"{"":[]}"#, r#"{"":{}}"#, r#"{}"#] {
            assert!(json_item_size(text).unwrap() <= at_most_twice_the_text(text), "{text}");
        }
        assert_eq!(json_item_size(r#"{"":[[0]]}"#).unwrap(), 3 + 1 + 3 + 1 + 2);
    }

    #[test]
    fn a_401_kb_string_is_over_the_limit() {
        assert!(size(json!({"s": "x".repeat(401 * 1024)})) > ITEM_SIZE_LIMIT);
        assert!(size(json!({"s": "x".repeat(399 * 1024)})) < ITEM_SIZE_LIMIT);
    }
}
