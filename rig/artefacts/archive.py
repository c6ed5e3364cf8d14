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

from rig.errors import ArtefactError
from rig.spec.platform import Arch
from rig.artefacts.apt import dpkg_deb, newest

if TYPE_CHECKING:
    from rig.artefacts.store import Cache


@dataclass(frozen=True)
class DebianKernel:
    name: str
    suites: tuple[str, ...]   # suite name templates, {codename} filled from the host
    version_prefix: str       # guards the name: debian-bpo-6.12 must really be 6.12.y
    description: str


DEBIAN_KERNELS = {
    k.name: k for k in (
        DebianKernel("debian-6.1", ("{codename}", "{codename}-updates", "{codename}-security"), "6.1.",
                     "Debian bookworm 6.1.y: lacks the PVH balloon fix (unpatched)"),
        DebianKernel("debian-bpo-6.12", ("{codename}-backports",), "6.12.",
                     "Debian bookworm-backports 6.12.y: has 38620fc4e893 and follow-ups (patched)"),
    )
}
CODENAME = "bookworm"  # the Debian release the named kernels and Xen 4.17 come from


# Userspace for dom0 beyond busybox: an SSH server and lspci. Their libraries come
# along through apt's dependency closure; the initramfs keeps only what the ELFs need.
GUEST_PACKAGES = ("busybox-static", "dropbear-bin", "pciutils")


@dataclass(frozen=True)
class GuestTools:
    root: Path                 # the packages unpacked into one tree
    packages: dict[str, str]   # package -> version
    digest: str


def pins_digest(pins: dict[str, str]) -> str:
    text = "\n".join(f"{p}={v}" for p, v in sorted(pins.items()))
    return "tools-" + hashlib.sha256(text.encode()).hexdigest()[:16]


# Each fetcher runs under the cache's lock (Cache._get, guest_tools), downloads through
# the private apt root and installs with Cache.install (atomic, with a sha256 manifest).

def fetch_xen(cache: Cache, arch: Arch, version: str | None = None, entry: str | None = None) -> dict:
    apt = cache.apt()
    apt.update()
    package = arch.xen_package
    version = version or newest(apt.versions(package), {s.format(codename=CODENAME)
                                             for s in ("{codename}", "{codename}-updates", "{codename}-security")})
    if version is None:
        raise ArtefactError(f"{package} is not available from the configured {CODENAME} mirror")
    (cache.root / "xen").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.root) as dl:
        deb = apt.download(package, version, Path(dl))

        def gunzip_hypervisor(tmp: Path) -> str:
            gz = tmp / "root" / arch.xen_member
            if not gz.is_file():
                raise ArtefactError(f"{package} {version} has no {arch.xen_member}")
            # QEMU's multiboot loader takes no gzip: keep the hypervisor uncompressed.
            out = tmp / Path(arch.xen_member).stem
            with gzip.open(gz) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            return out.name

        return cache.install("xen", entry or package, deb, f"debian:{package}={version}", version, gunzip_hypervisor)


def fetch_kernel(cache: Cache, kernel: DebianKernel, version: str | None = None, entry: str | None = None) -> dict:
    apt = cache.apt()
    apt.update()
    meta = "linux-image-amd64"
    suites = {s.format(codename=CODENAME) for s in kernel.suites}
    meta_version = version or newest(apt.versions(meta), suites)
    if meta_version is None:
        raise ArtefactError(f"{meta} is not available from suites {', '.join(sorted(suites))}")
    image = next((d.split()[0] for d in apt.depends(meta, meta_version) if d.startswith("linux-image-")), None)
    if image is None:
        raise ArtefactError(f"{meta} {meta_version} depends on no linux-image package")
    if not meta_version.startswith(kernel.version_prefix):
        raise ArtefactError(f"{kernel.name}: the archive now serves {meta_version}, not {kernel.version_prefix}y; "
                            "the rig's kernel table needs a new row")
    (cache.root / "kernels").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.root) as dl:
        deb = apt.download(image, meta_version, Path(dl))

        def vmlinuz(tmp: Path) -> str:
            found = sorted((tmp / "root" / "boot").glob("vmlinuz-*"))
            if not found:
                raise ArtefactError(f"{image} {meta_version} has no /boot/vmlinuz-*")
            return str(found[0].relative_to(tmp))

        return cache.install("kernels", entry or kernel.name, deb, f"debian:{image}={meta_version}", meta_version,
                             vmlinuz)


def fetch_guest_tools(cache: Cache, pins: dict[str, str] | None) -> dict:
    apt = cache.apt()
    apt.update()
    packages = sorted(pins) if pins else apt.closure(GUEST_PACKAGES)
    (cache.root / "guest").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.root) as dl:
        versions = {}
        for package in packages:
            deb = apt.download(package, pins[package] if pins else "", Path(dl))
            versions[package] = dpkg_deb("-f", str(deb), "Version").strip()
        name = pins_digest(versions)
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

