//! End-to-end tests of the `forerunner` binary: the real coordinator on
//! 127.0.0.1:0 with a fresh data dir, driven by our runner and by
//! third-party clients: python-gitlab and the Perl GitLab::API::v4.
mod ci_support;
mod coordinator_api;
mod custom_e2e;
mod dispatch;
mod docker_e2e;
mod exec;
mod jobs_api;
mod perl_gitlab;
mod pipelines_api;
mod python_gitlab;
mod python_gitlab_pipelines;
mod runner_doctor;
mod runner_e2e;
mod runner_manage;
mod runner_pipelines;
mod runner_register;
mod runner_run;
mod runner_support;
mod serve_cli;
