"""Debian's archive: the kernels and dom0 tools the rig names, and fetching them (Xen,
kernels, dom0's userspace tools) into the cache through its private apt root."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rig.errors import ArtefactError, InputError
from rig.spec import platform
from rig.artefacts.apt import dpkg_deb, newest

if TYPE_CHECKING:
    from rig.artefacts.store import Cache


@dataclass(frozen=True)
class DebianKernel:
    name: str
    suites: tuple[str, ...]   # suite name templates, {codename} filled with `codename`
    version_prefix: str       # guards the name: debian-bpo-6.12 must really be 6.12.y
    description: str
    codename: str = "bookworm"   # the Debian release, on the machine's own mirror


DEBIAN_KERNELS = {
    k.name: k for k in (
        DebianKernel("debian-6.1", ("{codename}", "{codename}-updates", "{codename}-security"), "6.1.",
                     "Debian bookworm 6.1.y: lacks the PVH balloon fix (unpatched)"),
        DebianKernel("debian-bpo-6.12", ("{codename}-backports",), "6.12.",
                     "Debian bookworm-backports 6.12.y: has 38620fc4e893 and follow-ups (patched)"),
        DebianKernel("debian-13-6.12", ("{codename}", "{codename}-updates", "{codename}-security"), "6.12.",
                     "Debian 13 (trixie) 6.12.y: has the balloon fix", "trixie"),
        DebianKernel("debian-13-bpo-7", ("{codename}-backports",), "7.",
                     "Debian 13 trixie-backports 7.x: the balloon target changed again (87af633689ce, "
                     "0949c646d646)", "trixie"),
        DebianKernel("debian-sid-7", ("{codename}",), "7.",
                     "Debian unstable (sid) 7.x: what the next release carries", "sid"),
    )
}
CODENAME = "bookworm"  # the Debian release the named kernels and Xen 4.17 come from, as the machine's


@dataclass(frozen=True)
class DebianXen:
    name: str                 # what scenarios and --xen say: "4.17"
    arch: str
    codename: str             # the Debian release that carries it, on the machine's own mirror
    package: str
    member: str               # the hypervisor QEMU loads (x86: multiboot, gzipped; Arm: an Image)
    efi_member: str           # xen.efi inside the package
    suites: tuple[str, ...] = ("{codename}", "{codename}-updates", "{codename}-security")


DEBIAN_XENS = {
    (x.name, x.arch): x for x in (
        DebianXen("4.17", "x86_64", "bookworm", "xen-hypervisor-4.17-amd64", "boot/xen-4.17-amd64.gz",
                  "boot/xen-4.17-amd64.efi"),
        DebianXen("4.20", "x86_64", "trixie", "xen-hypervisor-4.20-amd64", "boot/xen-4.20-amd64.gz",
                  "boot/xen-4.20-amd64.efi"),
        DebianXen("4.17", "aarch64", "bookworm", "xen-hypervisor-4.17-arm64", "boot/xen-4.17-arm64",
                  "boot/xen-4.17-arm64.efi"),
        DebianXen("4.20", "aarch64", "trixie", "xen-hypervisor-4.20-arm64", "boot/xen-4.20-arm64",
                  "boot/xen-4.20-arm64.efi"),
    )
}
XEN_NAMES = tuple(dict.fromkeys(name for name, _ in DEBIAN_XENS))   # what --xen takes
DEFAULT_XEN = platform.DEFAULT_XEN


def debian_xen(name: str | None, arch: str) -> DebianXen:
    """The Debian Xen called `name` (None: the default) for `arch`; an unknown one lists the known."""
    xen = DEBIAN_XENS.get((name or DEFAULT_XEN, arch))
    if xen is None:
        known = ", ".join(n for n, a in DEBIAN_XENS if a == arch)
        raise InputError(f"unknown Xen {name!r} for {arch} (known: {known}; or --xen PATH to a hypervisor)")
    return xen


@dataclass(frozen=True)
class DebianQemu:
    """A QEMU other than the machine's own, unpacked into the cache (the system's stays)."""
    name: str                 # what scenarios and --qemu say: "10.0"
    arch: str
    codename: str
    suites: tuple[str, ...]
    package: str              # the emulator's package; its version names the QEMU
    companions: tuple[str, ...]   # unpacked with it, each at the newest version in `suites`
    binary: str               # inside the unpacked root
    data_dirs: tuple[str, ...]    # -L: its own ROMs and the SeaBIOS it depends on


DEBIAN_QEMUS = {
    q.name: q for q in (
        # bookworm-backports' QEMU 10.0 depends on SeaBIOS >> 1.16.3-1~, which bookworm-backports
        # carries too: the pair is what a bookworm user who installs QEMU 10 gets.
        DebianQemu("10.0", "x86_64", "bookworm", ("{codename}-backports",), "qemu-system-x86",
                   ("qemu-system-common", "qemu-system-data", "seabios"), "usr/bin/qemu-system-x86_64",
                   ("usr/share/qemu", "usr/share/seabios")),
    )
}


def debian_qemu(name: str | None, arch: str) -> DebianQemu | None:
    """The QEMU called `name`; None (or platform.SYSTEM_QEMU) is the machine's own."""
    if name in (None, platform.SYSTEM_QEMU):
        return None
    qemu = DEBIAN_QEMUS.get(name)
    if qemu is None or qemu.arch != arch:
        known = ", ".join([platform.SYSTEM_QEMU] + [n for n, q in DEBIAN_QEMUS.items() if q.arch == arch])
        raise InputError(f"unknown QEMU {name!r} for {arch} (known: {known})")
    return qemu


# Userspace for dom0 beyond busybox: an SSH server and lspci. Their libraries come
# along through apt's dependency closure; the initramfs keeps only what the ELFs need.
GUEST_PACKAGES = ("busybox-static", "dropbear-bin", "pciutils")


@dataclass(frozen=True)
class GuestTools:
    root: Path                 # the packages unpacked into one tree
    packages: dict[str, str]   # package -> version
    digest: str


def pins_digest(pins: dict[str, str], debian_arch: str = "amd64") -> str:
    text = "\n".join(f"{p}={v}" for p, v in sorted(pins.items()))
    if debian_arch != "amd64":   # the same names and versions, other bytes
        text += f"\narch={debian_arch}"
    return "tools-" + hashlib.sha256(text.encode()).hexdigest()[:16]


# Each fetcher runs under the cache's lock (Cache._get, guest_tools), downloads through
# the private apt root and installs with Cache.install (atomic, with a sha256 manifest).

def fetch_xen(cache: Cache, xen: DebianXen, version: str | None = None, entry: str | None = None) -> dict:
    apt = cache.apt(xen.codename, platform.ARCHES[xen.arch].debian_arch)
    apt.update()
    package = xen.package
    suites = {s.format(codename=xen.codename) for s in xen.suites}
    version = version or newest(apt.versions(package), suites)
    if version is None:
        raise ArtefactError(f"Xen {xen.name}: {package} is not available from suites {', '.join(sorted(suites))} "
                            "on the configured mirror")
    (cache.root / "xen").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.root) as dl:
        deb = apt.download(package, version, Path(dl))

        def gunzip_hypervisor(tmp: Path) -> str:
            gz = tmp / "root" / xen.member
            if not gz.is_file():
                raise ArtefactError(f"{package} {version} has no {xen.member}")
            if gz.suffix != ".gz":   # Arm's is an Image, loaded as it is
                return f"root/{xen.member}"
            # QEMU's multiboot loader takes no gzip: keep the hypervisor uncompressed.
            out = tmp / Path(xen.member).stem
            with gzip.open(gz) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            return out.name

        return cache.install("xen", entry or package, deb, f"debian:{package}={version}", version, gunzip_hypervisor)


def fetch_qemu(cache: Cache, qemu: DebianQemu) -> dict:
    apt = cache.apt(qemu.codename)
    apt.update()
    suites = {s.format(codename=qemu.codename) for s in qemu.suites}
    versions = {}
    for package in (qemu.package, *qemu.companions):
        # the companions of QEMU's own source share its version; SeaBIOS has its own
        versions[package] = newest(apt.versions(package), suites)
        if versions[package] is None:
            raise ArtefactError(f"QEMU {qemu.name}: {package} is not available from suites "
                                f"{', '.join(sorted(suites))} on the configured mirror")
    (cache.root / "qemu").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.root) as dl:
        debs = [apt.download(p, v, Path(dl)) for p, v in versions.items()]

        def emulator(tmp: Path) -> str:
            if not (tmp / "root" / qemu.binary).is_file():
                raise ArtefactError(f"{qemu.package} {versions[qemu.package]} has no /{qemu.binary}")
            return f"root/{qemu.binary}"

        return cache.install("qemu", qemu.name, debs, f"debian:{qemu.package}={versions[qemu.package]} + " +
                             ", ".join(f"{p}={v}" for p, v in versions.items() if p != qemu.package),
                             versions[qemu.package], emulator)


def fetch_kernel(cache: Cache, kernel: DebianKernel, version: str | None = None, entry: str | None = None,
                 arch: platform.Arch = platform.ARCHES["x86_64"]) -> dict:
    apt = cache.apt(kernel.codename, arch.debian_arch)
    apt.update()
    meta = arch.kernel_meta_package
    suites = {s.format(codename=kernel.codename) for s in kernel.suites}
    meta_version = version or newest(apt.versions(meta), suites)
    if meta_version is None:
        raise ArtefactError(f"{meta} is not available from suites {', '.join(sorted(suites))}")
    image = next((d.split()[0] for d in apt.depends(meta, meta_version) if d.startswith("linux-image-")), None)
    if image is None:
        raise ArtefactError(f"{meta} {meta_version} depends on no linux-image package")
    if not meta_version.startswith(kernel.version_prefix):
        raise ArtefactError(f"{kernel.name}: the archive now serves {meta_version}, not {kernel.version_prefix}y; "
                            "the rig's kernel table needs a new row")
    # Debian's 7.x packages split the image: linux-image-X only depends on linux-binary-X
    # (vmlinuz) and linux-modules-X (the modules), all of the same version.
    parts = [image] + [d.split()[0] for d in apt.depends(image, meta_version)
                       if d.startswith(("linux-binary-", "linux-modules-")) and f"(= {meta_version})" in d]
    (cache.root / "kernels").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.root) as dl:
        debs = [apt.download(package, meta_version, Path(dl)) for package in parts]

        def vmlinuz(tmp: Path) -> str:
            found = sorted((tmp / "root" / "boot").glob("vmlinuz-*")) or \
                sorted((tmp / "root" / "usr" / "lib" / "modules").glob("*/vmlinuz"))
            if not found:
                raise ArtefactError(f"{' + '.join(parts)} {meta_version} has no /boot/vmlinuz-* "
                                    "nor /usr/lib/modules/*/vmlinuz")
            return str(found[0].relative_to(tmp))

        return cache.install("kernels", entry or kernel.name, debs, f"debian:{image}={meta_version}", meta_version,
                             vmlinuz)


def fetch_guest_tools(cache: Cache, pins: dict[str, str] | None, debian_arch: str = "amd64") -> dict:
    apt = cache.apt(debian_arch=debian_arch)
    apt.update()
    packages = sorted(pins) if pins else apt.closure(GUEST_PACKAGES)
    (cache.root / "guest").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.root) as dl:
        versions = {}
        for package in packages:
            deb = apt.download(package, pins[package] if pins else "", Path(dl))
            versions[package] = dpkg_deb("-f", str(deb), "Version").strip()
        name = pins_digest(versions, debian_arch)
        final = cache.root / "guest" / name
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache.root / "guest"))
        try:
            for deb in sorted(Path(dl).glob("*.deb")):
                dpkg_deb("-x", str(deb), str(tmp / "root"))
            manifest = {"name": name, "packages": versions}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest

