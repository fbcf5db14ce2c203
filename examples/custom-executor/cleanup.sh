#!/usr/bin/env bash
# cleanup_exec of the example driver: always runs last; its stdout goes to the runner's log at
# debug level, stderr at warn level. Sources stay in the builds directory for the next job
# (GIT_STRATEGY=fetch); a VM or container driver would destroy its machine here.
echo "Cleaned up after job ${CUSTOM_ENV_CI_JOB_ID:-?}"
