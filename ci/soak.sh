#!/usr/bin/env bash
# The soak: boot one host N times and print, per kernel, counts per outcome and failure
# class and the boot-time median and spread (the flake rate the nightly verdicts carry).
#   ci/soak.sh N [SCENARIO]      default SCENARIO: the README's A/B (scenarios/bar-clash-64bit.toml)
# Every round is a whole `rig run` kept in runs/soak/round-NNN/; runs/soak/soak.json has the
# figures. Interrupted, it keeps what ran: `rig soak --summarize runs/soak` counts it again.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
rounds="${1:?usage: ci/soak.sh N [SCENARIO]}"
scenario="${2:-scenarios/bar-clash-64bit.toml}"
./bootstrap.sh test -m "not boot"          # installs everything; the unit tests are cheap
out="${SOAK_OUT:-runs/soak}"
rm -rf "$out"
# No --retries: the soak exists to count the errors retries would hide.
exec .venv/bin/rig soak "$rounds" "$scenario" --out "$out"
