import pytest

from rig import collect
from rig.errors import CollectError


def test_sections_from_capture(capture):
    found = collect.sections(capture("unpatched-6.1-testdev1G-relocated"), required=("dmesg", "iomem", "e820"))
    assert found["iomem"].splitlines()[0] == "00000000-00000fff : Reserved"
    assert "100000000-107ffffff : Xen scratch" in found["iomem"]
    assert all(not line.startswith("(XEN)") for line in found["dmesg"].splitlines())
    assert found["dmesg"].startswith("[    0.000000] Linux version 6.1.0-56-amd64")


def test_rig_run_has_every_section(run_data):
    found = collect.sections(run_data("bar-clash-64bit", "unpatched", "serial.log"))
    assert set(collect.REQUIRED) <= set(found.sections)
    assert found["uname"].strip() == "6.1.0-56-amd64"


def test_interleaved_xen_line_is_dropped_and_count_still_matches():
    text = "@@RIG-BEGIN iomem\r\r\na\r\r\n(XEN) [1.0] noise\r\nb\r\r\n@@RIG-END iomem 2\r\r\n"
    assert collect.sections(text, required=("iomem",))["iomem"] == "a\nb\n"


def test_line_count_mismatch_is_an_error():
    with pytest.raises(CollectError, match="iomem: agent sent 3 lines, console delivered 2"):
        collect.sections("@@RIG-BEGIN iomem\na\nb\n@@RIG-END iomem 3\n", required=("iomem",))


def test_cut_off_section_is_an_error():
    with pytest.raises(CollectError, match="no @@RIG-END"):
        collect.sections("@@RIG-BEGIN dmesg\na\n", required=("dmesg",))


def test_missing_section_is_an_error():
    with pytest.raises(CollectError, match="missing sections: e820"):
        collect.sections("@@RIG-BEGIN iomem\na\n@@RIG-END iomem 1\n", required=("iomem", "e820"))
