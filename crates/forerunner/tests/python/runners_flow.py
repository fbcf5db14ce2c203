"""python-gitlab against the Forerunner coordinator: runner registration and
management exactly as users write it.

Run by crates/forerunner/tests/it/python_gitlab.rs with GITLAB_URL,
GITLAB_PAT and REGISTRATION_TOKEN set; any failed assertion or unexpected
exception exits non-zero with a traceback.
"""

import os
import warnings

import gitlab
from gitlab import exceptions

# Any warning (e.g. a Link header pointing to another host) is a failure.
warnings.simplefilter("error")

url = os.environ["GITLAB_URL"]
pat = os.environ["GITLAB_PAT"]
registration_token = os.environ["REGISTRATION_TOKEN"]

gl = gitlab.Gitlab(url, private_token=pat)
gl.auth()
assert gl.user.username == "root", gl.user
assert gl.version()[0] != "unknown", gl.version()

group = gl.groups.create({"name": "python group", "path": "python-group"})
G = group.id

# The flow of the issue: a group runner created with a PAT.
runner = gl.user.runners.create(
    {
        "runner_type": "group_type",
        "group_id": G,
        "tag_list": ["tag1", "tag2", "tag3"],
        "description": "sample group runner",
    }
)
assert isinstance(runner.id, int) and runner.id > 0, runner
assert runner.token.startswith("glrt-"), runner.token

# A PAT is not a registration token: GitLab's 403.
try:
    gl.runners.create({"token": pat})
except exceptions.GitlabCreateError as e:
    assert e.response_code == 403, e.response_code
    assert e.error_message == "403 Forbidden - invalid token supplied", e.error_message
else:
    raise AssertionError("registering with a PAT must fail")

# The legacy flow with the instance registration token.
legacy = gl.runners.create(
    {
        "token": registration_token,
        "description": "legacy instance runner",
        "tag_list": ["a", "b"],
        "run_untagged": True,
        "maximum_timeout": 3600,
    }
)
assert isinstance(legacy.id, int) and legacy.id > 0, legacy
assert legacy.token, legacy

# verify: a live token passes.
gl.runners.verify(runner.token)
gl.runners.verify(legacy.token)
try:
    gl.runners.verify("glrt-t2_definitelynotatoken")
except exceptions.GitlabVerifyError as e:
    assert e.response_code == 403, e.response_code
else:
    raise AssertionError("verifying an unknown token must fail")

# list (owned: root owns the group) and all (admin).
owned = gl.runners.list(get_all=True)
assert runner.id in [r.id for r in owned], owned
assert legacy.id not in [r.id for r in owned], owned
everything = gl.runners.all(get_all=True)
assert {runner.id, legacy.id} <= {r.id for r in everything}, everything
shared = gl.runners.all(scope="shared", get_all=True)
assert [r.id for r in shared] == [legacy.id], shared
group_type = gl.runners.list(type="group_type", get_all=True)
assert [r.id for r in group_type] == [runner.id], group_type
tagged = gl.runners.all(tag_list=["tag1", "tag3"], get_all=True)
assert [r.id for r in tagged] == [runner.id], tagged
assert {r.id for r in gl.runners_all.list(get_all=True)} == {r.id for r in everything}
online = gl.runners.all(status="online", get_all=True)
assert {runner.id, legacy.id} <= {r.id for r in online}, online

# get, then save() after changing tag_list.
r = gl.runners.get(runner.id)
assert r.description == "sample group runner", r
assert sorted(r.tag_list) == ["tag1", "tag2", "tag3"], r.tag_list
assert r.runner_type == "group_type" and r.is_shared is False, r
r.tag_list.append("tag4")
r.description = "renamed"
r.save()
r = gl.runners.get(runner.id)
assert sorted(r.tag_list) == ["tag1", "tag2", "tag3", "tag4"], r.tag_list
assert r.description == "renamed", r.description
r.paused = True
r.save()
assert gl.runners.get(runner.id).paused is True

# Project runners: create, assign to a second project, list, unassign.
project = gl.projects.create({"name": "python project", "namespace_id": G})
second = gl.projects.create({"name": "second project", "namespace_id": G})
assert project.path_with_namespace == "python-group/python-project", project
project_runner = gl.user.runners.create({"runner_type": "project_type", "project_id": project.id})
assert project_runner.token.startswith("glrt-t3_"), project_runner.token
second.runners.create({"runner_id": project_runner.id})
ids = [r.id for r in second.runners.list(get_all=True)]
assert project_runner.id in ids and runner.id in ids and legacy.id in ids, ids
second.runners.delete(project_runner.id)
assert project_runner.id not in [r.id for r in second.runners.list(get_all=True)]
assert project_runner.id in [r.id for r in project.runners.list(get_all=True)]
group_ids = [r.id for r in group.runners.list(get_all=True)]
assert runner.id in group_ids and project_runner.id not in group_ids, group_ids
group_ids = [r.id for r in group.runners.list(scope="online", get_all=True)]
assert runner.id in group_ids, group_ids

# Registration tokens can be switched off instance-wide: 410 Gone.
settings = gl.settings.get()
assert settings.allow_runner_registration_token is True, settings
settings.allow_runner_registration_token = False
settings.save()
try:
    gl.runners.create({"token": registration_token})
except exceptions.GitlabCreateError as e:
    assert e.response_code == 410, e.response_code
    assert e.error_message == "410 Gone - runner registration disallowed", e.error_message
else:
    raise AssertionError("registration must be disallowed")
gl.settings.update(new_data={"allow_runner_registration_token": True})
assert gl.settings.get().allow_runner_registration_token is True

# Pagination: get_all follows Link headers across pages.
for i in range(12):
    gl.user.runners.create({"runner_type": "instance_type", "description": f"bulk {i}"})
first_page = gl.runners.all(per_page=5, page=1)
assert len(first_page) == 5, first_page
paged = gl.runners.all(per_page=5, get_all=True)
assert len(paged) == len(gl.runners.all(per_page=100, get_all=True)) >= 15, len(paged)
assert len({r.id for r in paged}) == len(paged)

# Users and tokens through the API; a non-admin may not create instance runners.
alice = gl.users.create({"username": "alice", "name": "Alice", "email": "alice@example.com", "password": "unused-password"})
alice_pat = alice.personal_access_tokens.create({"name": "ci", "scopes": ["api", "create_runner"]})
assert alice_pat.token.startswith("glpat-"), alice_pat
gl_alice = gitlab.Gitlab(url, private_token=alice_pat.token)
gl_alice.auth()
assert gl_alice.user.username == "alice"
try:
    gl_alice.user.runners.create({"runner_type": "instance_type"})
except exceptions.GitlabCreateError as e:
    assert e.response_code == 403, e.response_code
    assert e.error_message == "403 Forbidden - Insufficient permissions", e.error_message
else:
    raise AssertionError("a non-admin must not create instance runners")
try:
    gl_alice.runners.all()
except exceptions.GitlabListError as e:
    assert e.response_code == 403, e.response_code
else:
    raise AssertionError("a non-admin must not list all runners")

# Project settings decide which runners a project may use.
project.shared_runners_enabled = False
project.save()
ids = [r.id for r in project.runners.list(get_all=True)]
assert legacy.id not in ids and runner.id in ids, ids

# delete by token (legacy) and by id; deleted tokens no longer verify.
gl.runners.delete(token=legacy.token)
try:
    gl.runners.verify(legacy.token)
except exceptions.GitlabVerifyError as e:
    assert e.response_code == 403, e.response_code
else:
    raise AssertionError("a deleted runner's token must not verify")
gl.runners.delete(runner.id)
try:
    gl.runners.verify(runner.token)
except exceptions.GitlabVerifyError as e:
    assert e.response_code == 403, e.response_code
else:
    raise AssertionError("a deleted runner's token must not verify")
try:
    gl.runners.get(runner.id)
except exceptions.GitlabGetError as e:
    assert e.response_code == 404, e.response_code
else:
    raise AssertionError("a deleted runner must be gone")
r = gl.runners.get(project_runner.id)
r.delete()

print("python-gitlab flow OK")
