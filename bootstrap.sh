#!/usr/bin/env bash
# Set up this checkout on Debian 12 and run the default A/B scenario or the test suite.
#   ./bootstrap.sh ab   [rig run options...]   boot Debian 6.1 vs bookworm-backports 6.12 and judge
#   ./bootstrap.sh test [pytest options...]    unit tests + real boots
# Idempotent: it installs only what is missing (Debian packages, a venv in .venv,
# Xen and the named kernels in the rig's cache) and then runs.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

DEBS=(qemu-system-x86 busybox-static cpio gzip python3-venv ovmf dosfstools mtools kmod)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

say() { printf '[bootstrap] %s\n' "$*" >&2; }

install_debs() {
    local missing=()
    for pkg in "${DEBS[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    say "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_venv() {
    local stamp=.venv/.rig-installed want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ ! -x .venv/bin/python ]; then
        say "creating .venv"
        python3 -m venv .venv
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing the rig and its Python dependencies into .venv"
        .venv/bin/pip install -q --upgrade pip
        .venv/bin/pip install -q -e '.[test]'
        echo "$want" > "$stamp"
    fi
}

case "${1:-}" in
    ab|test) ;;
    *) echo "usage: $0 ab [rig run options] | test [pytest options]" >&2; exit 2 ;;
esac
command="$1"; shift

# The report is tested in a real browser; dom0 kernels are built from source in a test.
[ "$command" = test ] && DEBS+=(chromium make gcc flex bison bc ccache libelf-dev libssl-dev xz-utils patch)
install_debs
install_venv
say "fetching Xen and kernels into the cache (once)"
.venv/bin/rig fetch

case "$command" in
    ab)   exec .venv/bin/rig run scenarios/bar-clash-64bit.toml "$@" ;;
    test) exec .venv/bin/python -m pytest "$@" ;;
esac
