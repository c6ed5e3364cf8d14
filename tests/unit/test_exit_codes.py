from rig import session


def _r(verdict):
    return {"verdict": verdict}


def test_exit_codes():
    assert session.exit_code([_r("pass"), _r("pass")]) == 0
    assert session.exit_code([_r("pass"), _r("fail")]) == 1
    # An error outranks a failure: a boot that did not happen must never read as a verdict.
    assert session.exit_code([_r("fail"), _r("error")]) == 3
    assert session.exit_code([]) == 3
