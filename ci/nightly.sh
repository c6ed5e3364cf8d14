#!/usr/bin/env bash
# The nightly job: set up as the README does, then boot the whole scenario library.
#   ci/nightly.sh [I/N]     run shard I of N (whole hosts, deterministic); default: all
# Results go to runs/nightly-<shard>/ (serial logs, result.json per job, summary.json).
# Exit code: 0 every expectation held, 1 one failed, 3 a boot error somewhere.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
shard="${1:-1/1}"
./bootstrap.sh test -m "not boot"          # installs everything; the unit tests are cheap
out="runs/nightly-${shard/\//of}"
rm -rf "$out"
exec .venv/bin/rig matrix scenarios/*.toml --shard "$shard" --out "$out"
