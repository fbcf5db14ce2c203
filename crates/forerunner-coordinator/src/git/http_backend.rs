//! Read-only git smart HTTP over the repository mirrors, through git's own
//! `git http-backend` CGI program.
//!
//! [`GitHttp`] answers `GET <base>/<namespace>/<project>.git/info/refs?service=git-upload-pack`
//! and `POST <base>/<namespace>/<project>.git/git-upload-pack` (the `.git`
//! suffix is optional, as in GitLab), which is all `git clone` and
//! `git fetch` need, protocol v2 included. It authenticates HTTP Basic
//! credentials (`gitlab-ci-token:<job token>` for runners) through an
//! [`Authorizer`] the coordinator provides, then runs `git http-backend`
//! with the CGI environment, streams the request body to it (gzip-encoded
//! bodies included; http-backend inflates them) and streams its output back
//! as the response, translating the CGI `Status:` and other headers.
//!
//! The common requests skip http-backend: `info/refs` and an uncompressed
//! `git-upload-pack` POST run `git upload-pack` directly, with the arguments,
//! headers and `# service=` preamble http-backend would use. http-backend
//! itself only starts `git upload-pack`, so this saves one process start
//! per request (three per fetch); anything else (a gzip body, an unexpected
//! content type) still goes through http-backend and gets its answers.
//!
//! Pushing (`git-receive-pack`) is always refused with `403`, and the dumb
//! HTTP protocol is not offered. This module does not decide who may read
//! which project (that is the [`Authorizer`]'s job), nor does it sync the
//! mirrors it serves ([`crate::git::mirror`] does).
use std::{net::SocketAddr, path::PathBuf, process::Stdio, sync::Arc};

use async_trait::async_trait;
use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    response::{IntoResponse, Response},
    routing::any,
    Router,
};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::git::{command::Git, names, Mirrors};

/// The realm GitLab announces; git only needs a `Basic` challenge to retry
/// with the credentials from the URL or a credential helper.
const WWW_AUTHENTICATE: &str = "Basic realm=\"GitLab\"";
/// Upper bound on the CGI header block, against a misbehaving backend.
const MAX_CGI_HEADER_BYTES: usize = 64 * 1024;
/// How much of http-backend's stderr is kept for the log.
const MAX_LOGGED_STDERR_BYTES: usize = 16 * 1024;

/// Username and password from an HTTP Basic `Authorization` header.
///
/// `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    username: String,
    password: String,
}

impl BasicCredentials {
    /// Credentials from their parts.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Parses `Basic <base64(user:password)>`; `None` for any other scheme
    /// or a malformed value.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, encoded) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        Some(Self::new(username, password))
    }

    /// The username; runners send `gitlab-ci-token`.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password; for runners, the CI job token.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The outcome of an authorization check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The credentials may read the project's repository.
    Granted,
    /// They may not; the client gets `401` and git reports
    /// "Authentication failed".
    Denied,
}

/// Decides whether HTTP Basic credentials may read a project's repository.
///
/// The coordinator implements it with its job-token check: grant when the
/// username is `gitlab-ci-token` and the password is the token of a running
/// job of `project_path` (or of a project allowed to access it). It is
/// called once per HTTP request, concurrently from many tasks, only for
/// requests that carry credentials; it should not block the executor.
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// Whether `credentials` may read `project_path` (`namespace/project`,
    /// without `.git`).
    async fn authorize(&self, project_path: &str, credentials: &BasicCredentials) -> Access;
}

/// The git smart HTTP endpoint: serves the mirrors of a [`Mirrors`] to
/// clients an [`Authorizer`] accepts. Cheap to clone.
#[derive(Clone)]
pub struct GitHttp {
    mirrors: Mirrors,
    authorizer: Arc<dyn Authorizer>,
    /// Bounds the number of `git http-backend` processes, if set; a permit
    /// is held until the process exits.
    backends: Option<Arc<tokio::sync::Semaphore>>,
    /// `<exec-path>/git-http-backend`, found on first use, or `None` to run
    /// it as `git http-backend`. Running it directly saves the `git`
    /// wrapper's own exec on every request (three per fetch).
    program: Arc<tokio::sync::OnceCell<Option<PathBuf>>>,
}

impl std::fmt::Debug for GitHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHttp")
            .field("mirrors", &self.mirrors)
            .finish_non_exhaustive()
    }
}

/// Which git endpoint a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    InfoRefs,
    UploadPack,
    ReceivePack,
}

impl Endpoint {
    fn suffix(self) -> &'static str {
        match self {
            Endpoint::InfoRefs => "info/refs",
            Endpoint::UploadPack => "git-upload-pack",
            Endpoint::ReceivePack => "git-receive-pack",
        }
    }
}

/// Splits `/<project>[.git]/<endpoint>` into the project path and endpoint.
fn parse_path(path: &str) -> Option<(&str, Endpoint)> {
    let path = path.strip_prefix('/')?;
    let (project, endpoint) = [
        Endpoint::InfoRefs,
        Endpoint::UploadPack,
        Endpoint::ReceivePack,
    ]
    .into_iter()
    .find_map(|endpoint| {
        let project = path.strip_suffix(endpoint.suffix())?.strip_suffix('/')?;
        Some((project, endpoint))
    })?;
    Some((names::project_path(project).ok()?, endpoint))
}

impl GitHttp {
    /// Serves the repositories of `mirrors` to clients `authorizer` accepts.
    pub fn new(mirrors: Mirrors, authorizer: Arc<dyn Authorizer>) -> Self {
        Self {
            mirrors,
            authorizer,
            backends: None,
            program: Arc::default(),
        }
    }

    /// Runs at most `limit` `git http-backend` processes at once; further
    /// requests wait for a free slot (by default there is no limit). Each
    /// clone or fetch holds a slot per HTTP request, while the pack is
    /// computed and streamed.
    pub fn with_max_concurrent_backends(mut self, limit: usize) -> Self {
        self.backends = Some(Arc::new(tokio::sync::Semaphore::new(limit.max(1))));
        self
    }

    /// Whether `path` (relative to the base URL) is a git smart HTTP path
    /// this endpoint answers, for a coordinator that dispatches from its
    /// fallback handler instead of using [`GitHttp::router`].
    pub fn is_git_path(path: &str) -> bool {
        parse_path(path).is_some()
    }

    /// A router answering every git path (`/{*path}`, any method; other
    /// paths get a plain-text `404`). Merge it into a router whose more
    /// specific routes (`/api/v4/…`) take precedence, or nest it under a
    /// base path.
    ///
    /// Its catch-all route claims every path the other routes do not, so a
    /// router with its own fallback (GitLab's JSON `404`) should instead
    /// call [`GitHttp::serve`] from that fallback when
    /// [`GitHttp::is_git_path`] says so.
    pub fn router<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route("/{*path}", any(handle))
            .with_state(self)
    }

    /// Answers one request. The URI path is relative to the base URL
    /// (`/<namespace>/<project>.git/…`).
    ///
    /// Status codes: `401` with `WWW-Authenticate` for missing or rejected
    /// credentials, `403` for pushes and the dumb protocol, `404` for
    /// non-git paths and projects without a mirror, `405` for a wrong
    /// method, `500` when `git http-backend` cannot run, and otherwise what
    /// http-backend answers.
    pub async fn serve(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let Some((project, endpoint)) = parse_path(parts.uri.path()) else {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        };
        let query = parts.uri.query().unwrap_or("");
        match endpoint {
            Endpoint::ReceivePack => return push_refused(),
            Endpoint::InfoRefs => {
                if parts.method != Method::GET {
                    return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET for info/refs\n");
                }
                match service(query) {
                    Some("git-upload-pack") => {}
                    Some("git-receive-pack") => return push_refused(),
                    _ => {
                        return plain(
                            StatusCode::FORBIDDEN,
                            "only the smart HTTP protocol is served (?service=git-upload-pack); upgrade git\n",
                        )
                    }
                }
            }
            Endpoint::UploadPack => {
                if parts.method != Method::POST {
                    return plain(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "use POST for git-upload-pack\n",
                    );
                }
            }
        }

        let Some(credentials) = BasicCredentials::from_headers(&parts.headers) else {
            return unauthorized();
        };
        if self.authorizer.authorize(project, &credentials).await != Access::Granted {
            tracing::debug!(
                project,
                username = credentials.username(),
                "git http access denied"
            );
            return unauthorized();
        }
        let repository = self.mirrors.root().join(format!("{project}.git"));
        if !tokio::fs::try_exists(repository.join("HEAD"))
            .await
            .unwrap_or(false)
        {
            return plain(
                StatusCode::NOT_FOUND,
                "the project's repository has not been mirrored yet\n",
            );
        }

        let path_info = format!("/{project}.git/{}", endpoint.suffix());
        let header = |name: HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let direct = match endpoint {
            Endpoint::InfoRefs => true,
            Endpoint::UploadPack => {
                header(header::CONTENT_TYPE) == Some("application/x-git-upload-pack-request")
                    && header(header::CONTENT_ENCODING).is_none()
            }
            Endpoint::ReceivePack => false,
        };
        let run = if direct {
            Run::UploadPack {
                repository,
                advertise: endpoint == Endpoint::InfoRefs,
                protocol: header(HeaderName::from_static("git-protocol")).map(str::to_owned),
                path_info,
            }
        } else {
            Run::Cgi(Cgi {
                method: parts.method.as_str(),
                path_info,
                query,
                headers: &parts.headers,
                remote_user: credentials.username(),
                remote_addr: parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(addr)| addr.ip().to_string()),
            })
        };
        match self.run_backend(run, body).await {
            Ok(response) => response,
            Err(err) => {
                tracing::error!(project, error = %err, "git http-backend failed");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
            }
        }
    }

    /// Runs `git http-backend` (or `git upload-pack` directly) for one
    /// request and turns its output into the response.
    async fn run_backend(&self, run: Run<'_>, body: Body) -> Result<Response, BackendError> {
        let git: &Git = self.mirrors.git();
        let (mut command, has_body, path_info) = match &run {
            Run::Cgi(cgi) => {
                let program = self
                    .program
                    .get_or_init(|| async {
                        let path = git.exec_path().await?.join("git-http-backend");
                        tokio::fs::try_exists(&path)
                            .await
                            .unwrap_or(false)
                            .then_some(path)
                    })
                    .await;
                let mut command = match program {
                    Some(program) => git.command_for(program.as_os_str(), None),
                    None => {
                        let mut command = git.command(None);
                        command.arg("http-backend");
                        command
                    }
                };
                for (key, value) in cgi.environment(self.mirrors.root().as_os_str()) {
                    command.env(key, value);
                }
                (command, cgi.method == "POST", cgi.path_info.clone())
            }
            Run::UploadPack {
                repository,
                advertise,
                protocol,
                path_info,
            } => {
                // What http-backend runs (`git upload-pack
                // --http-backend-info-refs .` or `--stateless-rpc .` in the
                // repository), with the same GIT_PROTOCOL.
                let mut command = git.command(None);
                command.arg("upload-pack").arg(if *advertise {
                    "--http-backend-info-refs"
                } else {
                    "--stateless-rpc"
                });
                command.arg(repository);
                if let Some(protocol) = protocol {
                    command.env("GIT_PROTOCOL", protocol);
                }
                (command, !*advertise, path_info.clone())
            }
        };
        if has_body {
            command.stdin(Stdio::piped());
        }
        let permit = match &self.backends {
            Some(backends) => Some(
                Arc::clone(backends)
                    .acquire_owned()
                    .await
                    .map_err(|_closed| BackendError::LimiterClosed)?,
            ),
            None => None,
        };
        let mut child = command.spawn().map_err(BackendError::Spawn)?;
        let stdout = child.stdout.take().ok_or(BackendError::NoPipe)?;
        let mut stderr = child.stderr.take().ok_or(BackendError::NoPipe)?;

        if let Some(mut stdin) = child.stdin.take() {
            tokio::spawn(async move {
                let mut chunks = body.into_data_stream();
                while let Some(chunk) = chunks.next().await {
                    let written = match chunk {
                        Ok(chunk) => stdin.write_all(&chunk).await,
                        Err(err) => {
                            tracing::debug!(error = %err, "git http request body ended early");
                            break;
                        }
                    };
                    if let Err(err) = written {
                        // http-backend stopped reading; its output says why.
                        tracing::debug!(error = %err, "git http-backend stopped reading the request");
                        break;
                    }
                }
                // Dropping stdin closes it: the end of the request body.
            });
        }
        tokio::spawn(async move {
            // Holds the concurrency slot until http-backend has exited.
            let _permit = permit;
            // Drain stderr so http-backend never blocks on it, keeping the
            // start for the log line below.
            let mut errors = Vec::new();
            let mut chunk = [0; 8192];
            while let Ok(read @ 1..) = stderr.read(&mut chunk).await {
                if errors.len() < MAX_LOGGED_STDERR_BYTES {
                    errors.extend_from_slice(&chunk[..read]);
                }
            }
            match child.wait().await {
                Ok(status) if status.success() && errors.is_empty() => {}
                Ok(status) => tracing::warn!(
                    path = %path_info,
                    %status,
                    stderr = %names::redact_credentials(String::from_utf8_lossy(&errors).trim()),
                    "git http-backend reported a problem"
                ),
                Err(err) => {
                    tracing::warn!(path = %path_info, error = %err, "failed to wait for git http-backend")
                }
            }
        });

        let Run::UploadPack {
            advertise,
            protocol,
            ..
        } = run
        else {
            let mut stdout = BufReader::new(stdout);
            let (status, headers) = read_cgi_headers(&mut stdout).await?;
            let mut response = Response::new(Body::from_stream(read_stream(stdout)));
            *response.status_mut() = status;
            response.headers_mut().extend(headers);
            return Ok(response);
        };
        // http-backend's answer: its no-cache headers, the content type, and
        // for a protocol v0/v1 advertisement the `# service=` packet first.
        let v2 = protocol
            .as_deref()
            .is_some_and(|p| p.split(':').any(|kv| kv == "version=2"));
        let preamble = (advertise && !v2)
            .then(|| Ok(Bytes::from_static(b"001e# service=git-upload-pack\n0000")));
        let stream = futures::stream::iter(preamble).chain(read_stream(stdout));
        let mut response = Response::new(Body::from_stream(stream));
        let headers = response.headers_mut();
        headers.insert(
            header::EXPIRES,
            HeaderValue::from_static("Fri, 01 Jan 1980 00:00:00 GMT"),
        );
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if advertise {
                "application/x-git-upload-pack-advertisement"
            } else {
                "application/x-git-upload-pack-result"
            }),
        );
        Ok(response)
    }
}

/// How one request is answered.
enum Run<'a> {
    /// `git http-backend` with the CGI environment.
    Cgi(Cgi<'a>),
    /// `git upload-pack` directly, as http-backend would run it.
    UploadPack {
        /// The bare repository.
        repository: PathBuf,
        /// `info/refs` (the advertisement) rather than a POST.
        advertise: bool,
        /// The `Git-Protocol` header (`version=2`).
        protocol: Option<String>,
        /// For log lines.
        path_info: String,
    },
}

/// The request facts `git http-backend` receives as CGI variables.
struct Cgi<'a> {
    method: &'a str,
    path_info: String,
    query: &'a str,
    headers: &'a HeaderMap,
    remote_user: &'a str,
    remote_addr: Option<String>,
}

impl Cgi<'_> {
    fn environment(
        &self,
        project_root: &std::ffi::OsStr,
    ) -> Vec<(&'static str, std::ffi::OsString)> {
        let mut env: Vec<(&'static str, std::ffi::OsString)> = vec![
            ("GIT_PROJECT_ROOT", project_root.to_owned()),
            // Serve every repository under the root; access control is ours.
            ("GIT_HTTP_EXPORT_ALL", "1".into()),
            ("GATEWAY_INTERFACE", "CGI/1.1".into()),
            ("SERVER_PROTOCOL", "HTTP/1.1".into()),
            ("REQUEST_METHOD", self.method.into()),
            ("PATH_INFO", self.path_info.clone().into()),
            ("QUERY_STRING", self.query.into()),
            ("REMOTE_USER", self.remote_user.into()),
        ];
        let header = |name: HeaderName| {
            self.headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(std::ffi::OsString::from)
        };
        if let Some(value) = header(header::CONTENT_TYPE) {
            env.push(("CONTENT_TYPE", value));
        }
        if let Some(value) = header(header::CONTENT_LENGTH) {
            env.push(("CONTENT_LENGTH", value));
        }
        if let Some(value) = header(header::CONTENT_ENCODING) {
            // http-backend inflates `gzip` bodies itself.
            env.push(("HTTP_CONTENT_ENCODING", value));
        }
        if let Some(value) = header(HeaderName::from_static("git-protocol")) {
            // `version=2`: lets protocol v2 clients use it end to end.
            env.push(("GIT_PROTOCOL", value));
        }
        if let Some(addr) = &self.remote_addr {
            env.push(("REMOTE_ADDR", addr.into()));
        }
        env
    }
}

/// Why `git http-backend` could not produce a response.
#[derive(Debug, thiserror::Error)]
enum BackendError {
    #[error(
        "failed to start `git http-backend` or `git upload-pack`: {0} (install git, including its http-backend program)"
    )]
    Spawn(#[source] std::io::Error),
    #[error("git http-backend was started without its pipes")]
    NoPipe,
    #[error("the limit on concurrent git http-backend processes was shut down")]
    LimiterClosed,
    #[error("failed to read the CGI headers of git http-backend: {0}")]
    Read(#[source] std::io::Error),
    #[error("git http-backend sent malformed CGI headers: {0}")]
    Malformed(&'static str),
}

/// Reads the CGI header block (up to the blank line) and returns the status
/// (from `Status:`, default `200`) and the other headers.
async fn read_cgi_headers<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Result<(StatusCode, HeaderMap), BackendError> {
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    let mut total = 0;
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .await
            .map_err(BackendError::Read)?;
        if read == 0 {
            return Err(BackendError::Malformed(
                "output ended before the end of the headers",
            ));
        }
        total += read;
        if total > MAX_CGI_HEADER_BYTES {
            return Err(BackendError::Malformed("header block too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok((status, headers));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(BackendError::Malformed("header line without ':'"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .ok_or(BackendError::Malformed("invalid Status header"))?;
        } else {
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| BackendError::Malformed("invalid header name"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| BackendError::Malformed("invalid header value"))?;
            headers.append(name, value);
        }
    }
}

/// The rest of `reader` as a stream of chunks, ending at EOF or after the
/// first error.
fn read_stream<R>(reader: R) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send
where
    R: AsyncRead + Unpin + Send + 'static,
{
    futures::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut buffer = BytesMut::with_capacity(64 * 1024);
        match reader.read_buf(&mut buffer).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buffer.freeze()), Some(reader))),
            Err(err) => Some((Err(err), None)),
        }
    })
}

/// The value of `service=` in a query string.
fn service(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("service="))
}

async fn handle(State(git): State<GitHttp>, request: Request) -> Response {
    git.serve(request).await
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, WWW_AUTHENTICATE),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        "HTTP Basic: Access denied\n",
    )
        .into_response()
}

fn push_refused() -> Response {
    plain(
        StatusCode::FORBIDDEN,
        "pushing is not allowed: the coordinator serves read-only mirrors; push to the project's import_url instead\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_paths() {
        assert_eq!(
            parse_path("/g/p.git/info/refs"),
            Some(("g/p", Endpoint::InfoRefs))
        );
        assert_eq!(
            parse_path("/g/s/p/git-upload-pack"),
            Some(("g/s/p", Endpoint::UploadPack))
        );
        assert_eq!(
            parse_path("/g/p.git/git-receive-pack"),
            Some(("g/p", Endpoint::ReceivePack))
        );
        for other in [
            "/",
            "/info/refs",
            "/g/p.git/HEAD",
            "/g/../p.git/info/refs",
            "g/p.git/info/refs",
            "/api/v4/jobs/request",
        ] {
            assert_eq!(parse_path(other), None, "{other}");
        }
        assert!(GitHttp::is_git_path("/g/p.git/info/refs"));
    }

    #[test]
    fn basic_credentials() {
        let mut headers = HeaderMap::new();
        assert_eq!(BasicCredentials::from_headers(&headers), None);
        // "gitlab-ci-token:a:b" — the password may contain ':'.
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("basic Z2l0bGFiLWNpLXRva2VuOmE6Yg=="),
        );
        let credentials = BasicCredentials::from_headers(&headers).unwrap();
        assert_eq!(credentials.username(), "gitlab-ci-token");
        assert_eq!(credentials.password(), "a:b");
        assert!(!format!("{credentials:?}").contains("a:b"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(BasicCredentials::from_headers(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(BasicCredentials::from_headers(&headers), None);
    }

    #[test]
    fn services() {
        assert_eq!(service("service=git-upload-pack"), Some("git-upload-pack"));
        assert_eq!(
            service("a=b&service=git-receive-pack"),
            Some("git-receive-pack")
        );
        assert_eq!(service(""), None);
    }

    #[test]
    fn cgi_environment() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-git-upload-pack-request"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("42"));
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        headers.insert("git-protocol", HeaderValue::from_static("version=2"));
        let cgi = Cgi {
            method: "POST",
            path_info: "/g/p.git/git-upload-pack".to_owned(),
            query: "",
            headers: &headers,
            remote_user: "gitlab-ci-token",
            remote_addr: Some("10.0.0.7".to_owned()),
        };
        let env: std::collections::HashMap<_, _> = cgi
            .environment(std::ffi::OsStr::new("/data/repositories"))
            .into_iter()
            .map(|(key, value)| (key, value.into_string().unwrap()))
            .collect();
        for (key, value) in [
            ("GIT_PROJECT_ROOT", "/data/repositories"),
            ("GIT_HTTP_EXPORT_ALL", "1"),
            ("REQUEST_METHOD", "POST"),
            ("PATH_INFO", "/g/p.git/git-upload-pack"),
            ("QUERY_STRING", ""),
            ("CONTENT_TYPE", "application/x-git-upload-pack-request"),
            ("CONTENT_LENGTH", "42"),
            ("HTTP_CONTENT_ENCODING", "gzip"),
            ("GIT_PROTOCOL", "version=2"),
            ("REMOTE_USER", "gitlab-ci-token"),
            ("REMOTE_ADDR", "10.0.0.7"),
        ] {
            assert_eq!(env.get(key).map(String::as_str), Some(value), "{key}");
        }

        // A chunked GET: no length, encoding or protocol to pass on.
        let headers = HeaderMap::new();
        let cgi = Cgi {
            method: "GET",
            path_info: "/g/p.git/info/refs".to_owned(),
            query: "service=git-upload-pack",
            headers: &headers,
            remote_user: "gitlab-ci-token",
            remote_addr: None,
        };
        let keys: Vec<_> = cgi
            .environment(std::ffi::OsStr::new("/r"))
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        for absent in [
            "CONTENT_LENGTH",
            "CONTENT_TYPE",
            "HTTP_CONTENT_ENCODING",
            "GIT_PROTOCOL",
            "REMOTE_ADDR",
        ] {
            assert!(!keys.contains(&absent), "{absent}");
        }
    }

    #[tokio::test]
    async fn cgi_headers() {
        let raw = b"Status: 403 Forbidden\r\nContent-Type: text/plain\r\nExpires: Fri, 01 Jan 1980 00:00:00 GMT\r\n\r\nbody";
        let mut reader = BufReader::new(&raw[..]);
        let (status, headers) = read_cgi_headers(&mut reader).await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain");
        assert!(headers.contains_key(header::EXPIRES));
        let mut rest = String::new();
        reader.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "body");

        let mut reader = BufReader::new(&b"Content-Type: x\n\n"[..]);
        assert_eq!(
            read_cgi_headers(&mut reader).await.unwrap().0,
            StatusCode::OK
        );
        let mut reader = BufReader::new(&b"Content-Type: x\r\n"[..]);
        assert!(read_cgi_headers(&mut reader).await.is_err());
        let mut reader = BufReader::new(&b"Status: abc\r\n\r\n"[..]);
        assert!(read_cgi_headers(&mut reader).await.is_err());
    }
}
