#!/usr/bin/env bash
# The whole fault suite, the slow faults too (a frozen QEMU in every stage waits out each
# stage limit, about 10 min in all), and the other tests marked nightly (the libvirt bridge
# parity, libvirt after a SIGKILL, the 32-bit hole under SeaBIOS, rig bisect with three real
# kernel builds, about 9 min); the push CI (.ci/run) runs only the fast ones.
# docs/faults.md is the table these tests hold the rig to. JUnit: runs/faults/junit.xml.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
mkdir -p runs/faults
exec ./bootstrap.sh test -m "faults or nightly" --junitxml=runs/faults/junit.xml "$@"
