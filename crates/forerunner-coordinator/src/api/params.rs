//! [`Params`]: request parameters merged from the query string and the body,
//! as Grape merges them.
//!
//! Every method may carry parameters in the query string, a JSON body or a
//! form body (URL-encoded or multipart) (`DELETE /runners?token=…` from python-gitlab, the same call
//! with a JSON body from the official runner). Body values win over query
//! values. `key[]=a&key[]=b` becomes an array. An empty body with a JSON
//! content type (python-gitlab on GET and DELETE) is no parameters; a body
//! that does not parse is a `400`, never a `500`.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::api::error::ApiError;

/// Largest accepted body of a parameter-carrying request.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Merged request parameters.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// Decodes the parameters into `T`; a value of the wrong shape is a
    /// Grape-style `400 {"error": …}`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_value(Value::Object(self.0.clone()))
            .map_err(|err| ApiError::InvalidParams(format!("invalid parameters: {err}")))
    }

    /// Removes and returns a parameter.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    /// A parameter as a string, if present and a scalar.
    pub fn str(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Whether a parameter is present (even if `null` or empty).
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Merges `key=value` pairs, turning `key[]` into arrays.
    fn merge_pairs(&mut self, pairs: Vec<(String, String)>) {
        for (key, value) in pairs {
            if let Some(base) = key.strip_suffix("[]") {
                match self
                    .0
                    .entry(base.to_owned())
                    .or_insert_with(|| Value::Array(vec![]))
                {
                    Value::Array(items) => items.push(Value::String(value)),
                    other => *other = Value::Array(vec![Value::String(value)]),
                }
            } else {
                self.0.insert(key, Value::String(value));
            }
        }
    }

    /// Parses a query string (no leading `?`).
    pub fn from_query(query: Option<&str>) -> Result<Params, ApiError> {
        let mut params = Params::default();
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
                .map_err(|err| ApiError::InvalidParams(format!("malformed query string: {err}")))?;
            params.merge_pairs(pairs);
        }
        Ok(params)
    }

    fn merge_body(&mut self, content_type: &str, body: &[u8]) -> Result<(), ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let looks_json = body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        if mime == "application/json" || mime.ends_with("+json") || (mime.is_empty() && looks_json)
        {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => {
                    self.0.extend(map);
                    Ok(())
                }
                Ok(_) => Err(ApiError::InvalidParams(
                    "the JSON body must be an object of parameters".into(),
                )),
                Err(err) => Err(ApiError::InvalidParams(format!(
                    "the request body is not valid JSON: {err}"
                ))),
            }
        } else if mime == "application/x-www-form-urlencoded" || mime.is_empty() {
            let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                .map_err(|err| ApiError::InvalidParams(format!("malformed form body: {err}")))?;
            self.merge_pairs(pairs);
            Ok(())
        } else {
            // Other bodies (text/plain, octet-stream, …) carry no parameters.
            Ok(())
        }
    }
}

impl Params {
    /// Merges the text fields of a `multipart/form-data` body (what
    /// `curl --form`, used throughout GitLab's documentation, sends); file
    /// fields carry no parameters here.
    async fn merge_multipart(&mut self, req: Request) -> Result<(), ApiError> {
        let malformed = |err: axum::extract::multipart::MultipartError| {
            ApiError::InvalidParams(format!("malformed multipart body: {err}"))
        };
        let mut multipart = Multipart::from_request(req, &())
            .await
            .map_err(|err| ApiError::InvalidParams(format!("malformed multipart body: {err}")))?;
        let mut pairs = Vec::new();
        while let Some(field) = multipart.next_field().await.map_err(malformed)? {
            let Some(name) = field.name().map(str::to_owned) else {
                continue;
            };
            if field.file_name().is_some() {
                continue;
            }
            let value = field.text().await.map_err(malformed)?;
            pairs.push((name, value));
        }
        self.merge_pairs(pairs);
        Ok(())
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let mut params = Params::from_query(req.uri().query())?;
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if content_type
            .to_ascii_lowercase()
            .starts_with("multipart/form-data")
        {
            params.merge_multipart(req).await?;
            return Ok(params);
        }
        let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|err| {
                ApiError::InvalidParams(format!("failed to read the request body: {err}"))
            })?;
        params.merge_body(&content_type, &body)?;
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_arrays_and_body_precedence() {
        let mut p = Params::from_query(Some("token=q&tag_list[]=a&tag_list[]=b&x=1")).unwrap();
        assert_eq!(p.0["tag_list"], serde_json::json!(["a", "b"]));
        p.merge_body("application/json", br#"{"token":"b"}"#)
            .unwrap();
        assert_eq!(p.str("token").as_deref(), Some("b"));
        assert_eq!(p.str("x").as_deref(), Some("1"));
    }

    #[test]
    fn bodies_of_every_kind() {
        let mut p = Params::default();
        p.merge_body("application/json", b"").unwrap();
        p.merge_body("application/json; charset=utf-8", b"  ")
            .unwrap();
        assert!(p.0.is_empty());
        p.merge_body("application/x-www-form-urlencoded", b"token=t&paused=true")
            .unwrap();
        assert_eq!(p.str("paused").as_deref(), Some("true"));
        assert!(p.merge_body("application/json", b"{not json").is_err());
        assert!(p.merge_body("application/json", b"[1]").is_err());
        p.merge_body("", br#"{"k":2}"#).unwrap();
        assert_eq!(p.str("k").as_deref(), Some("2"));
    }
}
