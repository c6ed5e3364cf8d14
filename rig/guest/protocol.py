"""What the rig and dom0's agent (guests/agent/init) say to each other: the one definition.

The agent prints markers on the console (hvc0, muxed into Xen's COM1) and reads one command
per line from it; the evidence is sections, files in RUN_DIR that go out on the console
between BEGIN and END marks or come over SSH with the extras. tests/unit/test_protocol.py
holds the agent's script to exactly this: every marker it prints, every command it takes,
its sections and extras, its version.
"""

from __future__ import annotations

import re

AGENT_VERSION = 6   # the agent this rig ships; bump with any change below

# The sections each agent version sends (0: no banner, the shared captures).
SECTIONS_BY_AGENT = {
    0: ("uname", "cmdline", "dmesg", "iomem", "e820", "pci-resources"),
    1: ("uname", "cmdline", "dmesg", "iomem", "e820", "pci-resources"),
    2: ("uname", "cmdline", "dmesg", "iomem", "e820", "pci-resources"),
    3: ("uname", "cmdline", "dmesg", "iomem", "e820", "pci-resources", "xen-balloon"),
    4: ("uname", "cmdline", "dmesg", "iomem", "e820", "pci-resources", "xen-balloon"),   # e820 may say "absent"
    5: ("uname", "cmdline", "dmesg", "iomem", "e820", "pci-resources", "xen-balloon", "xen-devicetree"),
    6: ("uname", "cmdline", "dmesg", "iomem", "e820", "pci-resources", "xen-balloon", "xen-devicetree",
        "foreign-map"),   # "absent" unless the initramfs has the probe
}
SECTIONS = SECTIONS_BY_AGENT[AGENT_VERSION]
CHECKSUMS_FROM_AGENT = 3   # END marks carry the file's sha256 from this version on

# What only SSH carries, made by the agent in RUN_DIR/EXTRAS_DIR: name -> what it holds.
EXTRAS = {
    "lspci": "lspci -vvv -nn",
    "pci-sysfs": "every PCI function's sysfs resource file, whole",
    "kernel-config": "/proc/config.gz, when the kernel has one",
}
RUN_DIR = "/run/rig"
EXTRAS_DIR = "extras"

# Markers, one per line, as the agent prints them (the rest of the line after a space).
AGENT = "@@RIG-AGENT"          # <version> <release>: the agent started (stage userspace)
STEP = "@@RIG-STEP"            # <name> <uptime>: a step ended (timings only, never judged)
SSH_OFFER = "@@RIG-SSH"        # <key type> <base64 host key> <SHA256:fingerprint>
SSH_NONE = "@@RIG-SSH-NONE"    # <why>: no SSH this boot, collection goes over the console
READY = "@@RIG-READY"          # every section snapshotted, the network tried: commands welcome
BEGIN = "@@RIG-BEGIN"          # <section>
END = "@@RIG-END"              # <section> <line count> <sha256>
DONE = "@@RIG-DONE"            # [<via>]: a collect, resend or collected command finished
OK = "@@RIG-OK"                # authorize or keep done
SHELL_STARTED = "@@RIG-SHELL"  # the console is an interactive shell now
FAULT = "@@RIG-FAULT"          # <kind>: a fault point of tests/faults struck
FORKS = "@@RIG-FORKS"          # <n> done: the forks:N fault point finished
MARKERS = (AGENT, STEP, SSH_OFFER, SSH_NONE, READY, BEGIN, END, DONE, OK, SHELL_STARTED, FAULT, FORKS)

# Commands, one per line. Anything else, or a minute of silence unless kept: power-off.
COLLECT = "collect"            # print every section, then DONE
RESEND = "resend"              # <section>: print it again, then DONE (PV consoles drop characters)
COLLECTED = "collected"        # <via>: the rig read the sections another way; DONE <via>
AUTHORIZE = "authorize"        # <base64 ed25519 key>: accept this SSH client key, then OK
KEEP = "keep"                  # stay up until told otherwise (rig run --keep), then OK
SHELL = "shell"                # hand the console to an interactive shell, SHELL_STARTED
COMMANDS = (COLLECT, RESEND, COLLECTED, AUTHORIZE, KEEP, SHELL)
ANSWER_SECONDS = 60            # an agent's OK or SHELL_STARTED, before --timeout-scale
SILENCE_SECONDS = 60           # the agent powers off after this long without a command

VIA_SSH = "ssh"                # COLLECTED's argument, and result.json's collected_via


def command(name: str, arg: str | None = None) -> str:
    """One line to send the agent."""
    if name not in COMMANDS:
        raise ValueError(f"not an agent command: {name!r}")
    return name if arg is None else f"{name} {arg}"


def marker_re(marker: str, rest: str = "") -> str:
    """A pattern for `marker` at the start of a line, then `rest` (a regex) after a space."""
    return rf"^{re.escape(marker)}" + (rf" {rest}" if rest else r"(?=\s|$)")
