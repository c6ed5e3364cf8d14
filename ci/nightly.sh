#!/usr/bin/env bash
# The nightly job: set up as the README does, boot the whole scenario library, and fail
# only on verdict changes against ci/baseline.json (measured verdicts of every job).
#   ci/nightly.sh [I/N]     run shard I of N (whole hosts, deterministic); default: all
#   SCENARIOS="scenarios/ovmf-*.toml scenarios/hole32-6G.toml" ci/nightly.sh   a subset
# Results go to runs/nightly-<shard>/: serial logs, result.json per job, summary.json,
# report.html.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
shard="${1:-1/1}"
./bootstrap.sh test -m "not boot"          # installs everything; the unit tests are cheap
out="runs/nightly-${shard/\//of}"
rm -rf "$out"
# The matrix's own exit code says whether every expectation held; the nightly verdict is
# whether anything changed, so a known error does not turn every night red.
rc=0
# shellcheck disable=SC2086  # SCENARIOS is a list of globs on purpose
.venv/bin/rig matrix ${SCENARIOS:-scenarios/*.toml} --shard "$shard" --out "$out" --retries 1 || rc=$?
case $rc in 0|1|3) ;; *) exit "$rc" ;; esac   # 2: bad input, 130: interrupted
# A subset of scenarios (SCENARIOS) leaves the other baseline jobs out of the comparison.
exec .venv/bin/rig compare ci/baseline.json "$out" ${SCENARIOS:+--partial}   # $out/junit.xml, report.html, summary.json are the artefacts
