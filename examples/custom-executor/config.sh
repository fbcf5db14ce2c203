#!/usr/bin/env bash
# config_exec of the example driver: says where builds and caches go.
#
# Usage: config.sh [ROOT]   (ROOT from `config_args`, default /tmp/forerunner-custom)
# The job's variables are in CUSTOM_ENV_*; stdout must be JSON, stderr goes to the job log.
set -eu
root="${1:-/tmp/forerunner-custom}"
cat <<EOS
{
  "builds_dir": "${root}/builds",
  "cache_dir": "${root}/cache",
  "builds_dir_is_shared": true,
  "hostname": "$(hostname)",
  "driver": { "name": "forerunner example driver", "version": "v1.0.0" },
  "job_env": { "EXAMPLE_DRIVER_ROOT": "${root}" }
}
EOS
