#!/usr/bin/env bash
# run_exec of the example driver: `run.sh <script file> <stage name>` for every stage.
# Runs the generated script with bash on this host. A failing script is a build failure: its
# exit code goes to $BUILD_EXIT_CODE_FILE and the driver exits with $BUILD_FAILURE_EXIT_CODE.
# SIGTERM (cancel, timeout) reaches the whole process group, the script included.
script="$1"
stage="$2"
if [ ! -f "$script" ]; then
  echo "ERROR: no script for stage $stage at $script" >&2
  exit "$SYSTEM_FAILURE_EXIT_CODE"
fi
bash "$script"
code=$?
if [ "$code" -ne 0 ]; then
  printf '%s' "$code" > "$BUILD_EXIT_CODE_FILE"
  exit "$BUILD_FAILURE_EXIT_CODE"
fi
