//! GitLab's JSON error bodies.
//!
//! GitLab (through the Grape framework) answers errors in two shapes:
//! `{"message": …}` from its own helpers (`forbidden!`, `not_found!`, …) and
//! `{"error": "…"}` from framework validation and raw `error!` calls. The
//! `message` may itself be an object of field errors
//! (`{"message": {"tags_list": ["can not be empty …"]}}`).

use serde::{Deserialize, Serialize};

/// An error body as GitLab sends it. Both fields are optional on input so any
/// GitLab error decodes; exactly one is set on output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `{"message": "403 Forbidden"}` or `{"message": {"field": ["…"]}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<serde_json::Value>,
    /// `{"error": "404 Not Found"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ErrorBody {
    /// A `{"message": text}` body.
    pub fn message(text: impl Into<String>) -> Self {
        Self {
            message: Some(serde_json::Value::String(text.into())),
            error: None,
        }
    }

    /// A `{"error": text}` body.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            message: None,
            error: Some(text.into()),
        }
    }

    /// One line of human-readable text: the message (field errors flattened
    /// as `field: a, b; other: c`), else the error, else an empty string.
    pub fn text(&self) -> String {
        match (&self.message, &self.error) {
            (Some(serde_json::Value::String(s)), _) => s.clone(),
            (Some(serde_json::Value::Object(fields)), _) => fields
                .iter()
                .map(|(field, errs)| {
                    let errs = match errs {
                        serde_json::Value::Array(items) => items
                            .iter()
                            .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(", "),
                        other => other.to_string(),
                    };
                    format!("{field}: {errs}")
                })
                .collect::<Vec<_>>()
                .join("; "),
            (Some(other), _) => other.to_string(),
            (None, Some(e)) => e.clone(),
            (None, None) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_field_errors() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"message":{"tags_list":["can not be empty when runner is not allowed to pick untagged jobs"]}}"#,
        )
        .unwrap();
        assert_eq!(
            body.text(),
            "tags_list: can not be empty when runner is not allowed to pick untagged jobs"
        );
    }

    #[test]
    fn message_and_error_shapes() {
        assert_eq!(
            serde_json::to_string(&ErrorBody::message("403 Forbidden")).unwrap(),
            r#"{"message":"403 Forbidden"}"#
        );
        assert_eq!(
            serde_json::to_string(&ErrorBody::error("404 Not Found")).unwrap(),
            r#"{"error":"404 Not Found"}"#
        );
    }
}
