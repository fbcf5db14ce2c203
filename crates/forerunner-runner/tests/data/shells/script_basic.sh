#!/usr/bin/env bash

trap 'exit 1' TERM

if [ -n "${BASH_VERSION-}" ] || set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit
set +o noclobber
: | (trap 'exit 1' TERM; eval $'[ -d /builds/t3_abcdef/0/group/project.tmp ] || mkdir -p /builds/t3_abcdef/0/group/project.tmp\nexport CI_JOB_ID=42\nexport CI_JOB_TOKEN=glcbt-64_secret\ncd /builds/t3_abcdef/0/group/project\necho $\'\\x1b[32;1m$ echo hello\\x1b[0;m\'\necho hello\necho $\'\\x1b[32;1m$ make test\\x1b[0;m\'\nmake test\n')
exit 0
