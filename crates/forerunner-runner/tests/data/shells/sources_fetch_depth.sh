#!/usr/bin/env bash

trap 'exit 1' TERM

if [ -n "${BASH_VERSION-}" ] || set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit
set +o noclobber
: | (trap 'exit 1' TERM; eval $'[ -d /builds/t3_abcdef/0/group/project.tmp ] || mkdir -p /builds/t3_abcdef/0/group/project.tmp\nexport CI_JOB_TOKEN=glcbt-64_secret\n[ -d /builds/t3_abcdef/0/group/project ] || mkdir -p /builds/t3_abcdef/0/group/project\ncd /builds/t3_abcdef/0/group/project\necho \'Fetching changes with git depth set to 20...\'\nif [ ! -d .git ]; then git init -q; fi\nif [ -e .git/index.lock ] || [ -e .git/shallow.lock ] || [ -e .git/HEAD.lock ]; then rm -f .git/index.lock .git/shallow.lock .git/HEAD.lock; fi\ngit remote set-url origin http://127.0.0.1:8080/group/project.git 2> /dev/null || git remote add origin http://127.0.0.1:8080/group/project.git\ngit -c \'http.extraHeader=Authorization: Basic Z2l0bGFiLWNpLXRva2VuOmdsY2J0LTY0X3NlY3JldA==\' fetch origin --prune --quiet --depth 20 +refs/heads/main:refs/remotes/origin/main \'+refs/tags/*:refs/tags/*\'\necho \'Checking out 01234567 as detached HEAD (ref is main)...\'\ngit checkout -f -q 0123456789abcdef0123456789abcdef01234567\ngit clean -ffdx\n')
exit 0
