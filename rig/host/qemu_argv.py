"""QEMU's command line from a BootPlan (pure), and what a QEMU binary can create.

Shared by both backends: the QEMU backend runs this argv, libvirt passes its guest part
through (`<qemu:commandline>`). tests/data/argv/ holds reference argvs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from rig.errors import LaunchError
from rig.host.media import Media
from rig.spec.plan import NETDEV_ID, BootPlan
from rig.spec.topology import PlacedDevice


def _mb_escape(value: str) -> str:
    """QEMU splits the multiboot module list (and -device properties) on ','; a literal
    comma is written ',,'."""
    return value.replace(",", ",,")


def _multiboot(plan: BootPlan, media: Media) -> list[str]:
    modules = f"{_mb_escape(str(plan.kernel))} {_mb_escape(plan.dom0_cmdline)},{_mb_escape(str(plan.initrd))}"
    return ["-kernel", str(plan.xen), "-append", plan.xen_cmdline, "-initrd", modules]


def _xen_efi(plan: BootPlan, media: Media) -> list[str]:
    # No extra PCI device that would change the topology between firmwares (platform.Arch
    # esp_argv). A FAT image boots far faster than fat:rw:DIR.
    return [a.format(esp=media.esp) for a in plan.arch.esp_argv]


# Where guest-loader puts dom0's kernel and initrd: RAM on Arm virt starts at 0x40000000,
# QEMU loads Xen (-kernel) at its start and the device tree at +128 MiB (0x48000000: a
# kernel put there is overwritten and Xen panics "Could not set up DOM0"). Above it, 128 MiB
# for any Debian Image, then the initrd. Xen copies both into dom0's memory.
GUEST_LOADER_KERNEL = 0x49000000
GUEST_LOADER_INITRD = 0x51000000


def _guest_loader(plan: BootPlan, media: Media) -> list[str]:
    return ["-kernel", str(plan.xen), "-append", plan.xen_cmdline,
            "-device", f"guest-loader,addr={GUEST_LOADER_KERNEL:#x},kernel={_mb_escape(str(plan.kernel))},"
                       f"bootargs={_mb_escape(plan.dom0_cmdline)}",
            "-device", f"guest-loader,addr={GUEST_LOADER_INITRD:#x},initrd={_mb_escape(str(plan.initrd))}"]


# Boot method name -> argv builder. A new boot method is a new row here and in platform.BOOT_METHODS.
BOOT_ARGV = {"multiboot": _multiboot, "xen-efi": _xen_efi, "guest-loader": _guest_loader}


def _firmware(plan: BootPlan, media: Media) -> list[str]:
    if not plan.firmware.code:
        return []
    return ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={plan.firmware.code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={media.firmware_vars}"]


def _value(v) -> str:
    return ("on" if v else "off") if isinstance(v, bool) else str(v)


def _pci_args(dev: PlacedDevice) -> list[str]:
    props = {"id": dev.id, "bus": dev.bus, "addr": f"{dev.addr:#x}", **dev.props}
    args = []
    if dev.backing_size is not None:
        args += ["-object", f"memory-backend-ram,id={dev.id}-mem,size={dev.backing_size >> 20}M"]
        props["memdev"] = f"{dev.id}-mem"
    return args + ["-device", ",".join([dev.device, *(f"{k}={_value(v)}" for k, v in props.items())])]


def _memory(plan: BootPlan) -> str:
    size = f"{plan.memory >> 20}M"
    if plan.maxmem is not None:
        size += f",slots={plan.slots},maxmem={plan.maxmem >> 20}M"
    return size


def qemu_argv(plan: BootPlan, *, console_socket: Path, qmp_socket: Path, serial_log: Path,
              media: Media = Media()) -> list[str]:
    """The whole QEMU command line for `plan`. Pure: same plan and paths, same argv."""
    machine = ",".join([plan.arch.machine, *plan.arch.machine_props.get(plan.accel.name, ()),
                        *plan.firmware.machine_props])
    argv = [
        plan.qemu_binary,
        # another QEMU's own ROMs first (its SeaBIOS among them), not the machine's
        *[a for d in (plan.qemu.data_dirs if plan.qemu else ()) for a in ("-L", str(d))],
        "-name", f"rig-{plan.name},process=rig-{plan.name}",
        "-machine", machine,
        "-accel", ",".join([plan.accel.name, *plan.accel.props]),
        "-cpu", plan.arch.cpu[plan.accel.name],
        "-m", _memory(plan),
        "-smp", str(plan.cpus),
        "-nodefaults", "-display", "none", "-no-reboot",
        "-S",  # start paused: the console and QMP are attached before the first instruction
        *_firmware(plan, media),
        "-chardev", f"socket,id=console,path={console_socket},server=on,wait=off,"
                    f"logfile={serial_log},logappend=off",
        "-serial", "chardev:console",
        "-chardev", f"socket,id=qmp,path={qmp_socket}",
        "-mon", "chardev=qmp,mode=control",
    ]
    for dev in plan.arch.iommus[plan.iommu]:  # the IOMMU goes before any PCI device
        argv += ["-device", dev]
    return argv + guest_argv(plan, media)


def guest_argv(plan: BootPlan, media: Media = Media()) -> list[str]:
    """The part of the argv that makes this host what it is: network, PCI topology, the Xen
    boot and the user's raw arguments. Shared with the libvirt backend, which passes it
    through <qemu:commandline> so both backends build the same machine."""
    argv = []
    if plan.network == "user":
        # restrict=on: dom0 reaches nothing outside; the rig adds its SSH forward at launch.
        argv += ["-netdev", f"user,id={NETDEV_ID},restrict=on"]
    if plan.pci_hole64_size is not None:
        argv += ["-global", f"{plan.arch.pci_hole64_global}={plan.pci_hole64_size >> 20}M"]
    for pci in plan.pci:
        argv += _pci_args(pci)
    argv += BOOT_ARGV[plan.boot.name](plan, media)
    argv += list(plan.qemu_args)  # raw user arguments come last, so they can override
    return argv



def parse_device_help(text: str) -> set[str]:
    """Device names from `-device help` output: 'name "pci-testdev", bus PCI, desc ...'."""
    return {m.group(1) for m in re.finditer(r'^name "([^"]+)"', text, re.MULTILINE)}


def unknown_devices(binary: str, names: list[str], package: str = "qemu-system-x86") -> list[str]:
    """The names this QEMU cannot create, so a typo is bad input, not a failed boot."""
    if shutil.which(binary) is None:
        raise LaunchError(f"{binary} not found in PATH (install Debian's {package})")
    try:
        out = subprocess.run([binary, "-device", "help"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise LaunchError(f"{binary} -device help gave no answer within 60 s") from exc
    known = parse_device_help(out.stdout + out.stderr)
    return [n for n in names if n not in known]


def printed_version(binary: str) -> str:
    """"10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)" from its "QEMU emulator version ..." line."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LaunchError(f"{binary} --version gave no answer: {exc}") from exc
    first = out.splitlines()[0] if out else ""
    return first.removeprefix("QEMU emulator version ").strip() or "?"


def socket_dir(argv: list[str]) -> str:
    """The private directory of a run's QEMU sockets, read back from its argv ("" if none)."""
    for arg in argv:
        if arg.startswith("socket,id=console,path="):
            return str(Path(arg.split("path=", 1)[1].split(",", 1)[0]).parent)
    return ""
