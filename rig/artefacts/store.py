"""The rig's cache: one lock, sha256 manifests, atomic installs, verified artefacts.

What is in it: Xen, dom0 kernels and dom0's tools from Debian's archive (archive.py,
through the private apt root of apt.py), user-supplied files, initramfs and kernel builds.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rig.artefacts import archive
from rig.spec import platform
from rig.artefacts.apt import Apt, dpkg_deb, parse_sources, read_host_sources, rig_sources
from rig.errors import ArtefactError, CorruptArtefactError, InputError

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    if os.environ.get("RIG_CACHE"):
        return Path(os.environ["RIG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "xen-pvh-rig"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Artefact:
    """A file the boot uses, with where it came from and the hash it must still have."""

    name: str
    path: Path
    sha256: str
    source: str        # "debian:<package>=<version>", "user", "built"
    version: str = ""

    def verify(self) -> "Artefact":
        if not self.path.is_file():
            raise ArtefactError(f"{self.path}: cached file is missing; run `rig fetch --refresh`")
        got = sha256_file(self.path)
        if got != self.sha256:
            raise CorruptArtefactError(self.path, self.sha256, got)
        return self

    def record(self) -> dict:
        return {"name": self.name, "path": str(self.path), "sha256": self.sha256,
                "source": self.source, "version": self.version}


# --- kernel names ------------------------------------------------------------------------

class Cache:
    def __init__(self, root: Path | None = None):
        self.root = root or cache_dir()

    @contextmanager
    def locked(self):
        """Serialise fetches between parallel rig processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                # Said once, so a rig that seems stuck says why (another rig is fetching).
                log.warning("waiting for the cache lock %s (held by pid %s)", self.root / ".lock",
                            lock.read().strip() or "?")
                fcntl.flock(lock, fcntl.LOCK_EX)
            lock.seek(0)
            lock.truncate()
            lock.write(f"{os.getpid()}\n")
            lock.flush()
            yield

    def apt(self, codename: str = archive.CODENAME, debian_arch: str = "amd64") -> Apt:
        """A private apt root for Debian `codename` and architecture, its sources made from
        this machine's own entries (the same mirrors), one root per release and architecture
        (call under locked())."""
        name = "apt" if codename == archive.CODENAME else f"apt-{codename}"
        foreign = debian_arch != "amd64"
        apt = Apt(self.root / (f"{name}-{debian_arch}" if foreign else name), debian_arch if foreign else None)
        apt.setup(rig_sources(parse_sources(read_host_sources()), codename, archive.CODENAME))
        return apt

    # manifests: {"name", "package", "version", "source", "boot_file", "files": {rel: sha256}}
    def _manifest_path(self, kind: str, name: str) -> Path:
        return self.root / kind / name / "manifest.json"

    def _load(self, kind: str, name: str) -> dict | None:
        path = self._manifest_path(kind, name)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ArtefactError(f"{path}: corrupt manifest; run `rig fetch --refresh`") from exc

    def _artefact(self, kind: str, name: str, manifest: dict) -> Artefact:
        base = self.root / kind / name
        rel = manifest["boot_file"]
        return Artefact(name, base / rel, manifest["files"][rel], manifest["source"], manifest["version"])

    def install(self, kind: str, name: str, debs: Path | list[Path], source: str, version: str,
                boot_file_of) -> dict:
        """Unpack `debs` (one package, or several that make one kernel) into kind/name/root
        atomically and write its manifest."""
        debs = [debs] if isinstance(debs, Path) else debs
        final = self.root / kind / name
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.root / kind))
        try:
            for deb in debs:
                dpkg_deb("-x", str(deb), str(tmp / "root"))
            boot_rel = boot_file_of(tmp)
            files = {str(p.relative_to(tmp)): sha256_file(p)
                     for p in sorted(tmp.rglob("*")) if p.is_file() and not p.is_symlink()}
            manifest = {"name": name, "source": source, "version": version, "boot_file": boot_rel,
                        "deb_sha256": sha256_file(debs[0]), "debs": {d.name: sha256_file(d) for d in debs},
                        "files": files}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            return manifest
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _get(self, kind: str, name: str, label: str, fetcher, *, fetch: bool, refresh: bool) -> Artefact:
        """The cached artefact, fetched under the cache lock if missing (or if refresh)."""
        manifest = None if refresh else self._load(kind, name)
        if manifest is None:
            if not fetch:
                raise ArtefactError(f"{label} is not in the cache {self.root}; run `rig fetch`")
            with self.locked():
                # Another rig may have fetched it while we waited for the lock.
                manifest = None if refresh else self._load(kind, name)
                if manifest is None:
                    manifest = fetcher()
        return self._artefact(kind, name, manifest).verify()

    # -- Xen ------------------------------------------------------------------------------
    def xen(self, xen: archive.DebianXen, *, fetch: bool = True, refresh: bool = False,
            version: str | None = None) -> Artefact:
        """The hypervisor: as first fetched, or (a replay) exactly `version`, kept as xen/<package>@<version>."""
        current = None if refresh else self._load("xen", xen.package)
        if version is None or (current and current["version"] == version):
            return self._get("xen", xen.package, f"Xen {xen.name} ({xen.package})",
                             lambda: archive.fetch_xen(self, xen), fetch=fetch, refresh=refresh)
        pinned = f"{xen.package}@{version}"
        return self._get("xen", pinned, f"Xen {pinned}", lambda: archive.fetch_xen(self, xen, version, pinned),
                         fetch=fetch, refresh=refresh)

    def xen_efi(self, xen: archive.DebianXen, *, fetch: bool = True) -> Artefact:
        """xen.efi from the same package as the multiboot hypervisor."""
        self.xen(xen, fetch=fetch)
        manifest = self._load("xen", xen.package)
        rel = f"root/{xen.efi_member}"
        if rel not in manifest["files"]:
            raise ArtefactError(f"{xen.package} {manifest['version']} has no {xen.efi_member}")
        return Artefact("xen.efi", self.root / "xen" / xen.package / rel, manifest["files"][rel],
                        manifest["source"], manifest["version"]).verify()

    # -- QEMU -----------------------------------------------------------------------------
    def qemu(self, qemu: archive.DebianQemu, *, fetch: bool = True) -> Artefact:
        """Another QEMU's emulator, unpacked into qemu/<name>/root beside its ROMs; the
        machine's own QEMU is never touched. Its libraries are the machine's: one it lacks
        is named here, before any boot."""
        art = self._get("qemu", qemu.name, f"QEMU {qemu.name} ({qemu.package})",
                        lambda: archive.fetch_qemu(self, qemu), fetch=fetch, refresh=False)
        ldd = subprocess.run(["ldd", str(art.path)], capture_output=True, text=True)
        missing = sorted({line.split()[0] for line in ldd.stdout.splitlines() if "not found" in line})
        if missing:
            raise ArtefactError(f"QEMU {qemu.name} ({art.path}) needs libraries this machine lacks: "
                                f"{', '.join(missing)} (install the Debian packages that carry them)")
        return art

    def qemu_data_dirs(self, qemu: archive.DebianQemu) -> tuple[Path, ...]:
        return tuple(self.root / "qemu" / qemu.name / "root" / d for d in qemu.data_dirs)

    # -- kernels --------------------------------------------------------------------------
    def kernel(self, name: str, *, fetch: bool = True, refresh: bool = False, version: str | None = None,
               arch: platform.Arch = platform.ARCHES["x86_64"]) -> Artefact:
        """The named kernel for `arch`: the newest the archive had when first fetched, or (a
        replay) exactly `version`, kept beside it as kernels/<entry>@<version>. An x86_64
        kernel's entry is its name, another architecture's <name>-<debian arch>."""
        if name not in archive.DEBIAN_KERNELS:
            raise InputError(f"unknown kernel {name!r} (known: {', '.join(sorted(archive.DEBIAN_KERNELS))}; "
                             "or pass --kernel NAME=PATH)")
        row = archive.DEBIAN_KERNELS[name]
        entry = name if arch.debian_arch == "amd64" else f"{name}-{arch.debian_arch}"
        current = None if refresh else self._load("kernels", entry)
        if version is None or (current and current["version"] == version):
            art = self._get("kernels", entry, f"kernel {entry}", lambda: archive.fetch_kernel(self, row, None, entry, arch),
                            fetch=fetch, refresh=refresh)
            return Artefact(name, art.path, art.sha256, art.source, art.version)
        pinned = f"{entry}@{version}"
        art = self._get("kernels", pinned, f"kernel {pinned}",
                        lambda: archive.fetch_kernel(self, row, version, pinned, arch), fetch=fetch, refresh=refresh)
        return Artefact(name, art.path, art.sha256, art.source, art.version)

    @staticmethod
    def modules_dir(kernel: Artefact) -> Path | None:
        """lib/modules/<release> of a kernel unpacked from its Debian packages: beside /boot
        (bookworm's /lib, trixie's merged /usr/lib), or (Debian's 7.x packages) the directory
        of usr/lib/modules/<release>/vmlinuz itself. None for a kernel not from Debian."""
        if not kernel.source.startswith("debian:"):
            return None
        if kernel.path.name == "vmlinuz" and kernel.path.parent.parent.name == "modules":
            return kernel.path.parent
        root = kernel.path.parent.parent
        found = sorted(p for d in ("lib/modules", "usr/lib/modules") for p in (root / d).glob("*"))
        if not found:
            # Every Debian kernel has modules; without them dom0 has no NIC and no SSH channel.
            raise ArtefactError(f"{kernel.name}: no lib/modules/<release> nor usr/lib/modules/<release> "
                                f"beside {kernel.path}; run `rig fetch --refresh {kernel.name}`")
        return found[0]

    # -- dom0 userspace tools ----------------------------------------------------------------
    def guest_tools(self, pins: dict[str, str] | None = None, *, fetch: bool = True,
                    refresh: bool = False, debian_arch: str = "amd64") -> "archive.GuestTools":
        """busybox, dropbear and pciutils with their libraries, unpacked from Debian packages.

        Without `pins`, the versions fetched first are kept (guest/current.json) so every
        run uses the same bytes until `rig fetch --refresh`; with pins (a replay), exactly
        those versions.
        """
        pointer = self._tools_pointer(debian_arch)
        fresh = pins is None and (refresh or self.current_tools_pins(debian_arch) is None)
        if not fresh and pins is None:
            pins = self.current_tools_pins(debian_arch)
        if pins is not None:
            name = archive.pins_digest(pins, debian_arch)
            manifest = self._load("guest", name)
            if manifest is None:
                if not fetch:
                    raise ArtefactError(f"dom0 tools {name} are not in the cache {self.root}; run `rig fetch`")
                with self.locked():
                    manifest = self._load("guest", name) or archive.fetch_guest_tools(self, pins, debian_arch)
        else:
            if not fetch:
                raise ArtefactError(f"dom0 tools are not in the cache {self.root}; run `rig fetch`")
            with self.locked():
                manifest = archive.fetch_guest_tools(self, None, debian_arch)
        if fresh or not pointer.is_file():
            pointer.parent.mkdir(parents=True, exist_ok=True)
            pointer.write_text(json.dumps({"packages": manifest["packages"]}, indent=1) + "\n")
        return archive.GuestTools(self.root / "guest" / manifest["name"] / "root", manifest["packages"], manifest["name"])

    def _tools_pointer(self, debian_arch: str) -> Path:
        return self.root / "guest" / ("current.json" if debian_arch == "amd64" else f"current-{debian_arch}.json")

    def current_tools_pins(self, debian_arch: str = "amd64") -> dict[str, str] | None:
        pointer = self._tools_pointer(debian_arch)
        return json.loads(pointer.read_text())["packages"] if pointer.is_file() else None

    def kernel_modules_dep(self, modules_dir: Path) -> str:
        """modules.dep of an unpacked kernel's modules (Debian's packages ship none: depmod makes it)."""
        dep = modules_dir / "modules.dep"
        if dep.is_file():
            return dep.read_text()
        if modules_dir.parent.name != "modules" or modules_dir.parent.parent.name != "lib":
            raise InputError(f"{modules_dir}: has no modules.dep and is not a .../lib/modules/RELEASE "
                             "directory depmod could index; run depmod for it")
        if shutil.which("depmod") is None:
            raise ArtefactError("depmod not found: install Debian's kmod")
        base = modules_dir.parent.parent.parent
        with self.locked():  # two rigs indexing the same cached kernel at once
            if dep.is_file():
                return dep.read_text()
            proc = subprocess.run(["depmod", "-b", str(base), modules_dir.name], capture_output=True, text=True)
        if proc.returncode != 0 or not dep.is_file():
            raise ArtefactError(f"depmod -b {base} {modules_dir.name} failed: {proc.stderr.strip()[-200:]}")
        return dep.read_text()

    # -- user files -----------------------------------------------------------------------
    def user_kernel(self, name: str, path: Path) -> Artefact:
        if not path.is_file():
            raise InputError(f"--kernel {name}={path}: no such file")
        return Artefact(name, path.resolve(), sha256_file(path), "user")

    def user_xen(self, path: Path) -> Artefact:
        """A user's xen.gz (or plain xen): gunzipped into the cache, keyed by content."""
        if not path.is_file():
            raise InputError(f"--xen {path}: no such file")
        digest = sha256_file(path)
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        if not gzipped:
            return Artefact("xen", path.resolve(), digest, "user")
        out = self.root / "xen-user" / digest / "xen"
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            with gzip.open(path) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.rename(out)
        return Artefact("xen", out, sha256_file(out), f"user:{path.resolve()} (gunzipped)")
