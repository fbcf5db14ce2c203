#!/usr/bin/env bash
# Builds the local Docker images the docker tests run in, forerunner-test/busybox:latest and
# forerunner-test/busybox-alt:latest, if they are missing (no registry is reachable, so nothing
# can be pulled). The work is done by `ensure_test_images` in
# crates/forerunner-runner/src/executors/docker/testimages.rs, through the Engine API: it takes a
# static busybox from $FORERUNNER_BUSYBOX, from a cache under $TMPDIR, or from Debian's
# busybox-static package (`apt-get download`, so apt and dpkg-deb are needed the first time).
#
# Optional: every docker test prepares the images itself on first use. This script only makes
# that happen up front, e.g. as a separate CI step. Without a reachable Docker daemon it prints a
# "skipped: …" line and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test -p forerunner-runner --test docker_engine -- --exact test_images_are_ready
