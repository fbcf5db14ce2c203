//! Offset pagination as GitLab does it (§5.3): `page` (default 1) and
//! `per_page` (default 20, at most 100), answered with `X-Page`,
//! `X-Per-Page`, `X-Total`, `X-Total-Pages`, `X-Next-Page`, `X-Prev-Page`
//! and a `Link` header whose URLs sit under the request's own base URL.

use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use crate::api::auth::BaseUrl;
use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::domain::{Page, Paged};

/// Default page size.
const DEFAULT_PER_PAGE: i64 = 20;
/// Largest page size.
const MAX_PER_PAGE: i64 = 100;

/// The requested page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    /// 1-based page number.
    pub page: i64,
    /// Page size.
    pub per_page: i64,
}

impl Pagination {
    /// Reads `page` and `per_page`; zero, negative or non-numeric values are
    /// a `400`, sizes above 100 are clamped.
    pub fn from_params(params: &Params) -> Result<Pagination, ApiError> {
        let read = |key: &str, default: i64| -> Result<i64, ApiError> {
            match params.str(key) {
                None => Ok(default),
                Some(s) if s.trim().is_empty() => Ok(default),
                Some(s) => s
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        ApiError::InvalidParams(format!("{key} does not have a valid value"))
                    }),
            }
        };
        Ok(Pagination {
            page: read("page", 1)?,
            per_page: read("per_page", DEFAULT_PER_PAGE)?.min(MAX_PER_PAGE),
        })
    }

    /// The store window.
    pub fn window(&self) -> Page {
        Page {
            offset: (self.page - 1).saturating_mul(self.per_page),
            limit: self.per_page,
        }
    }

    /// A `200` JSON array of `items` with the pagination headers for a list
    /// of `total` rows.
    pub fn respond<T: Serialize>(
        &self,
        base: &BaseUrl,
        uri: &Uri,
        total: i64,
        items: Vec<T>,
    ) -> Response {
        let total_pages = ((total + self.per_page - 1) / self.per_page).max(1);
        let next = (self.page < total_pages).then_some(self.page + 1);
        let prev = (self.page > 1).then(|| (self.page - 1).min(total_pages));
        let mut headers = HeaderMap::new();
        let mut set = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        };
        set("x-page", self.page.to_string());
        set("x-per-page", self.per_page.to_string());
        set("x-total", total.to_string());
        set("x-total-pages", total_pages.to_string());
        set(
            "x-next-page",
            next.map(|n| n.to_string()).unwrap_or_default(),
        );
        set(
            "x-prev-page",
            prev.map(|n| n.to_string()).unwrap_or_default(),
        );
        let link = |page: i64, rel: &str| format!("<{}>; rel=\"{rel}\"", self.url(base, uri, page));
        let mut links = Vec::new();
        if let Some(p) = prev {
            links.push(link(p, "prev"));
        }
        if let Some(n) = next {
            links.push(link(n, "next"));
        }
        links.push(link(1, "first"));
        links.push(link(total_pages, "last"));
        set("link", links.join(", "));
        (headers, Json(items)).into_response()
    }

    /// The URL of `page` with every other query parameter kept (except a
    /// `private_token`, which must not leak into links).
    fn url(&self, base: &BaseUrl, uri: &Uri, page: i64) -> String {
        let params = Params::from_query(uri.query()).unwrap_or_default();
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (key, value) in params.0 {
            if matches!(key.as_str(), "page" | "per_page" | "private_token") {
                continue;
            }
            match value {
                Value::Array(items) => {
                    for item in items {
                        pairs.push((format!("{key}[]"), item.as_str().unwrap_or("").to_owned()));
                    }
                }
                Value::String(s) => pairs.push((key, s)),
                other => pairs.push((key, other.to_string())),
            }
        }
        pairs.push(("page".into(), page.to_string()));
        pairs.push(("per_page".into(), self.per_page.to_string()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{}?{query}", base.join(uri.path()))
    }
}

/// Pages through `paged` with `pagination` (for handlers that build the
/// whole list themselves).
pub fn respond_paged<T: Serialize>(
    pagination: &Pagination,
    base: &BaseUrl,
    uri: &Uri,
    paged: Paged<T>,
) -> Response {
    pagination.respond(base, uri, paged.total, paged.items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_links() {
        let p = Pagination::from_params(
            &Params::from_query(Some("page=2&per_page=2&type=group_type")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            p.window(),
            Page {
                offset: 2,
                limit: 2
            }
        );
        let uri: Uri = "/api/v4/runners?page=2&per_page=2&type=group_type"
            .parse()
            .unwrap();
        let resp = p.respond(&BaseUrl("http://h:1".into()), &uri, 5, vec![1, 2]);
        let h = resp.headers();
        assert_eq!(h["x-total-pages"], "3");
        assert_eq!(h["x-next-page"], "3");
        assert_eq!(h["x-prev-page"], "1");
        let link = h["link"].to_str().unwrap();
        assert!(link.contains(
            "<http://h:1/api/v4/runners?type=group_type&page=3&per_page=2>; rel=\"next\""
        ));
        assert!(link.contains("rel=\"last\""));
    }

    #[test]
    fn bad_and_clamped_values() {
        let q = |s| Pagination::from_params(&Params::from_query(Some(s)).unwrap());
        assert!(q("per_page=0").is_err());
        assert!(q("page=x").is_err());
        assert_eq!(q("per_page=1000").unwrap().per_page, 100);
    }
}
