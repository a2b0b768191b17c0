"""Grading many answers: a pool of persistent forked workers under hard limits, each distinct answer graded once.

The parent derives the references the answers need (once, before forking, so every worker inherits them), then forks
``jobs`` workers. Each worker sets its memory cap and grades answers one at a time from its pipe. An answer that runs
past the time limit has its worker killed and replaced by a fresh fork; a worker that dies (the memory cap) is replaced
the same way; both answers are ``undecided`` with the reason. Answers that are the same after normalization (same
problem, part and spelling in the grammar's language) are graded once and the verdict is shared.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from verify.answers.grade import MEMORY_LIMIT, Answer, Verdict, raw_facts, reference_for
from verify.model import Kind, Part, Problem


def answer_key(answer: Answer) -> str:
    """What decides a verdict: the id, the part and the answer in the grammar's spelling (and the few facts about the
    raw text that grading reads: whether it was written with decimals, or as a product of two sizes)."""
    from verify.answers.normalize import MAX_CHARS, normalize
    from verify.answers.spoken import preread

    value = answer.value
    if isinstance(value, str) and len(value) <= MAX_CHARS:
        text = value
        shown: Any = [normalize(text), normalize(text, commas=True), raw_facts(text), normalize(preread(text))]
    else:
        shown = [type(value).__name__, repr(value)[:100_000]]
    return json.dumps([answer.id, answer.part, shown], ensure_ascii=False)


def _worker(conn: Any, problems: dict[str, Problem]) -> None:
    from verify.answers import grade as g

    try:  # a forked child must not enter the parent's OpenMP thread pool (it is not fork-safe)
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        index, answer = msg
        try:
            result = g.grade_one(problems.get(answer.id), answer)
        except BaseException as exc:  # grade_one never raises; a MemoryError or the like still leaves a verdict
            result = Verdict(
                answer.id, answer.part, "undecided", answer.given(), evidence=f"the grader failed: {type(exc).__name__}"
            )
        try:
            conn.send((index, result))
        except (OSError, ValueError):
            return


@dataclass
class _Slot:
    proc: Any
    conn: Any
    task: int | None = None
    deadline: float = 0.0


class Pool:
    """``jobs`` forked workers grading answers against ``problems`` (by id)."""

    def __init__(self, problems: dict[str, Problem], jobs: int, timeout: float) -> None:
        self.problems = problems
        self.jobs = max(1, jobs)
        self.timeout = timeout
        self.ctx = mp.get_context("fork")
        self.slots: list[_Slot] = []
        self.restarts = 0

    def _start(self) -> _Slot:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=_worker, args=(child, self.problems), daemon=True)
        proc.start()
        child.close()
        return _Slot(proc, parent)

    def _stop(self, slot: _Slot, kill: bool) -> None:
        try:
            if kill:
                slot.proc.kill()
            else:
                slot.conn.send(None)
        except (OSError, ValueError):
            pass
        slot.proc.join(timeout=None if kill else 5)
        if slot.proc.is_alive():
            slot.proc.kill()
            slot.proc.join()
        slot.conn.close()

    def run(self, tasks: Sequence[Answer], on_done: Callable[[int, Verdict], None]) -> None:
        """Grade every task; ``on_done(index, verdict)`` is called as each finishes."""
        from multiprocessing.connection import wait

        pending = list(range(len(tasks)))[::-1]
        self.slots = [self._start() for _ in range(min(self.jobs, len(tasks)))]
        try:
            while pending or any(s.task is not None for s in self.slots):
                for slot in self.slots:
                    if slot.task is None and pending:
                        slot.task = pending.pop()
                        slot.deadline = time.monotonic() + self.timeout
                        # a worker that is gone has its answer reported when its pipe reads as closed
                        with contextlib.suppress(OSError, ValueError):
                            slot.conn.send((slot.task, tasks[slot.task]))
                busy = [s for s in self.slots if s.task is not None]
                wait_for = max(0.0, min(s.deadline for s in busy) - time.monotonic())
                ready = wait([s.conn for s in busy], timeout=wait_for)
                now = time.monotonic()
                for i, slot in enumerate(self.slots):
                    if slot.task is None:
                        continue
                    task = tasks[slot.task]
                    if slot.conn in ready:
                        try:
                            index, verdict = slot.conn.recv()
                        except (EOFError, OSError):
                            self._replace(i, kill=True)
                            on_done(slot.task, _undecided(task, "the grading worker died (memory limit?)"))
                            continue
                        slot.task = None
                        on_done(index, verdict)
                    elif now >= slot.deadline:
                        self._replace(i, kill=True)
                        on_done(
                            slot.task,
                            _undecided(task, f"grading ran past its {self.timeout:g} s limit and was stopped"),
                        )
        finally:
            for slot in self.slots:
                self._stop(slot, kill=slot.task is not None)
            self.slots = []

    def _replace(self, i: int, kill: bool) -> None:
        self._stop(self.slots[i], kill)
        self.restarts += 1
        self.slots[i] = self._start()


def _undecided(answer: Answer, why: str) -> Verdict:
    return Verdict(answer.id, answer.part, "undecided", answer.given(), evidence=why)


def _parts(problems: dict[str, Problem], answer: Answer) -> list[Part]:
    problem = problems.get(answer.id)
    return [p for p in problem.parts if p.key == answer.part] if problem else []


def warm_torch_checks() -> None:
    """The first layer run on a meta tensor loads torch's compiler stack (seconds): do it before forking, settled
    (:func:`verify.runner.settled`) as the other warm-ups are."""
    import torch

    from verify.runner import settled

    with settled(), torch.no_grad():
        torch.relu(torch.zeros(1, device="meta"))


def grade_many(
    problems: dict[str, Problem],
    answers: Sequence[Answer],
    timeout: float,
    jobs: int = 2,
    on_done: Callable[[int], None] | None = None,
) -> list[Verdict]:
    """A verdict for every answer, in order. Distinct answers are graded once each in a pool of ``jobs`` workers;
    ``on_done(n)`` reports how many answers have their verdict."""
    from verify.runner import CheckTimeout

    groups: dict[str, list[int]] = {}
    for i, a in enumerate(answers):
        groups.setdefault(answer_key(a), []).append(i)
    firsts = [group[0] for group in groups.values()]
    for i in firsts:  # the references the answers need, derived once here and inherited by every worker
        problem = problems.get(answers[i].id)
        part = next((p for p in problem.parts if p.key == answers[i].part), None) if problem else None
        if problem is not None and part is not None:
            with contextlib.suppress(Exception, CheckTimeout):  # a worker meets the same failure and reports it
                reference_for(problem, part)
    kinds = {p.kind for i in firsts for p in _parts(problems, answers[i])}
    if kinds & {Kind.INT, Kind.SHAPE, Kind.MATRIX, Kind.NETWORK}:
        warm_torch_checks()  # these parts run real layers (on meta tensors too): loaded once, here, for every worker
    out: list[Verdict | None] = [None] * len(answers)
    unique = [answers[i] for i in firsts]
    members = list(groups.values())
    done = 0

    def finish(k: int, verdict: Verdict) -> None:
        nonlocal done
        for i in members[k]:
            out[i] = replace(verdict, given=answers[i].given(), id=answers[i].id, part=answers[i].part)
            done += 1
        if on_done is not None:
            on_done(done)

    Pool(problems, jobs, timeout).run(unique, finish)
    return [v if v is not None else _undecided(a, "not graded") for v, a in zip(out, answers, strict=True)]
