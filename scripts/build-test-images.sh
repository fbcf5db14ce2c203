#!/usr/bin/env bash
# Builds the local Docker images the docker tests run in, forerunner-test/busybox:latest and
# forerunner-test/busybox-alt:latest, if they are missing (no registry is reachable, so nothing
# can be pulled). The work is done by `ensure_test_images` in
# crates/forerunner-runner/src/executors/docker/testimages.rs, through the Engine API: it takes a
# static busybox from $FORERUNNER_BUSYBOX, from a cache under $TMPDIR, or from Debian's
# busybox-static package (`apt-get download`, so apt and dpkg-deb are needed the first time).
#
# Every docker test prepares the images itself on first use; `.ci/run` calls this script before
# the test suite so that a failure to make them (no apt, no Debian mirror) shows up as one clear
# step of its own. Nothing is ever pulled. Without a reachable Docker daemon it prints a
# "skipped: …" line and exits 0, and the docker tests skip the same way.
#
# `--workspace` resolves features as the whole suite does, so the suite reuses this build.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --workspace --locked --test docker_engine -- --exact test_images_are_ready
