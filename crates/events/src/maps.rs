//! Folding ordered name/value pairs (headers, query parameters) into the
//! JSON maps the event shapes use.

use http::HeaderMap;
use serde_json::{Map, Value};

/// Ordered `(name, value)` pairs, repeats allowed.
pub(crate) type Pairs = Vec<(String, String)>;

/// Headers as pairs in the map's order. Names are lower-case (that is how
/// `HeaderMap` stores them); values that are not UTF-8 (obs-text) are
/// converted lossily because the event is JSON.
pub(crate) fn header_pairs(headers: &HeaderMap) -> Pairs {
    headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect()
}

/// `{name: value}` where a repeated name keeps its last value.
pub(crate) fn last_wins(pairs: &[(String, String)]) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in pairs {
        map.insert(name.clone(), Value::String(value.clone()));
    }
    map
}

/// `{name: [values...]}` keeping every value in order.
pub(crate) fn all_values(pairs: &[(String, String)]) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in pairs {
        let entry = map
            .entry(name.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(value.clone()));
        }
    }
    map
}

/// `{name: "v1,v2"}`: repeats joined with a bare comma, as HTTP API does.
pub(crate) fn comma_joined(pairs: &[(String, String)]) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in pairs {
        match map.get_mut(name) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(value);
            }
            _ => {
                map.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    map
}

/// REST events write an absent map as `null`, never `{}`.
pub(crate) fn or_null(map: Map<String, Value>) -> Value {
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Pairs {
        [("a", "1"), ("b", "2"), ("a", "3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn folds() {
        let pairs = sample();
        assert_eq!(
            Value::Object(last_wins(&pairs)),
            json!({"a": "3", "b": "2"})
        );
        assert_eq!(
            Value::Object(all_values(&pairs)),
            json!({"a": ["1", "3"], "b": ["2"]})
        );
        assert_eq!(
            Value::Object(comma_joined(&pairs)),
            json!({"a": "1,3", "b": "2"})
        );
        assert_eq!(or_null(Map::new()), Value::Null);
    }

    #[test]
    fn non_utf8_header_values_are_lossy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-latin1",
            http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        assert_eq!(
            header_pairs(&headers),
            vec![("x-latin1".to_string(), "caf\u{fffd}".to_string())]
        );
    }
}
