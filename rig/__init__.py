"""xen-pvh-rig: boot Xen + a PVH dom0 in QEMU and judge what dom0 did to PCI BARs and balloon memory.

The data path, one module per step:
    scenario -> host (qemu) -> console -> collect -> parse -> checks -> report
"""

__version__ = "0.2.0"
