#!/bin/sh
# rig field-script: run as root on the machine that misbehaves (a Xen host booted as dom0,
# or the same machine booted natively: both are evidence). POSIX sh; needs only what a Xen
# host has (lspci from pciutils for the PCI tree). Writes one tarball, prints its path.
#   sh collect.sh [OUTDIR]      then: rig import rig-field-HOST-DATE.tar.gz -o mybug.toml
set -u
out_dir=${1:-.}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
name="rig-field-$(hostname 2>/dev/null || echo host)-$stamp"
work=$(mktemp -d "${TMPDIR:-/tmp}/rig-field.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM   # the EXIT trap then removes the work directory
dir="$work/$name"
mkdir "$dir"
manifest="$dir/MANIFEST"
echo "rig field evidence $stamp" > "$manifest"
# say: into the manifest, and to stderr (stdout carries only the tarball's path)
say() { echo "$*" >> "$manifest"; echo "$*" >&2; }
[ "$(id -u)" = 0 ] || say "not root: /proc/iomem shows zero addresses and lspci hides capabilities"

# get FILE COMMAND...: run it, keep its output, say in the manifest whether it worked
get() {
    file=$1; shift
    if "$@" > "$dir/$file" 2> "$dir/$file.err"; then
        echo "ok      $file: $*" >> "$manifest"
    else
        say "missing $file: $* ($(head -c 200 "$dir/$file.err" | tr '\n' ' '))"
    fi
    [ -s "$dir/$file.err" ] || rm -f "$dir/$file.err"
}

memmap() {
    [ -d /sys/firmware/memmap ] || { echo "no /sys/firmware/memmap" >&2; return 1; }
    for e in /sys/firmware/memmap/*; do
        start=$(cat "$e/start") && end=$(cat "$e/end") && type=$(cat "$e/type") || return 1
        printf '%s %s %s\n' "$start" "$end" "$type"
    done > "$work/memmap.unsorted" || return 1
    sort -t ' ' -k1,1 "$work/memmap.unsorted"
}

get lspci-vvv.txt lspci -vvv -nn
get lspci-tree.txt lspci -tv
get iomem.txt cat /proc/iomem
get e820.txt memmap
get dmesg.txt dmesg
get cmdline.txt cat /proc/cmdline
get uname.txt uname -a
if command -v xl > /dev/null 2>&1; then
    get xl-dmesg.txt xl dmesg
    get xl-info.txt xl info
else
    say "missing xl-dmesg.txt, xl-info.txt: no xl here (not a Xen dom0, or no toolstack)"
fi

tar -C "$work" -czf "$out_dir/$name.tar.gz" "$name" || exit 1
echo "$out_dir/$name.tar.gz"
