"""The cache's private apt root: its own lists and archives, with sources copied from the
machine's apt configuration and the backports suite added on the same mirror. Nothing is
installed on the host and no mirror host name is ever written by the rig."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Deb822
from debian.debian_support import Version

from rig.errors import ArtefactError


def dpkg_deb(*args: str) -> str:
    """dpkg-deb's output; its failure (a truncated .deb, a full disk) an ArtefactError naming it."""
    try:
        return subprocess.run(["dpkg-deb", *args], check=True, capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as exc:
        raise ArtefactError(f"dpkg-deb {' '.join(args)} failed: {exc.stderr.strip()[-300:]}") from exc
    except FileNotFoundError as exc:
        raise ArtefactError("dpkg-deb not found: install Debian's dpkg") from exc


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


ROLLING = ("sid",)


def rig_sources(host_sources: list[AptSource], codename: str, host_codename: str | None = None) -> list[AptSource]:
    """The host's Debian entries for `host_codename` (default: `codename`), with their suites
    renamed to `codename` ("bookworm-security" -> "trixie-security": the same mirrors serve
    every release), plus `codename`-backports on the same mirror."""
    host_codename = host_codename or codename
    debian = [s for s in host_sources
              if any(suite == host_codename or suite.startswith(host_codename + "-") for suite in s.suites)]
    if codename != host_codename:   # another release: Debian's own entries only, not a vendor's
        debian = [s for s in debian if "main" in s.components]
    main = [s for s in debian if host_codename in s.suites]
    if not main:
        raise ArtefactError(f"no apt source for Debian {host_codename} is configured "
                            "(/etc/apt/sources.list{,.d}); the rig reuses that mirror")
    renamed = [AptSource(s.uris, tuple(codename + x[len(host_codename):] for x in s.suites
                                       if x == host_codename or x.startswith(host_codename + "-")),
                         s.components, s.signed_by) for s in debian]
    main = [s for s in renamed if codename in s.suites]
    if codename in ROLLING:   # unstable is one suite: no -updates, -security or -backports
        return [AptSource(s.uris, (codename,), s.components, s.signed_by) for s in main]
    have = {suite for s in renamed for suite in s.suites}
    out = renamed
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

    def __init__(self, root: Path, debian_arch: str | None = None):
        self.root = root
        self.debian_arch = debian_arch   # None: the machine's own; else only that one (arm64)

    def _opts(self) -> list[str]:
        r = self.root
        # Another architecture's packages are looked up against an empty dpkg status: what
        # this machine has installed says nothing about them.
        status = "/var/lib/dpkg/status" if self.debian_arch is None else r / "status"
        opts = ["-o", f"Dir::Etc::SourceList={r / 'sources.list'}", "-o", f"Dir::Etc::SourceParts={r / 'sources.list.d'}",
                "-o", f"Dir::State={r / 'state'}", "-o", f"Dir::Cache={r / 'cache'}",
                "-o", f"Dir::State::status={status}", "-o", "APT::Default-Release="]
        if self.debian_arch is not None:
            opts += ["-o", f"APT::Architecture={self.debian_arch}", "-o", f"APT::Architectures={self.debian_arch}"]
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
        (self.root / "status").touch()
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

