#!/usr/bin/env bash
# prepare_exec of the example driver: makes the environment ready. This driver runs jobs on
# this host, so it only checks the tools and creates the builds directory. Output goes to the
# job log. Exit with $SYSTEM_FAILURE_EXIT_CODE when the environment cannot be made.
set -eu
echo "Preparing the example environment for job ${CUSTOM_ENV_CI_JOB_ID:-?} on $(hostname)"
for tool in bash git; do
  if ! command -v "$tool" > /dev/null; then
    echo "ERROR: $tool is not installed on $(hostname)" >&2
    exit "$SYSTEM_FAILURE_EXIT_CODE"
  fi
done
mkdir -p "$EXAMPLE_DRIVER_ROOT/builds" || exit "$SYSTEM_FAILURE_EXIT_CODE"
