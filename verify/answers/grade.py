"""Grading answers against the verified bank: one verdict per answer, with the parsed form, the method and evidence.

Verdicts: ``correct``, ``incorrect``, ``unparsable``, ``unknown`` (no such id or part), ``ungraded`` (text parts) and
``undecided`` (a check timed out or could not decide: never counted as correct or incorrect).

Every answer is graded in a forked worker process under a hard wall-clock limit and a memory cap; a worker that runs
past its limit is killed, so a hostile answer costs seconds, never the run. Answer text only ever reaches the parser
in :mod:`verify.answers.parse`.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from verify import VerifyError
from verify.answers import structured
from verify.model import Derivation, Kind, Part, Problem

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
    from verify.variants import canonical_id

    answers: list[Answer] = []
    for name, table in doc.items():
        pid = canonical_id(name)  # ID@seed=007 and ID@seed=7 name one instance: one id, one column
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
    shapes), the part's declared objects (shapes and the statement's definitions), its other declared names, and its
    functions (σ is the logistic function)."""
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
    names.update(part.names() if part.names is not None else {})
    if "sigma" in functions:
        names.pop("sigma", None)
    return SymbolTable(names, functions)


def definitions(part: Part, reference: Any) -> dict[Any, Any]:
    """The statement's definitions the reference is written with (y = σ(x)): reference symbol → what it stands for."""
    import sympy

    if part.names is None or not isinstance(reference, sympy.Basic):
        return {}
    declared = part.names()
    out: dict[Any, Any] = {}
    for s in reference.free_symbols | reference.atoms(sympy.MatrixSymbol):
        value = declared.get(getattr(s, "name", ""))
        if value is not None and value != s:
            out[s] = value
    return out


def _expand_functions(expr: Any) -> Any:
    """σ(·) written as an undefined function in a reference becomes the logistic function, as in answers."""
    import sympy

    if isinstance(expr, sympy.Basic):
        u = sympy.Symbol("u")
        return expr.replace(sympy.Function("sigma"), sympy.Lambda(u, logistic(u)))
    return expr


# ---- converting a TOML value to a claim of the part's kind ---------------------------------------------------------


class Unparsable(Exception):
    """The text cannot be read as math."""


class Wrong(Exception):
    """The text was read, but it is not an answer of the part's kind or shape: incorrect, with the reason."""


class Ambiguous(Exception):
    """The text reads two ways that this part tells apart: undecided, with the reason."""


def _number(v: Any, what: str = "a number") -> Any:
    import sympy

    if isinstance(v, bool):
        raise Wrong(f"expected {what}, got a boolean")
    if isinstance(v, sympy.Basic):
        return v
    if isinstance(v, int):
        return sympy.Integer(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise Wrong(f"expected {what}, got {v}")
        return sympy.Rational(repr(v)) if abs(v) < 1e15 else sympy.Float(v)
    raise Wrong(f"expected {what}, got {type(v).__name__}")


def _scalar(v: Any, table: Any, commas: bool = False, others: list[Any] | None = None) -> Any:
    """A number or an expression; ``others`` collects the other reading of an ambiguous text (a / b c, a + b mod c)."""
    from verify.answers.parse import AnswerError, MeaningError, read

    if isinstance(v, str):
        try:
            reading = read(v, table, commas=commas)
            if others is not None and reading.alternate is not None:
                others.append(reading.alternate)
            return reading.value
        except MeaningError as exc:
            raise Wrong(str(exc)) from None
        except AnswerError as exc:
            if "is a function and needs an argument" in str(exc):  # σ(1 - σ): σ for σ(x), left to the reader
                raise Ambiguous(f"{exc}; written alone, its argument is left to the reader") from None
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


def _is_matrix(v: Any) -> bool:
    import sympy

    return isinstance(v, (sympy.MatrixBase, sympy.MatrixExpr))


def _what(v: Any) -> str:
    import sympy

    if isinstance(v, sympy.MatrixBase):
        return f"a {v.shape[0]}×{v.shape[1]} matrix"
    if isinstance(v, sympy.Tuple):
        return f"a tuple of {len(v)}"
    if isinstance(v, sympy.Basic) and v.free_symbols:
        return "an expression in " + ", ".join(sorted(s.name for s in v.free_symbols))
    return "something else"


UNIT = re.compile(r"^\s*(.*?\d\}?)\s*(?:\\text\s*\{|\\mathrm\s*\{)?\s*([A-Za-z]{2,}(?:[ -][A-Za-z]+)*)\s*\}?\s*$")
THOUSANDS_POINT = re.compile(r"^\s*\d{1,3}(\.\d{3})+\s*$")
SIZE_PRODUCT = re.compile(r"^\s*\$?\s*(\d+)\s*(?:\\times|×|x|X)\s*(\d+)\s*\$?\s*$")
DECIMAL = re.compile(r"\d\.\d|\d\s*[eE][+-]?\d|\\times\s*10\s*\^|\\cdot\s*10\s*\^|×\s*10|\\approx|≈|\\sim")


VMATRIX = re.compile(r"\\begin\{[vV]matrix")


def raw_facts(text: str) -> tuple[bool, ...]:
    """What grading reads from the raw text besides its normalized form (answers that agree on both share a verdict)."""
    return (
        *tuple(bool(rx.search(text)) for rx in (DECIMAL, SIZE_PRODUCT, THOUSANDS_POINT, VMATRIX, UNIT)),
        text.strip().lower() in ("none", "no"),
        _numpy_like(text),
    )


def _integer(value: Any, table: Any) -> int:
    """An integer answer: exact integers only; 1024.0 and 2^{10} are 1024, 1.5 and an expression are wrong."""
    import sympy

    if isinstance(value, float) and math.isfinite(value) and value != int(value):
        raise Wrong(f"{value} is not a whole number, and this part counts")
    if isinstance(value, str):
        unit = UNIT.match(value)
        if unit and not any(w in table.names for w in unit.group(2).split()):
            value = unit.group(1)  # "397184 parameters"
    v = _scalar(value, table, commas=True)
    if isinstance(v, sympy.Tuple) or _is_matrix(v) or not isinstance(v, sympy.Basic):
        raise Wrong(f"expected one number, got {_what(v)}")
    if not v.is_number:
        raise Wrong(f"expected a number, got {_what(v)}")
    if v.is_Integer or (v.is_Rational and v.q == 1):
        return int(v)
    raise Wrong(f"{v} is not a whole number, and this part counts")


RANGE = re.compile(r"^\s*(\d+)\s*(?:to|-|–|—|\\text\{\s*to\s*\})\s*(\d+)\s*$")
SUFFIX = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([kKM])(?![A-Za-z])")
GROWTH_WORDS = {"constant": "1", "linear": "{n}", "quadratic": "{n}^2", "logarithmic": "\\log {n}"}


def _growth_words(text: str) -> str:
    """``constant``, ``linear in t``, ``quadratic in t``, ``logarithmic in t`` (optionally ``memory``/``time``
    after the word) as the growth class they name; any other text is left as it is."""
    m = re.fullmatch(
        r"\s*(constant|linear|quadratic|logarithmic)(?:\s+(?:memory|time|space))?(?:\s+in\s+([A-Za-z]))?\s*",
        text,
        re.IGNORECASE,
    )
    if not m:
        return text
    return "O(" + GROWTH_WORDS[m.group(1).lower()].format(n=m.group(2) or "t") + ")"


def _bool_words(part: Part, word: str) -> bool | None:
    """A yes/no part answered by naming its property: ``separable`` is true, ``not linearly separable`` false.
    Only the words of the part's key count; any other word leaves the answer unread."""
    key = {w for w in re.findall(r"[a-z]+", part.key.lower()) if len(w) > 2}
    words = re.findall(r"[a-z]+", word.lower())
    if not key or not key <= set(words):
        return None
    allowed = key | {"not", "isn", "t", "is", "it", "linearly", "the", "data", "are", "points", "problem"}
    if not set(words) <= allowed:
        return None
    return not ({"not", "isn"} & set(words))


def to_claim(part: Part, value: Any, reference: Any, table: Any, others: list[Any] | None = None) -> Any:
    """The answer as a claim of the part's kind (what the part's checks take); ``others`` collects the claim under
    the other reading of an ambiguous formula."""
    import sympy

    kind = part.kind
    _nested(value, 0)
    if kind in structured.KINDS:  # intervals and named factors: verify/answers/structured.py
        try:
            return structured.to_claim(kind, value, table)
        except structured.StructuredError as exc:
            raise Unparsable(str(exc)) from None
    if kind is Kind.INT and isinstance(value, str):
        span = RANGE.match(value)
        if span:
            raise Ambiguous(
                f"'{value.strip()}' gives a range, from {span.group(1)} to {span.group(2)}; the part asks for one number"
            )
        value = SUFFIX.sub(lambda m: f"{m.group(1)} \\times 10^{{{3 if m.group(2) in 'kK' else 6}}}", value)
    if kind is Kind.REAL and isinstance(value, str):
        value = SUFFIX.sub(lambda m: f"{m.group(1)} \\times 10^{{{3 if m.group(2) in 'kK' else 6}}}", value)
    if kind is Kind.INT:
        if isinstance(value, str) and THOUSANDS_POINT.match(value):
            grouped = int(value.replace(".", ""))
            if grouped == reference:
                raise Ambiguous(f"'{value.strip()}': a point as a thousands separator ({grouped}) or a decimal point?")
        n = _integer(value, table)
        m = SIZE_PRODUCT.match(value) if isinstance(value, str) else None
        if m and m.group(1) == m.group(2) and isinstance(reference, int) and int(m.group(1)) == reference:
            raise Ambiguous(
                f"'{value.strip()}' reads as a size ({m.group(1)} by {m.group(2)}) or as the product {n}; "
                "this part asks for one number"
            )
        return n
    if kind is Kind.REAL:
        v = _scalar(value, table, commas=True)
        if not isinstance(v, sympy.Basic) or _is_matrix(v) or not v.is_number:
            raise Wrong(f"expected a number, got {_what(v)}")
        return v
    if kind is Kind.BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            from verify.answers.normalize import normalize

            word = normalize(value).strip("{}() ").lower()
            first = re.match(r"^(true|false|yes|no)\b[\s,.;:!-]", word + " ")  # "No, it does not."
            word = first.group(1) if first else word
            if word in ("true", "yes", "t", "y", "1", "convex"):
                return True
            if word in ("false", "no", "f", "n", "0", "not convex"):
                return False
            said = _bool_words(part, word)
            if said is not None:
                return said
        raise Unparsable("expected true or false")
    if kind is Kind.SHAPE:
        shape = _shape_claim(value, table)
        unbatched = len(reference) <= 3  # (C, H, W) or less: one input, where a batch axis of 1 is a fair reading
        if unbatched and len(shape) == len(reference) + 1 and shape[0] == 1 and shape[1:] == tuple(reference):
            raise Ambiguous(
                f"{shape} adds a batch axis of 1 to {tuple(reference)}: the part asks for one unbatched input"
            )
        return shape
    if kind in (Kind.MATRIX, Kind.VECTOR):
        if isinstance(value, str) and VMATRIX.search(value):
            raise Ambiguous("vmatrix typesets a determinant: the matrix, or its determinant?")
        if isinstance(value, str) and _numpy_like(value):
            value = _numpy_print(value)
        if isinstance(value, str):
            v = _scalar(value, table)
            if isinstance(v, sympy.MatrixBase):
                value = v.tolist() if kind is Kind.MATRIX else list(v)
            elif isinstance(v, sympy.Tuple) and kind is Kind.VECTOR:
                value = list(v)
            else:
                raise Wrong(f"expected a {'matrix' if kind is Kind.MATRIX else 'vector'}, got {_what(v)}")
        if not isinstance(value, list):
            raise Wrong(f"expected a {'matrix' if kind is Kind.MATRIX else 'vector'}, got a single value")
        if kind is Kind.MATRIX:
            if not value or not all(isinstance(r, list) for r in value):
                raise Wrong("expected a list of rows")
            if len({len(r) for r in value}) != 1:
                raise Wrong("rows of different lengths")
            return [[_scalar(x, table) for x in r] for r in value]
        if value and all(isinstance(r, list) for r in value):  # a column or a row written as a nested list
            flat = [x for r in value for x in r]
            if all(len(r) == 1 for r in value) or len(value) == 1:
                value = flat
        return [_scalar(x, table) for x in value]
    if kind is Kind.SET:
        return _set_claim(part, value, reference, table)
    if kind is Kind.BIGO:
        lenient = replace(table, lenient=True)
        if isinstance(value, str):
            value = _growth_words(value)
        v = _scalar(value, lenient) if isinstance(value, str) else _number(value)
        if isinstance(v, sympy.Basic) and not _is_matrix(v) and not isinstance(v, sympy.Tuple):
            inner = v.expr if isinstance(v, sympy.Order) else v
            other = sorted(s.name for s in inner.free_symbols if s.name != "t")
            if other:
                raise Wrong(f"a growth class in {', '.join(other)}: the question asks how it grows with t")
        if isinstance(v, sympy.Order):
            return v
        if isinstance(v, sympy.Basic) and not _is_matrix(v) and not isinstance(v, sympy.Tuple):
            t = sympy.Symbol("t", positive=True)
            return sympy.Order(v.xreplace({s: t for s in v.free_symbols if s.name == "t"}), (t, sympy.oo))
        raise Wrong(f"expected a growth class such as O(t), got {_what(v)}")
    if kind is Kind.NETWORK:
        if isinstance(value, str):
            value = _network_from_text(value, table)
        if not isinstance(value, dict) or not {"W", "c", "w", "b"} <= set(value):
            raise Wrong("a network needs W, c, w and b (and optionally activation)")
        try:
            return {
                "activation": str(value.get("activation", "")),
                "W": [[float(_number(x)) for x in row] for row in value["W"]],
                "c": [float(_number(x)) for x in value["c"]],
                "w": [float(_number(x)) for x in value["w"]],
                "b": float(_number(value["b"])),
            }
        except (TypeError, ValueError) as exc:
            raise Wrong(f"a network's W, c, w, b hold numbers: {exc}") from None
    v = _scalar(value, table, others=others)
    if isinstance(v, sympy.Tuple):
        raise Wrong(f"expected one expression, got {_what(v)}")
    if type(v).__name__ in ("_Ones", "_Eye"):
        raise Wrong("a ones vector or an identity alone, with no matrix to give its size")
    if isinstance(v, sympy.Order):
        raise Wrong("a growth class O(·) where a formula is asked")
    return v


NUMPY_PRINT = re.compile(r"^[\[\]\s\d.eE+-]+$")


def _numpy_like(text: str) -> bool:
    return bool(NUMPY_PRINT.match(text)) and "[" in text and "," not in text


def _numpy_print(text: str) -> list[Any]:
    """A list as numpy prints it, without commas: [[-4. 5. 6.] [10. -4. -10.]] or [-8 -4]."""
    rows = re.findall(r"\[([^\[\]]*)\]", text)
    parsed = [[_number_token(t) for t in r.split()] for r in rows]
    return parsed if text.strip().startswith("[[") else parsed[0]


def _number_token(token: str) -> Any:
    import sympy

    try:
        return sympy.Rational(token.rstrip(".") or "0")
    except (TypeError, ValueError):
        raise Unparsable(f"cannot read '{token}' as a number") from None


def _shape_claim(value: Any, table: Any) -> tuple[int, ...]:
    from verify.answers.normalize import normalize

    if isinstance(value, str):  # "(100, 128, 256, 256)", "100 \times 128 \times 256 \times 256", "100x128"
        text = normalize(value)
        text = re.sub(r"^[^=]*=", "", text) if text.count("=") == 1 else text
        text = re.sub(r"^\s*(?:[A-Za-z_][\w.]*\s*\(\s*(.*)\s*\)|R\s*\^\s*\{(.*)\})\s*$", r"\1\2", text)
        value = [p for p in re.split(r"\*|,|(?<=\d)\s*x\s*(?=\d)|\s+", text.strip().strip("()[]{} ")) if p.strip()]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise Wrong(f"expected a shape such as [100, 128, 256, 256], got the single number {value}")
    if not isinstance(value, list) or not value:
        raise Unparsable("expected a shape such as [100, 128, 256, 256]")
    out = []
    for x in value:
        n = _scalar(x, table) if isinstance(x, str) else _number(x, "an integer")
        if not getattr(n, "is_Integer", False) or n < 0:
            raise Wrong(f"a shape holds non-negative integers, got {n}")
        out.append(int(n))
    return tuple(out)


def _split_top(text: str) -> list[str]:
    """Items of a comma-separated list, splitting only at commas outside brackets."""
    items, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [i.strip() for i in items if i.strip()]


def _set_items(value: Any) -> list[Any] | None:
    """A set written as text (\\{B, H, W\\}, {1}, \\{(1, 0)\\}) as its items; None for 'impossible' and ∅."""
    from verify.answers.normalize import normalize

    if not isinstance(value, str):
        return value if isinstance(value, list) else [value]
    text = value.replace(r"\{", "{").replace(r"\}", "}")
    text = normalize(text)
    if text.lower().strip(" {}") in ("impossible", "\\emptyset", "", "empty", "no solution", "not possible"):
        return None
    text = re.sub(r"^[^=]*=", "", text) if text.count("=") == 1 else text
    text = text.strip()
    if text[:1] + text[-1:] in ("{}", "()", "[]"):
        text = text[1:-1]
    return _split_top(text)


def _axis(item: str, names: tuple[str, ...]) -> str:
    """A name in a set of names: as written, in the other case (b for B), or by position (torch's dim 0 for B)."""
    item = item.strip().strip("{}() ")
    if item in names:
        return item
    same = [n for n in names if n.lower() == item.lower()]
    if len(same) == 1:
        return same[0]
    if item.isdigit() and int(item) < len(names):
        return names[int(item)]
    return item


def _set_claim(part: Part, value: Any, reference: Any, table: Any) -> Any:
    """A set part takes one member, a set of members (a list, or braces), or 'impossible' (the empty set)."""
    import sympy

    members = list(reference) if reference else []
    braces = isinstance(value, str) and re.match(r"^\s*\$?\s*(\\left)?\s*\\?\{", value) is not None
    if isinstance(value, str) and value.strip().lower() in ("none", "no"):
        raise Ambiguous(f"'{value.strip()}': no valid value (the empty set), or a value of none (0)?")
    items = _set_items(value)
    if items is None:
        return ("member", None)
    if members and isinstance(members[0], str):  # a set of names, such as reduced axes
        names = [_axis(str(i), part.symbols) for i in items]
        runs = [n for n in names if n not in part.symbols and all(_axis(ch, part.symbols) in part.symbols for ch in n)]
        for run in runs:  # BHW: a run of one-letter axis names
            names.remove(run)
            names += [_axis(ch, part.symbols) for ch in run]
        return ("set", frozenset(names))

    def item(x: Any) -> Any:
        if isinstance(x, list):
            return tuple(int(_number(y)) for y in x)
        v = _scalar(x, table) if isinstance(x, str) else _number(x, "an integer")
        if isinstance(v, sympy.Tuple):
            return tuple(int(_number(y)) for y in v)
        if isinstance(v, sympy.MatrixBase):
            return tuple(int(y) for y in v)
        if not getattr(v, "is_Integer", False):
            raise Wrong(f"a member of this set is an integer or a pair, got {v}")
        return int(v)

    try:
        got = [item(x) for x in items]
    except (TypeError, ValueError) as exc:
        raise Wrong(f"a member of this set is an integer or a pair: {exc}") from None
    pair = bool(members) and isinstance(members[0], tuple)
    if pair and got and all(isinstance(g, int) for g in got):
        if len(got) != len(members[0]):
            raise Wrong(f"a member of this set is a pair such as (1, 0), got {len(got)} numbers")
        return ("member", tuple(got))
    if len(got) == 1 and not braces and not isinstance(value, list):
        return ("member", got[0])
    return ("set", frozenset(got))


def _network_from_text(text: str, table: Any) -> dict[str, Any]:
    """'activation = relu, W = [[1, 1], [1, 1]], c = …' (as the report prints a network) as a table."""
    from verify.answers.normalize import normalize

    out: dict[str, Any] = {}
    for item in _split_top(normalize(text).replace(r"\ ", " ")):
        if "=" not in item:
            raise Unparsable(f"expected 'name = value' items, got '{item[:40]}'")
        key, val = (p.strip() for p in item.split("=", 1))
        if key == "activation":
            out[key] = val.strip("{}\\ ")
            continue
        v = _scalar(val, table)
        out[key] = v.tolist() if isinstance(v, __import__("sympy").MatrixBase) else v
    for key in ("c", "w"):
        if isinstance(out.get(key), list):
            out[key] = [x for r in out[key] for x in (r if isinstance(r, list) else [r])]
    return out


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
    """(verdict, method, evidence) from the part's own checks on the claim; the first failing check decides, and the
    checks after it are not run."""
    from verify.model import Context, Status
    from verify.runner import run_check

    results = []
    for check in part.checks:
        results.append(run_check(check, claim, Context(), limit=None))
        if results[-1].status is Status.FAIL:
            break
    methods = ", ".join(f"{r.method}: {r.check}" for r in results)
    bad = [r for r in results if r.status is Status.FAIL]
    errs = [r for r in results if r.status is Status.ERROR]
    if bad:
        return "incorrect", methods, bad[0].evidence
    if errs:
        return "undecided", methods, errs[0].evidence
    return "correct", methods, results[0].evidence if results else ""


def _interval(spec: str) -> Any:
    """'[0, 1)' or '(0, oo)' as a test on a number."""
    m = re.fullmatch(r"\s*([\[(])\s*([-\d./]+|-oo)\s*,\s*([-\d./]+|oo)\s*([\])])\s*", spec)
    if not m:
        raise VerifyError(f"a domain interval such as '[0, 1)', got '{spec}'")
    lo_closed, hi_closed = m.group(1) == "[", m.group(4) == "]"
    lo = -math.inf if m.group(2) == "-oo" else eval_fraction(m.group(2))
    hi = math.inf if m.group(3) == "oo" else eval_fraction(m.group(3))

    def inside(x: float) -> bool:
        return (lo <= x if lo_closed else lo < x) and (x <= hi if hi_closed else x < hi)

    return inside


def eval_fraction(text: str) -> float:
    """A number written as an integer, a decimal or a fraction p/q (a part's own declared data)."""
    num, _, den = text.partition("/")
    return float(num) / float(den) if den else float(num)


def _valid_points(part: Part, *exprs: Any) -> Any:
    """Points inside the statement's domain where the given expressions are real numbers: where comparisons look, so
    that a counterexample is a point the question allows, in real numbers."""
    tests = {name: _interval(spec) for name, spec in part.domain}

    def valid(point: dict[Any, Any]) -> bool:
        for s, v in point.items():
            test = tests.get(s.name)
            if test is not None and not test(float(v)):
                return False
        for e in exprs:
            try:
                if e.xreplace(point).is_real is False:
                    return False
            except (TypeError, ValueError, AttributeError):
                continue
        return True

    return valid


CONCRETE = ("F(u) = sin(3u) + u³/7", "F(u) = exp(u/5) + 2u²")


def _concrete_functions(*exprs: Any) -> list[Any]:
    """Undefined functions (F(x)) replaced by a concrete smooth function, so derivatives of them can be compared at
    points; two different functions are used, and equality must hold for both."""
    import sympy

    u = sympy.Dummy("u")
    outs = []
    for f in (sympy.Lambda(u, sympy.sin(3 * u) + u**3 / 7), sympy.Lambda(u, sympy.exp(u / 5) + 2 * u**2)):
        row = []
        for e in exprs:
            fns = {type(a) for a in e.atoms(sympy.core.function.AppliedUndef)} if isinstance(e, sympy.Basic) else set()
            for fn in fns:
                e = e.replace(fn, f)
            row.append(e.doit() if fns else e)
        outs.append(row)
    return outs


def _equal(part: Part, claim: Any, reference: Any) -> Any:
    """Equality by meaning, inside the part's domain; undefined functions made concrete first."""
    import sympy

    from verify.symbolic import equal

    a, b = _expand_functions(claim), _expand_functions(reference)
    undefined = any(isinstance(x, sympy.Basic) and x.atoms(sympy.core.function.AppliedUndef) for x in (a, b))
    if not undefined:
        cmp = equal(a, b, valid=_valid_points(part, a, b))
        if cmp.equal and cmp.detail.startswith("equal at 0 "):  # the answer is nowhere real where the reference is
            cmp = equal(a, b, valid=_valid_points(part, b))
            if not cmp.equal:
                return replace(cmp, detail="the answer is not a real number inside the question's domain")
        return cmp
    results = []
    for (a2, b2), what in zip(_concrete_functions(a, b), CONCRETE, strict=True):
        cmp = equal(a2, b2, valid=_valid_points(part, b2))
        if not cmp.equal:
            return replace(cmp, detail=f"{cmp.detail}, taking {what} for the unknown function")
        results.append(cmp)
    return replace(results[-1], detail=f"{results[-1].detail}, for two different concrete functions")


def _growth(claim: Any, reference: Any) -> tuple[bool, str]:
    """Whether two O(·) terms in t are the same growth class: their ratio tends to a finite nonzero limit."""
    import sympy

    t = sympy.Symbol("t", positive=True)
    a, b = claim.expr, reference.expr
    ratio = sympy.limit(sympy.simplify(a / b), t, sympy.oo)
    ok = ratio.is_finite is True and ratio != 0
    return ok, f"expected O({sympy.sstr(b)}), given O({sympy.sstr(a)})"


EVIDENCE_SECONDS = 1.5  # a check run only for extra evidence on a wrong answer gets this long, then is left out


def _first_failure(part: Part, claim: Any) -> str:
    """The evidence of the first of the part's checks that fails on the claim (the rest are not run); a check that
    runs past :data:`EVIDENCE_SECONDS` adds nothing."""
    from verify.model import Context, Status
    from verify.runner import run_check

    for check in part.checks:
        result = run_check(check, claim, Context(), limit=EVIDENCE_SECONDS)
        if result.status is Status.FAIL:
            return result.evidence
    return ""


def compare(part: Part, claim: Any, reference: Any) -> tuple[str, str, str]:
    """(verdict, method, evidence) for a claim of the part's kind against the verified reference."""
    import sympy

    kind = part.kind
    if kind in structured.KINDS:
        return structured.compare(part, claim, reference)
    if kind is Kind.SET:
        how, v = claim
        ref_set = frozenset(reference)
        shown = "{" + ", ".join(map(str, sorted(ref_set))) + "}"
        if how == "member":
            ok = (v is None and not ref_set) or (v is not None and v in ref_set)
            what = "impossible" if v is None else str(v)
            return (
                "correct" if ok else "incorrect",
                "exact membership",
                f"the verified set is {shown}; {what} {'is' if ok else 'is not'} "
                f"{'the empty set' if v is None else 'a member'}",
            )
        return ("correct" if v == ref_set else "incorrect", "exact set equality", f"the verified set is {shown}")
    if kind is Kind.NETWORK:
        return _run_checks(part, claim)
    if kind is Kind.EXPR and (_is_matrix_expr(claim) or _is_matrix_expr(reference)):
        verdict, methods, evidence = _run_checks(part, claim)
        return verdict, "random instances (" + methods + ")", evidence
    if kind is Kind.EXPR:
        if any(isinstance(x, sympy.MatrixBase) for x in (claim, reference)):
            return "incorrect", "exact", "a matrix where a formula is expected"
        cmp = _equal(part, claim, reference)
        return ("correct" if cmp.equal else "incorrect", cmp.method, cmp.detail)
    if kind is Kind.VECTOR:
        if len(claim) != len(reference):
            return "incorrect", "exact", f"{len(claim)} entries, expected {len(reference)}"
        for i, (x, y) in enumerate(zip(claim, reference, strict=True)):
            cmp = _equal(part, x, y)
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
        ok, evidence = _growth(claim, reference)
        return ("correct" if ok else "incorrect", "growth class", evidence)
    if kind is Kind.REAL:
        tol = 1e-9 * max(1.0, abs(float(reference)))
        err = abs(float(claim) - float(reference))
        return ("correct" if err <= tol else "incorrect", "numeric", f"difference {err:.3g} (tolerance {tol:.1g})")
    ok = claim == (tuple(reference) if kind is Kind.SHAPE else reference)
    return ("correct" if ok else "incorrect", "exact", f"expected {reference}, given {claim}")


def _rounded(value: Any, claim: Any, reference: Any) -> str:
    """A note when a decimal or scientific number is close to an exact reference: the answer was rounded."""
    import sympy

    if not (isinstance(value, (str, float)) and (isinstance(value, float) or DECIMAL.search(value))):
        return ""
    try:
        a, b = sympy.Integer(claim) if isinstance(claim, int) else claim, reference
        if not (getattr(a, "is_number", False) and (isinstance(b, int) or getattr(b, "is_number", False))) or b == 0:
            return ""
        rel = abs(float(a) - float(b)) / abs(float(b))
    except (TypeError, ValueError):
        return ""
    if 0 < rel < 0.05:
        return f"a rounded value ({rel:.2%} off): this part's answer is exact, {reference}"
    return ""


def _in_form(part: Part, text: str) -> bool:
    """Whether the answer text uses one of the names the question asks the answer to be written in."""
    from verify.answers.normalize import normalize

    words = set(re.findall(r"[A-Za-z]+", normalize(text)))
    return any(name in words for name in part.form)


# ---- grading one answer --------------------------------------------------------------------------------------------


@dataclass
class Reference:
    """What grading a part needs, derived once per process: the reference, its LaTeX, accepted values, names."""

    answer: Any  # with the statement's definitions substituted (y = σ(x)), as answers are read
    latex: str
    accepted: tuple[tuple[str, Any], ...]
    table: Any


_REFERENCES: dict[tuple[str, str], Reference] = {}


def reference_for(problem: Problem, part: Part, derivation: Derivation | None = None) -> Reference:
    """The part's reference in the grader's terms, remembered per (problem, part); ``derivation``: one already made
    (by a run of the bank) to use instead of deriving again."""
    key = (problem.id, part.key)
    ref = _REFERENCES.get(key)
    if ref is None:
        from verify.runner import derive

        derivation = derivation or derive(part)
        answer = derivation.answer
        table = symbol_table(part, answer) if part.kind is not Kind.TEXT else None
        subs = definitions(part, answer)
        accepted = tuple((c, v.xreplace(subs) if subs else v) for c, v in derivation.accepted)
        shown = derivation.latex or _latex(answer)
        ref = Reference(answer.xreplace(subs) if subs else answer, shown, accepted, table)
        _REFERENCES[key] = ref
    return ref


def grade_one(problem: Problem | None, answer: Answer) -> Verdict:
    """Grade one answer (in-process; :func:`grade_answers` runs it in a worker). Every answer gets a verdict: a
    failure inside the grader is reported as ``undecided`` with what failed, never raised."""
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
    try:
        _grade_part(problem, part, answer, v)
    except Exception as exc:  # a bug in grading must still leave a verdict
        v.verdict, v.method = "undecided", ""
        v.evidence = (
            f"the grader could not decide: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        )
    return v


def _grade_part(problem: Problem, part: Part, answer: Answer, v: Verdict) -> None:
    from verify.answers.diagnose import diagnose

    ref = reference_for(problem, part)
    reference = ref.answer
    v.expected = ref.latex
    if part.kind is Kind.TEXT:
        v.verdict, v.method, v.evidence = "ungraded", "", "explanations are shown, never graded"
        return
    others: list[Any] = []
    value = answer.value
    if isinstance(value, str) and part.kind not in structured.KINDS:  # words are a structured part's answer
        from verify.answers.spoken import alternatives, balanced, preread

        if not balanced(value):
            v.verdict, v.evidence = "unparsable", "the brackets do not pair up"
            return
        if part.kind not in (Kind.BOOL, Kind.BIGO) and _words_only(value, ref.table):
            v.verdict, v.evidence = "unparsable", "words, not math: no value to read"
            return
        options, joiner = alternatives(value)
        if len(options) > 1:
            _hedged(problem, part, answer, options, joiner, v)
            return
        value = preread(value)
    try:
        claim = to_claim(part, value, reference, ref.table, others)
    except Unparsable as exc:
        unknown = re.search(r"unknown symbol '([A-Za-z])'", str(exc))
        if unknown and any(n.startswith(unknown.group(1) + "_") for n in ref.table.names):
            known = ", ".join(sorted(n for n in ref.table.names if n.startswith(unknown.group(1) + "_")))
            v.verdict, v.method = "undecided", "reading"
            v.evidence = f"uses {unknown.group(1)}, which the part does not define (it defines {known})"
            return
        if unknown and part.kind is not Kind.BIGO:
            try:
                loose = to_claim(part, value, reference, replace(ref.table, lenient=True))
            except (Unparsable, Wrong, Ambiguous):
                pass
            else:
                v.verdict, v.method = "incorrect", "reading"
                v.evidence = f"uses {unknown.group(1)}, which the part does not define"
                meant = _meant(part, loose, reference, ref.table)
                if meant:
                    v.verdict, v.evidence = (
                        "undecided",
                        f"{v.evidence}; if {unknown.group(1)} means {meant}, it is right",
                    )
                return
        v.verdict, v.evidence = "unparsable", str(exc)
        return
    except Wrong as exc:
        v.verdict, v.method, v.evidence = "incorrect", "reading", str(exc)
        return
    except Ambiguous as exc:
        v.verdict, v.method, v.evidence = "undecided", "reading", str(exc)
        return
    v.parsed = _latex(claim[1] if part.kind is Kind.SET else claim)
    v.verdict, v.method, v.evidence = compare(part, claim, reference)
    for convention, value in ref.accepted if v.verdict == "incorrect" else ():
        verdict, method, evidence = compare(part, claim, value)
        if verdict == "correct":  # the question leaves this convention open: accepted, and named
            v.verdict, v.method = "correct", f"{method}, under the convention '{convention}'"
            v.evidence = f"{evidence}; the reference, {_latex(reference)}, is under the part's own convention"
            break
    for other in others:  # a / b c or a + b mod c: when the two readings differ in verdict, the text decides nothing
        verdict, _, _ = compare(part, other, reference)
        if verdict != v.verdict and "correct" in (verdict, v.verdict):
            right = "the first" if v.verdict == "correct" else "the second"
            v.verdict, v.method, v.diagnosis = "undecided", "reading", ""
            v.evidence = (
                f"the text reads two ways, as {_latex(claim)} or as {_latex(other)}, and only {right} is right: "
                "brackets would decide"
            )
            return
    if v.verdict == "correct" and part.form and isinstance(answer.value, str) and not _in_form(part, answer.value):
        v.verdict, v.diagnosis = "undecided", ""
        v.evidence = f"equal in value, but not written in terms of {' or '.join(part.form)} as the question asks"
        return
    if v.verdict == "incorrect":
        rounded = _rounded(answer.value, claim, reference)
        if rounded:
            v.evidence = f"{v.evidence}; {rounded}"
        v.diagnosis = "rounded" if rounded else diagnose(part, claim, reference, problem.topics)
        if part.kind in (Kind.SHAPE, Kind.INT, Kind.MATRIX) and not rounded:  # what the real layers say as well
            evidence = _first_failure(part, claim)
            if evidence and evidence not in v.evidence:
                v.evidence = f"{v.evidence}; {evidence}"


def _meant(part: Part, claim: Any, reference: Any, table: Any) -> str:
    """The part's symbol that, written for the claim's one unknown letter, makes the claim right ('' if none)."""
    import sympy

    if not isinstance(claim, sympy.Basic) or _is_matrix(claim):
        return ""
    unknown = [s for s in claim.free_symbols if s.name not in table.names]
    if len(unknown) != 1:
        return ""
    for name, known in sorted(table.names.items()):
        if not isinstance(known, sympy.Symbol):
            continue
        try:
            if compare(part, claim.xreplace({unknown[0]: known}), reference)[0] == "correct":
                return name
        except Exception:
            continue
    return ""


def _words_only(text: str, table: Any) -> bool:
    """Prose with no math: only letters and spaces, two or more words, none of them a name of the part."""
    words = text.split()
    return (
        bool(re.fullmatch(r"[A-Za-z ,.'-]+", text))
        and len(words) >= 2
        and not any(w.strip(",.") in table.names for w in words)
    )


def _hedged(problem: Problem, part: Part, answer: Answer, options: list[str], joiner: str, v: Verdict) -> None:
    """An answer offering several values: correct only when every one is right; unparsable when one cannot be read.
    Values joined by 'or' hedge (a right and a wrong one: incorrect); by 'and', they may answer two questions in one
    (a right and a wrong one: undecided)."""
    graded = []
    for option in options:
        one = Verdict(answer.id, answer.part, "", option)
        _grade_part(problem, part, Answer(answer.id, answer.part, option), one)
        graded.append(one)
    verdicts = [g.verdict for g in graded]
    listed = "; ".join(f"{o}: {g.verdict}" for o, g in zip(options, graded, strict=True))
    if "unparsable" in verdicts:
        v.verdict, v.evidence = "unparsable", f"gives several values, not all readable ({listed})"
    elif all(x == "correct" for x in verdicts):
        v.verdict, v.method, v.evidence = "correct", graded[0].method, f"every value given is right ({listed})"
    elif joiner == "and" and "correct" in verdicts:
        v.verdict, v.method = "undecided", "reading"
        v.evidence = f"gives several values joined by 'and': which one answers this part? ({listed})"
    elif "correct" in verdicts or all(x == "incorrect" for x in verdicts):
        v.verdict, v.method = "incorrect", "reading"
        v.evidence = f"gives several values, and a grader takes none of a hedge ({listed})"
    else:
        v.verdict, v.method, v.evidence = "undecided", "reading", f"gives several values ({listed})"


def grade_here(problem: Problem | None, answer: Answer, timeout: float = DEFAULT_TIMEOUT) -> Verdict:
    """Grade one answer in this process under a time limit (for the bank's own answer files, such as the source
    write-ups; answers from outside go through :func:`grade_answers`, whose workers also cap memory)."""
    from verify.runner import CheckTimeout, time_limit

    try:
        with time_limit(timeout):
            return grade_one(problem, answer)
    except CheckTimeout:
        return Verdict(
            answer.id, answer.part, "undecided", answer.given(), evidence=f"grading ran past its {timeout:g} s limit"
        )


def grade_isolated(problem: Problem | None, answer: Answer, timeout: float = DEFAULT_TIMEOUT) -> Verdict:
    """Grade one answer in a forked worker of the grading pool, under its hard time and memory limits."""
    from verify.answers.pool import grade_many

    problems = {answer.id: problem} if problem is not None else {}
    return grade_many(problems, [answer], timeout, 1)[0]


def warm_up() -> None:
    """Import and first-call what grading uses, once, so that forked workers start with it loaded: the answer
    grammar, sympy's simplification and limits, torch's convolution kernels and the counting diagnosis. Settled
    (:func:`verify.runner.settled`): the collector paused meanwhile, and what it made frozen."""
    from verify.runner import settled

    with settled():
        import sympy
        import torch

        import verify.answers.diagnose
        import verify.answers.pool
        import verify.count.diagnose  # noqa: F401
        from verify.answers import parse

        parse._parser()
        x = sympy.Symbol("x", positive=True)
        sympy.simplify(sympy.floor(x / 2) - sympy.Mod(x, 2) + sympy.exp(-x) / (1 + sympy.exp(-x)) ** 2)
        sympy.limit(sympy.log(x) / x, x, sympy.oo)
        with torch.no_grad():
            torch.nn.functional.conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3))


def check_ids(bank: Any, answers: list[Answer]) -> None:
    """Raise VerifyError, with the reason, for an id that cannot name an instance (a malformed ``ID@seed=N``, a seed
    out of range, a question without parameters); an id of no question at all is left to grade as ``unknown``."""
    for i in sorted({a.id for a in answers}):
        bank.find(i)


def grade_answers(
    bank: Any,
    answers: list[Answer],
    timeout: float = DEFAULT_TIMEOUT,
    jobs: int = 2,
    on_done: Any = None,
) -> list[Verdict]:
    """A verdict for every answer, in order, graded by a pool of ``jobs`` forked workers under the hard limits
    (:mod:`verify.answers.pool`)."""
    from verify.answers.pool import grade_many

    problems: dict[str, Problem] = {}
    refused: dict[str, str] = {}  # an id that cannot name an instance: its answers are unknown, with the reason
    for i in sorted({a.id for a in answers}):
        try:
            found = bank.find(i)  # ids of variants (ID@seed=N) too
        except VerifyError as exc:
            refused[i] = str(exc)
            continue
        if found is not None:
            problems[i] = found
    verdicts = grade_many(problems, answers, timeout, jobs, on_done)
    for v in verdicts:
        if v.id in refused:
            v.evidence = refused[v.id]
    return verdicts


def summary(verdicts: list[Verdict]) -> dict[str, int]:
    out = {k: 0 for k in VERDICTS}
    for v in verdicts:
        out[v.verdict] += 1
    out["total"] = len(verdicts)
    return out
