"""The bank's data model: problems, parts, checks and their results.

Plain frozen dataclasses with no behaviour beyond them. Nothing here imports sympy or torch, so that listing the bank
stays fast: a part's reference answer is produced by its ``derive`` function, called only when the part is run or shown.

A check verifies a *claim* about a part (normally the part's own reference answer, but a test may hand it a mutated
one, and answer grading hands it a person's answer) by one independent route, and returns an :class:`Outcome`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


class Kind(StrEnum):
    """What a part's answer is (the catalog's answer kinds)."""

    INT = "int"
    REAL = "real"
    EXPR = "expr"
    SHAPE = "shape"
    MATRIX = "matrix"
    VECTOR = "vector"
    SET = "set"
    BIGO = "bigO"
    NETWORK = "network"
    BOOL = "bool"
    INTERVAL = "interval"  # a range of reals with open or closed ends (verify.answers.structured.Interval)
    FACTORS = "factors"  # named factors (an answer lists some; each must be one, and as many as asked)
    TEXT = "text"  # an explanation: shown, never graded


class Method(StrEnum):
    """How a check reaches its verdict."""

    SYMBOLIC = "symbolic"  # sympy, exact arithmetic or a proof
    TORCH = "torch"  # real torch layers, autograd, optimizers or training runs


@dataclass(frozen=True)
class Step:
    """One line of a derivation: a sentence and, optionally, a LaTeX formula shown under it."""

    text: str
    latex: str = ""


@dataclass(frozen=True)
class Figure:
    """A plot a check or derivation wants in the report: a name and a function that draws it into a file."""

    name: str
    caption: str
    draw: Callable[[str], None]
    data_key: str  # a deterministic digest of what is drawn; the file is redrawn only when it changes


@dataclass(frozen=True)
class Derivation:
    """A part's reference answer with the steps that produced it."""

    answer: Any
    steps: tuple[Step, ...] = ()
    latex: str = ""  # the answer in LaTeX; written by the runner's derive when empty
    figures: tuple[Figure, ...] = ()
    # Where a question leaves a convention open: (convention, value) pairs also accepted besides ``answer`` (which is
    # under the convention the part's note names). The runner puts each through the part's checks as well.
    accepted: tuple[tuple[str, Any], ...] = ()
    # The convention ``answer`` is under, where ``accepted`` lists others: each check built with
    # ``checks.under_conventions`` must confirm the reference under this name (and each accepted value under its own).
    convention: str = ""
    # The answer is stated by the bank (a construction, a decision, a typed set) rather than computed: the report says
    # so and names the checks that confirm it.
    stated: bool = False


@dataclass(frozen=True)
class Context:
    """What a check runs with: the device for torch work and the seed everything is drawn from."""

    device: str = "cpu"
    seed: int = 0


@dataclass(frozen=True)
class Outcome:
    """What a check found. ``compared`` says what was compared with what; ``evidence`` shows the numbers."""

    ok: bool
    compared: str
    evidence: str
    max_error: float | None = None
    tolerance: float | None = None
    figures: tuple[Figure, ...] = ()
    value: tuple[float, ...] | None = None  # the numbers the independent computation produced, where it has any


class Skip(Exception):
    """Raised by a check that cannot run in this context."""


CheckFn = Callable[[Any, Context], Outcome]


@dataclass(frozen=True)
class Check:
    """One independent verification of a claim about a part."""

    name: str
    method: Method
    fn: CheckFn
    uses_device: bool = False  # torch work that follows --device (meta-tensor and sympy checks do not)
    # torch's intra-op threads while this check runs: 1 for the bank's small tensors (a loaded machine then costs wall
    # time, not spinning CPU); 0 for torch's default, for the rare check whose tensors are large enough to gain.
    threads: int = 1


@dataclass(frozen=True)
class Part:
    key: str
    kind: Kind
    derive: Callable[[], Derivation]
    checks: tuple[Check, ...]
    symbols: tuple[str, ...] = ()  # the symbols an answer may use, case-sensitive
    note: str = ""  # a convention or remark the report shows beside the answer
    # A real model and input shape whose operation count the part asks for: answer checking uses it to name the
    # convention or slip that a wrong count matches (verify.count.diagnose).
    network: Callable[[], tuple[Any, tuple[int, ...]]] | None = None
    # The sympy object of each name the part's answers may use, where the reference alone does not say it: shapes
    # (a vector a ∈ ℝⁿ) and names the statement defines (a = X w₀ − t), so an answer may use either form.
    names: Callable[[], dict[str, Any]] | None = None
    # Intervals the statement gives for symbols, e.g. (("beta", "[0, 1)"), ("eta", "(0, oo)")): comparisons and
    # counterexamples stay inside them.
    domain: tuple[tuple[str, str], ...] = ()
    # Where the question asks for the answer "in terms of" some names: an answer equal in value but written without
    # any of them is undecided (right value, not the form asked).
    form: tuple[str, ...] = ()


@dataclass(frozen=True)
class Parameters:
    """The data of a problem built from parameters (verify.variants): this instance's values, the space they are
    drawn from and the constructor that builds the problem from any point of it."""

    name: str  # the space's name; problems sharing a space (questions about one network) draw the same instance
    values: Mapping[str, Any]
    space: Callable[[Any], dict[str, Any]]  # draws a parameter dict from a drawer (verify.variants.Drawer)
    build: Callable[[Mapping[str, Any]], Problem]
    seed: int | None = None  # None for the bank's own instance


@dataclass(frozen=True)
class Problem:
    id: str
    title: str
    statement: str
    source: str  # the seed document and question it comes from
    topics: tuple[str, ...]
    parts: tuple[Part, ...]
    origin: str = field(default="", compare=False)  # the file that defined it (set by the registry)
    params: Parameters | None = field(default=None, compare=False)  # set for a problem whose data are parameters

    def part(self, key: str) -> Part:
        for p in self.parts:
            if p.key == key:
                return p
        raise KeyError(key)


@dataclass(frozen=True)
class Result:
    """What the runner records for one check of one part."""

    problem: str
    part: str
    check: str
    method: Method
    status: Status
    compared: str
    evidence: str
    max_error: float | None
    tolerance: float | None
    device: str
    seconds: float
    figures: tuple[Figure, ...] = ()
    convention: str = ""  # set when the claim checked is a value accepted under another convention
    value: tuple[float, ...] | None = None  # Outcome.value: compared across devices by the parity table

    @property
    def label(self) -> str:
        """The check's name, with the convention of the value it checked when that is not the reference's."""
        return f"{self.check} [{self.convention}]" if self.convention else self.check

    def to_json(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "part": self.part,
            "check": self.check,
            "convention": self.convention,
            "method": str(self.method),
            "status": str(self.status),
            "compared": self.compared,
            "evidence": self.evidence,
            "max_error": self.max_error,
            "tolerance": self.tolerance,
            "device": self.device,
            "seconds": round(self.seconds, 4),
        }
