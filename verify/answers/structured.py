"""Structured answers to questions that are mostly explained in words: intervals and named factors.

An interval is written with brackets, ``(-1, 1)``, ``[0, 1)``, ``(-\\infty, 0]``; each endpoint is read by the safe
answer parser (:func:`verify.answers.parse.parse_math`), never evaluated. Factors are names, as a list or separated by
commas; each is mapped to a canonical name by keywords (``filter size`` is ``kernel size``, ``number of layers`` is
``depth``), and a name the bank does not know is kept as written so that the part's checks can reject it. Yes/no
decisions are the existing ``bool`` kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from verify.model import Kind

KINDS = (Kind.INTERVAL, Kind.FACTORS)
MAX_FACTORS = 20


@dataclass(frozen=True)
class Interval:
    """A range of reals; ``lo``/``hi`` are sympy numbers (±oo allowed)."""

    lo: Any
    hi: Any
    lo_open: bool = True
    hi_open: bool = True

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{self.lo}, {self.hi}{')' if self.hi_open else ']'}"

    def latex(self) -> str:
        import sympy

        left = r"\left(" if self.lo_open else r"\left["
        right = r"\right)" if self.hi_open else r"\right]"
        return f"{left}{sympy.latex(self.lo)},\\ {sympy.latex(self.hi)}{right}"


class StructuredError(ValueError):
    """An answer that is not of the structured kind it should be (the grader reports it as unparsable)."""


_INTERVAL = re.compile(r"^\s*(\\left)?\s*([\[(])(.*),(.*?)(\\right)?\s*([\])])\s*$", re.S)


def read_interval(value: Any, table: Any) -> Interval:
    from verify.answers.parse import AnswerError, parse_math

    if not isinstance(value, str) or len(value) > 200:
        raise StructuredError("expected an interval with brackets, such as '(-1, 1)' or '[0, 1)'")
    m = _INTERVAL.match(value.strip().strip("$"))
    if not m:
        raise StructuredError("expected an interval with brackets, such as '(-1, 1)' or '[0, 1)'")
    ends = []
    for text in (m.group(3), m.group(4)):
        try:
            ends.append(parse_math(text.strip(), table))
        except AnswerError as exc:
            raise StructuredError(f"an endpoint: {exc}") from None
    lo, hi = ends
    if not (getattr(lo, "is_number", False) and getattr(hi, "is_number", False)):
        raise StructuredError("an interval's endpoints are numbers")
    return Interval(lo, hi, m.group(2) == "(", m.group(6) == ")")


# canonical factor name → keywords that name it (checked in order; the first match wins)
FACTOR_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dilation", ("dilat", "atrous")),
    ("pooling", ("pool",)),
    ("stride", ("stride", "step size", "subsampl", "downsampl")),
    ("kernel size", ("kernel", "filter size", "size of the filter", "window")),
    ("padding", ("pad",)),
    ("channels", ("channel", "number of filters", "filters", "width of the layer")),
    ("activation", ("activation", "relu", "nonlinear", "non-linear", "sigmoid", "tanh")),
    ("batch normalization", ("batch norm", "batchnorm", "normaliz")),
    ("depth", ("depth", "layer", "deeper")),
)


def canonical_factor(name: str) -> str:
    text = " ".join(str(name).lower().split())
    for canon, words in FACTOR_WORDS:
        if any(w in text for w in words):
            return canon
    return text


def read_factors(value: Any) -> frozenset[str]:
    items = value if isinstance(value, list) else re.split(r"[,;\n]|\band\b", str(value).strip().strip("{}[]()"))
    names = [canonical_factor(str(i)) for i in items if str(i).strip()]
    if not names:
        raise StructuredError("expected one or more factors, such as 'kernel size, stride, depth'")
    if len(names) > MAX_FACTORS:
        raise StructuredError(f"{len(names)} factors (limit {MAX_FACTORS})")
    return frozenset(names)


def to_claim(kind: Kind, value: Any, table: Any) -> Any:
    """The answer as a claim of a structured kind; StructuredError where it is not one."""
    if kind is Kind.INTERVAL:
        return read_interval(value, table)
    return read_factors(value)


def compare(part: Any, claim: Any, reference: Any) -> tuple[str, str, str]:
    """(verdict, method, evidence): an interval by its endpoints and their openness; factors by the part's own checks
    (each named factor measured to change the receptive field, as many as the question asks)."""
    if part.kind is Kind.INTERVAL:
        import sympy

        same = (sympy.simplify(claim.lo - reference.lo) == 0 if claim.lo.is_finite else claim.lo == reference.lo) and (
            sympy.simplify(claim.hi - reference.hi) == 0 if claim.hi.is_finite else claim.hi == reference.hi
        )
        ok = same and (claim.lo_open, claim.hi_open) == (reference.lo_open, reference.hi_open)
        why = "same endpoints and ends" if ok else ("an end open where it is closed, or the reverse" if same else "")
        return ("correct" if ok else "incorrect", "endpoints and ends", f"the verified range is {reference}; {why}")
    from verify.model import Context, Status
    from verify.runner import run_check

    results = [run_check(c, claim, Context(), limit=None) for c in part.checks]
    bad = [r for r in results if r.status is not Status.PASS]
    method = ", ".join(f"{r.method}: {r.check}" for r in results)
    if bad:
        verdict = "incorrect" if bad[0].status is Status.FAIL else "undecided"
        return verdict, method, bad[0].evidence
    return "correct", method, results[0].evidence if results else ""
