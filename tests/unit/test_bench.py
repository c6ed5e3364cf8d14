"""rig bench's arithmetic (pure): medians per job, each goal's ratio, and what is not a figure."""

from rig.run import bench
from rig.run.bench import Round

A, B = "s[seabios-512M-unpatched]", "s[seabios-512M-patched]"


def _round(floor_a, floor_b, ab_wall, total_a, total_b, verdicts=("pass", "pass")):
    return Round(floors={A: {"total": floor_a}, B: {"total": floor_b}}, ab_wall=ab_wall, ab_exit=0,
                 floors_together={A: {"total": floor_a + 1}, B: {"total": floor_b + 1}},
                 totals={A: total_a, B: total_b}, stages={A: {"total": total_a}, B: {"total": total_b}},
                 verdicts={A: verdicts[0], B: verdicts[1]})


def test_ratios_are_of_medians():
    rounds = [_round(20, 22, 24, 21, 23), _round(18, 20, 30, 19, 25), _round(19, 21, 25, 20, 24)]
    s = bench.summarize(rounds, [A, B])
    goals = {g["goal"]: g for g in s["goals"]}
    assert s["two_floors_s"] == 40                        # median 19 + median 21
    assert goals["ab_vs_two_bare"]["value"] == 0.625      # median A/B 25 / 40
    assert goals["ab_vs_two_bare"]["met"] is False        # limit 0.60
    # Each boot against its floor booted side by side (median 20), as the A/B boots it.
    assert goals[f"boot_vs_bare {A}"]["value"] == round(20 / 20, 3)
    assert goals[f"boot_vs_bare {B}"]["value"] == round(24 / 22, 3)
    assert bench.exit_code(s) == 1


def test_every_goal_met_is_exit_0():
    s = bench.summarize([_round(20, 20, 22, 21, 21.5)], [A, B])
    assert [g["met"] for g in s["goals"]] == [True, True, True]
    assert bench.exit_code(s) == 0


def test_a_round_with_an_erred_job_gives_no_ab_figures():
    """An error is not a timing: an A/B that erred fast must not make the ratio look good."""
    rounds = [_round(20, 20, 5, 3, 21, verdicts=("error", "pass")), _round(20, 20, 30, 28, 29)]
    s = bench.summarize(rounds, [A, B])
    assert s["rounds_judged"] == 1 and s["ab_wall_s"] == 30
    assert s["jobs"][A]["total_s"] == 28
    # ... and the figures rest on the round that went well, so they are not a result either.
    assert bench.exit_code(s) == 3


def test_every_round_erred_is_exit_3_not_a_met_goal():
    s = bench.summarize([_round(20, 20, 5, 3, 3, verdicts=("error", "missing"))], [A, B])
    assert s["rounds_judged"] == 0 and s["ab_wall_s"] is None
    assert bench.exit_code(s) == 3


def test_a_floor_that_never_powered_off_is_no_figure():
    r = _round(20, 20, 22, 21, 21)
    r.floors[A] = None
    r.floors_together[A] = None
    s = bench.summarize([r], [A, B])
    goals = {g["goal"]: g for g in s["goals"]}
    assert goals["ab_vs_two_bare"]["value"] is None and goals[f"boot_vs_bare {A}"]["value"] is None
    assert bench.exit_code(s) == 3


def test_firmware_pair_and_the_commands_timed_once():
    r = _round(20, 20, 22, 21, 21)
    r.firmware = {"seabios": {"total": 20.0}, "ovmf": {"total": 33.0}}
    s = bench.summarize([r], [A, B], {"suite": (600.0, 0), "library": (420.0, 0)})
    goals = {g["goal"]: g for g in s["goals"]}
    assert goals["ovmf_vs_seabios"]["value"] == 1.65 and not goals["ovmf_vs_seabios"]["met"]
    assert goals["suite_minutes"]["value"] == 10.0 and goals["suite_minutes"]["met"]
    assert goals["library_minutes"]["value"] == 7.0 and not goals["library_minutes"]["met"]


def test_a_failed_suite_is_no_figure():
    """A suite that stopped at its first failure is fast, not good."""
    s = bench.summarize([_round(20, 20, 22, 21, 21)], [A, B], {"suite": (60.0, 1)})
    goals = {g["goal"]: g for g in s["goals"]}
    assert goals["suite_minutes"]["value"] is None and bench.exit_code(s) == 3
