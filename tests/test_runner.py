"""The runner isolates checks: a crash or a time-out is an error result and the run goes on."""

from __future__ import annotations

import os
import time

import pytest

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
    """Python's, numpy's and torch's generators are seeded with the run's seed before a check, and float64 is torch's
    default inside it, whatever the caller left."""
    import random

    import numpy as np
    import torch

    def probe(claim, ctx):
        got = (random.random(), float(np.random.rand()), torch.rand(1).item())
        return Outcome(torch.get_default_dtype() == torch.float64 and got == claim, "", str(got))

    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    expected = (random.random(), float(np.random.rand()), torch.rand(1, dtype=torch.float64).item())
    random.seed(0)  # the caller's generators left elsewhere
    np.random.seed(0)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float32)
    result = run_check(Check("p", Method.TORCH, probe), expected, Context(seed=5))
    assert result.status is Status.PASS, result.evidence


def _key(event):
    """An event without its timing: what must be the same however the steps are split."""
    if event[0] == "result":
        r = event[1]
        return ("result", r.problem, r.part, r.check, r.convention, r.status, r.evidence)
    if event[0] == "derived":
        return ("derived", event[1], event[2].answer)
    return event  # a failed derivation's cause, a task's value


def test_the_symbolic_and_torch_stages_together_are_the_whole_problem(bank):
    """Every step once, with the same number and the same finding, whether a problem runs whole or as its symbolic
    stage and then its torch stage given the symbolic stage's derivations; a part whose derivation fails is the
    symbolic stage's, all of it."""
    from verify.report.writeups import Grading
    from verify.runner import SYMBOLIC, TORCH, problem_events

    def broken():
        raise ValueError("no")

    failing = Problem(
        "t/broken",
        "t",
        "t",
        "t",
        ("t",),
        (
            Part("a", Kind.INT, broken, (Check("sym", Method.SYMBOLIC, lambda c, x: None),)),
            Part(
                "b", Kind.INT, lambda: Derivation(4), (Check("t", Method.TORCH, lambda c, x: checks.exact(c, 4, "t")),)
            ),
        ),
    )
    grading = Grading()
    for problem in [*bank.select(["cpen455-hw2/1.3", "csc413-a2/2.2.1", "csc420-a2/q4", "vu-dl-a3/p1.4"]), failing]:
        whole = {step: _key(e) for step, e in problem_events(problem, Context(), tasks=grading.tasks)}
        symbolic = list(problem_events(problem, Context(), tasks=grading.tasks, stage=SYMBOLIC))
        given = {e[1]: e[2] for _, e in symbolic if e[0] == "derived"}
        done = {step for step, _ in symbolic}
        torch = list(problem_events(problem, Context(), skip=done, tasks=grading.tasks, stage=TORCH, given=given))
        split = {step: _key(e) for step, e in [*symbolic, *torch]}
        assert len(split) == len(symbolic) + len(torch)  # no step twice
        assert split == whole, problem.id
        methods = {e[1].method for _, e in torch if e[0] == "result"}
        assert methods <= {Method.TORCH}, problem.id  # the torch stage ran nothing the symbolic one could


def test_a_derivation_comes_with_its_answer_in_latex_written_once():
    import sympy

    from verify.runner import derive

    x = sympy.Symbol("x")
    made = derive(Part("a", Kind.EXPR, lambda: Derivation(x**2 / 2), ()))
    assert made.answer == x**2 / 2 and made.latex == r"\frac{x^{2}}{2}"
    given = derive(Part("a", Kind.EXPR, lambda: Derivation(x, latex="y"), ()))
    assert given.latex == "y"  # written by the problem: kept

    class Unprintable:
        def latex(self):
            raise RuntimeError("no LaTeX")

    odd = Unprintable()
    kept = derive(Part("a", Kind.TEXT, lambda: Derivation(odd), ()))
    assert kept.answer is odd and kept.latex == ""


def test_settled_pauses_the_collector_and_freezes_what_was_made():
    """Inside, no collection runs; after, what was made is frozen (never scanned again) and the collector is as it was:
    running again, or still paused where the caller (an enclosing settled) paused it; work that raised freezes nothing."""
    import gc

    from verify.runner import settled

    assert gc.isenabled()
    before = gc.get_freeze_count()
    try:
        with settled():
            assert not gc.isenabled()
            with settled():
                made = [[i] for i in range(1000)]
            assert not gc.isenabled()  # the inner one leaves the outer pause alone
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + len(made)
        gc.unfreeze()
        with pytest.raises(ImportError), settled():
            [[i] for i in range(1000)]
            raise ImportError("refused")
        assert gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()
        gc.unfreeze()  # this test process's objects go back to the collector


def test_torch_is_imported_settled_on_first_use():
    """The runner's first use of torch imports it with the collector paused and torch's objects frozen after (later uses
    freeze nothing more), with torch's inter-op pool kept to one thread and its own intra-op default remembered."""
    import subprocess
    import sys
    from pathlib import Path

    import verify

    code = (
        "import gc, sys; from verify import runner; assert 'torch' not in sys.modules; "
        "n = gc.get_freeze_count(); torch = runner._torch(); first = gc.get_freeze_count() - n; "
        "junk = [[i] for i in range(1000)]; n = gc.get_freeze_count(); runner._torch(); "
        "print(first, gc.get_freeze_count() - n, torch.get_num_interop_threads(), "
        "runner._torch_default_threads == torch.get_num_threads())"
    )
    here = str(Path(verify.__file__).parents[1])  # the package these tests run against
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": here}
    )
    first, again, interop, remembered = out.stdout.split()
    import torch

    from verify import runner

    assert runner._torch() is torch  # here, where torch is in already
    assert int(first) > 100_000  # torch's modules, functions and types
    assert int(again) == 0
    assert (interop, remembered) == ("1", "True")


def test_a_check_on_cuda_has_cudas_generator_seeded(monkeypatch):
    """Where a check runs on cuda its generator is seeded with the run's seed (as the CPU one is); elsewhere cuda is not
    touched (seeding it would start it)."""
    import torch

    import verify.runner as runner

    seeded = []
    monkeypatch.setattr(runner, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded.append)
    check = Check("on the device", Method.TORCH, lambda c, x: Outcome(True, "", ""), uses_device=True)
    assert run_check(check, 1, Context(device="cuda", seed=7)).status is Status.PASS
    assert seeded == [7]
    assert run_check(check, 1, Context(device="cpu", seed=7)).status is Status.PASS
    assert seeded == [7]
