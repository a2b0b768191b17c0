"""Runs the bank's checks: seeded, float64, each check isolated and time-limited, results in a stable order.

A check that raises becomes an ``error`` result with a one-line cause; a check that runs past its time limit becomes an
``error`` saying so; either way the run goes on. A derivation that fails turns every check of its part into an error.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from verify.model import Check, Context, Derivation, Method, Outcome, Part, Problem, Result, Skip, Status

DEFAULT_TIME_LIMIT = 60.0


class CheckTimeout(Exception):
    pass


@dataclass
class RunOutput:
    results: list[Result] = field(default_factory=list)
    derivations: dict[tuple[str, str], Derivation] = field(default_factory=dict)
    derivation_errors: dict[tuple[str, str], str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for r in self.results:
            out[r.status.value] += 1
        return out

    @property
    def ok(self) -> bool:
        return all(r.status in (Status.PASS, Status.SKIP) for r in self.results)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise CheckTimeout in the running check after ``seconds`` (main thread, POSIX); a no-op elsewhere."""
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise CheckTimeout(f"check ran past its time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def seed_everything(seed: int, with_torch: bool) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if with_torch:
        import torch

        torch.manual_seed(seed)
        torch.set_default_dtype(torch.float64)


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def run_check(check: Check, claim: Any, ctx: Context, limit: float | None = DEFAULT_TIME_LIMIT) -> Result:
    """Run one check on one claim and return its Result (never raises for the check's own failures)."""
    start = time.perf_counter()
    device = ctx.device if check.uses_device else ("cpu" if check.method is Method.TORCH else "-")
    status, outcome = Status.ERROR, None
    try:
        if check.uses_device and ctx.device == "cuda" and not cuda_available():
            raise Skip("no CUDA device here")
        seed_everything(ctx.seed, with_torch=check.method is Method.TORCH)
        with time_limit(limit):
            outcome = check.fn(claim, ctx)
        if not isinstance(outcome, Outcome):
            raise TypeError(f"check returned {type(outcome).__name__}, not an Outcome")
        status = Status.PASS if outcome.ok else Status.FAIL
    except Skip as exc:
        status, outcome = Status.SKIP, Outcome(False, "skipped", str(exc))
    except (Exception, CheckTimeout) as exc:
        status, outcome = Status.ERROR, Outcome(False, "the check crashed", one_line(exc))
    return Result(
        problem="",
        part="",
        check=check.name,
        method=check.method,
        status=status,
        compared=outcome.compared,
        evidence=outcome.evidence,
        max_error=outcome.max_error,
        tolerance=outcome.tolerance,
        device=device,
        seconds=time.perf_counter() - start,
        figures=outcome.figures,
    )


def derive(part: Part, limit: float | None = DEFAULT_TIME_LIMIT) -> Derivation:
    with time_limit(limit):
        return part.derive()


def run(
    problems: Sequence[Problem],
    ctx: Context | None = None,
    limit: float | None = DEFAULT_TIME_LIMIT,
    on_result: Callable[[Result], None] | None = None,
) -> RunOutput:
    """Derive every part and run every check; results come in bank order (problem, part, check)."""
    ctx = ctx or Context()
    out = RunOutput()
    for problem in problems:
        for part in problem.parts:
            key = (problem.id, part.key)
            derivation: Derivation | None = None
            try:
                seed_everything(ctx.seed, with_torch=False)
                derivation = derive(part, limit)
                out.derivations[key] = derivation
            except (Exception, CheckTimeout) as exc:
                out.derivation_errors[key] = one_line(exc)
            for check in part.checks:
                if derivation is None:
                    result = Result(
                        problem.id,
                        part.key,
                        check.name,
                        check.method,
                        Status.ERROR,
                        "not run",
                        f"the derivation failed: {out.derivation_errors[key]}",
                        None,
                        None,
                        "-",
                        0.0,
                    )
                else:
                    r = run_check(check, derivation.answer, ctx, limit)
                    result = Result(**{**r.__dict__, "problem": problem.id, "part": part.key})
                out.results.append(result)
                if on_result:
                    on_result(result)
            for convention, value in derivation.accepted if derivation else ():
                for check in part.checks:  # a value accepted under another convention is verified the same two ways
                    r = run_check(check, value, ctx, limit)
                    result = Result(**{**r.__dict__, "problem": problem.id, "part": part.key, "convention": convention})
                    out.results.append(result)
                    if on_result:
                        on_result(result)
    return out
