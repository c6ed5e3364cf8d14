#!/usr/bin/env bash
# Proves the README's first command, `./bootstrap.sh ab`, on a fresh clone of this checkout
# as a new user gets it: no .venv, pip's cache off, and libvirt's build tools unusable
# (a `pkg-config` that fails is first on PATH), because the test command installs
# libvirt-dev and pkg-config on this machine and would hide a run that needs them.
#   ci/first-command.sh [rig run options...]
set -euo pipefail
src="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/rig-first-command.XXXXXX")"
# On success the clone goes; on failure everything stays for a look.
trap 'rc=$?; if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "[first-command] failed ($rc): kept $work" >&2; fi' EXIT
git clone -q "$src" "$work/clone"
mkdir "$work/bin"
printf '#!/bin/sh\necho "pkg-config: made to fail by ci/first-command.sh" >&2\nexit 1\n' > "$work/bin/pkg-config"
chmod +x "$work/bin/pkg-config"
cd "$work/clone"
echo "[first-command] ./bootstrap.sh ab in a fresh clone ($work/clone), pkg-config failing, pip cache off" >&2
PATH="$work/bin:$PATH" PIP_NO_CACHE_DIR=1 ./bootstrap.sh ab --out "$work/run" "$@"
if .venv/bin/python -c 'import libvirt' 2>/dev/null; then
    echo "[first-command] libvirt-python was installed by the run command: it must not need it" >&2
    exit 1
fi
echo "[first-command] ok: the default A/B ran from a fresh clone without libvirt's build tools" >&2
