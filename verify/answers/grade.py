"""Grading answers against the verified bank: one verdict per answer, with the parsed form, the method and evidence.

Verdicts: ``correct``, ``incorrect``, ``unparsable``, ``unknown`` (no such id or part), ``ungraded`` (text parts) and
``undecided`` (a check timed out or could not decide: never counted as correct or incorrect).

Every answer is graded in a forked worker process under a hard wall-clock limit and a memory cap; a worker that runs
past its limit is killed, so a hostile answer costs seconds, never the run. Answer text only ever reaches the parser
in :mod:`verify.answers.parse`.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from verify import VerifyError
from verify.answers import structured
from verify.model import Kind, Part, Problem

MAX_FILE_BYTES = 1_000_000
MAX_LIST_ITEMS = 400
DEFAULT_TIMEOUT = 20.0
MEMORY_LIMIT = 4 << 30

VERDICTS = ("correct", "incorrect", "unparsable", "unknown", "ungraded", "undecided")


@dataclass
class Verdict:
    id: str
    part: str
    verdict: str
    given: str
    parsed: str = ""
    expected: str = ""
    method: str = ""
    evidence: str = ""
    diagnosis: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    id: str
    part: str
    value: Any

    def given(self) -> str:
        text = self.value if isinstance(self.value, str) else repr(self.value)
        return text if len(text) <= 300 else text[:297] + "…"


# ---- reading answer files ------------------------------------------------------------------------------------------


def read_answers(path: Path) -> list[Answer]:
    """Answers from a TOML file: one table per problem id, one key per part. Raises VerifyError when the file cannot
    be read at all (missing, too large, not UTF-8, not TOML)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise VerifyError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise VerifyError(f"{path} is {len(raw)} bytes (limit {MAX_FILE_BYTES})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerifyError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise VerifyError(f"{path} is not valid TOML: {exc}") from None
    answers: list[Answer] = []
    for pid, table in doc.items():
        if not isinstance(table, dict):
            answers.append(Answer(pid, "", table))
            continue
        for key, value in table.items():
            answers.append(Answer(pid, key, value))
    return answers


# ---- symbol tables -------------------------------------------------------------------------------------------------


def logistic(v: Any) -> Any:
    import sympy

    return 1 / (1 + sympy.exp(-v))


def symbol_table(part: Part, reference: Any) -> Any:
    """The names a part's answers may use: the reference's own symbols and matrices (with their assumptions and
    shapes), the part's declared names, and its functions (σ is the logistic function)."""
    import sympy

    from verify.answers.parse import SymbolTable

    names: dict[str, Any] = {}
    functions: dict[str, Any] = {}
    items = reference if isinstance(reference, (list, tuple)) else [reference]
    for item in items:
        if not isinstance(item, sympy.Basic):
            continue
        for s in item.free_symbols:
            if isinstance(s, sympy.Symbol):
                names[s.name] = s
        for m in item.atoms(sympy.MatrixSymbol):
            names[m.name] = m
            for dim in m.shape:
                for s in getattr(dim, "free_symbols", set()):
                    names.setdefault(s.name, s)
        for f in item.atoms(sympy.core.function.AppliedUndef):
            fname = type(f).__name__
            functions[fname] = logistic if fname == "sigma" else sympy.Function(fname)
    for name in part.symbols:
        if name in ("sigma",):
            functions["sigma"] = logistic
        elif name == "F":
            functions["F"] = sympy.Function("F")
        elif name not in names:
            names[name] = sympy.Symbol(name, positive=True)
    if "sigma" in functions:
        names.pop("sigma", None)
    return SymbolTable(names, functions)


def _expand_functions(expr: Any) -> Any:
    """σ(·) written as an undefined function in a reference becomes the logistic function, as in answers."""
    import sympy

    if isinstance(expr, sympy.Basic):
        u = sympy.Symbol("u")
        return expr.replace(sympy.Function("sigma"), sympy.Lambda(u, logistic(u)))
    return expr


# ---- converting a TOML value to a claim of the part's kind ---------------------------------------------------------


class Unparsable(Exception):
    pass


def _number(v: Any, what: str = "a number") -> Any:
    import sympy

    if isinstance(v, bool):
        raise Unparsable(f"expected {what}, got a boolean")
    if isinstance(v, int):
        return sympy.Integer(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise Unparsable(f"expected {what}, got {v}")
        return sympy.Rational(repr(v)) if abs(v) < 1e15 else sympy.Float(v)
    raise Unparsable(f"expected {what}, got {type(v).__name__}")


def _scalar(v: Any, table: Any) -> Any:
    from verify.answers.parse import AnswerError, parse_math

    if isinstance(v, str):
        try:
            return parse_math(v, table)
        except AnswerError as exc:
            raise Unparsable(str(exc)) from None
    return _number(v)


def _nested(v: Any, depth: int) -> Any:
    if depth > 3:
        raise Unparsable("lists nested more than 3 deep")
    if isinstance(v, list):
        if len(v) > MAX_LIST_ITEMS:
            raise Unparsable(f"a list of {len(v)} items (limit {MAX_LIST_ITEMS})")
        for x in v:
            _nested(x, depth + 1)
    return v


def to_claim(part: Part, value: Any, reference: Any, table: Any) -> Any:
    """The answer as a claim of the part's kind (what the part's checks take)."""
    import sympy

    kind = part.kind
    _nested(value, 0)
    if kind in structured.KINDS:  # intervals and named factors: verify/answers/structured.py
        try:
            return structured.to_claim(kind, value, table)
        except structured.StructuredError as exc:
            raise Unparsable(str(exc)) from None
    if kind in (Kind.INT, Kind.REAL):
        v = _scalar(value, table)
        if not v.is_number:
            raise Unparsable("expected a number, got an expression")
        if kind is Kind.INT and not (v.is_Integer or (v.is_Rational and v.q == 1)):
            raise Unparsable(f"expected an integer, got {v}")
        return int(v) if kind is Kind.INT else v
    if kind is Kind.BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
            return value.strip().lower() in ("true", "yes")
        raise Unparsable("expected true or false")
    if kind is Kind.SHAPE:
        if isinstance(value, str):  # "(100, 128, 256, 256)", "100 \times 128 \times 256 \times 256", "100x128"
            value = [p for p in re.split(r"\\times|×|\*|,|x|\s+", value.strip().strip("$").strip("()[] ")) if p.strip()]
        if not isinstance(value, list) or not value:
            raise Unparsable("expected a shape such as [100, 128, 256, 256]")
        out = []
        for x in value:
            n = _scalar(x, table) if isinstance(x, str) else _number(x, "an integer")
            if not n.is_Integer or n < 0:
                raise Unparsable(f"a shape holds non-negative integers, got {n}")
            out.append(int(n))
        return tuple(out)
    if kind in (Kind.MATRIX, Kind.VECTOR):
        if isinstance(value, str):
            v = _scalar(value, table)
            if isinstance(v, sympy.MatrixBase):
                value = v.tolist() if kind is Kind.MATRIX else list(v)
            else:
                raise Unparsable("expected a matrix or a list")
        if not isinstance(value, list):
            raise Unparsable("expected a list")
        if kind is Kind.MATRIX:
            if not value or not all(isinstance(r, list) for r in value):
                raise Unparsable("expected a list of rows")
            if len({len(r) for r in value}) != 1:
                raise Unparsable("rows of different lengths")
            return [[_scalar(x, table) for x in r] for r in value]
        return [_scalar(x, table) for x in value]
    if kind is Kind.SET:
        return _set_claim(value, reference, table)
    if kind is Kind.BIGO:
        v = _scalar(value, table) if isinstance(value, str) else None
        if not isinstance(v, sympy.Order):
            raise Unparsable("expected O(·), e.g. O(t)")
        return v
    if kind is Kind.NETWORK:
        if not isinstance(value, dict) or not {"W", "c", "w", "b"} <= set(value):
            raise Unparsable("a network needs W, c, w and b (and optionally activation)")
        return {
            "activation": str(value.get("activation", "")),
            "W": [[float(_number(x)) for x in row] for row in value["W"]],
            "c": [float(_number(x)) for x in value["c"]],
            "w": [float(_number(x)) for x in value["w"]],
            "b": float(_number(value["b"])),
        }
    return _scalar(value, table)


def _set_claim(value: Any, reference: Any, table: Any) -> Any:
    """A set part takes one member, a list of members, or 'impossible' (the empty set)."""
    members = list(reference) if reference else []
    if isinstance(value, str) and value.strip().lower() in ("impossible", "none", "∅", "\\emptyset", "{}"):
        return ("member", None)
    if members and isinstance(members[0], str):  # a set of names, such as reduced axes
        items = value if isinstance(value, list) else [p.strip() for p in str(value).strip("{}()[] ").split(",")]
        return ("set", frozenset(str(i).strip() for i in items))
    if members and isinstance(members[0], tuple):
        if isinstance(value, list) and value and all(isinstance(x, list) for x in value):
            return ("set", frozenset(tuple(int(_number(y)) for y in x) for x in value))
        if isinstance(value, list):
            return ("member", tuple(int(_number(y)) for y in value))
        raise Unparsable("expected a pair such as [1, 0], or 'impossible'")
    if isinstance(value, list):
        return ("set", frozenset(int(_number(x)) for x in value))
    return ("member", int(_number(value, "an integer")))


# ---- comparison ----------------------------------------------------------------------------------------------------


def _latex(v: Any) -> str:
    from verify.symbolic import latex

    try:
        return latex(v)
    except Exception:
        return str(v)


def _is_matrix_expr(x: Any) -> bool:
    import sympy

    return isinstance(x, sympy.Basic) and bool(x.atoms(sympy.MatrixSymbol))


def _run_checks(part: Part, claim: Any) -> tuple[str, str, str]:
    """(verdict, method, evidence) from the part's own checks on the claim."""
    from verify.model import Context, Status
    from verify.runner import run_check

    results = [run_check(c, claim, Context(), limit=None) for c in part.checks]
    methods = ", ".join(f"{r.method}: {r.check}" for r in results)
    bad = [r for r in results if r.status is Status.FAIL]
    errs = [r for r in results if r.status is Status.ERROR]
    if bad:
        return "incorrect", methods, bad[0].evidence
    if errs:
        return "undecided", methods, errs[0].evidence
    return "correct", methods, results[0].evidence if results else ""


def compare(part: Part, claim: Any, reference: Any) -> tuple[str, str, str]:
    """(verdict, method, evidence) for a claim of the part's kind against the verified reference."""
    import sympy

    from verify.symbolic import equal

    kind = part.kind
    if kind in structured.KINDS:
        return structured.compare(part, claim, reference)
    if kind is Kind.SET:
        how, v = claim
        ref_set = frozenset(reference)
        if how == "member":
            ok = (v is None and not ref_set) or (v is not None and v in ref_set)
            what = "impossible" if v is None else str(v)
            return (
                "correct" if ok else "incorrect",
                "exact membership",
                f"the verified set is {{{', '.join(map(str, sorted(ref_set)))}}}; {what} {'is' if ok else 'is not'} "
                f"{'the empty set' if v is None else 'a member'}",
            )
        return (
            "correct" if v == ref_set else "incorrect",
            "exact set equality",
            f"the verified set is {{{', '.join(map(str, sorted(ref_set)))}}}",
        )
    if kind is Kind.NETWORK:
        return _run_checks(part, claim)
    if kind is Kind.EXPR and (_is_matrix_expr(claim) or _is_matrix_expr(reference)):
        verdict, methods, evidence = _run_checks(part, claim)
        return verdict, "random instances (" + methods + ")", evidence
    if kind is Kind.EXPR:
        a, b = _expand_functions(claim), _expand_functions(reference)
        if any(isinstance(x, sympy.MatrixBase) for x in (a, b)):
            return "incorrect", "exact", "a matrix where a formula is expected"
        cmp = equal(a, b)
        return ("correct" if cmp.equal else "incorrect", cmp.method, cmp.detail)
    if kind is Kind.VECTOR:
        if len(claim) != len(reference):
            return "incorrect", "exact", f"{len(claim)} entries, expected {len(reference)}"
        for i, (x, y) in enumerate(zip(claim, reference, strict=True)):
            cmp = equal(_expand_functions(x), _expand_functions(y))
            if not cmp.equal:
                return "incorrect", cmp.method, f"entry {i}: {cmp.detail}"
        return "correct", "element-wise", "every entry equal"
    if kind is Kind.MATRIX:
        ref = [list(r) for r in reference]
        if len(claim) != len(ref) or len(claim[0]) != len(ref[0]):
            return "incorrect", "exact", f"a {len(claim)}×{len(claim[0])} matrix, expected {len(ref)}×{len(ref[0])}"
        diffs = [
            (i, j) for i in range(len(ref)) for j in range(len(ref[0])) if sympy.simplify(claim[i][j] - ref[i][j]) != 0
        ]
        if diffs:
            i, j = diffs[0]
            return (
                "incorrect",
                "element-wise",
                f"{len(diffs)} entries differ, first ({i}, {j}): expected {ref[i][j]}, given {claim[i][j]}",
            )
        return "correct", "element-wise", "every entry equal"
    if kind is Kind.BIGO:
        t = sympy.Symbol("t", positive=True)

        def degree(o: Any) -> Any:
            e = o.expr
            return sympy.degree(e, t) if e.free_symbols else 0

        ok = degree(claim) == degree(reference)
        return (
            "correct" if ok else "incorrect",
            "growth class",
            f"expected O(t^{degree(reference)}), given O(t^{degree(claim)})",
        )
    if kind is Kind.REAL:
        tol = 1e-9 * max(1.0, abs(float(reference)))
        err = abs(float(claim) - float(reference))
        return ("correct" if err <= tol else "incorrect", "numeric", f"difference {err:.3g} (tolerance {tol:.1g})")
    ok = claim == (tuple(reference) if kind is Kind.SHAPE else reference)
    return ("correct" if ok else "incorrect", "exact", f"expected {reference}, given {claim}")


# ---- grading one answer --------------------------------------------------------------------------------------------


def grade_one(problem: Problem | None, answer: Answer) -> Verdict:
    """Grade one answer (in-process; :func:`grade_answers` runs it in a worker)."""
    from verify.answers.diagnose import diagnose
    from verify.runner import derive

    v = Verdict(answer.id, answer.part, "unknown", answer.given())
    if problem is None:
        v.evidence = f"no problem '{answer.id}' in the bank"
        return v
    try:
        part = problem.part(answer.part)
    except KeyError:
        keys = ", ".join(p.key for p in problem.parts)
        v.evidence = f"{answer.id} has no part '{answer.part}' (parts: {keys})"
        return v
    derivation = derive(part)
    reference = derivation.answer
    v.expected = derivation.latex or _latex(reference)
    if part.kind is Kind.TEXT:
        v.verdict, v.method, v.evidence = "ungraded", "", "explanations are shown, never graded"
        return v
    table = symbol_table(part, reference)
    try:
        claim = to_claim(part, answer.value, reference, table)
    except Unparsable as exc:
        v.verdict, v.evidence = "unparsable", str(exc)
        return v
    v.parsed = _latex(claim[1] if part.kind is Kind.SET and claim[0] == "member" else claim)
    v.verdict, v.method, v.evidence = compare(part, claim, reference)
    for convention, value in derivation.accepted if v.verdict == "incorrect" else ():
        verdict, method, evidence = compare(part, claim, value)
        if verdict == "correct":  # the question leaves this convention open: accepted, and named
            v.verdict, v.method = "correct", f"{method}, under the convention '{convention}'"
            v.evidence = f"{evidence}; the reference, {_latex(reference)}, is under the part's own convention"
            break
    if v.verdict == "incorrect":
        v.diagnosis = diagnose(part, claim, reference)
        if part.kind in (Kind.SHAPE, Kind.INT, Kind.MATRIX):  # show what the real layers say as well
            verdict, _, evidence = _run_checks(part, claim)
            if verdict == "incorrect" and evidence not in v.evidence:
                v.evidence = f"{v.evidence}; {evidence}"
    return v


def _child(conn: Any, problem: Problem | None, answer: Answer) -> None:
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
    try:
        conn.send(grade_one(problem, answer))
    except BaseException as exc:
        conn.send(
            Verdict(
                answer.id,
                answer.part,
                "undecided",
                answer.given(),
                evidence=f"the grader failed: {type(exc).__name__}: {str(exc)[:200]}",
            )
        )
    finally:
        conn.close()


def grade_isolated(problem: Problem | None, answer: Answer, timeout: float = DEFAULT_TIMEOUT) -> Verdict:
    """Grade one answer in a forked worker, killed after ``timeout`` seconds."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, problem, answer), daemon=True)
    proc.start()
    send.close()
    try:
        if recv.poll(timeout):
            try:
                result: Verdict = recv.recv()
            except (EOFError, OSError):
                result = Verdict(
                    answer.id,
                    answer.part,
                    "undecided",
                    answer.given(),
                    evidence="the grading worker died (memory limit?)",
                )
        else:
            result = Verdict(
                answer.id,
                answer.part,
                "undecided",
                answer.given(),
                evidence=f"grading ran past its {timeout:g} s limit and was stopped",
            )
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()
    return result


def warm_up() -> None:
    """Import what grading uses once, so that forked workers start with it loaded."""
    import sympy  # noqa: F401
    import torch  # noqa: F401

    from verify.answers import parse

    parse._parser()


def grade_answers(bank: Any, answers: list[Answer], timeout: float = DEFAULT_TIMEOUT) -> list[Verdict]:
    by_id = {p.id: p for p in bank.problems}
    return [grade_isolated(by_id.get(a.id), a, timeout) for a in answers]


def summary(verdicts: list[Verdict]) -> dict[str, int]:
    out = {k: 0 for k in VERDICTS}
    for v in verdicts:
        out[v.verdict] += 1
    out["total"] = len(verdicts)
    return out
