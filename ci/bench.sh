#!/usr/bin/env bash
# The speed benchmark, as a user runs the rig: set up as the README does, then per round
# boot each job's floor (the rig's own QEMU argv, an initramfs that only powers off) and
# time `./bootstrap.sh ab` as the A/B; print the medians and every goal's ratio
# (docs/performance.md). Exit 0: every goal met, 1: one missed, 3: a figure could not be had.
#   ci/bench.sh [ROUNDS] [rig bench options...]     e.g. ci/bench.sh 5 --library
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
rounds="${1:-3}"
shift || true
./bootstrap.sh ab --help > /dev/null     # set-up only (packages, .venv, cache): not timed
out=runs/bench
rm -rf "$out"
exec .venv/bin/rig bench --rounds "$rounds" --ab-command "./bootstrap.sh ab" --out "$out" "$@"
