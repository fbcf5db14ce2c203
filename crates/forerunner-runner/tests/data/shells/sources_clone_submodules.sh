#!/usr/bin/env bash

trap 'exit 1' TERM

if [ -n "${BASH_VERSION-}" ] || set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit
set +o noclobber
: | (trap 'exit 1' TERM; eval $'[ -d /builds/t3_abcdef/0/group/project.tmp ] || mkdir -p /builds/t3_abcdef/0/group/project.tmp\nrm -rf /builds/t3_abcdef/0/group/project\n[ -d /builds/t3_abcdef/0/group/project ] || mkdir -p /builds/t3_abcdef/0/group/project\ncd /builds/t3_abcdef/0/group/project\necho \'Fetching changes...\'\nif [ ! -d .git ]; then git init -q; fi\nif [ -e .git/index.lock ] || [ -e .git/shallow.lock ] || [ -e .git/HEAD.lock ]; then rm -f .git/index.lock .git/shallow.lock .git/HEAD.lock; fi\ngit remote set-url origin http://127.0.0.1:8080/group/project.git 2> /dev/null || git remote add origin http://127.0.0.1:8080/group/project.git\ngit -c \'http.extraHeader=Authorization: Basic Z2l0bGFiLWNpLXRva2VuOg==\' fetch origin --prune --quiet +refs/heads/main:refs/remotes/origin/main\necho \'Checking out 01234567 as detached HEAD (ref is main)...\'\ngit checkout -f -q 0123456789abcdef0123456789abcdef01234567\ngit clean -ffdx -e cache/\ngit -c \'http.extraHeader=Authorization: Basic Z2l0bGFiLWNpLXRva2VuOg==\' submodule sync --recursive\ngit -c \'http.extraHeader=Authorization: Basic Z2l0bGFiLWNpLXRva2VuOg==\' submodule update --init --recursive\n')
exit 0
