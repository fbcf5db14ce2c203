//! The HTTP client against a scripted server: headers and body of every
//! request, the official retry policy, and error classification.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use forerunner_protocol::runners::VerifyRunnerRequest;
use forerunner_runner::client::{runner_info, ApiError, Client};
use forerunner_runner::health::RequestHealth;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One recorded request: the head (lowercased header names) and the body.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// A scripted answer: status, extra headers, body.
type Answer = (u16, Vec<(&'static str, &'static str)>, &'static str);

/// Answers the scripted responses in order (the last one repeats).
async fn scripted(responses: Vec<Answer>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (status, headers, body) = responses[n.min(responses.len() - 1)].clone();
            n += 1;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                let r = sock.read(&mut chunk).await.unwrap_or(0);
                if r == 0 {
                    break buf.len();
                }
                buf.extend_from_slice(&chunk[..r]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < head_end + len {
                let r = sock.read(&mut chunk).await.unwrap_or(0);
                if r == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..r]);
            }
            let body_in = String::from_utf8_lossy(&buf[head_end..]).into_owned();
            record.lock().unwrap().push(Seen {
                head,
                body: body_in,
            });
            let mut resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                resp.push_str(&format!("{k}: {v}\r\n"));
            }
            resp.push_str("\r\n");
            resp.push_str(body);
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    (url, seen)
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const TOKEN: &str = "glrt-t1_clienttestclienttest";

fn verify_request() -> VerifyRunnerRequest {
    VerifyRunnerRequest {
        token: TOKEN.to_owned(),
        system_id: Some("s_0123456789ab".to_owned()),
        info: Some(runner_info(Some("shell"), Some("bash"))),
    }
}

#[tokio::test]
async fn requests_carry_the_official_headers_and_body() {
    let (url, seen) = scripted(vec![(
        200,
        vec![JSON],
        r#"{"id":7,"token":"glrt-t1_clienttestclienttest","token_expires_at":null}"#,
    )])
    .await;
    // A trailing slash and a legacy /ci suffix are accepted.
    let client = Client::new(&format!("{url}ci")).unwrap();
    let details = client.verify_runner(&verify_request()).await.unwrap();
    assert_eq!(details.id, 7);
    let seen = seen.lock().unwrap()[0].clone();
    assert!(
        seen.head
            .starts_with("POST /api/v4/runners/verify HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
    assert_eq!(seen.header("runner-token").as_deref(), Some(TOKEN));
    assert_eq!(
        seen.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(seen
        .header("user-agent")
        .unwrap()
        .starts_with("forerunner "));
    let id = seen.header("x-request-id").unwrap();
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body["token"], TOKEN);
    assert_eq!(body["system_id"], "s_0123456789ab");
    assert_eq!(body["info"]["name"], "forerunner");
    assert_eq!(body["info"]["executor"], "shell");
}

#[tokio::test]
async fn retryable_answers_are_retried_honouring_retry_after() {
    let (url, seen) = scripted(vec![
        (503, vec![JSON], r#"{"message":"503 Service Unavailable"}"#),
        (
            429,
            vec![JSON, ("Retry-After", "1")],
            r#"{"message":"429 Too Many Requests"}"#,
        ),
        (
            201,
            vec![JSON],
            r#"{"token":"glrt-t1_rotatedrotatedrotat","token_expires_at":"2030-01-01T00:00:00Z"}"#,
        ),
    ])
    .await;
    let client = Client::new(&url).unwrap();
    let started = Instant::now();
    let resp = client.reset_token(TOKEN).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After ignored"
    );
    assert_eq!(resp.token, "glrt-t1_rotatedrotatedrotat");
    assert!(resp.token_expires_at.is_some());
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn five_attempts_at_most_and_the_last_answer_is_returned() {
    let (url, seen) = scripted(vec![(
        500,
        vec![JSON],
        r#"{"message":"500 Internal Server Error"}"#,
    )])
    .await;
    let err = Client::new(&url)
        .unwrap()
        .unregister_runner(TOKEN)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(
        err.health(),
        RequestHealth::Healthy,
        "5xx never parks a runner"
    );
    assert_eq!(seen.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn forbidden_is_not_retried_and_never_shows_the_token() {
    let (url, seen) = scripted(vec![(
        403,
        vec![JSON],
        r#"{"message":"403 Forbidden - token glrt-t1_clienttestclienttest unknown"}"#,
    )])
    .await;
    let err = Client::new(&url)
        .unwrap()
        .verify_runner(&verify_request())
        .await
        .unwrap_err();
    assert!(err.is_forbidden());
    assert_eq!(err.health(), RequestHealth::Forbidden);
    assert_eq!(seen.lock().unwrap().len(), 1);
    let text = err.to_string();
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains("403"), "{text}");
}

#[tokio::test]
async fn network_and_decode_errors_are_told_apart() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = Client::new(&dead)
        .unwrap()
        .reset_token(TOKEN)
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Network { .. }), "{err:?}");
    assert_eq!(err.health(), RequestHealth::Healthy);

    let (url, _) = scripted(vec![(201, vec![("Content-Type", "text/plain")], "created")]).await;
    let err = Client::new(&url)
        .unwrap()
        .reset_token(TOKEN)
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Decode { .. }), "{err:?}");

    // Old GitLab verifies with a plain-text 200: verified, id 0.
    let (url, _) = scripted(vec![(200, vec![("Content-Type", "text/plain")], "200")]).await;
    let details = Client::new(&url)
        .unwrap()
        .verify_runner(&verify_request())
        .await
        .unwrap();
    assert_eq!(details.id, 0);

    let err = Client::new("gitlab.example.com").unwrap_err();
    assert_eq!(err.health(), RequestHealth::ClientError);
}

#[tokio::test]
async fn general_requests_for_the_job_endpoints() {
    let (url, seen) = scripted(vec![
        (502, vec![JSON], r#"{"message":"502 Bad Gateway"}"#),
        (202, vec![("X-GitLab-Trace-Update-Interval", "3")], ""),
    ])
    .await;
    let client = Client::new(&url).unwrap();
    let job_token = "glcbt-jobtokenjobtokenjobtok";
    let path = "/api/v4/jobs/42/trace";
    let resp = client
        .send_request(reqwest::Method::PATCH, path, Some(job_token), |r| {
            r.header("JOB-TOKEN", job_token)
                .header("Content-Range", "0-4")
                .body("hello")
        })
        .await
        .unwrap();
    let resp = client
        .expect_status(
            resp,
            &reqwest::Method::PATCH,
            path,
            reqwest::StatusCode::ACCEPTED,
            Some(job_token),
        )
        .await
        .unwrap();
    assert_eq!(resp.headers()["X-GitLab-Trace-Update-Interval"], "3");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "the 502 was retried with the same request");
    for s in &seen {
        assert!(
            s.head.starts_with("PATCH /api/v4/jobs/42/trace "),
            "{}",
            s.head
        );
        assert_eq!(s.header("job-token").as_deref(), Some(job_token));
        assert_eq!(s.header("content-range").as_deref(), Some("0-4"));
        assert_eq!(s.body, "hello");
    }
}

/// A throwaway self-signed certificate and key made for these tests only
/// (`openssl req -x509 -newkey rsa:2048 -nodes`).
fn tls_file(name: &str) -> String {
    format!("{}/tests/data/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn tls_files_of_an_entry_are_loaded_or_reported() {
    use forerunner_runner::config::RunnerConfig;

    let runner = |ca: Option<String>, cert: Option<String>, key: Option<String>| RunnerConfig {
        url: "https://gitlab.example.com".into(),
        token: TOKEN.into(),
        tls_ca_file: ca,
        tls_cert_file: cert,
        tls_key_file: key,
        ..Default::default()
    };
    Client::for_runner(&runner(
        Some(tls_file("ca.pem")),
        Some(tls_file("client.pem")),
        Some(tls_file("client.key")),
    ))
    .expect("valid files load");
    Client::for_runner(&runner(None, None, None)).expect("no files is fine");

    let err =
        Client::for_runner(&runner(Some("/nonexistent/ca.pem".into()), None, None)).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot read tls-ca-file /nonexistent/ca.pem"),
        "{err}"
    );
    assert_eq!(err.health(), RequestHealth::ClientError);

    let err = Client::for_runner(&runner(Some(tls_file("client.key")), None, None)).unwrap_err();
    assert!(
        err.to_string().contains("holds no PEM certificate"),
        "{err}"
    );

    let err = Client::for_runner(&runner(None, Some(tls_file("client.pem")), None)).unwrap_err();
    assert!(err.to_string().contains("must be set together"), "{err}");
}
