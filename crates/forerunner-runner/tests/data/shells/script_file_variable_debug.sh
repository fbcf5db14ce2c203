#!/usr/bin/env bash

trap 'exit 1' TERM

set -o xtrace
if [ -n "${BASH_VERSION-}" ] || set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit
set +o noclobber
: | (trap 'exit 1' TERM; eval $'[ -d /builds/t3_abcdef/0/group/project.tmp ] || mkdir -p /builds/t3_abcdef/0/group/project.tmp\nprintf \'%s\' $\'apiVersion: v1\\nkind: Config\\n\' > /builds/t3_abcdef/0/group/project.tmp/KUBECONFIG\nexport KUBECONFIG=/builds/t3_abcdef/0/group/project.tmp/KUBECONFIG\ncd /builds/t3_abcdef/0/group/project\necho $\'\\x1b[32;1m$ kubectl version\\x1b[0;m\'\nkubectl version\n')
exit 0
