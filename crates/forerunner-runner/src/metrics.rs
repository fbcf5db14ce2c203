//! Prometheus metrics of the runner, under the official names, and the
//! `/metrics` listener on `listen_address`.
//!
//! A small registry: counters, gauges and histograms keyed by metric name
//! and label values, rendered in the Prometheus text format (0.0.4). The
//! listener answers `GET`/`HEAD` on `/metrics` and `/health/ready` and
//! nothing else; it is a few lines of HTTP/1.1 over tokio so the runner does
//! not carry a web framework.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Buckets of `gitlab_runner_job_duration_seconds`, as the official runner.
pub const JOB_DURATION_BUCKETS: &[f64] = &[
    30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 10800.0, 18000.0, 36000.0,
];
/// Buckets of `gitlab_runner_api_request_duration_seconds`.
pub const API_DURATION_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0];

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone)]
enum Kind {
    Counter,
    Gauge,
    Histogram(&'static [f64]),
}

#[derive(Debug, Clone)]
struct Family {
    help: &'static str,
    kind: Kind,
    /// Counter/gauge values, or histogram (bucket counts, sum, count).
    series: BTreeMap<Labels, Series>,
}

#[derive(Debug, Clone)]
enum Series {
    Value(f64),
    Histogram {
        buckets: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

/// The runner's metrics. Cloning shares the registry.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    families: Arc<Mutex<BTreeMap<&'static str, Family>>>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        f: impl FnOnce(&mut Family) -> R,
    ) -> R {
        let mut g = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let fam = g.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        f(fam)
    }

    /// Adds `by` to a counter.
    pub fn inc(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)], by: f64) {
        self.with(name, help, Kind::Counter, |f| {
            if let Series::Value(v) = f.series.entry(labels(pairs)).or_insert(Series::Value(0.0)) {
                *v += by;
            }
        });
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)], value: f64) {
        self.with(name, help, Kind::Gauge, |f| {
            f.series.insert(labels(pairs), Series::Value(value));
        });
    }

    /// Adds `by` (may be negative) to a gauge.
    pub fn add(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)], by: f64) {
        self.with(name, help, Kind::Gauge, |f| {
            if let Series::Value(v) = f.series.entry(labels(pairs)).or_insert(Series::Value(0.0)) {
                *v += by;
            }
        });
    }

    /// Records an observation in a histogram.
    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        buckets: &'static [f64],
        pairs: &[(&str, &str)],
        value: f64,
    ) {
        self.with(name, help, Kind::Histogram(buckets), |f| {
            let s = f
                .series
                .entry(labels(pairs))
                .or_insert_with(|| Series::Histogram {
                    buckets: vec![0; buckets.len()],
                    sum: 0.0,
                    count: 0,
                });
            if let Series::Histogram {
                buckets: counts,
                sum,
                count,
            } = s
            {
                for (i, le) in buckets.iter().enumerate() {
                    if value <= *le {
                        counts[i] += 1;
                    }
                }
                *sum += value;
                *count += 1;
            }
        });
    }

    /// The value of a counter or gauge series (tests and `/debug`).
    pub fn value(&self, name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
        let g = self.families.lock().unwrap_or_else(|p| p.into_inner());
        match g.get(name)?.series.get(&labels(pairs))? {
            Series::Value(v) => Some(*v),
            Series::Histogram { count, .. } => Some(*count as f64),
        }
    }

    /// Everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let g = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, fam) in g.iter() {
            let kind = match fam.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram(_) => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {}", fam.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, series) in &fam.series {
                match (series, &fam.kind) {
                    (Series::Value(v), _) => {
                        let _ =
                            writeln!(out, "{name}{} {}", render_labels(labels, None), number(*v));
                    }
                    (
                        Series::Histogram {
                            buckets,
                            sum,
                            count,
                        },
                        Kind::Histogram(les),
                    ) => {
                        for (le, n) in les.iter().zip(buckets) {
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {n}",
                                render_labels(labels, Some(&number(*le)))
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {count}",
                            render_labels(labels, Some("+Inf"))
                        );
                        let _ = writeln!(
                            out,
                            "{name}_sum{} {}",
                            render_labels(labels, None),
                            number(*sum)
                        );
                        let _ =
                            writeln!(out, "{name}_count{} {count}", render_labels(labels, None));
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Serves `/metrics` and `/health/ready` on `listener` until `stop` fires.
pub async fn serve(listener: TcpListener, metrics: Metrics, stop: CancellationToken) {
    loop {
        let (mut stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut len = 0;
            // Read the request head (bodies are not expected).
            while len < buf.len() {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    stream.read(&mut buf[len..]),
                )
                .await
                {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        len += n;
                        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let mut parts = head.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let path = path.split('?').next().unwrap_or("");
            let (status, ctype, body) = match (method, path) {
                ("GET" | "HEAD", "/metrics") => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    metrics.render(),
                ),
                ("GET" | "HEAD", "/health/ready") => {
                    ("200 OK", "text/plain; charset=utf-8", "ready\n".to_owned())
                }
                ("GET" | "HEAD", _) => (
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    "not found\n".to_owned(),
                ),
                _ => (
                    "405 Method Not Allowed",
                    "text/plain; charset=utf-8",
                    "method not allowed\n".to_owned(),
                ),
            };
            let mut response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if method != "HEAD" {
                response.push_str(&body);
            }
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let m = Metrics::new();
        m.inc(
            "gitlab_runner_api_request_statuses_total",
            "API requests by status",
            &[("endpoint", "request_job"), ("status", "204")],
            1.0,
        );
        m.inc(
            "gitlab_runner_api_request_statuses_total",
            "API requests by status",
            &[("endpoint", "request_job"), ("status", "204")],
            1.0,
        );
        m.set(
            "gitlab_runner_concurrent",
            "The current value of concurrent setting",
            &[],
            4.0,
        );
        m.observe(
            "gitlab_runner_job_duration_seconds",
            "Job durations",
            &[1.0, 10.0],
            &[("runner", "t1_abc")],
            5.5,
        );
        let text = m.render();
        assert!(text.contains("# TYPE gitlab_runner_api_request_statuses_total counter\n"));
        assert!(text.contains("gitlab_runner_api_request_statuses_total{endpoint=\"request_job\",status=\"204\"} 2\n"), "{text}");
        assert!(text.contains("gitlab_runner_concurrent 4\n"));
        assert!(text
            .contains("gitlab_runner_job_duration_seconds_bucket{runner=\"t1_abc\",le=\"1\"} 0\n"));
        assert!(text.contains(
            "gitlab_runner_job_duration_seconds_bucket{runner=\"t1_abc\",le=\"10\"} 1\n"
        ));
        assert!(text.contains(
            "gitlab_runner_job_duration_seconds_bucket{runner=\"t1_abc\",le=\"+Inf\"} 1\n"
        ));
        assert!(text.contains("gitlab_runner_job_duration_seconds_sum{runner=\"t1_abc\"} 5.5\n"));
    }

    #[tokio::test]
    async fn serves_metrics_over_http() {
        let m = Metrics::new();
        m.set(
            "gitlab_runner_version_info",
            "Version",
            &[("version", "0.1.0")],
            1.0,
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, m, stop.clone()));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
        assert!(body.contains("gitlab_runner_version_info{version=\"0.1.0\"} 1"));
        stop.cancel();
    }
}
