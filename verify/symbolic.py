"""sympy helpers: comparison by meaning, exact evaluation at points, and LaTeX of the bank's values.

Expressions are compared by meaning, never by form: first as rational functions (exponentials and hyperbolic functions
written with exp) in sympy's field of rational functions, which proves most identities in milliseconds; then
``simplify(a - b) == 0``; where neither decides (floors, modulo, piecewise), by exact evaluation at random points of the
symbols' domains (integers for sizes).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sympy
from sympy.polys.fields import sfield
from sympy.printing.latex import LatexPrinter

from verify.checks import as_sympy


@dataclass(frozen=True)
class Comparison:
    equal: bool
    method: str  # "rational function", "simplify" or "random points"
    detail: str  # the counterexample when unequal, else how many points were tried


def sample_point(symbols: Iterable[sympy.Symbol], rng: random.Random, int_range: tuple[int, int] = (1, 40)) -> dict:
    """A random point in the symbols' domains: integers for integer symbols, positive rationals otherwise."""
    point: dict[sympy.Symbol, sympy.Expr] = {}
    for s in sorted(symbols, key=lambda s: s.name):
        if s.is_integer:
            lo = 0 if s.is_nonnegative and not s.is_positive else int_range[0]
            point[s] = sympy.Integer(rng.randint(lo, int_range[1]))
        elif s.is_positive:
            point[s] = sympy.Rational(rng.randint(1, 400), rng.randint(1, 97))
        else:
            point[s] = sympy.Rational(rng.randint(-400, 400), rng.randint(1, 97))
    return point


def equal(a: Any, b: Any, *, points: int = 60, seed: int = 0, valid: Any = None) -> Comparison:
    """Compare two sympy expressions by meaning.

    ``valid`` optionally filters random points (a callable taking the point dict), e.g. to keep only configurations in
    which a layer is defined.

    >>> x = sympy.Symbol("x")
    >>> equal(sympy.tanh(x), 2 / (1 + sympy.exp(-2 * x)) - 1).equal
    True
    >>> H, S = sympy.symbols("H S", integer=True, positive=True)
    >>> equal(sympy.floor(H / S), H // S).equal
    True
    >>> equal(sympy.floor(H / S), sympy.ceiling(H / S)).equal
    False
    """
    a, b = as_sympy(a), as_sympy(b)
    zero = rational_zero((a - b).rewrite(sympy.exp))
    if zero:
        return Comparison(True, "rational function", "the difference is 0 as a rational function")
    try:  # a difference that is a nonzero rational function of independent symbols is not 0: points show where
        if zero is None and sympy.simplify(a - b) == 0:
            return Comparison(True, "simplify", "the difference simplifies to 0")
    except (TypeError, ValueError, NotImplementedError):  # simplify gives up on some piecewise and modular forms
        pass
    rng = random.Random(seed)
    symbols = a.free_symbols | b.free_symbols
    tried = 0
    for _ in range(points * 20):
        if tried >= points:
            break
        point = sample_point(symbols, rng)
        if valid is not None and not valid(point):
            continue
        tried += 1
        va, vb = a.xreplace(point), b.xreplace(point)
        diff = sympy.simplify(va - vb) if not (va.is_number and vb.is_number) else va - vb
        if diff != 0 and not (diff.is_number and abs(complex(diff)) < 1e-12):
            at = ", ".join(f"{k}={v}" for k, v in point.items())
            return Comparison(False, "random points", f"at {at}: {va} ≠ {vb}")
    return Comparison(True, "random points", f"equal at {tried} random points")


def rational_zero(v: Any) -> bool | None:
    """Whether ``v`` is 0 as a rational function of its generators (symbols, and any other subexpression such as exp(x)
    or floor(n/2) as a further unknown), decided by sparse polynomial arithmetic in sympy's field of rational functions.

    True when it is 0 there (then it is 0); False when it is not and every generator is a symbol (independent
    unknowns); None otherwise (sqrt(2) or exp(x) as a generator may obey relations the field does not know).

    >>> x, y = sympy.symbols("x y")
    >>> rational_zero(x / (1 + x) + 1 / (1 + x) - 1), rational_zero(x - y), rational_zero(sympy.floor(x) - 1)
    (True, False, None)
    """
    try:
        field, f = sfield(v)
    except Exception:  # not a rational function of anything sympy can name
        return None
    if f == 0:
        return True
    return False if all(isinstance(g, sympy.Symbol) for g in field.symbols) else None


def evaluate(expr: Any, values: dict[str, Any]) -> Any:
    """Evaluate a sympy expression exactly at named values (ints stay exact)."""
    expr = as_sympy(expr)
    by_name = {s.name: s for s in expr.free_symbols}
    subs = {by_name[k]: sympy.sympify(v) for k, v in values.items() if k in by_name}
    return expr.xreplace(subs)


def latex(value: Any) -> str:
    """LaTeX of a value of any answer kind (expressions, numbers, tuples, matrices, sets, bools)."""
    if isinstance(value, bool):
        return r"\text{true}" if value else r"\text{false}"
    if isinstance(value, (set, frozenset)):
        if not value:
            return r"\emptyset"
        return r"\{" + ", ".join(_text(v) if isinstance(v, str) else latex(v) for v in sorted(value)) + r"\}"
    if isinstance(value, tuple):
        return "(" + ", ".join(latex(v) for v in value) + ")"
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            return sympy.latex(sympy.Matrix(value))
        return sympy.latex(sympy.Matrix(value).T)
    if isinstance(value, dict):
        return r",\ ".join(f"{k} = {latex(v)}" for k, v in value.items())
    if hasattr(value, "latex") and not isinstance(value, sympy.Basic):  # structured answers (intervals)
        return str(value.latex())
    if isinstance(value, str):
        return _text(value)
    return _Printer().doprint(value)


class _Printer(LatexPrinter):  # type: ignore[misc]
    """sympy's LaTeX, but a column of ones prints as 1 with its size (sympy prints a bare 1, read back as a scalar)."""

    def _print_OneMatrix(self, expr: Any) -> str:
        rows, cols = expr.shape
        size = self._print(rows) if cols == 1 else f"{self._print(rows)} \\times {self._print(cols)}"
        return rf"\mathbf{{1}}_{{{size}}}"


def _text(name: str) -> str:
    """A name in math mode: upright text, with TeX's special characters escaped."""
    safe = "".join("\\" + c if c in "#$%&_{}" else c for c in name if c not in "\\^~")
    return r"\text{" + safe + "}" if len(name) > 1 else safe


def matrix_latex(rows: Sequence[Sequence[Any]]) -> str:
    return sympy.latex(sympy.Matrix(rows))
