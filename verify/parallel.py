"""The bank's problems in worker processes: results merged in bank order, so the report is the serial run's.

A problem's steps (:func:`verify.runner.problem_events`) are run in two stages. The first worker is forked once numpy
and sympy are imported, before torch, and runs the symbolic stage of problem after problem (derivations, sympy checks,
the tasks such as grading the source write-ups) while this process imports torch; it is kept from importing torch, and
a step that reaches for it is left to the torch stage. The workers forked after torch is imported (so each does not
import it again; torch runs no operation before the fork, so no thread pool is inherited) run the torch stages with
the derivations the first one sent, or whole problems not yet begun. Each worker sends back what every step found;
figures are drawn in the worker into the report's folder, since their drawing functions cannot travel between
processes. A check that kills its worker, or hangs past its time limit where the limit's signal cannot reach it (in C
code), becomes an error result for that check: the worker is replaced and the problem goes on from the next step.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing as mp
import os
import pickle
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from verify import VerifyError
from verify.model import Context, Derivation, Figure, Problem, Result
from verify.runner import (
    DEFAULT_TIME_LIMIT,
    SYMBOLIC,
    TORCH,
    Event,
    RunOutput,
    Tasks,
    one_line,
    problem_events,
    settled,
    without,
)

# How long past its time limit a step may go silent before its worker is stopped (the limit's own signal comes first).
GRACE = 5.0
# What a run with workers keeps for the next, beside the cached listing: each problem stage's seconds, and the steps
# the symbolic stage had to leave to a worker with torch.
DURATIONS = "durations.json"
MOVED = "moved.json"
WHOLE = "whole"
# Runs a remembered move is followed without being seen again before it is forgotten (and tried once more where it
# was): a problem changed under the same id and part and check names does not keep an old move for ever.
FORGET_AFTER = 10
# Symbolic stages the first worker is sent beyond the one it runs.
AHEAD = 3


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    return "fork" in mp.get_all_start_methods()


# What every worker needs: imported before the first worker is forked (it runs without torch), and what the workers
# forked after need, imported while the first one works. torch's compiler front end (torch._dynamo) is imported by
# torch on the first optimizer, dispatch mode (the flop counter) or convolution under one: most of a second, which the
# bank's optimizer and counting checks always reach.
SHARED = ("numpy", "sympy")
WITH_TORCH = ("torch", "torch._dynamo")
# What the first worker never imports (a step that tries is left to a worker with torch).
EARLY_WITHOUT = ("torch",)


def warm_up(names: Sequence[str] = (*SHARED, *WITH_TORCH)) -> None:
    """Import ``names`` here, once, before workers are forked (each would otherwise import them again), settled
    (:func:`settled`, which saves a quarter of the CPU time of importing torch and its compiler front end)."""
    import importlib

    with settled():
        for name in names:
            importlib.import_module(name)


def _drawn_in_worker(path: str) -> None:
    raise VerifyError("this figure was drawn by a worker process; its file should already be there")


def _portable_figures(figures: tuple[Figure, ...], folder: Path | None) -> tuple[Figure, ...]:
    """Figures whose files are drawn here (into ``folder``) and that can be sent to another process."""
    if not figures:
        return figures
    if folder is not None:
        from verify.report.plots import ensure

        for fig in figures:
            ensure(fig, folder)
    return tuple(replace(fig, draw=_drawn_in_worker) for fig in figures)


def _portable(event: Event, folder: Path | None) -> Event:
    if event[0] == "derived":
        d: Derivation = event[2]
        return ("derived", event[1], replace(d, figures=_portable_figures(d.figures, folder)))
    if event[0] == "result":
        result, other = event[1], event[2]
        result = replace(result, figures=_portable_figures(result.figures, folder))
        other = None if other is None else replace(other, figures=_portable_figures(other.figures, folder))
        return ("result", result, other)
    return event


def _send(conn: Connection, message: tuple[Any, ...], fallback: Event | None = None) -> None:
    try:
        data = pickle.dumps(message)
    except Exception as exc:  # a value that cannot leave the worker becomes an error for its step
        if fallback is None:
            raise
        why = f"what it found could not be sent back from its worker: {type(exc).__name__}: {str(exc)[:200]}"
        data = pickle.dumps((*message[:3], fallback_with(fallback, why)))
    conn.send_bytes(data)


def fallback_with(event: Event, why: str) -> Event:
    """A step's stand-in event (see ``on_start`` of :func:`problem_events`) with the cause filled in."""
    if event[0] == "derive_failed":
        return ("derive_failed", event[1], why)
    if event[0] == "task":
        return ("task", event[1], replace(event[2], evidence=why))
    return ("result", replace(event[1], evidence=why), None)


@dataclass(frozen=True)
class _Setting:
    """What every worker of a run is given when it is forked."""

    problems: Sequence[Problem]
    ctx: Context
    limit: float | None
    compare_on: str | None
    folder: Path | None  # where the report's figures go
    tasks: Tasks | None


def _worker(conn: Connection, spare: Sequence[Connection], setting: _Setting, early: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the workers
    # The parent's ends of the pipes, inherited in the fork: closed, so that this worker reads the end of its pipe (and
    # ends) as soon as the parent is gone, however it went, never waiting for a job forever.
    for other in spare:
        other.close()
    # sympy makes and drops many small objects: collect cycles less often (what was imported is frozen, never scanned)
    gc.set_threshold(10_000, 20, 20)
    if early:
        without(EARLY_WITHOUT)
    with contextlib.suppress(EOFError, BrokenPipeError, ConnectionResetError):  # the parent is gone: nobody to tell
        _serve(conn, setting)


def _serve(conn: Connection, run: _Setting) -> None:
    while True:
        job = conn.recv()
        if job is None:
            return
        index, stage, skip, failed, made, leave = job
        stand_in: dict[int, Event | None] = {}

        def started(step: int, event: Event | None, index: int = index, stand_in: dict = stand_in) -> None:
            stand_in[step] = event
            _send(conn, ("start", index, step, event))

        try:
            for step, event in problem_events(
                run.problems[index],
                run.ctx,
                run.limit,
                run.compare_on,
                skip,
                failed,
                started,
                run.tasks,
                stage,
                made,
                leave,
            ):
                _send(conn, ("event", index, step, _portable(event, run.folder)), stand_in.pop(step, None) or event)
        except Exception as exc:  # a fault outside any check: the parent records it for the step and goes on
            _send(conn, ("failed", index, one_line(exc)))
            return
        _send(conn, ("done", index))


@dataclass
class _Slot:
    """One worker process and what it is doing."""

    process: Any
    conn: Connection
    early: bool = False  # forked before torch was imported, and kept from importing it: it takes symbolic stages only
    index: int | None = None  # the problem it runs
    stage: str | None = None  # which of its steps (None: all)
    origin: str = ""  # the file of the problem it last ran
    step: int | None = None  # the step it runs, with the event that stands for it if the worker dies under it
    stand_in: Event | None = None
    since: float = 0.0  # when it last reported
    ahead: list[int] = field(default_factory=list)  # symbolic stages sent to the first worker, not begun yet


@dataclass
class _State:
    events: dict[int, list[tuple[int, Event]]] = field(default_factory=dict)
    skip: dict[int, set[int]] = field(default_factory=dict)
    failed: dict[int, set[str]] = field(default_factory=dict)
    made: dict[int, dict[str, Derivation]] = field(default_factory=dict)


class _Drain:
    """Handles a worker's messages on a thread while this process's own thread is busy (importing torch), so that the
    worker never waits on a full pipe nor for its next problem. Nothing else touches the run's state meanwhile."""

    def __init__(self, slot: Any, handle: Callable[[Any, tuple[Any, ...]], None]) -> None:
        import threading

        self.slot, self.handle, self.done = slot, handle, threading.Event()
        self.left: list[tuple[Any, ...]] = []  # a message to be handled by the run's thread (one that may fork)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with contextlib.suppress(EOFError, OSError):  # the worker died: the run's loop finds out after
            while not self.done.is_set() and self.slot.index is not None:
                if self.slot.conn.poll(0.02):
                    message = pickle.loads(self.slot.conn.recv_bytes())
                    if message[0] == "failed":
                        self.left.append(message)
                        return
                    self.handle(self.slot, message)

    def stop(self) -> list[tuple[Any, ...]]:
        self.done.set()
        self.thread.join()
        return self.left


def run_parallel(
    problems: Sequence[Problem],
    ctx: Context | None = None,
    limit: float | None = DEFAULT_TIME_LIMIT,
    jobs: int = 2,
    on_result: Callable[[Result], None] | None = None,
    compare_on: str | None = None,
    figures: Path | None = None,
    tasks: Tasks | None = None,
    prepare: Callable[[], None] | None = None,
) -> RunOutput:
    """Run ``problems`` in ``jobs`` forked workers; the output is what :func:`verify.runner.run` gives, in its order.

    The first worker is forked before torch is imported here and runs the symbolic stage of the problems (derivations,
    sympy checks and tasks, :data:`verify.runner.SYMBOLIC`) while this process imports torch; the others, forked after,
    run each problem's torch stage with those derivations (its torch checks, and any step the symbolic stage left
    because it reached for torch), or a whole problem no stage of which has begun. When no symbolic stage is left, the
    first worker is replaced by one forked with torch.

    ``figures``: the folder the report's figures go to (drawn by the workers); None when no report is written.
    ``tasks``: what to do after each problem's checks with its derivations (:class:`verify.runner.Task`).
    ``prepare``: what this process makes for the workers forked with torch, while the first worker begins (such as the
    tasks' grammar), once instead of in each.
    """
    ctx = ctx or Context()
    if not can_fork():  # pragma: no cover - every POSIX system forks
        raise VerifyError("--jobs above 1 needs a system that can fork processes; use --jobs 1")
    mpctx = mp.get_context("fork")
    setting = _Setting(problems, ctx, limit, compare_on, figures, tasks)
    state = _State()
    took = _durations()
    last = _moved()
    shapes = [_shape(p) for p in problems]
    hint = {i: last.get(shape, (None, 0))[0] for i, shape in enumerate(shapes)}
    seen: set[int] = set()  # the problems whose steps reached for torch in this run's symbolic stage
    # what the symbolic stage leaves to the torch stage, by problem: steps, or WHOLE (its derivation reached for torch,
    # last run or this one: a worker with torch runs it whole); kept for the next run
    moved: dict[int, Any] = {}
    symbolic: set[int] = set()  # the problems whose symbolic stage was run
    for i, h in hint.items():
        if h == WHOLE:  # its derivation reached for torch: a worker with torch runs it whole
            moved[i] = WHOLE

    def cost(index: int, stage: str | None) -> float:  # by the last run's times; new ones count as long
        return took.get(_name(problems[index].id, stage), float("inf"))

    # The problems no stage of which has begun: the first worker takes them from the front for their symbolic stage
    # (but those whose derivation reached for torch last time), the others from the back whole. In the order of their
    # files' torch work, most first (ready when the torch workers start), a file's problems together (they share what
    # their file's functions remember, so that each file is mostly worked on by one process), the file's most torch
    # work first. And those whose torch stage is ready,
    # longest first (no worker is left with a long one at the end). The order of the output depends on neither.
    by_file: dict[str, float] = {}
    for i, p in enumerate(problems):
        by_file[p.origin] = by_file.get(p.origin, 0.0) + min(cost(i, TORCH), 1e6)
    fresh = sorted(
        range(len(problems)), key=lambda i: (-by_file[problems[i].origin], problems[i].origin, -cost(i, TORCH))
    )
    ready: list[int] = []
    resume: list[tuple[int, str | None]] = []  # picked up again after their worker died, before anything else
    began: dict[tuple[int, str | None], float] = {}
    slots: list[_Slot] = []

    def start_worker(early: bool = False) -> _Slot:
        parent, child = mpctx.Pipe()
        spare = (parent, *(s.conn for s in slots))
        proc = mpctx.Process(target=_worker, args=(child, spare, setting, early), daemon=True)
        proc.start()
        child.close()
        return _Slot(proc, parent, early)

    def work() -> bool:  # a job that no worker holds
        return bool(fresh or ready or resume)

    def next_job(slot: _Slot) -> tuple[int, str | None] | None:
        if slot.early:
            found = next((i for i in fresh if moved.get(i) != WHOLE), None)
            if found is not None:
                fresh.remove(found)
                return found, SYMBOLIC
            return None
        if resume:
            return resume.pop(0)
        if fresh:  # a whole problem, from the end (the least torch work), while the first worker takes the front
            return fresh.pop(), None
        if ready:  # the longest, of the file it last worked on if any (what that file's functions remember is here)
            ready.sort(key=lambda i: (problems[i].origin != slot.origin, -cost(i, TORCH)))
            return ready.pop(0), TORCH
        return None

    def assign(slot: _Slot) -> None:
        if slot.ahead:  # the first worker goes on with the next one it was sent
            begin(slot, slot.ahead.pop(0), SYMBOLIC)
        else:
            found = next_job(slot)
            if found is None:
                slot.index, slot.stage = None, None
                if slot.early and not draining:  # no symbolic stage left: a worker with torch takes its place (below)
                    retire(slot)
                return
            begin(slot, *found)
            if not send(slot, *found):
                return
        # While torch is imported, the first worker is sent its next ones ahead: it must not wait for this process,
        # whose thread that handles its messages cannot run while the import holds the interpreter (loading libraries).
        while slot.early and draining and len(slot.ahead) < AHEAD:
            found = next_job(slot)
            if found is None:
                break
            slot.ahead.append(found[0])
            if not send(slot, *found):
                return

    def begin(slot: _Slot, index: int, stage: str | None) -> None:
        slot.origin = problems[index].origin
        began.setdefault((index, stage), time.monotonic())
        slot.index, slot.stage, slot.step, slot.stand_in, slot.since = index, stage, None, None, time.monotonic()

    def send(slot: _Slot, index: int, stage: str | None) -> bool:
        """Send the worker a job; False if it is gone (the run's loop then finds it dead, and what it held resumes)."""
        state.events.setdefault(index, [])
        made = state.made.get(index, {}) if stage == TORCH else None
        skip, failed = frozenset(state.skip.get(index, ())), frozenset(state.failed.get(index, ()))
        leave: frozenset[int] = frozenset()
        if stage == SYMBOLIC:
            symbolic.add(index)  # what reached for torch in the last run is left to the torch stage at once
            leave = frozenset(hint[index]) if isinstance(hint[index], list) else frozenset()
            if leave:
                moved.setdefault(index, set()).update(leave)
        try:
            slot.conn.send((index, stage, skip, failed, made, leave))
        except OSError:
            return False
        return True

    def retire(slot: _Slot) -> None:
        with contextlib.suppress(OSError):
            slot.conn.send(None)
        slot.process.join(2)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()
        slot.conn.close()
        slots.remove(slot)

    def record(index: int, step: int, event: Event) -> None:
        if event[0] == "defer":  # its symbolic stage reached for torch: the rest is run whole, with torch
            moved[index] = WHOLE
            seen.add(index)
            return
        state.events[index].append((step, event))
        state.skip.setdefault(index, set()).add(step)
        if event[0] == "derive_failed":
            state.failed.setdefault(index, set()).add(event[1])
        elif event[0] == "derived":
            state.made.setdefault(index, {})[event[1]] = event[2]
        if on_result and event[0] == "result":
            on_result(event[1])

    def lost(slot: _Slot, why: str) -> None:
        """The worker died or hung: its step becomes an error, the problem goes on in a new worker (with torch)."""
        index = slot.index
        assert index is not None
        if slot.stand_in is not None and slot.step is not None:
            record(index, slot.step, fallback_with(slot.stand_in, why))
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join()
        slot.conn.close()
        slots.remove(slot)
        # resumes after the steps already accounted for, in a new worker (below); a symbolic stage as the whole problem
        resume.insert(0, (index, TORCH if slot.stage == TORCH else None))
        fresh.extend(slot.ahead)  # sent ahead, not begun: next for the workers with torch, which take from the end

    def handle(slot: _Slot, message: tuple[Any, ...]) -> None:
        slot.since = time.monotonic()
        if message[0] == "start":
            slot.step, slot.stand_in = message[2], message[3]
            if message[3] is None and moved.get(message[1]) != WHOLE:  # left to the torch stage
                moved.setdefault(message[1], set()).add(message[2])
                seen.add(message[1])
        elif message[0] == "event":
            slot.step, slot.stand_in = None, None
            record(message[1], message[2], message[3])
        elif message[0] == "failed":
            lost(slot, f"its worker failed: {message[2]}")
        elif message[0] == "done":
            index, stage = message[1], slot.stage
            took[_name(problems[index].id, stage)] = time.monotonic() - began[(index, stage)]
            if stage == SYMBOLIC and moved.get(index) == WHOLE:  # it deferred (the first worker skips WHOLE ones)
                resume.append((index, None))
            elif stage == SYMBOLIC:
                ready.append(index)
            assign(slot)

    draining = False
    # a step is silent for at most its time limit (twice with a comparison device: the check runs on both)
    hard = None if limit is None else limit * (2 if compare_on else 1) + GRACE

    try:
        warm_up(SHARED)
        early = start_worker(early=True)
        slots.append(early)
        assign(early)
        draining = True  # while the thread handles the first worker's messages, nothing forks
        drain = _Drain(early, handle)
        try:
            with settled():
                warm_up(WITH_TORCH)
                if prepare is not None:
                    prepare()
        finally:
            left = drain.stop()
            draining = False
        for message in left:
            handle(early, message)
        if early in slots and early.index is None:  # it ran out of work during the import
            retire(early)
        workers = max(1, min(jobs, len(problems)))
        while True:
            for slot in [s for s in slots if s.index is None and not s.early]:
                if work():  # an idle worker takes what has become ready
                    assign(slot)
            while work() and len(slots) < workers:  # at the start, and in place of one retired or lost
                slot = start_worker()
                slots.append(slot)
                assign(slot)
            busy = [s for s in slots if s.index is not None]
            if not busy:
                break
            now = time.monotonic()
            timeout = None if hard is None else max(0.05, min(s.since + hard - now for s in busy))
            ready_conns = wait([s.conn for s in busy] + [s.process.sentinel for s in busy], timeout)
            for slot in busy:
                if slot not in slots:  # replaced while an earlier one was handled
                    continue
                if slot.conn in ready_conns:
                    try:
                        message = pickle.loads(slot.conn.recv_bytes())
                    except (EOFError, OSError):
                        code = slot.process.exitcode
                        slot.process.join(1)
                        code = slot.process.exitcode if code is None else code
                        lost(slot, f"its worker process died ({_exit_text(code)}) while this ran")
                        continue
                    handle(slot, message)
                elif slot.process.sentinel in ready_conns:
                    slot.process.join(1)
                    lost(slot, f"its worker process died ({_exit_text(slot.process.exitcode)}) while this ran")
                elif hard is not None and time.monotonic() - slot.since > hard:
                    lost(
                        slot,
                        f"ran past its time limit of {limit:g} s where its signal could not stop it; its worker was stopped",
                    )
    finally:
        for slot in slots:
            with contextlib.suppress(OSError):
                slot.conn.send(None)
        for slot in slots:
            slot.process.join(2)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()
    _keep(DURATIONS, took)
    _keep(MOVED, _moved_next(problems, shapes, last, moved, seen, symbolic))
    out = RunOutput()
    for index, problem in enumerate(problems):
        for _, event in sorted(state.events.get(index, ()), key=lambda e: e[0]):
            out.add(problem.id, event)
    return out


def _name(problem_id: str, stage: str | None) -> str:
    """What the durations file calls a problem's stage (the whole problem: its id)."""
    return problem_id if stage is None else f"{problem_id} ({stage})"


def _recall(name: str) -> Any:
    """What the last run with workers kept under ``name`` beside the cached listing (JSON), or None."""
    from verify.index import cache_folder

    try:
        return json.loads((cache_folder() / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _keep(name: str, value: Any) -> None:
    from verify.index import cache_folder
    from verify.report.markdown import write_atomic

    with contextlib.suppress(OSError):
        write_atomic(cache_folder() / name, json.dumps(value, sort_keys=True))


def _durations() -> dict[str, float]:
    """Seconds each problem took in the last run with workers, for scheduling."""
    try:
        return {str(k): float(v) for k, v in _recall(DURATIONS).items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def _shape(problem: Problem) -> str:
    """A problem's id with a digest of its file, parts and checks: a remembered move is followed only while these are
    the same (the step numbers depend on them, and on the values each derivation accepts and the write-up answers;
    a move that no longer fits only makes a step run in another process, never changes what it gives)."""
    import hashlib

    parts = [(problem.origin, part.key, part.kind, [check.name for check in part.checks]) for part in problem.parts]
    return f"{problem.id} {hashlib.sha256(repr(parts).encode()).hexdigest()[:12]}"


def _moved() -> dict[str, tuple[Any, int]]:
    """The steps of each problem that the symbolic stage left to the torch stage in earlier runs (``"whole"``: its
    derivation reached for torch), keyed by :func:`_shape`, with the number of runs since they were last seen to: the
    next run leaves them there at once."""
    found = _recall(MOVED)
    if not isinstance(found, dict):
        return {}
    out: dict[str, tuple[Any, int]] = {}
    for key, v in found.items():
        what, runs = (v.get("moved"), v.get("runs")) if isinstance(v, dict) else (None, None)
        steps = isinstance(what, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in what)
        if (what == WHOLE or steps) and isinstance(runs, int) and not isinstance(runs, bool):
            out[str(key)] = (what, runs)
    return out


def _moved_next(
    problems: Sequence[Problem],
    shapes_of: Sequence[str],
    last: dict[str, tuple[Any, int]],
    moved: dict[int, Any],
    seen: set[int],
    symbolic: set[int],
) -> dict[str, Any]:
    """What the next run is to remember of :func:`_moved`: this run's moves for the problems whose symbolic stage ran
    or that were run whole for one (counted from 0 where seen in this run, else one run older, and forgotten after
    :data:`FORGET_AFTER`); the last run's for the others, at most 1,000 problems' worth."""
    shapes = {shape: i for i, shape in enumerate(shapes_of)}  # each problem's _shape
    ids = {p.id for p in problems}
    kept = {k: v for k, v in last.items() if k in shapes or k.rpartition(" ")[0] not in ids}
    if len(kept) > 1000:
        kept = {k: v for k, v in kept.items() if k in shapes}
    for key, i in shapes.items():
        if i in moved:
            runs = 0 if i in seen else last.get(key, (None, 0))[1] + 1
            kept[key] = (WHOLE if moved[i] == WHOLE else sorted(moved[i]), runs)
            if runs > FORGET_AFTER:
                del kept[key]
        elif i in symbolic:
            kept.pop(key, None)
    return {k: {"moved": what, "runs": runs} for k, (what, runs) in kept.items()}


def _exit_text(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
