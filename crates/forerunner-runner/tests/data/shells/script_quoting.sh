#!/usr/bin/env bash

trap 'exit 1' TERM

if [ -n "${BASH_VERSION-}" ] || set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit
set +o noclobber
: | (trap 'exit 1' TERM; eval $'[ -d /builds/t3_abcdef/0/group/project.tmp ] || mkdir -p /builds/t3_abcdef/0/group/project.tmp\nexport QUOTED=\'it\'\\\'\'s "x" $HOME `cmd`\'\nexport MULTI=$\'a\\nb\'\ncd /builds/t3_abcdef/0/group/project\necho $\'\\x1b[32;1m$ echo "$QUOTED"\\x1b[0;m\'\necho "$QUOTED"\necho $\'\\x1b[32;1m$ for f in *; do # collapsed multi-line command\\x1b[0;m\'\nfor f in *; do\n  echo $f\ndone\necho $\'\\x1b[32;1m$ echo \\\'single\\\'\\x1b[0;m\'\necho \'single\'\n')
exit 0
