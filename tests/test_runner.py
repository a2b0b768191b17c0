"""The runner isolates checks: a crash or a time-out is an error result and the run goes on."""

from __future__ import annotations

import time

from verify import checks
from verify.model import Check, Context, Derivation, Kind, Method, Outcome, Part, Problem, Status
from verify.runner import run, run_check


def _problem(*fns):
    cks = tuple(Check(f"c{i}", Method.SYMBOLIC, fn) for i, fn in enumerate(fns))
    return Problem("t/1", "t", "t", "test", ("t",), (Part("a", Kind.INT, lambda: Derivation(3), cks),))


def test_crash_becomes_error_and_run_goes_on():
    def boom(claim, ctx):
        raise ZeroDivisionError("division by zero\nsecond line")

    out = run([_problem(boom, lambda c, x: checks.exact(c, 3, "three"))])
    assert [r.status for r in out.results] == [Status.ERROR, Status.PASS]
    assert out.results[0].evidence == "ZeroDivisionError: division by zero"
    assert not out.ok


def test_time_limit():
    def slow(claim, ctx):
        while True:
            time.sleep(0.01)

    result = run_check(Check("slow", Method.SYMBOLIC, slow), 3, Context(), limit=0.2)
    assert result.status is Status.ERROR and "time limit" in result.evidence
    assert result.seconds < 2


def test_time_limits_nest():
    """An inner limit neither cancels the enclosing one nor outlives it; a shorter enclosing one still fires."""
    import pytest

    from verify.runner import CheckTimeout, time_limit

    start = time.monotonic()
    with pytest.raises(CheckTimeout, match=r"limit of 0\.3 s"), time_limit(0.3):
        with time_limit(5):
            time.sleep(0.05)
        while True:  # the enclosing limit, restored with what is left of it, stops this
            time.sleep(0.01)
    assert time.monotonic() - start < 1
    with pytest.raises(CheckTimeout, match=r"limit of 0\.2 s"), time_limit(0.2), time_limit(5):
        while True:
            time.sleep(0.01)
    with time_limit(5):
        with pytest.raises(CheckTimeout, match=r"limit of 0\.1 s"), time_limit(0.1):
            while True:
                time.sleep(0.01)
        time.sleep(0.2)  # the enclosing limit goes on after the inner one fired: nothing fires here


def test_failed_derivation_marks_checks_as_errors():
    def bad():
        raise ValueError("no")

    p = Problem(
        "t/2",
        "t",
        "t",
        "test",
        ("t",),
        (Part("a", Kind.INT, bad, (Check("c", Method.SYMBOLIC, lambda c, x: Outcome(True, "", "")),)),),
    )
    out = run([p])
    assert out.results[0].status is Status.ERROR and "derivation failed" in out.results[0].evidence


def test_cuda_checks_skip_without_gpu():
    import torch

    if torch.cuda.is_available():  # pragma: no cover - exercised on GPU machines only
        return
    check = Check("gpu", Method.TORCH, lambda c, x: Outcome(True, "", ""), uses_device=True)
    assert run_check(check, 1, Context(device="cuda")).status is Status.SKIP


def test_checks_run_seeded_in_float64():
    def probe(claim, ctx):
        import torch

        return Outcome(torch.get_default_dtype() == torch.float64 and torch.rand(1).item() == claim, "", "")

    import torch

    torch.manual_seed(0)
    first = torch.rand(1, dtype=torch.float64).item()
    torch.set_default_dtype(torch.float32)
    assert run_check(Check("p", Method.TORCH, probe), first, Context()).status is Status.PASS
