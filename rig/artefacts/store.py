"""The rig's cache: Xen and dom0 kernels from Debian's archive, user-supplied files, sha256s.

Packages come through a private apt root inside the cache (its own lists and
archives) whose sources are copied from the machine's own apt configuration, with
the backports suite added on the same mirror. Nothing is installed on the host and
no mirror host name is ever written by the rig.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Deb822
from debian.debian_support import Version

from rig.errors import ArtefactError, CorruptArtefactError, InputError
from rig.spec.platform import Arch

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


def _pins_digest(pins: dict[str, str]) -> str:
    text = "\n".join(f"{p}={v}" for p, v in sorted(pins.items()))
    return "tools-" + hashlib.sha256(text.encode()).hexdigest()[:16]


# --- apt sources -------------------------------------------------------------------------

@dataclass(frozen=True)
class AptSource:
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str = ""

    def deb822(self) -> str:
        lines = ["Types: deb", f"URIs: {' '.join(self.uris)}", f"Suites: {' '.join(self.suites)}",
                 f"Components: {' '.join(self.components)}"]
        if self.signed_by:
            lines.append(f"Signed-By: {self.signed_by}")
        return "\n".join(lines) + "\n"


def parse_sources(files: dict[str, str]) -> list[AptSource]:
    """apt source entries ('deb' only) from sources.list (one-line) and *.sources (deb822) texts."""
    out = []
    for name, text in files.items():
        if name.endswith(".sources"):
            for para in Deb822.iter_paragraphs(text):
                if "deb" not in para.get("Types", "").split() or para.get("Enabled", "yes").lower() == "no":
                    continue
                out.append(AptSource(tuple(para.get("URIs", "").split()), tuple(para.get("Suites", "").split()),
                                     tuple(para.get("Components", "").split()), para.get("Signed-By", "").strip()))
        else:
            for line in text.splitlines():
                m = re.match(r"^\s*deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)\s+(?P<comps>.+)$",
                             line.split("#", 1)[0])
                if m:
                    opts = dict(o.split("=", 1) for o in (m.group("opts") or "").split() if "=" in o)
                    out.append(AptSource((m.group("uri"),), (m.group("suite"),), tuple(m.group("comps").split()),
                                         opts.get("signed-by", "")))
    return out


def rig_sources(host_sources: list[AptSource], codename: str = CODENAME) -> list[AptSource]:
    """The host's Debian entries for `codename`, plus `codename`-backports on the same mirror."""
    debian = [s for s in host_sources
              if any(suite == codename or suite.startswith(codename + "-") for suite in s.suites)]
    main = [s for s in debian if codename in s.suites]
    if not main:
        raise ArtefactError(f"no apt source for Debian {codename} is configured "
                            "(/etc/apt/sources.list{,.d}); the rig reuses that mirror")
    have = {suite for s in debian for suite in s.suites}
    out = [AptSource(s.uris, tuple(x for x in s.suites if x == codename or x.startswith(codename + "-")),
                     s.components, s.signed_by) for s in debian]
    if f"{codename}-backports" not in have:
        m = main[0]
        out.append(AptSource(m.uris, (f"{codename}-backports",), m.components, m.signed_by))
    return out


def read_host_sources(etc: Path = Path("/etc/apt")) -> dict[str, str]:
    files = {}
    if (etc / "sources.list").is_file():
        files["sources.list"] = (etc / "sources.list").read_text()
    for f in sorted((etc / "sources.list.d").glob("*")):
        if f.suffix in (".list", ".sources") and f.is_file():
            files[f.name] = f.read_text()
    return files


class Apt:
    """apt-get/apt-cache against the rig's private apt root."""

    def __init__(self, root: Path):
        self.root = root

    def _opts(self) -> list[str]:
        r = self.root
        opts = ["-o", f"Dir::Etc::SourceList={r / 'sources.list'}", "-o", f"Dir::Etc::SourceParts={r / 'sources.list.d'}",
                "-o", f"Dir::State={r / 'state'}", "-o", f"Dir::Cache={r / 'cache'}",
                "-o", "Dir::State::status=/var/lib/dpkg/status", "-o", "APT::Default-Release="]
        if os.geteuid() == 0:
            opts += ["-o", "APT::Sandbox::User=root"]  # _apt cannot write into a user's cache
        return opts

    def _call(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        if shutil.which(tool) is None:
            raise ArtefactError(f"{tool} not found: the rig fetches Xen and kernels with Debian's apt")
        proc = subprocess.run([tool, *self._opts(), *args], cwd=cwd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise ArtefactError(f"{tool} {' '.join(args)} failed: {last}")
        return proc.stdout

    def setup(self, sources: list[AptSource]) -> None:
        for d in ("sources.list.d", "state/lists/partial", "cache/archives/partial"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "sources.list").write_text("")
        (self.root / "sources.list.d" / "rig.sources").write_text("\n".join(s.deb822() for s in sources))

    def update(self) -> None:
        self._call("apt-get", "-q", "update")

    def versions(self, package: str) -> list[tuple[str, str]]:
        """[(version, suite)] from apt-cache madison."""
        out = []
        for line in self._call("apt-cache", "madison", package).splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 3 and parts[0] == package:
                suite = parts[2].split()[1].split("/")[0] if len(parts[2].split()) > 1 else ""
                out.append((parts[1], suite))
        return out

    def depends(self, package: str, version: str) -> list[str]:
        text = self._call("apt-cache", "show", f"{package}={version}")
        para = next(iter(Deb822.iter_paragraphs(text)), {})
        return [d.strip() for d in para.get("Depends", "").split(",") if d.strip()]

    def closure(self, packages: tuple[str, ...]) -> list[str]:
        """The packages and everything they depend on (Depends/Pre-Depends only, real packages)."""
        out = self._call("apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                         "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages)
        return sorted({line.strip() for line in out.splitlines() if line and not line.startswith((" ", "<"))})

    def download(self, package: str, version: str, dest: Path) -> Path:
        """The .deb of package=version (of apt's candidate when version is "")."""
        self._call("apt-get", "-q", "download", f"{package}={version}" if version else package, cwd=dest)
        debs = list(dest.glob(f"{package}_*.deb"))
        if len(debs) != 1:
            raise ArtefactError(f"apt-get download {package}={version} left no single .deb in {dest}")
        return debs[0]


def newest(versions: list[tuple[str, str]], suites: set[str]) -> str | None:
    candidates = [Version(v) for v, suite in versions if suite in suites]
    return str(max(candidates)) if candidates else None


# --- the cache ---------------------------------------------------------------------------

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

    def _apt(self) -> Apt:
        apt = Apt(self.root / "apt")
        apt.setup(rig_sources(parse_sources(read_host_sources())))
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

    def _install(self, kind: str, name: str, deb: Path, source: str, version: str, boot_file_of) -> dict:
        """Unpack `deb` into kind/name/root atomically and write its manifest."""
        final = self.root / kind / name
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.root / kind))
        try:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], check=True, capture_output=True)
            boot_rel = boot_file_of(tmp)
            files = {str(p.relative_to(tmp)): sha256_file(p)
                     for p in sorted(tmp.rglob("*")) if p.is_file() and not p.is_symlink()}
            manifest = {"name": name, "source": source, "version": version, "boot_file": boot_rel,
                        "deb_sha256": sha256_file(deb), "files": files}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            return manifest
        except subprocess.CalledProcessError as exc:
            raise ArtefactError(f"dpkg-deb -x {deb.name} failed: {exc.stderr.decode(errors='replace').strip()}") from exc
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
    def xen(self, arch: Arch, *, fetch: bool = True, refresh: bool = False, version: str | None = None) -> Artefact:
        """The hypervisor: as first fetched, or (a replay) exactly `version`, kept as xen/<package>@<version>."""
        current = None if refresh else self._load("xen", arch.xen_package)
        if version is None or (current and current["version"] == version):
            return self._get("xen", arch.xen_package, f"Xen ({arch.xen_package})", lambda: self._fetch_xen(arch),
                             fetch=fetch, refresh=refresh)
        pinned = f"{arch.xen_package}@{version}"
        return self._get("xen", pinned, f"Xen {pinned}", lambda: self._fetch_xen(arch, version, pinned),
                         fetch=fetch, refresh=refresh)

    def xen_efi(self, arch: Arch, *, fetch: bool = True) -> Artefact:
        """xen.efi from the same package as the multiboot hypervisor."""
        self.xen(arch, fetch=fetch)
        manifest = self._load("xen", arch.xen_package)
        rel = f"root/{arch.xen_efi_member}"
        if rel not in manifest["files"]:
            raise ArtefactError(f"{arch.xen_package} {manifest['version']} has no {arch.xen_efi_member}")
        return Artefact("xen.efi", self.root / "xen" / arch.xen_package / rel, manifest["files"][rel],
                        manifest["source"], manifest["version"]).verify()

    def _fetch_xen(self, arch: Arch, version: str | None = None, entry: str | None = None) -> dict:
        apt = self._apt()
        apt.update()
        package = arch.xen_package
        version = version or newest(apt.versions(package), {s.format(codename=CODENAME)
                                                 for s in ("{codename}", "{codename}-updates", "{codename}-security")})
        if version is None:
            raise ArtefactError(f"{package} is not available from the configured {CODENAME} mirror")
        (self.root / "xen").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root) as dl:
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

            return self._install("xen", entry or package, deb, f"debian:{package}={version}", version, gunzip_hypervisor)

    # -- kernels --------------------------------------------------------------------------
    def kernel(self, name: str, *, fetch: bool = True, refresh: bool = False, version: str | None = None) -> Artefact:
        """The named kernel: the newest the archive had when first fetched, or (a replay)
        exactly `version`, kept beside it as kernels/<name>@<version>."""
        if name not in DEBIAN_KERNELS:
            raise InputError(f"unknown kernel {name!r} (known: {', '.join(sorted(DEBIAN_KERNELS))}; "
                             "or pass --kernel NAME=PATH)")
        current = None if refresh else self._load("kernels", name)
        if version is None or (current and current["version"] == version):
            return self._get("kernels", name, f"kernel {name}", lambda: self._fetch_kernel(DEBIAN_KERNELS[name]),
                             fetch=fetch, refresh=refresh)
        pinned = f"{name}@{version}"
        art = self._get("kernels", pinned, f"kernel {pinned}",
                        lambda: self._fetch_kernel(DEBIAN_KERNELS[name], version, pinned), fetch=fetch, refresh=refresh)
        return Artefact(name, art.path, art.sha256, art.source, art.version)

    @staticmethod
    def modules_dir(kernel: Artefact) -> Path | None:
        """lib/modules/<release> of a kernel unpacked from its Debian package (beside /boot)."""
        if not kernel.source.startswith("debian:"):
            return None
        found = sorted((kernel.path.parent.parent / "lib" / "modules").glob("*"))
        return found[0] if found else None

    def _fetch_kernel(self, kernel: DebianKernel, version: str | None = None, entry: str | None = None) -> dict:
        apt = self._apt()
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
        (self.root / "kernels").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root) as dl:
            deb = apt.download(image, meta_version, Path(dl))

            def vmlinuz(tmp: Path) -> str:
                found = sorted((tmp / "root" / "boot").glob("vmlinuz-*"))
                if not found:
                    raise ArtefactError(f"{image} {meta_version} has no /boot/vmlinuz-*")
                return str(found[0].relative_to(tmp))

            return self._install("kernels", entry or kernel.name, deb, f"debian:{image}={meta_version}", meta_version,
                                 vmlinuz)

    # -- dom0 userspace tools ----------------------------------------------------------------
    def guest_tools(self, pins: dict[str, str] | None = None, *, fetch: bool = True,
                    refresh: bool = False) -> "GuestTools":
        """busybox, dropbear and pciutils with their libraries, unpacked from Debian packages.

        Without `pins`, the versions fetched first are kept (guest/current.json) so every
        run uses the same bytes until `rig fetch --refresh`; with pins (a replay), exactly
        those versions.
        """
        pointer = self.root / "guest" / "current.json"
        fresh = pins is None and (refresh or self.current_tools_pins() is None)
        if not fresh and pins is None:
            pins = self.current_tools_pins()
        if pins is not None:
            name = _pins_digest(pins)
            manifest = self._load("guest", name)
            if manifest is None:
                if not fetch:
                    raise ArtefactError(f"dom0 tools {name} are not in the cache {self.root}; run `rig fetch`")
                with self.locked():
                    manifest = self._load("guest", name) or self._fetch_guest_tools(pins)
        else:
            if not fetch:
                raise ArtefactError(f"dom0 tools are not in the cache {self.root}; run `rig fetch`")
            with self.locked():
                manifest = self._fetch_guest_tools(None)
        if fresh or not pointer.is_file():
            pointer.parent.mkdir(parents=True, exist_ok=True)
            pointer.write_text(json.dumps({"packages": manifest["packages"]}, indent=1) + "\n")
        return GuestTools(self.root / "guest" / manifest["name"] / "root", manifest["packages"], manifest["name"])

    def current_tools_pins(self) -> dict[str, str] | None:
        pointer = self.root / "guest" / "current.json"
        return json.loads(pointer.read_text())["packages"] if pointer.is_file() else None

    def _fetch_guest_tools(self, pins: dict[str, str] | None) -> dict:
        apt = self._apt()
        apt.update()
        packages = sorted(pins) if pins else apt.closure(GUEST_PACKAGES)
        (self.root / "guest").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root) as dl:
            versions = {}
            for package in packages:
                deb = apt.download(package, pins[package] if pins else "", Path(dl))
                versions[package] = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                                                   capture_output=True, text=True).stdout.strip()
            name = _pins_digest(versions)
            final = self.root / "guest" / name
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.root / "guest"))
            try:
                for deb in sorted(Path(dl).glob("*.deb")):
                    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], check=True, capture_output=True)
                manifest = {"name": name, "packages": versions}
                (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
                if final.exists():
                    shutil.rmtree(final)
                tmp.rename(final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return manifest

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
