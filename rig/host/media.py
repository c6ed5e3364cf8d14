"""Per-run boot media: the firmware's private variable store and the EFI system
partition image that the xen-efi boot method boots from."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rig.errors import LaunchError
from rig.spec.plan import BootPlan


@dataclass(frozen=True)
class Media:
    """Per-run files the firmware and boot method need, all inside the run directory."""

    firmware_vars: Path | None = None   # a private copy of the pflash variable store
    esp: Path | None = None             # FAT image with xen.efi, its config, dom0 and initrd

    @classmethod
    def for_plan(cls, plan: BootPlan, run_dir: Path) -> "Media":
        return cls(run_dir / "firmware-vars.fd" if plan.firmware.vars else None,
                   run_dir / "esp.img" if plan.boot.name == "xen-efi" else None)


def xen_efi_config(plan: BootPlan) -> str:
    """BOOTX64.cfg (BOOTAA64.cfg) for xen.efi: the same Xen and dom0 command lines as multiboot."""
    return (f"[global]\ndefault=xen\n\n[xen]\noptions={plan.xen_cmdline}\n"
            f"kernel=vmlinuz {plan.dom0_cmdline}\nramdisk=initrd.gz\n")


def prepare_media(plan: BootPlan, media: Media) -> None:
    """Write the per-run boot files (impure half of the boot method)."""
    if media.firmware_vars is not None:
        shutil.copyfile(plan.firmware.vars, media.firmware_vars)
    if media.esp is not None:
        if plan.xen_efi is None:
            raise LaunchError("the xen-efi boot method needs xen.efi, but the plan has none")
        loader = f"EFI/BOOT/{plan.arch.efi_boot_name}"   # xen.efi reads the .cfg named after itself
        build_fat_image(media.esp, {f"{loader}.EFI": plan.xen_efi,
                                    f"{loader}.cfg": xen_efi_config(plan).encode(),
                                    "EFI/BOOT/vmlinuz": plan.kernel, "EFI/BOOT/initrd.gz": plan.initrd})


def build_fat_image(path: Path, files: dict[str, Path | bytes]) -> None:
    """A FAT image holding `files` (image path -> source file or bytes), via dosfstools + mtools."""
    for tool in ("mkfs.vfat", "mcopy", "mmd"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            raise LaunchError(f"{tool} not found: install Debian's dosfstools and mtools")
    with tempfile.TemporaryDirectory() as tmp:
        sources = {}
        for dest, src in files.items():
            if isinstance(src, bytes):
                staged = Path(tmp) / dest.replace("/", "_")
                staged.write_bytes(src)
                src = staged
            sources[dest] = Path(src)
        size_kib = sum(p.stat().st_size for p in sources.values()) // 1024 * 11 // 10 + 4096
        path.unlink(missing_ok=True)
        env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
        mkfs = shutil.which("mkfs.vfat") or "/usr/sbin/mkfs.vfat"
        _run([mkfs, "-C", "-n", "RIGESP", str(path), str(size_kib)], env)
        dirs = sorted({str(Path(d).parent) for d in sources})
        for d in dirs:
            parts = Path(d).parts
            for i in range(1, len(parts) + 1):
                _run(["mmd", "-D", "s", "-i", str(path), "::/" + "/".join(parts[:i])], env, ok_if_exists=True)
        for dest, src in sources.items():
            _run(["mcopy", "-i", str(path), str(src), "::/" + dest], env)


def _run(argv: list[str], env: dict, ok_if_exists: bool = False) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0 and not (ok_if_exists and "exists" in (proc.stderr + proc.stdout)):
        raise LaunchError(f"{' '.join(argv[:2])} failed: {(proc.stderr or proc.stdout).strip()}")
