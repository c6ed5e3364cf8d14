"""Handing dom0's console to the user's terminal (rig shell): raw mode, the agent's shell."""

from __future__ import annotations

import os
import re
import sys
import termios
import tty

from rich.console import Console

from rig.guest import console, protocol


def shell_on_console(host, boot, say: Console) -> None:
    """After collection: an interactive shell on dom0's console; leaving it powers off."""
    host.console.sendline(protocol.command(protocol.SHELL))
    host.console.expect(re.escape(protocol.SHELL_STARTED), timeout=protocol.ANSWER_SECONDS)
    say.print(f"dom0 shell on the console of {boot.plan.name} (artefacts are in {boot.run_dir}). "
              "`exit` powers the host off; Ctrl-] leaves at once.", markup=False)
    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    try:
        if saved is not None:
            tty.setraw(stdin)
        how = console.interact(host.console, stdin, sys.stdout.fileno())
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
    if how == "escape":
        host.console.sendline("exit")
    if not host.wait_exit(10.0):
        say.print("rig: dom0 did not power off; stopping QEMU")
