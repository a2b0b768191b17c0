"""Which convention each value of an open-convention part was confirmed under, read from a run's results.

A part whose question leaves a convention open gives its reference under one named convention and lists the values of
the others (``Derivation.accepted``). Its checks (built with ``checks.under_conventions``) compute each convention's
value by their own route and name the convention a claim matched. A value is *confirmed as its convention's value* only
when every check passed it and named that same convention: a reference that equals another convention's value (a count
of 2·MACs under a note that says exact operations) passes every check but is not confirmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from verify.model import Problem, Status
from verify.runner import RunOutput


@dataclass(frozen=True)
class Confirmation:
    problem: str
    part: str
    convention: str  # the convention the value is said to be under
    reference: bool  # the part's reference (else an accepted value)
    confirmed: bool
    detail: str  # the checks that confirmed it, or what each named instead


def conventions(problems: Sequence[Problem], out: RunOutput) -> list[Confirmation]:
    """One row per value (reference and accepted) of every part that accepts more than one convention."""
    rows: list[Confirmation] = []
    for problem in problems:
        for part in problem.parts:
            derivation = out.derivations.get((problem.id, part.key))
            if derivation is None or not derivation.accepted:
                continue
            named = [(derivation.convention, "", True)] + [(c, c, False) for c, _ in derivation.accepted]
            for name, label, is_ref in named:
                results = [r for r in out.results if (r.problem, r.part, r.convention) == (problem.id, part.key, label)]
                wrong = [
                    r for r in results if r.status is not Status.PASS or not r.evidence.startswith(f"under '{name}':")
                ]
                ok = bool(name) and bool(results) and not wrong
                if not name:
                    detail = "the reference's convention is not named"
                elif ok:
                    detail = "confirmed by " + ", ".join(r.check for r in results)
                else:
                    detail = "; ".join(f"{r.check}: {r.status} {r.evidence[:120]}" for r in wrong) or "no check ran"
                rows.append(Confirmation(problem.id, part.key, name, is_ref, ok, detail))
    return rows
