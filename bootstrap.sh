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
    # `ab` installs only what running needs; `test` adds the test tools and libvirt-python
    # (compiled: needs libvirt-dev and pkg-config, which only the test command installs).
    local extras=$1 stamp=.venv/.rig-installed want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
    if [ ! -x .venv/bin/python ]; then
        say "creating .venv"
        python3 -m venv .venv
    fi
    # A venv set up for `test` also serves `ab`, never the other way round.
    if ! grep -qxF -e "$want" -e "$(cut -d' ' -f1 <<< "$want") test" "$stamp" 2>/dev/null; then
        say "installing the rig and its Python dependencies into .venv"
        .venv/bin/pip install -q --upgrade pip
        if [ "$extras" = test ]; then .venv/bin/pip install -q -e '.[test]'; else .venv/bin/pip install -q -e .; fi
        echo "$want" > "$stamp"
    fi
}

case "${1:-}" in
    ab|test) ;;
    *) echo "usage: $0 ab [rig run options] | test [pytest options]" >&2; exit 2 ;;
esac
command="$1"; shift

# The report is tested in a real browser; dom0 kernels are built from source in a test;
# the aarch64 row boots under qemu-system-aarch64 (and AAVMF, a Recommends we do not get),
# with dom0's foreign-map probe built by Debian's cross compiler (its libc a Recommends).
# libvirt: the second host backend is tested against a real libvirtd (libvirt-dev and
# pkg-config build libvirt-python).
[ "$command" = test ] && DEBS+=(qemu-system-arm qemu-efi-aarch64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross
                                chromium make gcc flex bison bc ccache libelf-dev libssl-dev xz-utils patch
                                libvirt-daemon-system libvirt-dev pkg-config)
start_libvirt() {
    # No systemd on CI runners: start the daemons libvirt's QEMU driver needs, once.
    pgrep -x virtlogd > /dev/null && pgrep -x libvirtd > /dev/null && return
    say "starting virtlogd and libvirtd"
    $SUDO mkdir -p /var/log/libvirt /var/run/libvirt
    pgrep -x virtlogd > /dev/null || $SUDO virtlogd -d
    pgrep -x libvirtd > /dev/null || $SUDO libvirtd -d
    for _ in $(seq 50); do virsh -c qemu:///system version > /dev/null 2>&1 && return; sleep 0.2; done
    say "libvirtd did not answer on qemu:///system"; exit 1
}

install_debs
[ "$command" = test ] && start_libvirt
install_venv "$([ "$command" = test ] && echo test || echo run)"
say "fetching Xen and kernels into the cache (once)"
.venv/bin/rig fetch

case "$command" in
    ab)   exec .venv/bin/rig run scenarios/bar-clash-64bit.toml "$@" ;;
    test) exec .venv/bin/python -m pytest "$@" ;;
esac
