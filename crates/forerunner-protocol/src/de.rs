//! Lenient deserializers for request parameters.
//!
//! GitLab merges query-string, form and JSON parameters, so a boolean may
//! arrive as `true` or `"true"`, a number as `3600` or `"3600"`, and a tag list
//! as `["a","b"]` or `"a,b"`. These helpers accept every such form so a
//! request decodes the same whichever way the client sent it.

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::Value;

/// Parses a boolean from a JSON bool, a number (0/1) or a string
/// (`true`/`false`/`1`/`0`/`yes`/`no`, any case).
pub fn bool_value(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "t" => Some(true),
            "false" | "0" | "no" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Parses an integer from a JSON number or a decimal string.
pub fn int_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Option<bool>` field accepting every form of [`bool_value`]; `null` is `None`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => bool_value(&v)
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("expected a boolean, got {v}"))),
    }
}

/// `Option<i64>` field accepting a number or a decimal string; `null` and `""` are `None`.
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v) => int_value(&v)
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("expected an integer, got {v}"))),
    }
}

/// `Option<Vec<String>>` tag list: an array (each element may itself hold
/// commas) or a comma-separated string, entries trimmed, empty ones dropped —
/// GitLab's `CommaSeparatedToArray`.
pub fn opt_tag_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    fn split(s: &str, out: &mut Vec<String>) {
        out.extend(
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        );
    }
    let mut out = Vec::new();
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => split(&s, &mut out),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => split(&s, &mut out),
                    other => {
                        return Err(de::Error::custom(format!(
                            "expected tag names, got {other}"
                        )))
                    }
                }
            }
        }
        Some(other) => {
            return Err(de::Error::custom(format!(
                "expected a list of tags or a comma-separated string, got {other}"
            )))
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct P {
        #[serde(default, deserialize_with = "opt_bool")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "opt_int")]
        i: Option<i64>,
        #[serde(default, deserialize_with = "opt_tag_list")]
        t: Option<Vec<String>>,
    }

    #[test]
    fn accepts_every_form() {
        let p: P = serde_json::from_str(r#"{"b":"true","i":"3600","t":"a, b,,c"}"#).unwrap();
        assert_eq!(p.b, Some(true));
        assert_eq!(p.i, Some(3600));
        assert_eq!(p.t.unwrap(), ["a", "b", "c"]);
        let p: P = serde_json::from_str(r#"{"b":false,"i":7,"t":["x","y,z"]}"#).unwrap();
        assert_eq!(p.b, Some(false));
        assert_eq!(p.i, Some(7));
        assert_eq!(p.t.unwrap(), ["x", "y", "z"]);
        let p: P = serde_json::from_str(r#"{}"#).unwrap();
        assert!(p.b.is_none() && p.i.is_none() && p.t.is_none());
        assert!(serde_json::from_str::<P>(r#"{"b":"maybe"}"#).is_err());
    }
}
