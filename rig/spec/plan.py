"""A BootPlan: one scenario x one kernel, fully resolved (rows looked up, files found).

It is what the host layer consumes; it knows Xen's and Linux's command lines but
nothing about how a particular host backend (QEMU, libvirt) expresses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rig.spec import platform, topology
from rig.spec.scenario import PciDevice, Scenario, format_size


@dataclass(frozen=True)
class QemuBinary:
    """A QEMU other than the machine's own: its emulator and the directories of its ROMs."""
    binary: Path
    data_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class BootPlan:
    name: str                     # "<scenario>-<role>", also the QEMU process name
    arch: platform.Arch
    accel: platform.Accel
    firmware: platform.Firmware
    boot: platform.BootMethod
    memory: int
    maxmem: int | None
    slots: int | None
    pci_hole64_size: int | None
    cpus: int
    iommu: str
    network: str                  # "user" or "none"; the NIC itself is the last of `pci`
    pci: tuple[topology.PlacedDevice, ...]
    qemu_args: tuple[str, ...]
    xen: Path
    xen_efi: Path | None
    xen_cmdline: str
    kernel: Path
    dom0_cmdline: str
    initrd: Path
    qemu: "QemuBinary | None" = None   # None: the machine's own (arch.qemu_binary from PATH)

    @property
    def qemu_binary(self) -> str:
        return str(self.qemu.binary) if self.qemu else self.arch.qemu_binary

    @property
    def timeout_scale(self) -> float:
        return self.accel.timeout_scale


def xen_cmdline(scenario: Scenario, arch: platform.Arch) -> str:
    parts = [arch.xen_console, "loglvl=all guest_loglvl=all console_timestamps=boot", arch.xen_dom0_args,
             f"dom0_mem={format_size(scenario.xen.dom0_mem)}", scenario.xen.cmdline]
    return " ".join(p for p in parts if p.strip())


def dom0_cmdline(scenario: Scenario, arch: platform.Arch) -> str:
    return " ".join(p for p in (arch.dom0_console, scenario.xen.dom0_cmdline) if p.strip())


NIC_ID = "rig-nic"
NETDEV_ID = "rig-net"


def _devices(scenario: Scenario, arch: platform.Arch) -> list[PciDevice]:
    devices = list(scenario.host.pci)
    if scenario.host.network != "none":
        # romfile="": no iPXE option ROM, so the firmware neither maps a ROM BAR nor tries to net-boot.
        devices.append(PciDevice(device=arch.nic_device, name=NIC_ID,
                                 props={"addr": arch.nic_slot, "netdev": NETDEV_ID, "romfile": ""}))
    return devices


def make(scenario: Scenario, role: str, accel: str, *, xen: Path, kernel: Path, initrd: Path,
         xen_efi: Path | None = None, qemu: QemuBinary | None = None) -> BootPlan:
    arch = platform.lookup(platform.ARCHES, scenario.host.arch, "architecture")
    firmware = platform.lookup(platform.FIRMWARES, scenario.host.firmware, "firmware")
    return BootPlan(
        name=f"{scenario.name}-{role}",
        arch=arch,
        accel=platform.lookup(platform.ACCELS, accel, "accelerator"),
        firmware=firmware,
        boot=platform.lookup(platform.BOOT_METHODS, scenario.host.boot or firmware.boot, "boot method"),
        memory=scenario.host.memory,
        maxmem=scenario.host.maxmem,
        slots=scenario.host.slots,
        pci_hole64_size=scenario.host.pci_hole64_size,
        cpus=scenario.host.cpus,
        iommu=scenario.host.iommu,
        network=scenario.host.network,
        pci=tuple(topology.resolve(_devices(scenario, arch), arch.pci_root_bus)),
        qemu_args=tuple(scenario.host.qemu_args),
        xen=xen,
        xen_efi=xen_efi,
        xen_cmdline=xen_cmdline(scenario, arch),
        kernel=kernel,
        dom0_cmdline=dom0_cmdline(scenario, arch),
        initrd=initrd,
        qemu=qemu,
    )
