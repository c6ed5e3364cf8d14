"""Build dom0 kernels from source, with or without a patch series: `rig kernel build`.

Out of tree (O=), through ccache, from tinyconfig plus the rig's dom0 fragment for the
architecture (guests/kernel/pvh-dom0.config, arm64-dom0.config) or the user's .config;
every option a fragment asks for is checked after olddefconfig. Another architecture's
kernel is built with Debian's cross compiler (gcc-aarch64-linux-gnu on x86_64). Reproducible (fixed timestamp, user and host) and
cached by a hash of source + patches + configuration + compiler, so an identical
request is instant. Built kernels are named "built:NAME" wherever a kernel name goes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rig.artefacts.apt import dpkg_deb
from rig.artefacts.store import Artefact, Cache, sha256_file
from rig.errors import ArtefactError, InputError, RigError
from rig.spec import platform

FORMAT_VERSION = "2"  # 2: every build in one fixed work directory
PREFIX = "built:"
GUESTS = Path(__file__).resolve().parents[2] / "guests"
# Kernel sources from Debian's archive, by the name a user gives as --source.
DEBIAN_SOURCES = {"debian-6.1": "linux-source-6.1"}
# Fixed so the same inputs give the same image (the date string lands in it).
REPRODUCIBLE_ENV = {"KBUILD_BUILD_TIMESTAMP": "Thu Jan  1 00:00:00 UTC 1970", "KBUILD_BUILD_USER": "rig",
                    "KBUILD_BUILD_HOST": "rig", "KBUILD_BUILD_VERSION": "1"}
BUILD_TOOLS = {"make": "make", "gcc": "gcc", "flex": "flex", "bison": "bison", "bc": "bc", "ccache": "ccache",
               "patch": "patch", "xz": "xz-utils", "perl": "perl"}

Progress = Callable[[str], None]


class BuildError(RigError):
    """The kernel did not configure or compile; the message points at the kept build log."""


class PatchError(InputError):
    """A patch does not apply: the message names the patch file and the failing hunk."""


# --- pure helpers ------------------------------------------------------------------------

_OPTION = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_NOT_SET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def parse_config(text: str) -> dict[str, str]:
    """A .config or fragment: {CONFIG_X: value}, "n" for '# CONFIG_X is not set'."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if m := _OPTION.match(line):
            out[m.group(1)] = m.group(2)
        elif m := _NOT_SET.match(line):
            out[m.group(1)] = "n"
    return out


def unmet_options(wanted: dict[str, str], config_text: str) -> list[tuple[str, str, str]]:
    """(option, wanted, got) for every option of a fragment that the final .config does not
    have as asked, e.g. because a dependency is missing and olddefconfig dropped it."""
    have = parse_config(config_text)
    return [(opt, want, have.get(opt, "n")) for opt, want in wanted.items() if have.get(opt, "n") != want]


def patch_failure(patch_file: Path, output: str) -> str:
    """One line naming the patch and the first hunk `patch` could not apply (pure)."""
    current = None
    for line in output.splitlines():
        if m := re.match(r"^(?:patching|checking) file (.+)$", line):
            current = m.group(1).strip().strip("'")
        elif m := re.match(r"^Hunk #(\d+) FAILED at (\d+)", line):
            return f"{patch_file}: hunk #{m.group(1)} for {current} does not apply (at line {m.group(2)})"
        elif "can't find file to patch" in line:
            return f"{patch_file}: a file it patches does not exist in the source tree"
        elif "Reversed (or previously applied) patch detected" in line:
            return f"{patch_file}: already applied to {current} (or reversed)"
        elif "Only garbage was found" in line or "malformed patch" in line:
            return f"{patch_file}: not a patch ({line.strip()})"
    last = output.strip().splitlines()[-1] if output.strip() else "no output"
    return f"{patch_file}: does not apply ({last})"


def expand_patches(paths: list[Path]) -> list[Path]:
    """Patch files in apply order: a directory gives its `series` file's order, or its
    *.patch / *.diff files sorted by name."""
    out = []
    for p in paths:
        if p.is_dir():
            series = p / "series"
            if series.is_file():
                names = [ln.split("#", 1)[0].strip() for ln in series.read_text().splitlines()]
                out += [p / n for n in names if n]
            else:
                out += sorted(q for q in p.iterdir() if q.suffix in (".patch", ".diff"))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"--patch {p}: no such file or directory")
    for p in out:
        if not p.is_file():
            raise InputError(f"{p}: listed in a series but missing")
    return out


def cache_key(source_id: str, patches: list[bytes], fragments: list[bytes], base_config: bytes | None,
              toolchain: str, arch: str = "x86_64") -> str:
    # x86_64 keys predate other architectures and stay as they were; the others name theirs.
    target = "" if arch == "x86_64" else f"{arch}\0"
    h = hashlib.sha256(f"{FORMAT_VERSION}\0{target}{source_id}\0{toolchain}\0".encode())
    for part in (*patches, b"\0fragments\0", *fragments, b"\0base\0", base_config or b"tinyconfig"):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:24]


# --- the request -------------------------------------------------------------------------

@dataclass(frozen=True)
class BuildRequest:
    name: str
    source: str                          # "debian-6.1", a source tree, or a tarball
    patches: tuple[Path, ...] = ()
    fragments: tuple[Path, ...] = ()     # default: the rig's dom0 fragment for the architecture
    base_config: Path | None = None      # a .config instead of tinyconfig
    jobs: int = field(default_factory=lambda: os.cpu_count() or 2)
    arch: str = "x86_64"                 # a row of platform.ARCHES

    def fragment_files(self) -> list[Path]:
        return list(self.fragments) or [GUESTS / "kernel" / platform.ARCHES[self.arch].kernel_fragment]


def check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
        raise InputError(f"kernel build name {name!r}: use letters, digits, '.', '_', '+' or '-'")
    return name


def cross_prefix(arch: platform.Arch) -> str:
    """CROSS_COMPILE for kernels of `arch` built on this machine: none for its own
    architecture, else Debian's cross toolchain (its multiarch triplet)."""
    return "" if os.uname().machine == arch.name else f"{arch.multiarch}-"


def _toolchain(arch: platform.Arch) -> str:
    """The compiler's version line (a cross compiler's names its target): part of the cache key."""
    compiler = cross_prefix(arch) + "gcc"
    out = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else f"{compiler}?"


def _missing_tools(arch: platform.Arch) -> list[str]:
    tools = dict(BUILD_TOOLS)
    if prefix := cross_prefix(arch):
        tools[prefix + "gcc"] = "gcc-" + arch.multiarch.replace("_", "-")   # gcc-aarch64-linux-gnu
    return sorted({pkg for tool, pkg in tools.items() if shutil.which(tool) is None})


# --- sources -----------------------------------------------------------------------------

def source_tree(source: str, cache: Cache, progress: Progress, srcarch: str = "x86") -> tuple[Path, str]:
    """(a clean kernel tree, an id saying exactly which source it is)."""
    if source in DEBIAN_SOURCES:
        return _debian_source(DEBIAN_SOURCES[source], cache, progress)
    path = Path(source)
    if path.is_file():
        return _tarball_source(path, cache, progress)
    if path.is_dir():
        if not (path / "Makefile").is_file() or not (path / "arch" / srcarch).is_dir():
            raise InputError(f"--source {source}: not a Linux source tree (no Makefile or arch/{srcarch})")
        if (path / ".config").exists() or (path / "include" / "config").exists():
            raise InputError(f"--source {source}: the tree has been configured in place; out-of-tree builds "
                             "need it clean (make mrproper)")
        state = _tree_state(path)
        # A clean git tree is its commit and diff wherever it lies: a bisect's worktree, moved
        # each run, and the user's own checkout of the same commit share one build. Anything
        # else (untracked or ignored files the build would copy, a tree inside a bigger
        # repository) also keys by where it is.
        return path.resolve(), f"tree:{state}" if state.startswith("git:") else f"tree:{path.resolve()}@{state}"
    raise InputError(f"--source {source}: neither a known source ({', '.join(DEBIAN_SOURCES)}), "
                     "a directory nor a tarball")


def _tree_state(path: Path) -> str:
    """What the tree holds: "git:..." (HEAD plus its uncommitted diff) for the top of a git
    work tree with no untracked or ignored files; "gitdirty:..." (the same, less complete:
    the path goes into the key) for other git trees; else every file's size and mtime."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True)
    head = git("rev-parse", "HEAD")
    h = hashlib.sha256()
    if head.returncode == 0:
        h.update(head.stdout)
        # the user's diff settings (external diff, textconv, colour) must not change the key
        h.update(git("diff", "--binary", "--no-ext-diff", "--no-color", "--no-textconv", "HEAD").stdout)
        top = git("rev-parse", "--show-toplevel").stdout.decode().strip()
        extra = git("status", "--porcelain", "--untracked-files=all", "--ignored").stdout
        clean = top and Path(top).resolve() == path.resolve() and not any(
            line.startswith((b"??", b"!!")) for line in extra.splitlines())
        return f"{'git' if clean else 'gitdirty'}:{head.stdout.decode().strip()[:12]}:{h.hexdigest()[:12]}"
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            st = os.stat(os.path.join(root, f))
            h.update(f"{os.path.relpath(os.path.join(root, f), path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return f"files:{h.hexdigest()[:16]}"


def _debian_source(package: str, cache: Cache, progress: Progress) -> tuple[Path, str]:
    base = cache.root / "sources"
    pointer = base / f"{package}.json"
    if pointer.is_file():
        rec = json.loads(pointer.read_text())
        if Path(rec["tree"]).is_dir():
            return Path(rec["tree"]), f"debian:{package}={rec['version']}"
    with cache.locked():
        apt = cache.apt()
        apt.update()
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=base) as tmp:
            progress(f"downloading {package}")
            deb = apt.download(package, "", Path(tmp))
            version = dpkg_deb("-f", str(deb), "Version").strip()
            dpkg_deb("-x", str(deb), str(Path(tmp) / "deb"))
            tarballs = sorted((Path(tmp) / "deb" / "usr" / "src").glob("linux-source-*.tar.*"))
            if not tarballs:
                raise ArtefactError(f"{package} {version} holds no /usr/src/linux-source-*.tar.*")
            progress(f"unpacking {tarballs[0].name} ({version})")
            final = base / f"{package}_{version}"
            _untar(tarballs[0], final)
        tree = _single_top(final)
        pointer.write_text(json.dumps({"version": version, "tree": str(tree)}) + "\n")
        return tree, f"debian:{package}={version}"


def _tarball_source(path: Path, cache: Cache, progress: Progress) -> tuple[Path, str]:
    digest = sha256_file(path)
    final = cache.root / "sources" / f"tarball-{digest[:16]}"
    if not final.is_dir():
        progress(f"unpacking {path.name}")
        with cache.locked():
            if not final.is_dir():
                _untar(path, final)
    return _single_top(final), f"tarball:{digest}"


def _untar(tarball: Path, final: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".untar-", dir=final.parent))
    try:
        # GNU tar, not tarfile: several times faster on a 140 MB .tar.xz of 80 000 files.
        proc = subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp), "--no-same-owner"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise InputError(f"{tarball}: cannot unpack: {proc.stderr.strip()[-200:]}")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _single_top(path: Path) -> Path:
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    tree = entries[0] if len(entries) == 1 and entries[0].is_dir() else path
    if not (tree / "Makefile").is_file():
        raise InputError(f"{path}: does not unpack to a Linux source tree")
    return tree


# --- the build ---------------------------------------------------------------------------

def built_dir(cache: Cache) -> Path:
    return cache.root / "builds"


def _names_dir(cache: Cache, arch: str) -> Path:
    """Where NAME -> build is kept: one index per architecture (an x86_64 and an aarch64
    "built:foo" are other kernels), x86_64's where it always was."""
    debian_arch = platform.ARCHES[arch].debian_arch
    return built_dir(cache) / ("names" if debian_arch == "amd64" else f"names-{debian_arch}")


def lookup(cache: Cache, name: str, arch: str = "x86_64") -> Artefact | None:
    """The `arch` kernel last built under `name` ("built:NAME" or NAME), verified, or None."""
    name = name.removeprefix(PREFIX)
    index = _names_dir(cache, arch) / f"{name}.json"
    if not index.is_file():
        return None
    rec = json.loads(index.read_text())
    return _artefact(built_dir(cache) / rec["key"], name, arch)


def known_names(cache: Cache, arch: str | None = None) -> set[str]:
    """Built kernel names, of one architecture or of all."""
    dirs = [_names_dir(cache, a) for a in ([arch] if arch else platform.ARCHES)]
    return {PREFIX + p.stem for d in dirs if d.is_dir() for p in d.glob("*.json")}


def _artefact(out: Path, name: str, arch: str) -> Artefact | None:
    manifest = out / "manifest.json"
    if not manifest.is_file():
        return None
    m = json.loads(manifest.read_text())
    if m.get("arch", "x86_64") != arch:   # never another architecture's kernel, whatever the key says
        raise ArtefactError(f"{manifest}: a {m.get('arch', 'x86_64')} kernel where an {arch} one was built")
    return Artefact(PREFIX + name, out / m.get("image", "bzImage"), m["sha256"],
                    f"built:{m['key']} from {m['source']}", m["release"]).verify()


def build(request: BuildRequest, cache: Cache, progress: Progress = lambda msg: None) -> Artefact:
    """The kernel image for `request`: from the cache if an identical build exists, else built."""
    check_name(request.name)
    arch = platform.lookup(platform.ARCHES, request.arch, "architecture")
    missing = _missing_tools(arch)
    if missing:
        raise ArtefactError(f"kernel builds need Debian's {', '.join(missing)} (and libelf-dev, libssl-dev)")
    patches = expand_patches(list(request.patches))
    fragments = request.fragment_files()
    for f in fragments:
        if not f.is_file():
            raise InputError(f"--config-fragment {f}: no such file")
    if request.base_config is not None and not request.base_config.is_file():
        raise InputError(f"--config {request.base_config}: no such file")
    image_name = Path(arch.kernel_image).name
    tree, source_id = source_tree(request.source, cache, progress, Path(arch.kernel_image).parts[1])
    key = cache_key(source_id, [p.read_bytes() for p in patches], [f.read_bytes() for f in fragments],
                    request.base_config.read_bytes() if request.base_config else None, _toolchain(arch),
                    arch.name)
    out = built_dir(cache) / key
    cached = _artefact(out, request.name, arch.name)
    if cached is not None:
        progress(f"{PREFIX}{request.name}: identical build in the cache ({key})")
        _name(cache, request.name, key, request.arch)
        return cached
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "build.log"
    started = time.monotonic()
    with _work_tree(cache) as work:
        with open(log_path, "w") as log:
            src = _source_copy(tree, patches, work, log, progress)
            obj = work / "obj"
            obj.mkdir()
            _configure(src, obj, fragments, request.base_config, log, progress, arch, cache)
            unmet = unmet_options({k: v for f in fragments for k, v in parse_config(f.read_text()).items()},
                                  (obj / ".config").read_text())
            if unmet:
                opt, want, got = unmet[0]
                more = f" (and {len(unmet) - 1} more)" if len(unmet) > 1 else ""
                raise BuildError(f"{opt}={want} was asked for but the configuration has {opt}={got}: "
                                 f"a dependency is missing{more}; see {log_path}")
            _make(src, obj, [image_name], request.jobs, log, progress, cache, arch)
            release = _make_output(src, obj, "kernelrelease", cache, arch)
        shutil.copy(obj / arch.kernel_image, out / image_name)
        shutil.copy(obj / ".config", out / "config")
        manifest = {"name": request.name, "key": key, "source": source_id, "release": release,
                    "patches": [str(p) for p in patches], "fragments": [str(f) for f in fragments],
                    "base_config": str(request.base_config) if request.base_config else "tinyconfig",
                    "toolchain": _toolchain(arch), "seconds": round(time.monotonic() - started, 1),
                    "arch": arch.name, "image": image_name, "sha256": sha256_file(out / image_name)}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    _name(cache, request.name, key, request.arch)
    progress(f"{PREFIX}{request.name}: {release} built in {manifest['seconds']:.0f} s ({out / image_name})")
    return _artefact(out, request.name, arch.name)


@contextlib.contextmanager
def _work_tree(cache: Cache):
    """The one directory every build runs in (src/ and obj/), emptied before and after.
    The same paths from build to build let ccache reuse every object a patch does not
    touch, and keep the paths compiled into the image the same. One build at a time."""
    work = cache.root / "build-work"
    work.mkdir(parents=True, exist_ok=True)
    with open(cache.root / "build-work.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for leftover in work.iterdir():
            shutil.rmtree(leftover) if leftover.is_dir() and not leftover.is_symlink() else leftover.unlink()
        try:
            yield work
        finally:
            for leftover in work.iterdir():
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() and not leftover.is_symlink() \
                    else leftover.unlink()


def _name(cache: Cache, name: str, key: str, arch: str) -> None:
    index = _names_dir(cache, arch)
    index.mkdir(parents=True, exist_ok=True)
    (index / f"{name}.json").write_text(json.dumps({"key": key}) + "\n")


def _source_copy(tree: Path, patches: list[Path], work: Path, log, progress: Progress) -> Path:
    """work/src: the tree, hard-linked (a second for 80 000 files; `patch` writes new
    files, so the cached pristine tree never changes), with the patches applied."""
    src = work / "src"
    copy = subprocess.run(["cp", "-al", str(tree), str(src)], capture_output=True, text=True)
    if copy.returncode != 0:
        raise ArtefactError(f"cp -al {tree} {src} failed: {copy.stderr.strip()[-300:]}")
    for p in patches:
        progress(f"applying {p.name}")
        proc = subprocess.run(["patch", "-p1", "--forward", "--batch", "--no-backup-if-mismatch", "-i",
                               str(p.resolve())], cwd=src, capture_output=True, text=True)
        log.write(f"$ patch -p1 -i {p}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            raise PatchError(patch_failure(p, proc.stdout + proc.stderr))
    return src


def _env(cache: Cache, arch: platform.Arch) -> dict[str, str]:
    # CROSS_COMPILE always set: one left in the user's environment would reach a native build
    env = dict(os.environ, **REPRODUCIBLE_ENV, ARCH=arch.linux_arch, CROSS_COMPILE=cross_prefix(arch))
    env.update(CCACHE_DIR=str(cache.root / "ccache"), CCACHE_BASEDIR=str(cache.root / "build-work"),
               CCACHE_NOHASHDIR="true", CCACHE_SLOPPINESS="time_macros", LC_ALL="C")
    return env


def _configure(src: Path, obj: Path, fragments: list[Path], base: Path | None, log, progress: Progress,
               arch: platform.Arch, cache: Cache) -> None:
    progress("configuring: " + ("your .config" if base else "tinyconfig") + " + " +
             ", ".join(f.name for f in fragments))
    if base:
        shutil.copy(base, obj / ".config")
    else:
        _run(["make", "-C", str(src), f"O={obj}", "tinyconfig"], log, _env(cache, arch))
    _run([str(src / "scripts" / "kconfig" / "merge_config.sh"), "-m", "-O", str(obj), str(obj / ".config"),
          *map(str, fragments)], log, _env(cache, arch), cwd=src)
    _run(["make", "-C", str(src), f"O={obj}", "olddefconfig"], log, _env(cache, arch))


def _make(src: Path, obj: Path, targets: list[str], jobs: int, log, progress: Progress, cache: Cache,
          arch: platform.Arch) -> None:
    progress(f"compiling with {jobs} jobs (log: {log.name})")
    argv = ["make", "-C", str(src), f"O={obj}", f"-j{jobs}", f"CC=ccache {cross_prefix(arch)}gcc", *targets]
    log.write("$ " + " ".join(argv) + "\n")
    log.flush()
    started, last, compiled = time.monotonic(), 0.0, 0
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(cache, arch)) as p:
        for line in p.stdout:
            log.write(line)
            if line.lstrip().startswith("CC "):
                compiled += 1
            if time.monotonic() - last > 15:
                last = time.monotonic()
                progress(f"compiling: {compiled} objects, {last - started:.0f} s")
    if p.returncode != 0:
        raise BuildError(f"make {' '.join(targets)} failed (exit {p.returncode}); see {log.name} in "
                         f"{Path(log.name).parent}")


def _make_output(src: Path, obj: Path, target: str, cache: Cache, arch: platform.Arch) -> str:
    proc = subprocess.run(["make", "-s", "-C", str(src), f"O={obj}", target], capture_output=True, text=True,
                          env=_env(cache, arch))
    return proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else "?"


def _run(argv: list[str], log, env: dict[str, str], cwd: Path | None = None) -> None:
    log.write("$ " + " ".join(argv) + "\n")
    log.flush()
    proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    if proc.returncode != 0:
        raise BuildError(f"{Path(argv[0]).name} {' '.join(argv[1:])[-80:]} failed (exit {proc.returncode}); "
                         f"see {log.name}")
