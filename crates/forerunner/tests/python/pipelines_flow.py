"""python-gitlab drives pipelines and jobs on the coordinator.

Usage: pipelines_flow.py create <project_id>
       pipelines_flow.py inspect <project_id> <job_id>

`create` makes a pipeline on main and prints its jobs as JSON; the Rust test
then runs the job with its runner client; `inspect` reads the trace and the
artifacts, retries the job and cancels the retry.
"""

import io
import json
import os
import sys
import zipfile

import gitlab

gl = gitlab.Gitlab(os.environ["GITLAB_URL"], private_token=os.environ["GITLAB_PAT"])
project = gl.projects.get(int(sys.argv[2]))

if sys.argv[1] == "create":
    pipeline = project.pipelines.create({"ref": "main"})
    assert pipeline.ref == "main", pipeline.ref
    assert pipeline.status in ("pending", "created"), pipeline.status
    jobs = pipeline.jobs.list()
    assert [j.name for j in jobs] == ["build"], [j.name for j in jobs]
    assert jobs[0].pipeline["id"] == pipeline.id
    listed = project.pipelines.list()
    assert [p.id for p in listed] == [pipeline.id]
    assert project.pipelines.get(pipeline.id).sha == pipeline.sha
    print(json.dumps({"pipeline": pipeline.id, "jobs": [j.id for j in jobs]}))
elif sys.argv[1] == "inspect":
    job = project.jobs.get(int(sys.argv[3]))
    assert job.status == "success", job.status
    trace = job.trace()
    assert trace == b"running build\n", trace
    archive = zipfile.ZipFile(io.BytesIO(job.artifacts()))
    assert archive.read("out/result.txt") == b"built\n"
    retried = job.retry()
    new_id = retried["id"]
    assert new_id != job.id
    new_job = project.jobs.get(new_id)
    assert new_job.status == "pending", new_job.status
    new_job.cancel()
    new_job = project.jobs.get(new_id)
    assert new_job.status == "canceled", new_job.status
    print("python-gitlab pipelines flow OK")
else:
    sys.exit(f"unknown command {sys.argv[1]}")
