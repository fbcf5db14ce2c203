//! The runner's HTTP client for the GitLab runner API, shared by the
//! registration commands and the job loop.
//!
//! Every request carries `User-Agent`, `X-Request-Id`, the runner token in
//! the `RUNNER-TOKEN` header when there is one, and a JSON body (with the
//! token in it too, as GitLab authenticates from the body). Answers 408, 429,
//! 500, 502, 503, 504 and ≥ 512 are retried as the official runner does: at
//! most 5 attempts, waiting `RateLimit-ResetTime` or `Retry-After` when given,
//! else an exponential backoff from 100 ms to 60 s with jitter. Network
//! errors are not retried here.
//!
//! Errors never contain a full token: the token of the request is replaced
//! by its short form in every message.

use std::time::Duration;

use forerunner_protocol::errors::ErrorBody;
use forerunner_protocol::paths;
use forerunner_protocol::runners::{
    RegisterRunnerRequest, ResetTokenResponse, RunnerInfo, RunnerRegistrationDetails,
    RunnerTokenRequest, UnregisterManagerRequest, VerifyRunnerRequest,
};
use forerunner_protocol::tokens::short_token;
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{base_url, RunnerConfig};

/// Why an API call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The client could not be built (the official runner's status -100):
    /// a bad URL. Counts toward unhealthiness.
    #[error("cannot build an HTTP client for {url:?}: {message}")]
    Client {
        /// The URL as configured.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// No answer: connection refused, DNS, TLS, timeout (status -1).
    #[error("{method} {url} failed: {message}")]
    Network {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// The transport error.
        message: String,
    },
    /// The server answered with an unexpected status.
    #[error("{method} {url}: {status}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Status {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// The status code.
        status: u16,
        /// GitLab's error message when it differs from the status text.
        detail: Option<String>,
    },
    /// A success status with a body that is not the expected JSON (status -1).
    #[error("{method} {url}: unexpected answer: {message}")]
    Decode {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// What was wrong with the body.
        message: String,
    },
}

impl ApiError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the server answered `403 Forbidden` (the token is unknown).
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }

    /// The error for the health model.
    pub fn health(&self) -> crate::health::RequestHealth {
        match self {
            Self::Client { .. } => crate::health::RequestHealth::ClientError,
            other => crate::health::RequestHealth::from_status(other.status()),
        }
    }

    fn redact(self, token: Option<&str>) -> Self {
        let Some(token) = token.filter(|t| t.len() >= 4) else {
            return self;
        };
        let short = short_token(token);
        let fix = |s: String| s.replace(token, &short);
        match self {
            Self::Client { url, message } => Self::Client {
                url: fix(url),
                message: fix(message),
            },
            Self::Network {
                method,
                url,
                message,
            } => Self::Network {
                method,
                url: fix(url),
                message: fix(message),
            },
            Self::Status {
                method,
                url,
                status,
                detail,
            } => Self::Status {
                method,
                url: fix(url),
                status,
                detail: detail.map(fix),
            },
            Self::Decode {
                method,
                url,
                message,
            } => Self::Decode {
                method,
                url: fix(url),
                message: fix(message),
            },
        }
    }
}

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (official: 5).
    pub max_attempts: u32,
    /// First backoff (official: 100 ms).
    pub initial_backoff: Duration,
    /// Longest wait between attempts (official: 60 s).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Whether the official runner retries a request that got `status`.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504) || status >= 512
}

/// The `User-Agent` header: `forerunner <version> (<os>/<arch>)`.
pub fn user_agent() -> String {
    format!(
        "forerunner {} ({}; {}/{})",
        crate::VERSION,
        crate::REVISION,
        std::env::consts::OS,
        crate::log::go_arch()
    )
}

/// What the runner says about itself in registration and verification.
pub fn runner_info(executor: Option<&str>, shell: Option<&str>) -> RunnerInfo {
    RunnerInfo {
        name: Some("forerunner".to_owned()),
        version: Some(crate::VERSION.to_owned()),
        revision: Some(crate::REVISION.to_owned()),
        platform: Some(std::env::consts::OS.to_owned()),
        architecture: Some(crate::log::go_arch().to_owned()),
        executor: executor.filter(|e| !e.is_empty()).map(str::to_owned),
        shell: shell.filter(|s| !s.is_empty()).map(str::to_owned),
        features: None,
        config: None,
        labels: None,
    }
}

/// A client for one GitLab server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    retry: RetryPolicy,
}

impl Client {
    /// A client for the server at `url` (any spelling the official runner
    /// accepts: trailing slash, legacy `/ci` suffix). Only `http` and
    /// `https` are accepted.
    pub fn new(url: &str) -> Result<Self, ApiError> {
        Self::build(url, None, None)
    }

    /// A client for a config entry: its `url`, and its `tls-ca-file` (extra
    /// trusted CA) and `tls-cert-file` + `tls-key-file` (client certificate)
    /// when set. Unreadable or invalid files are a client error (which the
    /// health model counts, as the official runner does).
    pub fn for_runner(runner: &RunnerConfig) -> Result<Self, ApiError> {
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let identity = match (
            non_empty(&runner.tls_cert_file),
            non_empty(&runner.tls_key_file),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(ApiError::Client {
                    url: runner.url.clone(),
                    message: "tls-cert-file and tls-key-file must be set together".to_owned(),
                })
            }
        };
        Self::build(&runner.url, non_empty(&runner.tls_ca_file), identity)
    }

    fn build(
        url: &str,
        ca_file: Option<String>,
        identity: Option<(String, String)>,
    ) -> Result<Self, ApiError> {
        let base = base_url(url);
        let client_error = |message: String| ApiError::Client {
            url: url.to_owned(),
            message,
        };
        let parsed = url::Url::parse(&base)
            .map_err(|e| client_error(format!("{e} (expected https://host[:port][/path])")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(client_error(
                "only http or https scheme supported".to_owned(),
            ));
        }
        let read = |path: &str, what: &str| {
            std::fs::read(path).map_err(|e| client_error(format!("cannot read {what} {path}: {e}")))
        };
        let mut builder = reqwest::Client::builder()
            .user_agent(user_agent())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(600))
            .timeout(Duration::from_secs(3600));
        if let Some(ca) = ca_file {
            let pem = read(&ca, "tls-ca-file")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                client_error(format!(
                    "tls-ca-file {ca} is not a PEM certificate bundle: {e}"
                ))
            })?;
            if certs.is_empty() {
                return Err(client_error(format!(
                    "tls-ca-file {ca} holds no PEM certificate"
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = identity {
            let mut pem = read(&cert, "tls-cert-file")?;
            pem.push(b'\n');
            pem.extend(read(&key, "tls-key-file")?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                client_error(format!(
                    "tls-cert-file {cert} and tls-key-file {key} are not a PEM certificate and key: {e}"
                ))
            })?;
            builder = builder.identity(id);
        }
        let http = builder.build().map_err(|e| client_error(e.to_string()))?;
        Ok(Self {
            http,
            base,
            retry: RetryPolicy::default(),
        })
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The server's base URL (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request to `path` (e.g. [`paths::JOBS_REQUEST`]) with retries
    /// and returns the final response, whatever its status. `token` goes into
    /// the `RUNNER-TOKEN` header; `body` is sent as JSON.
    pub async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ApiError> {
        let header = token.map(|t| (paths::RUNNER_TOKEN_HEADER, t));
        self.send_with(method, path, header, token, body).await
    }

    /// [`Client::send`] with any one auth header; `secret` is redacted from errors.
    async fn send_with<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        header: Option<(&str, &str)>,
        secret: Option<&str>,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ApiError> {
        self.send_request(method, path, secret, |mut req| {
            if let Some((name, value)) = header {
                req = req.header(name, value);
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            req
        })
        .await
    }

    /// The general form of [`Client::send`], for the job endpoints: `build`
    /// adds headers (`JOB-TOKEN`, `Content-Range`, …), query and body to the
    /// request, and is called again for every retry. `secret` (the token the
    /// request carries) is redacted from errors. `X-Request-Id`,
    /// `User-Agent` and the retry policy are applied as in [`Client::send`].
    pub async fn send_request(
        &self,
        method: Method,
        path: &str,
        secret: Option<&str>,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 1;
        loop {
            let req = self
                .http
                .request(method.clone(), &url)
                .header("X-Request-Id", request_id());
            let resp = build(req).send().await.map_err(|e| {
                ApiError::Network {
                    method: method.to_string(),
                    url: url.clone(),
                    message: error_chain(&e),
                }
                .redact(secret)
            })?;
            let status = resp.status().as_u16();
            if !is_retryable_status(status) || attempt >= self.retry.max_attempts {
                return Ok(resp);
            }
            let wait = retry_wait(&resp, attempt, &self.retry);
            drop(resp);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Turns a response into `Ok` when its status is `expected`, else into
    /// [`ApiError::Status`] with GitLab's message (`secret` redacted).
    pub async fn expect_status(
        &self,
        resp: reqwest::Response,
        method: &Method,
        path: &str,
        expected: StatusCode,
        secret: Option<&str>,
    ) -> Result<reqwest::Response, ApiError> {
        let url = format!("{}{path}", self.base);
        check_status(resp, method, &url, expected)
            .await
            .map_err(|e| e.redact(secret))
    }

    /// Sends a JSON request and decodes a JSON answer with status `expected`.
    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &B,
        expected: StatusCode,
    ) -> Result<T, ApiError> {
        let resp = self
            .send(method.clone(), path, Some(token), Some(body))
            .await?;
        let url = format!("{}{path}", self.base);
        let resp = check_status(resp, &method, &url, expected)
            .await
            .map_err(|e| e.redact(Some(token)))?;
        let text = resp.text().await.map_err(|e| {
            ApiError::Network {
                method: method.to_string(),
                url: url.clone(),
                message: error_chain(&e),
            }
            .redact(Some(token))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            ApiError::Decode {
                method: method.to_string(),
                url,
                message: format!("expected JSON: {e}"),
            }
            .redact(Some(token))
        })
    }

    /// Sends a JSON request expecting `204 No Content`.
    async fn call_no_content<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &B,
    ) -> Result<(), ApiError> {
        let resp = self
            .send(method.clone(), path, Some(token), Some(body))
            .await?;
        let url = format!("{}{path}", self.base);
        check_status(resp, &method, &url, StatusCode::NO_CONTENT)
            .await
            .map_err(|e| e.redact(Some(token)))?;
        Ok(())
    }

    /// `POST /api/v4/runners`: legacy registration with a registration token (201).
    pub async fn register_runner(
        &self,
        request: &RegisterRunnerRequest,
    ) -> Result<RunnerRegistrationDetails, ApiError> {
        self.call(
            Method::POST,
            paths::RUNNERS,
            &request.token,
            request,
            StatusCode::CREATED,
        )
        .await
    }

    /// `POST /api/v4/runners/verify` (200). Old GitLab answers a plain-text
    /// `200`; like the official runner, that counts as verified, with id 0.
    pub async fn verify_runner(
        &self,
        request: &VerifyRunnerRequest,
    ) -> Result<RunnerRegistrationDetails, ApiError> {
        let token = request.token.as_str();
        let resp = self
            .send(
                Method::POST,
                paths::RUNNERS_VERIFY,
                Some(token),
                Some(request),
            )
            .await?;
        let url = format!("{}{}", self.base, paths::RUNNERS_VERIFY);
        let resp = check_status(resp, &Method::POST, &url, StatusCode::OK)
            .await
            .map_err(|e| e.redact(Some(token)))?;
        let text = resp.text().await.unwrap_or_default();
        Ok(
            serde_json::from_str(&text).unwrap_or(RunnerRegistrationDetails {
                id: 0,
                token: request.token.clone(),
                token_expires_at: None,
            }),
        )
    }

    /// `DELETE /api/v4/runners`: deletes the runner (204).
    pub async fn unregister_runner(&self, token: &str) -> Result<(), ApiError> {
        let body = RunnerTokenRequest {
            token: token.to_owned(),
        };
        self.call_no_content(Method::DELETE, paths::RUNNERS, token, &body)
            .await
    }

    /// `DELETE /api/v4/runners/managers`: deletes this machine's runner manager (204).
    pub async fn unregister_manager(&self, token: &str, system_id: &str) -> Result<(), ApiError> {
        let body = UnregisterManagerRequest {
            token: token.to_owned(),
            system_id: system_id.to_owned(),
        };
        self.call_no_content(Method::DELETE, paths::RUNNERS_MANAGERS, token, &body)
            .await
    }

    /// `POST /api/v4/runners/reset_authentication_token` (201).
    pub async fn reset_token(&self, token: &str) -> Result<ResetTokenResponse, ApiError> {
        let body = RunnerTokenRequest {
            token: token.to_owned(),
        };
        self.call(
            Method::POST,
            paths::RUNNERS_RESET_TOKEN,
            token,
            &body,
            StatusCode::CREATED,
        )
        .await
    }
}

impl Client {
    /// `POST /api/v4/runners/:id/reset_authentication_token` with a personal
    /// access token (`PRIVATE-TOKEN`, needs the right to update the runner):
    /// works even when the runner's own token has expired (201).
    pub async fn reset_token_with_pat(
        &self,
        runner_id: i64,
        pat: &str,
    ) -> Result<ResetTokenResponse, ApiError> {
        let path = format!("/api/v4/runners/{runner_id}/reset_authentication_token");
        let resp = self
            .send_with::<()>(
                Method::POST,
                &path,
                Some((paths::PRIVATE_TOKEN_HEADER, pat)),
                Some(pat),
                None,
            )
            .await?;
        let url = format!("{}{path}", self.base);
        let resp = check_status(resp, &Method::POST, &url, StatusCode::CREATED)
            .await
            .map_err(|e| e.redact(Some(pat)))?;
        let text = resp.text().await.unwrap_or_default();
        serde_json::from_str(&text).map_err(|e| {
            ApiError::Decode {
                method: "POST".to_owned(),
                url,
                message: format!("expected JSON: {e}"),
            }
            .redact(Some(pat))
        })
    }
}

/// Turns a non-`expected` response into [`ApiError::Status`] with GitLab's message.
async fn check_status(
    resp: reqwest::Response,
    method: &Method,
    url: &str,
    expected: StatusCode,
) -> Result<reqwest::Response, ApiError> {
    if resp.status() == expected {
        return Ok(resp);
    }
    let status = resp.status();
    let status_text = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    let body = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<ErrorBody>(&body)
        .ok()
        .map(|b| b.text())
        .filter(|t| !t.is_empty() && *t != status_text);
    if status.is_success() {
        return Err(ApiError::Decode {
            method: method.to_string(),
            url: url.to_owned(),
            message: format!("expected {expected}, got {status_text}"),
        });
    }
    Err(ApiError::Status {
        method: method.to_string(),
        url: url.to_owned(),
        status: status.as_u16(),
        detail,
    })
}

/// How long to wait before retry `attempt` + 1.
fn retry_wait(resp: &reqwest::Response, attempt: u32, policy: &RetryPolicy) -> Duration {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(reset) = header("RateLimit-ResetTime") {
        if let Ok(at) = chrono::DateTime::parse_from_rfc2822(&reset) {
            let wait = at.signed_duration_since(chrono::Utc::now());
            return wait.to_std().unwrap_or_default().min(policy.max_backoff);
        }
    }
    if let Some(secs) = header("Retry-After").and_then(|s| s.trim().parse::<u64>().ok()) {
        return Duration::from_secs(secs).min(policy.max_backoff);
    }
    backoff(attempt, policy)
}

/// Exponential backoff with jitter: `initial × 2^(attempt-1)`, capped.
pub fn backoff(attempt: u32, policy: &RetryPolicy) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    let base = policy
        .initial_backoff
        .saturating_mul(factor)
        .min(policy.max_backoff);
    let jitter = rand::thread_rng().gen_range(0.0..0.2);
    base.mul_f64(1.0 + jitter).min(policy.max_backoff)
}

/// A fresh correlation id: a UUID's 32 hex digits.
fn request_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// The error and its causes, joined (reqwest hides the useful part in the source chain).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses_match_the_official_runner() {
        for s in [408, 429, 500, 502, 503, 504, 512, 599] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 201, 204, 400, 401, 403, 404, 409, 410, 501, 505, 511] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy::default();
        assert!(backoff(1, &p) >= Duration::from_millis(100));
        assert!(backoff(1, &p) < Duration::from_millis(121));
        assert!(backoff(3, &p) >= Duration::from_millis(400));
        assert_eq!(backoff(30, &p), Duration::from_secs(60));
    }

    #[test]
    fn rejects_bad_schemes_and_redacts_tokens() {
        let err = Client::new("ftp://gitlab.example.com").unwrap_err();
        assert!(err.to_string().contains("only http or https"), "{err}");
        assert_eq!(err.health(), crate::health::RequestHealth::ClientError);
        let token = "glrt-t3_secretsecretsecret";
        let e = ApiError::Status {
            method: "POST".into(),
            url: "u".into(),
            status: 403,
            detail: Some(format!("bad token {token}")),
        }
        .redact(Some(token));
        assert!(!e.to_string().contains(token), "{e}");
        assert!(e.to_string().contains("t3_secret"), "{e}");
        assert!(e.is_forbidden());
    }
}
