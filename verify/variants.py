"""Variants of parametrized questions: new instances of a question, each with its own derived and checked answer key.

A problem whose data are parameters is written as a *constructor* (parameter dict → Problem: statement with the
numbers, derivations, checks) and a *space* of valid parameters; the bank's problem is the constructor at the original
parameters (:func:`parametrized`), so the original and every variant come from the same code.

**Spaces.** A space is a plain function ``space(d) -> dict`` that asks a :class:`Drawer` ``d`` for integers in ranges
and for choices from lists, each range computed from the values drawn before it, so every combination it can return
is valid by construction (nothing is filtered, nothing is rejected). The same function serves two drawers:

- :func:`draw` draws it for an instance (:func:`instance`): the i-th integer in ``lo..hi`` is
  ``lo + int(sha256("<space>@seed=<seed>#<i>")) mod (hi − lo + 1)``. Nothing depends on Python's or hypothesis's
  generators, so the same id and seed give the same instance on every machine and version.
- :func:`strategy` turns it into a hypothesis strategy (``st.composite`` over the same function) for property tests.

Problems that share a space (several questions about one network) draw the same instance for the same seed, so one
seed gives a person a consistent handout. A variant's id is ``<id>@seed=<N>``; the registry resolves such ids
(:meth:`verify.registry.Bank.get`), so ``verify check``, ``verify grade`` and ``verify run`` take them like any other.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from verify import VerifyError
from verify.model import Kind, Parameters, Problem

T = TypeVar("T")

_VARIANT = re.compile(r"^(?P<base>[^@]+)@seed=(?P<seed>[0-9]+)$")
MAX_SEED = 10**12 - 1


class Drawer(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...


class _HashDrawer:
    """Integers from SHA-256 of the key and a counter: the same on every machine."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.count = 0

    def integer(self, lo: int, hi: int) -> int:
        if hi < lo:
            raise VerifyError(f"empty range {lo}..{hi} in parameter space '{self.key}'")
        digest = hashlib.sha256(f"{self.key}#{self.count}".encode()).digest()
        self.count += 1
        return lo + int.from_bytes(digest, "big") % (hi - lo + 1)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]


class _HypothesisDrawer:
    def __init__(self, draw: Callable[[Any], Any]) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        from hypothesis import strategies as st

        return int(self.draw(st.integers(lo, hi)))

    def choice(self, options: Sequence[T]) -> T:
        from hypothesis import strategies as st

        return self.draw(st.sampled_from(list(options)))


def matrix(d: Drawer, rows: int, cols: int, lo: int = -9, hi: int = 9, nonzero: bool = True) -> list[list[int]]:
    """A rows×cols integer matrix with entries in lo..hi (zero left out when ``nonzero``)."""
    values = [v for v in range(lo, hi + 1) if v or not nonzero]
    return [[d.choice(values) for _ in range(cols)] for _ in range(rows)]


def draw(space: Callable[[Drawer], dict[str, Any]], name: str, seed: int) -> dict[str, Any]:
    """The parameters of instance ``seed`` of a space, deterministically."""
    return space(_HashDrawer(f"{name}@seed={seed}"))


def strategy(problem: Problem) -> Any:
    """A hypothesis strategy of the problem's parameter dicts (the same space that :func:`draw` draws)."""
    from hypothesis import strategies as st

    params = _params(problem)

    @st.composite
    def values(draw_: Any) -> dict[str, Any]:
        return params.space(_HypothesisDrawer(draw_))

    return values()


def parametrized(
    name: str,
    space: Callable[[Drawer], dict[str, Any]],
    build: Callable[[Mapping[str, Any]], Problem],
    original: Mapping[str, Any],
) -> Problem:
    """The bank's instance of a parametrized problem: ``build`` at the original parameters, carrying its space."""
    problem = build(original)
    return replace(problem, params=Parameters(name, dict(original), space, build))


def split_id(problem_id: str) -> tuple[str, int | None]:
    """``course/q@seed=7`` → (``course/q``, 7); a plain id → (id, None). A malformed variant id is refused."""
    if "@" not in problem_id:
        return problem_id, None
    m = _VARIANT.match(problem_id.strip())
    if not m:
        raise VerifyError(f"'{problem_id}' is not a variant id: write it as ID@seed=N (N a non-negative integer)")
    digits = m["seed"].lstrip("0") or "0"
    if len(digits) > len(str(MAX_SEED)) or int(digits) > MAX_SEED:
        raise VerifyError(f"'{problem_id}': seed out of range 0..{MAX_SEED}")
    return m["base"], int(digits)


def canonical_id(problem_id: str) -> str:
    """The one spelling of an id: ``course/q@seed=007`` → ``course/q@seed=7``; anything else (a plain id, a malformed
    variant id, which is refused where it is resolved) unchanged."""
    m = _VARIANT.match(problem_id.strip()) if "@" in problem_id else None
    return f"{m['base']}@seed={m['seed'].lstrip('0') or '0'}" if m else problem_id


def _params(problem: Problem) -> Parameters:
    if problem.params is None:
        raise VerifyError(
            f"{problem.id} has no parameters to draw (its data are symbols or fixed; see `verify variant --list`)"
        )
    return problem.params


@functools.lru_cache(maxsize=256)
def _instance(base: Problem, seed: int) -> Problem:
    params = _params(base)
    try:
        values = draw(params.space, params.name, seed)
        built = params.build(values)
    except VerifyError:
        raise
    except Exception as exc:  # a space or constructor that fails on some draw: one line, never a traceback
        raise VerifyError(f"{base.id}@seed={seed} cannot be built: {type(exc).__name__}: {exc}") from exc
    return replace(
        built,
        id=f"{base.id}@seed={seed}",
        origin=base.origin,
        params=replace(params, values=values, seed=seed),
    )


def instance(base: Problem, seed: int) -> Problem:
    """Instance ``seed`` of a bank problem: its parameters drawn, the problem rebuilt by its own constructor."""
    if not 0 <= seed <= MAX_SEED:
        raise VerifyError(f"seed {seed} out of range 0..{MAX_SEED}")
    return _instance(base, seed)


def parametrized_ids(bank: Any) -> list[str]:
    return [p.id for p in bank.problems if p.params is not None]


# ---- emitting checked instances ------------------------------------------------------------------------------------


@dataclass
class Emitted:
    problem: Problem
    seed: int
    output: Any  # verify.runner.RunOutput: every check passed


@dataclass
class Emission:
    emitted: list[Emitted] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (seed, why): checks that did not all pass


def failures(output: Any) -> str:
    bad = [r for r in output.results if r.status.value not in ("pass", "skip")]
    bad_derivations = [f"{p}/{k}: {why}" for (p, k), why in output.derivation_errors.items()]
    text = "; ".join([*bad_derivations, *(f"{r.part}: {r.label} {r.status.value} ({r.evidence[:120]})" for r in bad)])
    return text[:400]


def emit(
    bank: Any,
    problem_id: str,
    seed: int,
    count: int = 1,
    max_refused: int = 20,
    ctx: Any = None,
    limit: float | None = None,
) -> Emission:
    """``count`` instances from ``seed`` on, each run through the runner with the part's own checks; an instance
    whose checks do not all pass is refused (and reported) and the next seed is drawn instead."""
    from verify.runner import DEFAULT_TIME_LIMIT, run

    base_id, given_seed = split_id(problem_id)
    if given_seed is not None:
        raise VerifyError(f"give the bank id ({base_id}) and the seed with --seed")
    if not 0 <= seed <= MAX_SEED - count:
        raise VerifyError(f"seed {seed} out of range 0..{MAX_SEED - count}")
    base = bank.get(base_id)
    _params(base)
    out = Emission()
    s = seed
    while len(out.emitted) < count:
        if len(out.refused) > max_refused:
            raise VerifyError(
                f"{base_id}: {len(out.refused)} instances refused (checks failed), last at seed {out.refused[-1][0]}: "
                f"{out.refused[-1][1]}"
            )
        try:
            problem = instance(base, s)
        except VerifyError as exc:
            out.refused.append((s, str(exc)[:400]))
            s += 1
            continue
        result = run([problem], ctx, limit=DEFAULT_TIME_LIMIT if limit is None else limit)
        if result.ok:
            out.emitted.append(Emitted(problem, s, result))
        else:
            out.refused.append((s, failures(result)))
        s += 1
    return out


# ---- what an instance is written as --------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    if "'" not in text and "\n" not in text:
        return f"'{text}'"  # a literal string keeps LaTeX backslashes as typed
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _toml_scalar(value: Any) -> str:
    import sympy

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, sympy.Basic) and value.is_Integer:
        return str(int(value))
    if isinstance(value, sympy.Basic):
        return _toml_string(sympy.latex(value))
    return _toml_string(str(value))


def toml_value(kind: Kind, value: Any) -> str | None:
    """A reference answer in the answer-file format (``verify check`` reads it back); None for a text part."""
    if kind is Kind.TEXT:
        return None
    if kind is Kind.SET:
        members = sorted(value, key=str)
        if not members:
            return "'impossible'"
        return _toml_any(members)  # every member: a set part takes a list of members as the whole set
    if kind is Kind.NETWORK:  # weights as numbers (an answer's network holds numbers, not formulas)
        return "{ " + ", ".join(f"{k} = {_toml_any(_numbers(v))}" for k, v in value.items()) + " }"
    return _toml_any(value)


def _numbers(value: Any) -> Any:
    """Network weights as TOML numbers, exactly: an answer's network holds numbers, which the grader reads back as the
    rational their decimal spells (``1.5`` is 3/2). A weight with no exact decimal (4/3) is refused, never rounded."""
    import sympy

    if isinstance(value, (list, tuple)):
        return [_numbers(v) for v in value]
    if isinstance(value, (str, bool, int, float)):
        return value  # a float is already the number it writes
    exact = sympy.sympify(value)
    if exact.is_Integer:
        return int(exact)
    if exact.is_Rational and sympy.Rational(repr(float(exact))) == exact:
        return float(exact)
    raise VerifyError(f"network weight {exact} has no exact decimal: the answer format cannot write it")


def _toml_any(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_any(v) for v in value) + "]"
    return _toml_scalar(value)


def _header(problem: Problem) -> str:
    return json.dumps(problem.id)  # a quoted TOML table name: ["course/q@seed=7"]


def key_toml(problem: Problem, derivations: Mapping[tuple[str, str], Any]) -> str:
    """The answer key as an answer file: ``verify check`` on it gives every part correct."""
    params = problem.params
    lines = [f"# answer key of {problem.id}", f"# parameters: {json.dumps(_plain(params.values) if params else {})}"]
    lines.append(f"[{_header(problem)}]")
    for part in problem.parts:
        value = toml_value(part.kind, derivations[(problem.id, part.key)].answer)
        lines.append(f"# {part.key}: a text part, not graded" if value is None else f"{part.key} = {value}")
    return "\n".join(lines) + "\n"


def blank_toml(problem: Problem) -> str:
    """An empty answer file for the instance: its table and one key per part, to be filled in. A part left blank
    stays in the file and is graded "unparsable" (no credit), so a class's grades show every unanswered part; the
    header says so."""
    lines = [
        f"# answers to {problem.id}: fill in each part (see `verify list` for the answer kinds)",
        "# a part left blank ('') is graded \"unparsable\", like any answer that cannot be read: it earns no credit",
    ]
    lines.append(f"[{_header(problem)}]")
    for part in problem.parts:
        if part.kind is Kind.TEXT:
            lines.append(f"# {part.key} (text): explanations are not graded")
            continue
        lines.append(
            f"{part.key} = ''    # {part.kind.value}"
            + (f"; symbols: {', '.join(part.symbols)}" if part.symbols else "")
        )
    return "\n".join(lines) + "\n"


def statement_markdown(problem: Problem) -> str:
    """What a person is handed: the statement with the drawn numbers and, per part, the key, its kind and notes."""
    lines = [
        f"# {problem.id}: {problem.title}",
        "",
        problem.statement,
        "",
        "| part | answer kind | note |",
        "|---|---|---|",
    ]
    for part in problem.parts:
        note = part.note.replace("|", "\\|")
        lines.append(f"| `{part.key}` | {part.kind.value} | {note} |")
    lines += ["", f"Answer in the file `answers.toml`: one key per part under the table `[{_header(problem)}]`."]
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if getattr(value, "is_Integer", False):
        return int(value)
    return str(value)


def folder_name(problem: Problem) -> str:
    return problem.id.replace("/", "_")


def instance_json(item: Emitted) -> dict[str, Any]:
    p = item.problem
    return {
        "id": p.id,
        "seed": item.seed,
        "parameters": _plain(p.params.values) if p.params else {},
        "statement": p.statement,
        "key": {part.key: _plain(item.output.derivations[(p.id, part.key)].answer) for part in p.parts},
        "checks": {"passed": item.output.counts()["pass"], "skipped": item.output.counts()["skip"]},
    }


def write_instance(item: Emitted, out: Path) -> Path:
    """statement.md, key.toml, key.md (derivations and the evidence of every check) and answers.toml, in one folder."""
    from verify.report.markdown import write_atomic, write_report

    folder = out / folder_name(item.problem)
    write_atomic(folder / "statement.md", statement_markdown(item.problem))
    write_atomic(folder / "key.toml", key_toml(item.problem, item.output.derivations))
    write_atomic(folder / "answers.toml", blank_toml(item.problem))
    write_report([item.problem], item.output, folder / "key.md")
    return folder
