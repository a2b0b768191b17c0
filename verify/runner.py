"""Runs the bank's checks: seeded, float64, each check isolated and time-limited, results in a stable order.

A check that raises becomes an ``error`` result with a one-line cause; a check that runs past its time limit becomes an
``error`` saying so; either way the run goes on. A derivation that fails turns every check of its part into an error.

A problem runs as a sequence of numbered steps (each part's derivation, then its checks on the reference answer, then on
each value accepted under another convention, then any :class:`Task` to be done with its derivations, such as grading
the source write-ups' answers to it); :func:`problem_events` yields what each step found. The serial
:func:`run` and the worker processes of :mod:`verify.parallel` both apply those events to a :class:`RunOutput` in this
order, which is why a parallel run's report is the serial one's, byte for byte.

torch's thread pools: the bank's tensors are tiny, so torch checks run with one intra-op thread (a check that gains from
more declares it with ``Check.threads``) and the inter-op pool is kept to one thread; on a busy machine that costs wall
time instead of threads spinning against whatever else runs.
"""

from __future__ import annotations

import contextlib
import gc
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from verify.model import Check, Context, Derivation, Method, Outcome, Part, Problem, Result, Skip, Status

DEFAULT_TIME_LIMIT = 60.0


class CheckTimeout(Exception):
    pass


# What a step found: ("derived", part key, Derivation), ("derive_failed", part key, cause),
# ("result", Result, the same check's Result on the comparison device or None) or ("task", Task key, its value).
Event = tuple[Any, ...]


@dataclass(frozen=True)
class Task:
    """Work done with a problem's derivations after its checks, as a step of its own (a process that dies under it
    costs that task only). ``stand_in``: its value should it not end, a dataclass whose ``evidence`` is then filled
    with the reason; it must be picklable, as the value ``run`` returns."""

    key: Any  # where its value goes in RunOutput.tasks
    run: Callable[[], Any]
    stand_in: Any


# What tasks a problem has, given its derivations by part key (those that were made).
Tasks = Callable[[Problem, Mapping[str, Derivation]], Sequence[Task]]


@dataclass
class RunOutput:
    results: list[Result] = field(default_factory=list)
    derivations: dict[tuple[str, str], Derivation] = field(default_factory=dict)
    derivation_errors: dict[tuple[str, str], str] = field(default_factory=dict)
    # (result on the run's device, result of the same check on the comparison device), for checks that follow --device
    parity: list[tuple[Result, Result]] = field(default_factory=list)
    # what each Task gave, by its key
    tasks: dict[Any, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for r in self.results:
            out[r.status.value] += 1
        return out

    @property
    def ok(self) -> bool:
        """Every check passed or skipped (on the comparison device too), and every derivation was made."""
        checked = [*self.results, *(other for _, other in self.parity)]
        return not self.derivation_errors and all(r.status in (Status.PASS, Status.SKIP) for r in checked)

    def add(self, problem_id: str, event: Event) -> None:
        """Record one step's event (see :func:`problem_events`)."""
        kind = event[0]
        if kind == "derived":
            self.derivations[(problem_id, event[1])] = event[2]
        elif kind == "derive_failed":
            self.derivation_errors[(problem_id, event[1])] = event[2]
        elif kind == "task":
            self.tasks[event[1]] = event[2]
        else:
            self.results.append(event[1])
            if event[2] is not None:
                self.parity.append((event[1], event[2]))


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise CheckTimeout in the running check after ``seconds`` (main thread, POSIX); a no-op elsewhere.

    Limits nest: inside an enclosing limit that ends sooner this one leaves it to fire, and on leaving it restores
    what is left of the enclosing one (a grader's limit around the checks it runs keeps counting)."""
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    outer = signal.getitimer(signal.ITIMER_REAL)[0] if usable else 0.0  # what is left of an enclosing limit
    if not usable or 0 < outer <= float(seconds):  # type: ignore[arg-type]
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise CheckTimeout(f"check ran past its time limit of {seconds:g} s")

    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:  # the enclosing limit goes on with what is left of it (fires at once if nothing is)
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-6))


@contextlib.contextmanager
def settled() -> Iterator[None]:
    """Work that makes many lasting objects and little garbage (imports, a grammar built once), done once: before
    workers are forked, or on torch's first import in a process. The cyclic garbage collector is paused inside, and
    every object made so far frozen at the end, before it runs again: its collections would each scan every object
    made so far (after torch is imported, a grammar that takes 0.05 s took 0.25 s), the first after the pause all that
    the pause let pass; frozen, they are never scanned again, here or in the workers forked after (whose memory pages
    they share). A process-wide effect, as torch's default dtype is: cyclic garbage among the frozen objects is not
    freed."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()  # only work that ended: a refused import (a worker kept from torch) leaves its garbage collectable
    finally:
        if was_enabled:
            gc.enable()


_torch_default_threads: int | None = None


def _torch() -> Any:
    """torch, imported here the first time the runner needs it (settled), with its inter-op pool kept to one thread."""
    global _torch_default_threads
    if "torch" not in sys.modules:
        with settled():
            import torch
    import torch

    if _torch_default_threads is None:
        _torch_default_threads = torch.get_num_threads()
        with contextlib.suppress(RuntimeError):  # refused once inter-op work has started; then it stays as it is
            torch.set_num_interop_threads(1)
    return torch


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` (0: torch's default for this machine) inside, restored after.

    A no-op while torch is not imported: a check that imports it on its own is a symbolic one doing light work.
    """
    if "torch" not in sys.modules:
        yield
        return
    torch = _torch()
    previous = torch.get_num_threads()
    wanted = n if n > 0 else (_torch_default_threads or previous)
    if wanted != previous:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def seed_everything(seed: int, with_torch: bool, device: str = "cpu") -> None:
    """Python's, numpy's and (``with_torch``) torch's generators seeded: the CPU one, and CUDA's where the check runs
    there. Not ``torch.manual_seed``: it also queues a seeding of every device not yet started (CUDA, XPU, MTIA) with
    the caller's formatted stack, 0.3 ms a check."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if with_torch:
        torch = _torch()
        torch.default_generator.manual_seed(seed)
        if device == "cuda":
            torch.cuda.manual_seed_all(seed)
        torch.set_default_dtype(torch.float64)


def cuda_available() -> bool:
    return bool(_torch().cuda.is_available())


def run_check(check: Check, claim: Any, ctx: Context, limit: float | None = DEFAULT_TIME_LIMIT) -> Result:
    """Run one check on one claim and return its Result (never raises for the check's own failures)."""
    start = time.perf_counter()
    device = ctx.device if check.uses_device else ("cpu" if check.method is Method.TORCH else "-")
    status, outcome = Status.ERROR, None
    try:
        if check.uses_device and ctx.device == "cuda" and not cuda_available():
            raise Skip("no CUDA device here")
        seed_everything(ctx.seed, with_torch=check.method is Method.TORCH, device=device)
        with time_limit(limit), torch_threads(check.threads):
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
        value=outcome.value,
    )


def derive(part: Part, limit: float | None = DEFAULT_TIME_LIMIT) -> Derivation:
    """The part's derivation, with its answer in LaTeX (written here, by the process that derived it, once for the
    report, the grader and `verify show`)."""
    with time_limit(limit), torch_threads(1):
        derivation = part.derive()
        if not derivation.latex:
            from verify.symbolic import latex

            with contextlib.suppress(Exception):  # an answer LaTeX cannot show is still an answer
                derivation = replace(derivation, latex=latex(derivation.answer))
        return derivation


def not_run(
    problem_id: str, part_key: str, check: Check, why: str, convention: str = "", what: str = "not run"
) -> Result:
    """The error result of a check that could not run (its derivation failed, or its worker died under it)."""
    return Result(
        problem_id, part_key, check.name, check.method, Status.ERROR, what, why, None, None, "-", 0.0, (), convention
    )


# The stages a problem's steps can be run in, by separate processes (:mod:`verify.parallel`): SYMBOLIC, in a process
# without torch, its derivations, the checks that are not torch's, every check of a part whose derivation failed and the
# tasks, each but those that reach for torch (:class:`NeedsTorch`); TORCH, given those derivations, every step left.
SYMBOLIC = "symbolic"
TORCH = "torch"


class NeedsTorch(BaseException):
    """Raised in a process that runs without torch (:func:`without`) where a step imports it: the step is left to a
    process with torch. A BaseException, so that no handler of a check's or grader's own failures takes it."""


class _Without:
    """An import finder that refuses the named top-level packages with :class:`NeedsTorch`."""

    def __init__(self, names: Collection[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in self.names:
            raise NeedsTorch(f"{name} is not imported in this process")
        return None


def without(names: Collection[str] = ("torch",)) -> None:
    """From now on this process imports none of ``names`` (if not imported already): a step that tries raises
    :class:`NeedsTorch` (the symbolic stage's worker, which must not spend a second importing torch)."""
    missing = [n for n in names if n not in sys.modules]
    if missing:
        sys.meta_path.insert(0, _Without(missing))


def problem_events(
    problem: Problem,
    ctx: Context,
    limit: float | None = DEFAULT_TIME_LIMIT,
    compare_on: str | None = None,
    skip: Collection[int] = (),
    failed: Collection[str] = (),
    on_start: Callable[[int, Event | None], None] | None = None,
    tasks: Tasks | None = None,
    stage: str | None = None,
    given: Mapping[str, Derivation] | None = None,
    leave: Collection[int] = (),
) -> Iterator[tuple[int, Event]]:
    """Run one problem step by step and yield (step, what it found), in the bank's order.

    ``compare_on``: a second device on which every check that follows --device runs again, for the parity table.
    ``skip``: steps already accounted for (a worker picking up after one that died); their events are not yielded.
    ``failed``: parts whose derivation is known to have failed. ``on_start(step, fallback)`` is told of each step before
    it runs, with the event that stands for it should the process die under it (its evidence left empty), and again
    with None if the step is left to another stage.
    ``tasks``: the work to do after the checks with the derivations made (:class:`Task`), each a step.
    ``stage``: only the steps of :data:`SYMBOLIC` or of :data:`TORCH` (None: all); the torch stage takes the
    derivations ``given`` by part key (a part not there failed) instead of deriving, and runs every step not in
    ``skip``. The step numbers are the same in every stage. A derivation that reaches for torch in the symbolic stage
    ends it with the event ("defer",): the problem is to be run whole by a process with torch. ``leave``: check and task
    steps the symbolic stage leaves to the torch stage without trying them (they reached for torch in an earlier run).
    """
    step = -1
    made: dict[str, Derivation] = {}
    symbolic = stage == SYMBOLIC
    for part in problem.parts:
        key = part.key
        step += 1
        derivation: Derivation | None = None
        cause = ""  # why the derivation failed, where it did
        if stage == TORCH:
            derivation = (given or {}).get(key)
        elif key not in failed:  # derived again after a restart too: the step numbers after it depend on its values
            if on_start and step not in skip:
                on_start(step, ("derive_failed", key, ""))
            try:
                seed_everything(ctx.seed, with_torch=False)
                derivation = derive(part, limit)
            except NeedsTorch:
                yield step, ("defer",)
                return
            except (Exception, CheckTimeout) as exc:
                cause = one_line(exc)
            if step not in skip:
                yield step, ("derived", key, derivation) if derivation is not None else ("derive_failed", key, cause)
        if derivation is not None:
            made[key] = derivation
        error = f"the derivation failed: {cause}" if cause else "the derivation failed"
        claims = [("", derivation.answer), *derivation.accepted] if derivation is not None else [("", None)]
        for convention, claim in claims:
            for check in part.checks:
                step += 1
                if step in skip or (
                    symbolic and derivation is not None and (check.method is Method.TORCH or step in leave)
                ):
                    continue
                if derivation is None:
                    yield step, ("result", not_run(problem.id, key, check, error, convention), None)
                    continue
                if on_start:
                    on_start(
                        step, ("result", not_run(problem.id, key, check, "", convention, "the check crashed"), None)
                    )
                try:
                    result = replace(
                        run_check(check, claim, ctx, limit), problem=problem.id, part=key, convention=convention
                    )
                    other = None
                    if compare_on is not None and check.uses_device:
                        again = run_check(check, claim, replace(ctx, device=compare_on), limit)
                        other = replace(again, problem=problem.id, part=key, convention=convention)
                except NeedsTorch:
                    if on_start:
                        on_start(step, None)  # nothing stands for it: it is not over, only moved
                    continue  # left to the torch stage
                yield step, ("result", result, other)
    for task in tasks(problem, made) if tasks is not None else ():
        step += 1
        if step in skip or (symbolic and step in leave):
            continue
        if on_start:
            on_start(step, ("task", task.key, task.stand_in))
        try:
            value = run_task(task)
        except NeedsTorch:
            if on_start:
                on_start(step, None)
            continue  # left to the torch stage
        yield step, ("task", task.key, value)


def run_task(task: Task) -> Any:
    """The task's value; its stand-in, with the cause, if it raises."""
    try:
        return task.run()
    except Exception as exc:
        return replace(task.stand_in, evidence=f"it failed: {one_line(exc)}")


def run(
    problems: Sequence[Problem],
    ctx: Context | None = None,
    limit: float | None = DEFAULT_TIME_LIMIT,
    on_result: Callable[[Result], None] | None = None,
    compare_on: str | None = None,
    tasks: Tasks | None = None,
) -> RunOutput:
    """Derive every part and run every check in this process; results come in bank order (problem, part, check).
    ``tasks``: what to do after each problem's checks with its derivations (:class:`Task`)."""
    ctx = ctx or Context()
    out = RunOutput()
    for problem in problems:
        for _, event in problem_events(problem, ctx, limit, compare_on, tasks=tasks):
            out.add(problem.id, event)
            if on_result and event[0] == "result":
                on_result(event[1])
    return out
