"""What differs between architectures, accelerators, IOMMUs, firmwares and boot methods: data only.

A new target arrives as new rows here plus, at most, a new argv builder registered by
row name in the host layer; the aarch64 row did (docs/arm64.md). What else still knows
an architecture by name: the libvirt backend, which refuses the others.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field

from rig.errors import InputError


@dataclass(frozen=True)
class Arch:
    name: str
    qemu_binary: str
    machine: str
    cpu: dict[str, str]                       # accel name -> -cpu value
    machine_props: dict[str, tuple[str, ...]]  # accel name -> extra ",k=v" machine properties
    iommus: dict[str, tuple[str, ...]]          # iommu name -> -device strings ("" = none)
    xen_console: str                            # Xen's own console arguments
    dom0_console: str                           # dom0 kernel console arguments
    kernel_meta_package: str                    # Debian metapackage that names the current kernel
    pci_root_bus: str                           # id of the root bus devices plug into
    pci_hole64_global: str                      # -global property that sizes the 64-bit PCI window
    nic_device: str                             # dom0's NIC for the SSH channel
    nic_modules: tuple[str, ...]                # its kernel modules (dependencies come from modules.dep)
    nic_slot: int                               # its slot on the root bus (user devices fill from 1 up)
    multiarch: str                              # Debian's library directory triplet for dom0's tools
    debian_arch: str = "amd64"                  # Debian's name for it: packages and apt roots
    qemu_package: str = "qemu-system-x86"       # the Debian package with qemu_binary
    xen_dom0_args: str = "dom0=pvh"             # Xen arguments that make dom0 what the rig judges
    # How /proc/iomem names the host bridge's own windows (x86: "PCI Bus 0000:00", from ACPI
    # _CRS; Arm virt: the device tree node "pcie@10000000").
    host_window_name: str = r"PCI Bus [0-9a-f]{4}:[0-9a-f]{2}"
    memory_hotplug: bool = True                 # host.maxmem/slots (ACPI memory hotplug)
    # How Xen tells dom0 its memory: "e820" (x86: rebuilt from Xen's host e820 and dom0_mem)
    # or "device-tree" (Arm: Xen's BANK and extended region lines); selects the analysis.
    memory_map: str = "e820"
    # The expectations a scenario may set for hosts of this architecture (scenario.Expect keys)
    expectations: tuple[str, ...] = ("relocations", "relocation_cause", "balloon_converted", "balloon_target",
                                     "xen_scratch_safe", "xen_scratch")
    ram_base: int = 0                            # where the machine's RAM starts (Arm virt: 1 GiB)
    # (offset, bytes) that every kernel image of this architecture carries: bzImage's "HdrS",
    # the arm64 Image header's "ARM\x64". A user's file is checked before it boots.
    kernel_magic: tuple[int, bytes] = (0x202, b"HdrS")
    efi_boot_name: str = "BOOTX64"              # the removable-media loader name UEFI boots (xen.efi)
    # How the EFI system partition image is attached ({esp}: its path): on q35 the built-in
    # AHCI, on virt a virtio-mmio disk; neither adds a PCI device to the topology judged.
    esp_argv: tuple[str, ...] = ("-drive", "file={esp},format=raw,if=ide,index=0")
    # `rig kernel build`: Linux's ARCH, the image it makes (relative to the object tree) and
    # the config fragment (guests/kernel/) merged onto tinyconfig for a dom0 of this row.
    # "x86", what Kbuild takes on an x86_64 machine: with "x86_64" tinyconfig has no 64BIT
    # question, and 64-bit-only options get other values (a different kernel).
    linux_arch: str = "x86"
    kernel_image: str = "arch/x86/boot/bzImage"
    kernel_fragment: str = "pvh-dom0.config"
    # Probes the agent runs in dom0 before it reads anything (guests/agent/NAME.c, built
    # static with {multiarch}-gcc into the initramfs as bin/rig-NAME), the modules they need
    # of a kernel that has them as modules, and the Debian packages of that compiler.
    dom0_probes: tuple[str, ...] = ()
    probe_modules: tuple[str, ...] = ()
    probe_compiler_packages: tuple[str, ...] = ("gcc", "libc6-dev")


@dataclass(frozen=True)
class Accel:
    name: str
    props: tuple[str, ...]  # the accelerator's "k=v" properties
    timeout_scale: float    # stage timeouts are written for TCG; KVM needs far less


@dataclass(frozen=True)
class Firmware:
    name: str
    boot: str                       # the boot method used unless the scenario names another
    code: str | None = None         # pflash image (read-only)
    vars: str | None = None         # pflash variable store template, copied per run
    package: str = ""               # the Debian package that ships code and vars
    # Seconds added to the limit for reaching a stage. Under OVMF, dom0's PIT-based TSC calibration
    # takes about 55 s under TCG and the console is slower (measured 2026-11-26).
    extra_seconds: dict[str, float] = field(default_factory=dict)
    places_bars: bool = True        # False: the rig takes no firmware snapshot of BARs
    arches: tuple[str, ...] = ("x86_64",)
    machine_props: tuple[str, ...] = ()   # extra ",k=v" machine properties this firmware needs


@dataclass(frozen=True)
class BootMethod:
    """How the hypervisor and dom0 reach memory. `name` selects the host's builder."""

    name: str
    firmwares: tuple[str, ...]
    description: str = ""


ARCHES: dict[str, Arch] = {
    "x86_64": Arch(
        name="x86_64",
        qemu_binary="qemu-system-x86_64",
        machine="q35",
        # Under TCG `max` is unusable as it is: RDTSCP kills dom0 (Xen cannot emulate it
        # without NRIP-save), PKU kills init in 6.12 (bad frame in rt_sigreturn), and even
        # `max,-rdtscp,-pku` gives 6.12 "Bad FPU state detected" (XRSTOR #GP) on larger
        # hosts, after which AVX code in busybox dies of SIGILL. qemu64 has none of
        # these; Xen needs svm + npt for a PVH dom0.
        cpu={"tcg": "qemu64,+svm,+npt", "kvm": "host"},
        # intel-iommu interrupt remapping refuses the in-kernel irqchip.
        machine_props={"kvm": ("kernel-irqchip=split",)},
        # PVH dom0 needs an IOMMU; aw-bits=48 lets Xen set up dom0's device contexts.
        iommus={"intel": ("intel-iommu,intremap=on,aw-bits=48",), "none": ()},
        xen_console="console=com1 com1=115200,8n1",
        # i8042_init is skipped: under TCG dom0's delay loop runs far slower than its
        # uncalibrated lpj assumes, and one 6.12 boot hung for 240 s probing the PS/2
        # controller. The keyboard controller has nothing to do with BARs or balloons.
        dom0_console="console=hvc0 earlyprintk=xen initcall_blacklist=i8042_init",
        kernel_meta_package="linux-image-amd64",
        pci_root_bus="pcie.0",
        pci_hole64_global="q35-pcihost.pci-hole64-size",
        # e1000e DMA works through the intel-iommu with aw-bits=48 (captures: net-e1000e-awbits48-dhcp-ok);
        # virtio-net would bypass the IOMMU and write to the wrong pages of a PVH dom0.
        nic_device="e1000e",
        nic_modules=("e1000e",),
        nic_slot=0x1E,
        multiarch="x86_64-linux-gnu",
    ),
    # Xen on Arm: QEMU virt with EL2 (virtualization=on) and a GICv3, Xen loaded as the
    # kernel and dom0 by guest-loader (no firmware). dom0 is direct-mapped (1:1) and there
    # is no SMMU on virt, so devices DMA straight to dom0's RAM. Xen tells dom0 which address
    # space is safe for foreign mappings ("extended regions", 4.16+) in the device tree.
    "aarch64": Arch(
        name="aarch64",
        qemu_binary="qemu-system-aarch64",
        machine="virt",
        cpu={"tcg": "cortex-a57"},      # TCG only: KVM here is x86
        machine_props={"tcg": ("virtualization=on", "gic-version=3")},
        iommus={"none": ()},
        xen_console="",                 # Xen finds the PL011 through the device tree's stdout-path
        dom0_console="console=hvc0 earlycon=xen",
        kernel_meta_package="linux-image-arm64",
        pci_root_bus="pcie.0",
        pci_hole64_global="",           # virt's 64-bit window is fixed: 0x8000000000, 512 GiB
        nic_device="e1000e",            # as on x86; no IOMMU in the way
        nic_modules=("e1000e",),
        nic_slot=0x1E,
        multiarch="aarch64-linux-gnu",
        debian_arch="arm64",
        qemu_package="qemu-system-arm",
        xen_dom0_args="",               # Arm has one kind of dom0
        host_window_name=r"pcie@[0-9a-f]+",
        memory_hotplug=False,
        memory_map="device-tree",
        # No firmware places BARs (nothing to call a relocation), no e820 and no UNUSABLE
        # (nothing to convert), no Xen scratch in /proc/iomem: Xen's extended regions are
        # what is judged.
        expectations=("extended_regions", "foreign_mapping"),
        ram_base=0x40000000,
        kernel_magic=(0x38, b"ARM\x64"),
        efi_boot_name="BOOTAA64",
        esp_argv=("-drive", "if=none,id=esp,format=raw,file={esp}", "-device", "virtio-blk-device,drive=esp"),
        linux_arch="arm64",
        kernel_image="arch/arm64/boot/Image",
        kernel_fragment="arm64-dom0.config",
        # Where a foreign mapping lands (extended region or ballooned RAM): nothing maps
        # one while dom0 boots on Arm (the grant table has its own frames from Xen).
        dom0_probes=("foreign-map",),
        probe_modules=("xen_gntdev", "xen_gntalloc"),
        probe_compiler_packages=("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"),
    ),
}

# The Xen a scenario gets when it names none (artefacts/archive.py has its package). Jobs of
# this Xen keep ids without a Xen tag, the ids ci/baseline.json holds: changing it needs a
# new baseline.
DEFAULT_XEN = "4.17"

# The QEMU a scenario gets when it names none: the machine's own qemu-system-* from PATH
# (bookworm's 7.2 on Debian 12). Others are rows of artefacts/archive.py, unpacked into the
# cache; jobs of this one keep ids without a QEMU tag.
SYSTEM_QEMU = "system"

ACCELS: dict[str, Accel] = {
    # Multi-threaded TCG. With more than one vCPU, QEMU 7.2's MTTCG races corrupt dom0
    # now and then (a triple fault, an int3 Oops from a stale translation; fixed upstream
    # in 8.1+): hosts have one vCPU by default, which no race can touch, and boot side by
    # side instead (docs/triple-fault.md).
    "tcg": Accel("tcg", ("thread=multi",), timeout_scale=1.0),
    "kvm": Accel("kvm", (), timeout_scale=0.5),
}

FIRMWARES: dict[str, Firmware] = {
    "seabios": Firmware("seabios", boot="multiboot"),  # QEMU's default BIOS: no arguments needed
    "ovmf": Firmware("ovmf", boot="xen-efi", code="/usr/share/OVMF/OVMF_CODE_4M.fd",
                     vars="/usr/share/OVMF/OVMF_VARS_4M.fd", package="ovmf",
                     extra_seconds={"xen": 120.0, "userspace": 240.0, "collected": 240.0}),
    # No firmware: QEMU loads Xen and dom0 itself (Arm virt's guest-loader). Nothing places
    # BARs before dom0 does, so there is no firmware placement to compare against.
    "none": Firmware("none", boot="guest-loader", places_bars=False, arches=("aarch64",)),
    # UEFI on Arm virt (Debian's AAVMF): xen.efi from an EFI system partition, as on real Arm
    # servers. acpi=off: Xen on Arm reads the device tree, which AAVMF hands on only without
    # ACPI. Linux on Arm assigns every BAR again (no probe-only), so where AAVMF put them is
    # no baseline: no snapshot.
    "aavmf": Firmware("aavmf", boot="xen-efi", code="/usr/share/AAVMF/AAVMF_CODE.fd",
                      vars="/usr/share/AAVMF/AAVMF_VARS.fd", package="qemu-efi-aarch64", places_bars=False,
                      arches=("aarch64",), machine_props=("acpi=off",)),
}

BOOT_METHODS: dict[str, BootMethod] = {
    "multiboot": BootMethod("multiboot", ("seabios",),
                            "QEMU's multiboot loader: -kernel xen, -initrd 'vmlinuz args,initrd'"),
    "xen-efi": BootMethod("xen-efi", ("ovmf", "aavmf"),
                          "xen.efi as EFI/BOOT/BOOTX64.EFI (Arm: BOOTAA64.EFI) with its .cfg, dom0 and initrd "
                          "on a FAT image"),
    "guest-loader": BootMethod("guest-loader", ("none",),
                               "-kernel xen, dom0 and initrd as device-tree modules by QEMU's guest-loader (Arm virt)"),
}


def lookup(table: dict, name: str, what: str):
    """Select a row by name or fail loudly with the valid names."""
    try:
        return table[name]
    except KeyError as exc:
        raise InputError(f"unknown {what} {name!r} (available: {', '.join(sorted(table))})") from exc


# --- accelerator choice -------------------------------------------------------------

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01


@dataclass(frozen=True)
class AccelChoice:
    accel: str
    reason: str


def choose_accel(requested: str, kvm_creates_vm: bool, cpu_flags: set[str]) -> AccelChoice:
    """Pure decision: KVM only when it can create a VM *and* the CPU has svm or vmx.

    Some CI machines expose a /dev/kvm (e.g. PVM) whose CPU lacks both; QEMU then
    aborts in kvm_buf_set_msrs, so such a /dev/kvm must not be used.
    """
    if requested != "auto":
        lookup(ACCELS, requested, "accelerator")
        return AccelChoice(requested, f"{requested} requested with --accel")
    if not kvm_creates_vm:
        return AccelChoice("tcg", "TCG: /dev/kvm cannot create a VM")
    virt = cpu_flags & {"svm", "vmx"}
    if not virt:
        return AccelChoice("tcg", "TCG: /dev/kvm works but the CPU advertises neither svm nor vmx "
                                  "(QEMU would abort in kvm_buf_set_msrs)")
    return AccelChoice("kvm", f"KVM: /dev/kvm creates VMs and the CPU has {sorted(virt)[0]}")


def accel_for(choice: AccelChoice, arch: Arch) -> AccelChoice:
    """The machine-wide choice, narrowed to what `arch` runs under: KVM runs only guests of
    the machine's own architecture, so an aarch64 host boots under TCG on an x86 machine."""
    if choice.accel in arch.cpu:
        return choice
    if choice.reason.endswith("requested with --accel"):
        raise InputError(f"--accel {choice.accel}: {arch.name} hosts run under {', '.join(arch.cpu)} only here")
    return AccelChoice("tcg", f"TCG for {arch.name}: {choice.accel} runs this machine's own architecture only")


def probe_kvm(path: str = "/dev/kvm") -> bool:
    """True if `path` answers KVM_GET_API_VERSION and KVM_CREATE_VM."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fcntl.ioctl(fd, KVM_GET_API_VERSION, 0) != 12:
            return False
        vm_fd = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        os.close(vm_fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def cpu_flags(cpuinfo: str) -> set[str]:
    """The `flags` of the first CPU in /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def detect_accel(requested: str = "auto") -> AccelChoice:
    with open("/proc/cpuinfo") as f:
        flags = cpu_flags(f.read())
    return choose_accel(requested, probe_kvm() if requested == "auto" else False, flags)
