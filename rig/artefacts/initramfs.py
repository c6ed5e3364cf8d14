"""The dom0 initramfs: busybox, the agent /init from guests/agent/, and for the SSH
channel dropbear, lspci and the NIC's kernel modules.

Built reproducibly (fixed mtimes and owners, sorted entries, `cpio --reproducible`,
no compression) and cached by a hash of its inputs, so the same inputs give the same
bytes on any machine and a rebuild is skipped. The tools come from pinned Debian
packages (artefacts.GuestTools); only the files their ELF headers ask for are kept.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import posixpath
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from rig.artefacts.archive import GuestTools
from rig.artefacts.store import Artefact, Cache, sha256_file
from rig.errors import ArtefactError, CorruptArtefactError

GUESTS = Path(__file__).resolve().parents[2] / "guests"
AGENT = GUESTS / "agent" / "init"
FORMAT_VERSION = "4"  # bump when the layout below changes (3: stored uncompressed, 4: applet links)
_DIRS = ("bin", "dev", "proc", "sys", "tmp", "sbin", "usr", "usr/bin", "usr/sbin", "etc/rig", "root")
# Taken from the tools' packages, with the libraries they need. busybox is the shell
# and every small command; the rest serve the SSH channel.
TOOL_FILES = ("bin/busybox", "usr/sbin/dropbear", "usr/bin/dropbearkey", "usr/bin/lspci")
DATA_FILES = ("usr/share/misc/pci.ids",)
MODULE_LIST = "etc/rig/modules"   # modules to insmod, in order, relative to /lib/modules/<release>/


def is_static_elf(data: bytes) -> bool:
    """True for an ELF64 executable without a PT_INTERP (dynamic loader) segment."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def find_busybox() -> Path:
    path = shutil.which("busybox") or "/bin/busybox"
    if not os.path.isfile(path):
        raise ArtefactError("busybox not found: install Debian's busybox-static")
    with open(path, "rb") as f:
        if not is_static_elf(f.read(65536)):
            raise ArtefactError(f"{path} is dynamically linked: install Debian's busybox-static")
    return Path(path)


def applet_links(busybox: Path, timeout: float = 30.0) -> dict[str, str]:
    """busybox's applets as links to it ("usr/bin/awk" -> "../../bin/busybox"), made here so
    dom0 does not pay for `busybox --install -s` (hundreds of system calls under TCG) at every
    boot. Empty when this machine cannot run that busybox (another architecture): the agent
    then installs them itself."""
    try:
        out = subprocess.run([str(busybox), "--list-full"], capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if out.returncode != 0:
        return {}
    links = {}
    for rel in out.stdout.decode(errors="replace").split():
        rel = rel.strip("/")
        if rel and rel != "bin/busybox" and ".." not in rel.split("/"):
            links[rel] = posixpath.relpath("/bin/busybox", posixpath.dirname("/" + rel))
    return links


def elf_needs(path: Path) -> tuple[str | None, list[str]]:
    """(PT_INTERP, DT_NEEDED sonames) of an ELF file; (None, []) for a static one."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        interp = None
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_INTERP":
                interp = seg.get_interp_name()
        needed = [tag.needed for sec in elf.iter_sections() if isinstance(sec, DynamicSection)
                  for tag in sec.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]
    return interp, needed


def resolve_in_root(root: Path, rel: str) -> Path | None:
    """The regular file `rel` names inside an unpacked tree, following symlinks (absolute
    targets are read relative to `root`, never to this machine's /)."""
    path = root / rel.lstrip("/")
    for _ in range(40):
        parent = Path(os.path.realpath(path.parent)) if path.parent.is_relative_to(root) else None
        if parent is None or not parent.is_relative_to(root.resolve()):
            return None
        path = parent / path.name
        if path.is_symlink():
            target = os.readlink(path)
            path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
            continue
        return path if path.is_file() else None
    return None


def library_closure(root: Path, binaries: list[str], lib_dirs: tuple[str, ...]) -> dict[str, Path]:
    """Every file the binaries need to run: {path in the initramfs: file in root}."""
    files: dict[str, Path] = {}
    todo = list(binaries)
    while todo:
        rel = todo.pop()
        if rel in files:
            continue
        src = resolve_in_root(root, rel)
        if src is None:
            raise ArtefactError(f"{rel} is missing from the dom0 tools in {root}")
        files[rel] = src
        interp, needed = elf_needs(src)
        if interp:
            todo.append(interp.lstrip("/"))
        for soname in needed:
            found = next((f"{d}/{soname}" for d in lib_dirs if resolve_in_root(root, f"{d}/{soname}")), None)
            if found is None:
                raise ArtefactError(f"{rel} needs {soname}, which no package of the dom0 tools provides")
            todo.append(found)
    return files


# --- kernel modules ----------------------------------------------------------------------

_MODULE_SUFFIX = re.compile(r"\.ko(\.(xz|gz|zst))?$")


def module_name(path: str) -> str:
    return _MODULE_SUFFIX.sub("", path.rsplit("/", 1)[-1]).replace("-", "_")


def parse_modules_dep(text: str) -> dict[str, list[str]]:
    """modules.dep: 'path: dep1 dep2' lines -> {path: [deps]} (pure)."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            path, _, deps = line.partition(":")
            out[path.strip()] = deps.split()
    return out


def load_order(dep: dict[str, list[str]], wanted: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(module paths to load, dependencies first; wanted names no module provides)."""
    by_name = {module_name(p): p for p in dep}
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for d in dep.get(path, []):
            visit(d)
        order.append(path)

    missing = []
    for name in wanted:
        path = by_name.get(name.replace("-", "_"))
        if path is None:
            missing.append(name)
        else:
            visit(path)
    return order, missing


@dataclass(frozen=True)
class KernelModules:
    """A kernel's modules directory (lib/modules/<release>) and its modules.dep text."""

    dir: Path
    dep: str

    @property
    def release(self) -> str:
        return self.dir.name


def _module_bytes(path: Path) -> bytes:
    # Stored uncompressed: busybox's insmod hands the file to init_module as it is.
    data = path.read_bytes()
    return lzma.decompress(data) if path.suffix == ".xz" else data


def probe_binary(cache: Cache, name: str, multiarch: str, packages: tuple[str, ...]) -> Path:
    """guests/agent/NAME.c built static for `multiarch` with Debian's {multiarch}-gcc (a
    cross compiler for another architecture), cached by source, compiler and flags."""
    source = AGENT.parent / f"{name}.c"
    compiler = f"{multiarch}-gcc"
    flags = ["-static", "-Os", "-s", "-Wall", "-Werror"]
    needs = f"dom0's {name} probe is built with Debian's {' and '.join(packages)}"
    if shutil.which(compiler) is None:
        raise ArtefactError(f"{compiler} not found: {needs}")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.partition("\n")[0]
    # the static libc and the kernel's uapi headers come from packages of their own
    libs = subprocess.run(["dpkg-query", "-W", *packages], capture_output=True, text=True).stdout
    digest = hashlib.sha256("\0".join([version, libs, *flags]).encode() + b"\0" + source.read_bytes()).hexdigest()[:16]
    out = cache.root / "probes" / f"{name}-{multiarch}-{digest}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        proc = subprocess.run([compiler, *flags, "-o", f"{tmp}/{name}", str(source)], capture_output=True, text=True)
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines() or ["no output"]
            first = next((ln for ln in lines if "error:" in ln), lines[-1])
            raise ArtefactError(f"{compiler} could not build {source.name} ({first.strip()}); {needs}")
        Path(tmp, name).rename(out)
    return out


def build(cache: Cache, tools: GuestTools | None = None, modules: KernelModules | None = None,
          nic_modules: tuple[str, ...] = (), multiarch: str = "x86_64-linux-gnu",
          busybox: Path | None = None, agent: Path = AGENT, probes: dict[str, Path] | None = None) -> Artefact:
    """The initramfs for one kernel: `tools` None gives a serial-only one (host busybox).
    `probes`: NAME -> binary, installed as bin/rig-NAME for the agent to run."""
    lib_dirs = (f"lib/{multiarch}", f"usr/lib/{multiarch}", "lib64")
    if tools is not None:
        files = library_closure(tools.root, list(TOOL_FILES), lib_dirs)
        for rel in DATA_FILES:
            src = resolve_in_root(tools.root, rel)
            if src is not None:
                files[rel] = src
    else:
        files = {"bin/busybox": busybox or find_busybox()}
    if not is_static_elf(files["bin/busybox"].read_bytes()[:65536]):
        raise ArtefactError(f"{files['bin/busybox']} is dynamically linked: the agent needs busybox-static")
    module_paths, missing = load_order(parse_modules_dep(modules.dep), nic_modules) if modules else ([], [])
    contents: dict[str, bytes | Path] = {"init": agent, **files}
    contents.update({f"bin/rig-{name}": path for name, path in (probes or {}).items()})
    for rel in module_paths:
        plain = _MODULE_SUFFIX.sub(".ko", rel)
        contents[f"lib/modules/{modules.release}/{plain}"] = _module_bytes(modules.dir / rel)
    contents[MODULE_LIST] = "".join(_MODULE_SUFFIX.sub(".ko", r) + "\n" for r in module_paths).encode()
    # A real tool (dropbear, lspci) wins over an applet of the same name, as with --install.
    links = {rel: target for rel, target in applet_links(files["bin/busybox"]).items() if rel not in contents}

    key = hashlib.sha256(FORMAT_VERSION.encode())
    for rel in sorted(contents):
        data = contents[rel]
        key.update(rel.encode() + b"\0" + hashlib.sha256(data if isinstance(data, bytes) else data.read_bytes()).digest())
    for rel in sorted(links):
        key.update(b"link " + rel.encode() + b"\0" + links[rel].encode())
    digest = key.hexdigest()[:24]
    out = cache.root / "initramfs" / f"{agent.parent.name}-{digest}.cpio"
    record = out.with_suffix(".sha256")
    version = " ".join(filter(None, [f"tools={tools.digest}" if tools else "tools=host-busybox",
                                     f"modules={modules.release}:{','.join(map(module_name, module_paths)) or '-'}"
                                     if modules else "", f"missing={','.join(missing)}" if missing else "",
                                     f"applets={len(links) or 'installed-by-agent'}"]))
    if out.is_file() and record.is_file():
        try:
            return Artefact("initramfs", out, record.read_text().strip(), f"built:{digest}", version).verify()
        except CorruptArtefactError as exc:  # built here, so the remedy is building it again
            raise CorruptArtefactError(out, exc.want, exc.got,
                                       f"delete it (rm {out} {record}); the next run builds it again") from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    for tool in ("cpio",):
        if shutil.which(tool) is None:
            raise ArtefactError(f"{tool} not found: the initramfs is built with GNU {tool}")
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        stage = Path(tmp) / "root"
        for d in _DIRS:
            (stage / d).mkdir(parents=True, exist_ok=True)
        written: dict[Path, str] = {}
        for rel, data in sorted(contents.items()):
            dest = stage / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, Path) and data in written:  # e.g. /lib64/ld-linux-x86-64.so.2
                dest.symlink_to(os.path.relpath(stage / written[data], dest.parent))
                continue
            dest.write_bytes(data if isinstance(data, bytes) else data.read_bytes())
            if isinstance(data, Path):
                written[data] = rel
            os.chmod(dest, 0o755 if rel == "init" or not isinstance(data, bytes) and os.access(data, os.X_OK)
                     else 0o644)
        for rel, target in sorted(links.items()):
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).symlink_to(target)
        names = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
        for p in [stage, *(stage / n for n in names)]:  # the same bytes under any umask
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        for p in [stage, *(stage / n for n in names)]:
            os.utime(p, (0, 0), follow_symlinks=False)
        cpio = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "--reproducible", "-R", "0:0"],
                              input=("\n".join(names) + "\n").encode(), cwd=stage, capture_output=True)
        if cpio.returncode != 0:
            raise ArtefactError(f"cpio failed: {cpio.stderr.decode(errors='replace').strip()}")
        # Uncompressed: dom0 gunzipping 6 MB under TCG cost about a second before /init ran;
        # unpacked, the archive is 14 MB, which QEMU and Xen copy in milliseconds.
        tmp_out = Path(tmp) / "initramfs.cpio"
        tmp_out.write_bytes(cpio.stdout)
        tmp_out.rename(out)
    record.write_text(sha256_file(out) + "\n")
    return Artefact("initramfs", out, record.read_text().strip(), f"built:{digest}", version)
