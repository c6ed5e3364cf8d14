"""One exception tree for the whole rig; the CLI maps each branch to an exit code.

Exit codes: 0 every expectation held, 1 an expectation failed, 2 bad input or
usage, 3 error (boot failed, hang, infrastructure).
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_EXPECTATION_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ERROR = 3


class RigError(Exception):
    """Root of every error the rig raises on purpose."""

    exit_code = EXIT_ERROR


class InputError(RigError):
    """The user gave us something we cannot use: a scenario, a path, an option."""

    exit_code = EXIT_BAD_INPUT


class ScenarioError(InputError):
    """A scenario file is malformed; the message names file, key and value."""

    def __init__(self, path: Path | str, key: str, problem: str):
        self.path, self.key, self.problem = str(path), key, problem
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")


class ArtefactError(RigError):
    """A cached or user-supplied artefact is missing, corrupt or cannot be fetched."""


class CorruptArtefactError(ArtefactError):
    def __init__(self, path: Path, want: str, got: str, remedy: str = "run `rig fetch --refresh` to fetch it again"):
        self.path, self.want, self.got = path, want, got
        super().__init__(f"{path}: sha256 mismatch (recorded {want[:16]}..., found {got[:16]}...); {remedy}")


class LaunchError(RigError):
    """QEMU did not start or its monitor did not answer."""

    def __init__(self, message: str, argv: list[str] | None = None, log: Path | None = None):
        self.argv, self.log = argv, log
        extra = f" (log: {log})" if log else ""
        super().__init__(message + extra)


class MonitorError(RigError):
    """The host's monitor (QMP) closed or stopped answering while QEMU still ran."""


class BootError(RigError):
    """The guest did not reach the stage we waited for.

    `failure` is one of: xen-panic, dom0-crash, dom0-halt, dom0-triple-fault, kernel-panic, init-exec, hang, qemu-exit
    (and, outside this class: launch, qmp, collect, internal).
    """

    def __init__(self, failure: str, stage: str, detail: str, console_tail: str = ""):
        self.failure, self.stage, self.detail, self.console_tail = failure, stage, detail, console_tail
        super().__init__(f"{failure} at stage {stage}: {detail}")


class CollectError(RigError):
    """The guest reached userspace but its artefacts came back incomplete or garbled."""


class ParseError(CollectError):
    """A line inside a block of evidence (a memory map, /proc/iomem, a PCI list) does not
    parse: the block is refused whole, never judged shorter."""


class Interrupted(RigError):
    """Ctrl-C or SIGTERM: everything was torn down, nothing was judged."""

    exit_code = 130
