#!/usr/bin/env bash

trap 'exit 1' TERM

if set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit
set +o noclobber
: | (trap 'exit 1' TERM; eval $'mkdir -p /builds/t3_abcdef/0/group/project.tmp\nrm -rf /builds/t3_abcdef/0/group/project\nmkdir -p /builds/t3_abcdef/0/group/project\ncd /builds/t3_abcdef/0/group/project\necho \'Fetching changes...\'\nif [ ! -d .git ]; then git init -q; fi\nrm -f .git/index.lock .git/shallow.lock .git/HEAD.lock\nif git remote get-url origin > /dev/null 2>&1; then git remote set-url origin http://127.0.0.1:8080/group/project.git; else git remote add origin http://127.0.0.1:8080/group/project.git; fi\ngit -c http.extraHeader="Authorization: Basic $(printf \'%s\' "gitlab-ci-token:$CI_JOB_TOKEN" | base64 | tr -d \'\\n\')" fetch origin --prune --quiet +refs/heads/main:refs/remotes/origin/main\necho \'Checking out 01234567 as detached HEAD (ref is main)...\'\ngit checkout -f -q 0123456789abcdef0123456789abcdef01234567\ngit clean -ffdx -e cache/\ngit -c http.extraHeader="Authorization: Basic $(printf \'%s\' "gitlab-ci-token:$CI_JOB_TOKEN" | base64 | tr -d \'\\n\')" submodule sync --recursive\ngit -c http.extraHeader="Authorization: Basic $(printf \'%s\' "gitlab-ci-token:$CI_JOB_TOKEN" | base64 | tr -d \'\\n\')" submodule update --init --recursive\n')
exit 0
