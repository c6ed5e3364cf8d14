"""Matrix expansion, expectation overrides and sharding."""

from pathlib import Path

import pytest

from rig.spec import matrix, scenario
from rig.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def make(name, dom0_mem="512M", firmware="seabios", kernels=None, expect=None):
    return scenario.Scenario(name=name, host={"firmware": firmware}, xen={"dom0_mem": dom0_mem},
                             kernels=kernels or {"unpatched": "debian-6.1", "patched": "debian-bpo-6.12"},
                             expect=expect or {})


def test_expand_scenario_x_firmware_x_dom0_mem_x_kernel():
    jobs = matrix.expand([make("a", ["128M", "256M"], ["seabios", "ovmf"]), make("b")])
    assert len(jobs) == 2 * 2 * 2 + 2
    assert jobs[0].id == "a[seabios-128M-unpatched]"
    assert jobs[0].rel_dir == Path("a/seabios-128M/unpatched")
    assert {j.dom0_mem for j in jobs if j.scenario.name == "a"} == {128 << 20, 256 << 20}


def test_rig_run_layout_stays_flat_for_one_variant():
    (a, b) = matrix.expand([make("a")], flat=True)
    assert (a.rel_dir, b.rel_dir) == (Path("unpatched"), Path("patched"))
    jobs = matrix.expand([make("a", ["128M", "256M"])], flat=True)
    assert jobs[0].rel_dir == Path("seabios-128M/unpatched")


def test_when_overrides_apply_to_their_variant_only():
    s = make("a", firmware=["seabios", "ovmf"], expect={"unpatched": {
        "relocations": "some", "reason": "base",
        "when": [{"firmware": "ovmf", "relocations": "none", "reason": "OVMF's window is elsewhere"}]}})
    by_fw = {j.firmware: j.scenario.expect["unpatched"] for j in matrix.expand([s]) if j.role == "unpatched"}
    assert (by_fw["seabios"].relocations, by_fw["seabios"].reason) == ("some", "base")
    assert (by_fw["ovmf"].relocations, by_fw["ovmf"].reason) == ("none", "OVMF's window is elsewhere")


def test_shards_partition_whole_hosts_deterministically():
    jobs = matrix.expand([make(n, ["128M", "256M"]) for n in "abc"])
    shards = [matrix.shard(jobs, i, 4) for i in range(1, 5)]
    ids = [j.id for s in shards for j in s]
    assert sorted(ids) == sorted(j.id for j in jobs) and len(ids) == len(set(ids))
    for s in shards:  # every host in a shard brings both of its kernels (the reference stays)
        hosts = {j.host for j in s}
        assert all(sum(1 for j in s if j.host == h) == 2 for h in hosts)
    assert [j.id for j in matrix.shard(jobs, 2, 4)] == [j.id for j in matrix.shard(list(jobs), 2, 4)]


@pytest.mark.parametrize("text", ["0/2", "3/2", "x", "1-2"])
def test_bad_shard(text):
    with pytest.raises(InputError, match="--shard"):
        matrix.parse_shard(text)


def test_duplicate_scenario_names_are_rejected():
    with pytest.raises(InputError, match="two scenarios are named 'a'"):
        matrix.expand([make("a"), make("a")])


def test_when_must_name_a_variant(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text('name = "w"\n[kernels]\nunpatched = "debian-6.1"\n[[expect.unpatched.when]]\n'
                    'firmware = "ovmf"\nrelocations = "none"\n')
    with pytest.raises(scenario.ScenarioError, match="expect.unpatched.when.0.firmware"):
        scenario.load(path)


def test_every_shipped_scenario_loads():
    for path in sorted((ROOT / "scenarios").rglob("*.toml")):
        from rig.artefacts.archive import DEBIAN_KERNELS
        s = scenario.load(path, set(DEBIAN_KERNELS))
        assert matrix.expand([s])


def test_boots_at_once_follow_the_vcpus_of_the_biggest_host(tmp_path, monkeypatch):
    from rig.run import batch
    from rig.spec.scenario import load
    monkeypatch.setattr(batch.os, "cpu_count", lambda: 2)
    src = (Path(__file__).resolve().parents[2] / "scenarios" / "bar-clash-64bit.toml").read_text().replace("cpus = 1", "cpus = 2")
    one = tmp_path / "one.toml"
    one.write_text(src.replace("cpus = 2", "cpus = 1").replace("name = \"bar-clash-64bit\"", "name = \"one\""))
    two = tmp_path / "two.toml"
    two.write_text(src)
    jobs_one = matrix.expand([load(one)])
    jobs_both = matrix.expand([load(one), load(two)])
    # A TCG vCPU keeps a core busy: 1-vCPU hosts boot two at a time on 2 cores, a 2-vCPU one alone.
    assert (batch.default_workers(jobs_one), batch.default_workers(jobs_both)) == (2, 1)
    assert batch.default_workers() == 1


def test_a_named_xen_is_in_the_job_id_and_the_host_and_the_default_is_not():
    default = matrix.expand([make("a")])[0]
    s = make("a")
    xen420 = matrix.expand([s.model_copy(update={"xen": s.xen.model_copy(update={"version": "4.20"})})])[0]
    assert default.id == "a[seabios-512M-unpatched]"      # baselines of the default Xen keep their ids
    assert xen420.id == "a[xen4.20-seabios-512M-unpatched]"
    assert default.host != xen420.host                     # never judged against the other Xen's map



def test_naming_the_default_xen_keeps_the_default_ids():
    s = make("a")
    explicit = s.model_copy(update={"xen": s.xen.model_copy(update={"version": "4.17"})})
    assert [j.id for j in matrix.expand([explicit])] == [j.id for j in matrix.expand([s])]


def test_a_named_xen_has_its_own_directory_in_a_matrix():
    s = make("a")
    jobs = matrix.expand([s.model_copy(update={"xen": s.xen.model_copy(update={"version": "4.20"})}), make("b")])
    assert jobs[0].rel_dir == Path("a/xen4.20-seabios-512M/unpatched")
    assert jobs[2].rel_dir == Path("b/seabios-512M/unpatched")


def test_xen_and_qemu_lists_are_axes_with_their_own_expectations():
    s = scenario.Scenario(
        name="v", host={"qemu": ["system", "10.0"]}, xen={"version": ["4.17", "4.20"]},
        kernels={"patched": "debian-13-bpo-7"},
        expect={"patched": {"relocations": "none", "when": [
            {"xen": "4.17", "qemu": "10.0", "relocations": "some", "reason": "dom0 halts"}]}})
    jobs = matrix.expand([s])
    assert [j.id for j in jobs] == [
        "v[seabios-512M-patched]",                      # the defaults keep the ids of today's baselines
        "v[qemu10.0-seabios-512M-patched]",
        "v[xen4.20-seabios-512M-patched]",
        "v[xen4.20-qemu10.0-seabios-512M-patched]",
    ]
    assert [j.scenario.expect["patched"].relocations for j in jobs] == ["none", "some", "none", "none"]
    assert len({j.host for j in jobs}) == 4               # four machines, each judged on its own
    assert jobs[3].rel_dir == Path("v/xen4.20-qemu10.0-seabios-512M/patched")
    assert (jobs[1].scenario.host.qemu, jobs[1].scenario.xen.version) == ("10.0", "4.17")


def test_the_command_lines_xen_and_qemu_replace_a_scenarios_lists():
    from rig.run import batch
    s = scenario.Scenario(name="v", host={"qemu": ["system", "10.0"]}, xen={"version": ["4.17", "4.20"]},
                          kernels={"patched": "debian-13-bpo-7"})
    one = batch.with_xen(s, batch.Options(xen_name="4.20", qemu_name="10.0"))
    assert [j.id for j in matrix.expand([one])] == ["v[xen4.20-qemu10.0-seabios-512M-patched]"]


def test_an_unknown_qemu_lists_the_known_ones(tmp_path):
    from rig.errors import ScenarioError
    from rig.run import batch
    s = scenario.Scenario(name="v", host={"qemu": ["10.0", "9.2"]}, kernels={"p": "debian-6.1"})
    with pytest.raises(ScenarioError, match=r"host.qemu: unknown QEMU '9.2' for x86_64 \(known: system, 10.0\)"):
        batch.check_xen(s, tmp_path / "v.toml")
