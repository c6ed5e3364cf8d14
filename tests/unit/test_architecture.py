"""The tree keeps the shape docs/architecture.md draws: backends do not import each other,
only the host layer knows QEMU's command line, and wrapped errors keep their cause."""

import ast
from pathlib import Path

RIG = Path(__file__).resolve().parents[2] / "rig"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_no_backend_imports_another():
    assert "rig.host.qemu" not in _imports(RIG / "host" / "libvirt.py")
    assert "rig.host.libvirt" not in _imports(RIG / "host" / "qemu.py")


def test_only_the_host_layer_builds_qemus_command_line():
    users = sorted(str(p.relative_to(RIG)) for p in RIG.rglob("*.py")
                   if "host" not in p.relative_to(RIG).parts[:1]
                   and {"rig.host.qemu_argv.qemu_argv", "rig.host.qemu_argv.guest_argv"} & _imports(p))
    assert users == []


def test_every_wrapped_error_keeps_its_cause():
    """`raise RigError(...) from None` would drop what libvirt, paramiko, QMP or the OS said
    from traceback.txt."""
    dropped = [f"{p.relative_to(RIG)}:{node.lineno}" for p in sorted(RIG.rglob("*.py"))
               for node in ast.walk(ast.parse(p.read_text()))
               if isinstance(node, ast.Raise) and isinstance(node.cause, ast.Constant) and node.cause.value is None]
    assert dropped == []
