#!/usr/bin/env bash
# Regenerates crates/forerunner/link/symbol-order.txt: the functions of the
# `forerunner` executable that a runner runs — start-up, the long poll, the
# job loop and a few shell jobs — recorded by callgrind while
# `cargo bench -p forerunner --bench runner` drives the real runner against
# the real coordinator. The release link lays these functions out first,
# side by side (crates/forerunner/build.rs), so an idle runner touches a few
# hundred kB of code instead of pages scattered over the whole executable.
#
# Run it after a toolchain upgrade, a dependency update or a large change to
# the runner: the bench prints how many of the file's symbols the executable
# still has (names carry a hash that such changes alter; a missing name only
# costs memory, never correctness). Installs valgrind when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
    echo "== installing valgrind"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq valgrind
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== profiling forerunner run under callgrind (the figures the bench prints are not meaningful here)"
RUNNER_BENCH_ROUNDS=${RUNNER_BENCH_ROUNDS:-3} \
RUNNER_BENCH_WRAP="valgrind -q --tool=callgrind --demangle=no --dump-instr=no --compress-strings=no --compress-pos=no --callgrind-out-file=$out/callgrind.%p" \
    cargo bench -p forerunner --bench runner

# Every function of the executable (object ending in /forerunner) that
# callgrind saw run; only Rust symbols (legacy _ZN… and v0 _R… mangling):
# the C library's functions are not in this executable.
order=crates/forerunner/link/symbol-order.txt
awk '/^ob=/ { ob = substr($0, 4) }
     /^fn=/ && ob ~ /\/forerunner$/ { print substr($0, 4) }' "$out"/callgrind.* |
    grep -E '^(_ZN|_R)' | LC_ALL=C sort -u > "$order.new"
if [ ! -s "$order.new" ]; then
    echo "no function of the forerunner executable was recorded; $order is unchanged" >&2
    rm -f "$order.new"
    exit 1
fi
mv "$order.new" "$order"
echo "== $order: $(wc -l < "$order") functions"
