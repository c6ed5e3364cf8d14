"""The dom0 initramfs: busybox-static plus the agent /init from guests/agent/.

Built reproducibly (fixed mtimes and owners, sorted entries, `cpio --reproducible`,
`gzip -n`) and cached by a hash of its inputs, so the same inputs give the same
bytes on any machine and a rebuild is skipped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from .artefacts import Artefact, Cache, sha256_file
from .errors import ArtefactError

GUESTS = Path(__file__).resolve().parent.parent / "guests"
AGENT = GUESTS / "agent" / "init"
FORMAT_VERSION = "1"  # bump when the layout below changes
_DIRS = ("bin", "dev", "proc", "sys", "tmp", "sbin", "usr", "usr/bin", "usr/sbin")


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


def build(cache: Cache, busybox: Path | None = None, agent: Path = AGENT) -> Artefact:
    busybox = busybox or find_busybox()
    key = hashlib.sha256()
    for part in (FORMAT_VERSION.encode(), busybox.read_bytes(), agent.read_bytes()):
        key.update(hashlib.sha256(part).digest())
    digest = key.hexdigest()[:24]
    out = cache.root / "initramfs" / f"agent-{digest}.cpio.gz"
    record = out.with_suffix(".sha256")
    if out.is_file() and record.is_file():
        return Artefact("initramfs", out, record.read_text().strip(), f"built:{digest}").verify()
    out.parent.mkdir(parents=True, exist_ok=True)
    for tool in ("cpio", "gzip"):
        if shutil.which(tool) is None:
            raise ArtefactError(f"{tool} not found: the initramfs is built with GNU {tool}")
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        stage = Path(tmp) / "root"
        for d in _DIRS:
            (stage / d).mkdir(parents=True, exist_ok=True)
        shutil.copy(busybox, stage / "bin" / "busybox")
        shutil.copy(agent, stage / "init")
        os.chmod(stage / "bin" / "busybox", 0o755)
        os.chmod(stage / "init", 0o755)
        names = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
        for p in [stage, *(stage / n for n in names)]:
            os.utime(p, (0, 0), follow_symlinks=False)
        cpio = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "--reproducible", "-R", "0:0"],
                              input=("\n".join(names) + "\n").encode(), cwd=stage, capture_output=True)
        if cpio.returncode != 0:
            raise ArtefactError(f"cpio failed: {cpio.stderr.decode(errors='replace').strip()}")
        tmp_out = Path(tmp) / "initramfs.cpio.gz"
        with open(tmp_out, "wb") as f:
            subprocess.run(["gzip", "-n", "-9"], input=cpio.stdout, stdout=f, check=True)
        tmp_out.rename(out)
    record.write_text(sha256_file(out) + "\n")
    return Artefact("initramfs", out, record.read_text().strip(), f"built:{digest}")
