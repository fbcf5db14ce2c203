#!/usr/bin/env bash

trap 'exit 1' TERM

if [ -n "${BASH_VERSION-}" ] || set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit
set +o noclobber
: | (trap 'exit 1' TERM; eval $'[ -d /builds/t3_abcdef/0/group/project.tmp ] || mkdir -p /builds/t3_abcdef/0/group/project.tmp\necho \'Skipping Git repository setup\'\n[ -d /builds/t3_abcdef/0/group/project ] || mkdir -p /builds/t3_abcdef/0/group/project\n')
exit 0
