//! [`RunnerClient`]: the runner half of the job API, for tests. Bodies go
//! through `forerunner-protocol`'s types, so the coordinator is tested
//! against the same shapes our runner sends.

use anyhow::Context as _;
use forerunner_protocol::jobs::{
    JobRequest, JobResponse, JobState, JobTraceOutput, UpdateJobRequest,
};
use forerunner_protocol::paths::{JOB_STATUS_HEADER, JOB_TOKEN_HEADER, LAST_UPDATE_HEADER};
use forerunner_protocol::runners::RunnerInfo;
use forerunner_protocol::trace::{parse_range_header, ContentRange};
use reqwest::StatusCode;

/// What `POST /jobs/request` answered.
#[derive(Debug)]
pub enum JobRequestOutcome {
    /// `201` with a job.
    Job(Box<JobResponse>),
    /// `204` with this `X-GitLab-Last-Update`.
    NoJob(String),
    /// Any other status, with the body.
    Other(StatusCode, String),
}

impl JobRequestOutcome {
    /// The job, panicking otherwise.
    pub fn job(self) -> JobResponse {
        match self {
            JobRequestOutcome::Job(job) => *job,
            other => panic!("expected a job, got {other:?}"),
        }
    }
}

/// What a trace patch answered.
#[derive(Debug, Clone)]
pub struct TraceAnswer {
    /// Status code.
    pub status: StatusCode,
    /// The length the server has (`Range: 0-N`).
    pub length: Option<u64>,
    /// `Job-Status`.
    pub job_status: Option<String>,
}

/// A runner (by its `glrt-` token) talking to a coordinator.
#[derive(Clone)]
pub struct RunnerClient {
    base: String,
    token: String,
    client: reqwest::Client,
    /// Tags announced in `info` (informational).
    pub features: Vec<String>,
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl RunnerClient {
    /// A client for the coordinator at `base` (`http://host:port`).
    pub fn new(base: &str, token: &str) -> RunnerClient {
        RunnerClient {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            client: reqwest::Client::new(),
            features: vec!["upload_multiple_artifacts".into(), "trace_checksum".into()],
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v4{path}", self.base)
    }

    /// `POST /jobs/request` with an optional `last_update`.
    pub async fn request_job(
        &self,
        last_update: Option<&str>,
    ) -> anyhow::Result<JobRequestOutcome> {
        let body = JobRequest {
            token: self.token.clone(),
            system_id: Some("s_testkit0001".into()),
            last_update: last_update.map(str::to_owned),
            info: Some(RunnerInfo {
                name: Some("testkit".into()),
                version: Some("17.11.0".into()),
                features: Some(self.features.iter().map(|f| (f.clone(), true)).collect()),
                ..RunnerInfo::default()
            }),
            session: None,
        };
        let resp = self
            .client
            .post(self.url("/jobs/request"))
            .json(&body)
            .send()
            .await
            .context("failed to send POST /jobs/request")?;
        let status = resp.status();
        Ok(match status {
            StatusCode::CREATED => JobRequestOutcome::Job(Box::new(
                resp.json()
                    .await
                    .context("the job payload is not valid JSON")?,
            )),
            StatusCode::NO_CONTENT => {
                JobRequestOutcome::NoJob(header(&resp, LAST_UPDATE_HEADER).unwrap_or_default())
            }
            other => JobRequestOutcome::Other(other, resp.text().await.unwrap_or_default()),
        })
    }

    /// An immediate request (a `last_update` that never matches, so the
    /// coordinator does not hold it).
    pub async fn request_now(&self) -> anyhow::Result<JobRequestOutcome> {
        self.request_job(Some("0")).await
    }

    /// `PUT /jobs/:id`; returns the status and `Job-Status`.
    pub async fn update(
        &self,
        job: &JobResponse,
        state: JobState,
        failure_reason: Option<&str>,
        exit_code: Option<i32>,
        bytesize: Option<u64>,
    ) -> anyhow::Result<(StatusCode, Option<String>)> {
        let body = UpdateJobRequest {
            token: job.token.clone(),
            state,
            failure_reason: failure_reason
                .map(|r| serde_json::from_value(serde_json::json!(r)))
                .transpose()?,
            exit_code,
            checksum: None,
            output: bytesize.map(|b| JobTraceOutput {
                checksum: String::new(),
                bytesize: b,
            }),
            info: None,
        };
        let resp = self
            .client
            .put(self.url(&format!("/jobs/{}", job.id)))
            .json(&body)
            .send()
            .await
            .context("failed to send PUT /jobs/:id")?;
        Ok((resp.status(), header(&resp, JOB_STATUS_HEADER)))
    }

    /// `PATCH /jobs/:id/trace` with `bytes` at `offset` and `token`.
    pub async fn patch_trace_with(
        &self,
        job_id: i64,
        token: &str,
        offset: u64,
        bytes: &[u8],
    ) -> anyhow::Result<TraceAnswer> {
        let resp = self
            .client
            .patch(self.url(&format!("/jobs/{job_id}/trace")))
            .header(JOB_TOKEN_HEADER, token)
            .header(
                "Content-Range",
                ContentRange::of(offset, bytes.len() as u64).to_string(),
            )
            .body(bytes.to_vec())
            .send()
            .await
            .context("failed to send PATCH /jobs/:id/trace")?;
        Ok(TraceAnswer {
            status: resp.status(),
            length: header(&resp, "Range").and_then(|r| parse_range_header(&r)),
            job_status: header(&resp, JOB_STATUS_HEADER),
        })
    }

    /// `PATCH /jobs/:id/trace` with the job's own token.
    pub async fn patch_trace(
        &self,
        job: &JobResponse,
        offset: u64,
        bytes: &[u8],
    ) -> anyhow::Result<TraceAnswer> {
        self.patch_trace_with(job.id, &job.token, offset, bytes)
            .await
    }

    /// `POST /jobs/:id/artifacts` with a zip archive.
    pub async fn upload_artifacts(
        &self,
        job: &JobResponse,
        zip: Vec<u8>,
    ) -> anyhow::Result<StatusCode> {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(zip).file_name("artifacts.zip"),
        );
        let resp = self
            .client
            .post(self.url(&format!(
                "/jobs/{}/artifacts?artifact_format=zip&artifact_type=archive&expire_in=1d",
                job.id
            )))
            .header(JOB_TOKEN_HEADER, &job.token)
            .multipart(form)
            .send()
            .await
            .context("failed to send POST /jobs/:id/artifacts")?;
        Ok(resp.status())
    }

    /// `GET /jobs/:id/artifacts` with `token`; the status and the bytes.
    pub async fn download_artifacts(
        &self,
        job_id: i64,
        token: &str,
    ) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let resp = self
            .client
            .get(self.url(&format!("/jobs/{job_id}/artifacts")))
            .header(JOB_TOKEN_HEADER, token)
            .send()
            .await
            .context("failed to send GET /jobs/:id/artifacts")?;
        let status = resp.status();
        Ok((status, resp.bytes().await?.to_vec()))
    }

    /// Runs a job to the end: one trace patch, then `success` or `failed`.
    pub async fn finish(&self, job: &JobResponse, success: bool) -> anyhow::Result<StatusCode> {
        let text = format!("running {}\n", job.job_info.name);
        self.patch_trace(job, 0, text.as_bytes()).await?;
        let (state, reason) = if success {
            (JobState::Success, None)
        } else {
            (JobState::Failed, Some("script_failure"))
        };
        let (status, _) = self
            .update(
                job,
                state,
                reason,
                (!success).then_some(1),
                Some(text.len() as u64),
            )
            .await?;
        Ok(status)
    }
}
