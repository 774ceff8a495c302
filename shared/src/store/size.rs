//! DynamoDB's item size rules, applied by every adapter so that an item the
//! embedded store accepts is one DynamoDB accepts too.

use serde_json::{Map, Value};

/// 400 KB, DynamoDB's limit for one item.
pub const ITEM_SIZE_LIMIT: usize = 400 * 1024;

/// The size DynamoDB counts for an item: attribute names plus values.
pub fn item_size(attributes: &Map<String, Value>) -> usize {
    attributes
        .iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::String(s) => s.len(),
        // About one byte per two significant digits, plus one.
        Value::Number(n) => {
            let digits = n.to_string().chars().filter(char::is_ascii_digit).count();
            digits.div_ceil(2) + 1
        }
        Value::Array(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        Value::Object(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
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
    fn a_401_kb_string_is_over_the_limit() {
        assert!(size(json!({"s": "x".repeat(401 * 1024)})) > ITEM_SIZE_LIMIT);
        assert!(size(json!({"s": "x".repeat(399 * 1024)})) < ITEM_SIZE_LIMIT);
    }
}
