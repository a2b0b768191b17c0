"""Matrix-valued claims: sympy matrix expressions evaluated exactly at random instances of several sizes.

A claim such as ``w0 − (2η/n) Xᵀ(X w0 − t)`` is a sympy expression over ``MatrixSymbol``s whose shapes use the size
symbols ``n`` and ``d``. :func:`instances` draws random rational matrices for sizes with d > n, d < n and n = 1;
:func:`evaluate` substitutes one instance and returns an explicit matrix (or a scalar for 1×1 results), so a claim can
be compared exactly with sympy's own derivative and numerically with torch's autograd.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy

from verify.checks import as_sympy
from verify.symbolic import rational_zero

n, d = sympy.symbols("n d", integer=True, positive=True)
SIZES: tuple[tuple[int, int], ...] = ((2, 3), (3, 2), (1, 3), (3, 5))  # (n, d): d > n, d < n, n = 1, ...


@dataclass(frozen=True)
class Instance:
    """Concrete values: sizes, scalars (exact rationals) and matrices (explicit sympy matrices)."""

    sizes: dict[str, int]
    scalars: dict[str, Any]
    matrices: dict[str, sympy.ImmutableMatrix]

    def describe(self) -> str:
        return f"n={self.sizes['n']}, d={self.sizes['d']}" + "".join(f", {k}={v}" for k, v in self.scalars.items())


def random_matrix(rng: random.Random, rows: int, cols: int) -> sympy.ImmutableMatrix:
    return sympy.ImmutableMatrix(rows, cols, lambda i, j: sympy.Rational(rng.randint(-9, 9), rng.randint(1, 4)))


def _size(spec: Any, sub: dict[Any, int]) -> int:
    """A matrix dimension given as an int or as 'n' / 'd' (or an expression in them), at concrete sizes."""
    if isinstance(spec, int):
        return spec
    return int(_size_expr(spec).xreplace(sub))


@functools.cache
def _size_expr(spec: str) -> Any:
    """A size written in the bank's own problem code ('n', 'd', 'n + 1'), read once per process."""
    return sympy.sympify(spec, locals={"n": n, "d": d})


def instances(
    shapes: Mapping[str, tuple[Any, Any]],
    scalars: Mapping[str, Callable[[random.Random], Any]],
    derived: Mapping[str, Callable[[dict[str, sympy.ImmutableMatrix]], sympy.ImmutableMatrix]] | None = None,
    sizes: Sequence[tuple[int, int]] = SIZES,
    per_size: int = 1,
    seed: int = 0,
) -> list[Instance]:
    """Random instances: each matrix named in ``shapes`` (rows, cols given with n, d or ints) drawn at random, each
    scalar drawn by its function, and each ``derived`` matrix computed from the others (e.g. a = X w0 − t)."""
    rng = random.Random(seed)
    out = []
    for nn, dd in sizes:
        for _ in range(per_size):
            sub = {n: nn, d: dd}
            mats = {name: random_matrix(rng, _size(r, sub), _size(c, sub)) for name, (r, c) in shapes.items()}
            for name, fn in (derived or {}).items():
                mats[name] = fn(mats)
            out.append(Instance({"n": nn, "d": dd}, {k: f(rng) for k, f in scalars.items()}, mats))
    return out


def evaluate(expr: Any, inst: Instance) -> Any:
    """The claim at one instance, exactly: an explicit matrix, or a number where the result is 1×1 or scalar."""
    expr = as_sympy(expr)
    by_name = {s.name: s for s in expr.free_symbols if isinstance(s, sympy.Symbol)}
    scal = {by_name[k]: v for k, v in {**inst.sizes, **inst.scalars}.items() if k in by_name}
    scal.update({s: inst.sizes[s.name] for s in (n, d)})
    e = expr.xreplace(scal)
    mats = {m: inst.matrices[m.name] for m in e.atoms(sympy.MatrixSymbol) if m.name in inst.matrices}
    missing = {m.name for m in e.atoms(sympy.MatrixSymbol)} - set(inst.matrices)
    if missing:
        raise ValueError(f"no value for {', '.join(sorted(missing))}")
    value = explicit(e.xreplace(mats).replace(lambda x: isinstance(x, sympy.Inverse), lambda x: inverse(x.arg.doit())))
    if isinstance(value, sympy.MatrixBase):
        value = sympy.ImmutableMatrix(value)
        return value[0, 0] if value.shape == (1, 1) else value
    return value


def explicit(expr: Any) -> Any:
    """A matrix expression over explicit matrices, evaluated: its sized ones, identity and zero matrices written out
    first (left as they are, sympy's doit sums each entry of a product with them as a symbolic Sum, 0.1 s a product)."""
    special = (sympy.OneMatrix, sympy.Identity, sympy.ZeroMatrix)

    def sized(x: Any) -> bool:
        return isinstance(x, special) and all(getattr(k, "is_Integer", False) for k in x.shape)

    return expr.replace(sized, lambda x: sympy.ImmutableMatrix(x.as_explicit())).doit()


def inverse(matrix: Any) -> Any:
    """The exact inverse of an explicit matrix: its adjugate over its determinant, refused where that is exactly 0.

    sympy's own inverses decide invertibility with ``det.equals(0)``, which samples the entries numerically and costs
    far more than the inverse itself on symbolic entries (such as (XXᵀ)⁻¹ of a symbolic X)."""
    m = sympy.Matrix(matrix)
    det = m.det(method="berkowitz")
    if is_zero(det):
        raise ValueError("the matrix is singular (its determinant is 0)")
    return sympy.ImmutableMatrix(m.adjugate(method="berkowitz") / det)


def is_zero(value: Any) -> bool:
    """Exactly zero (a matrix entry by entry). Decided in sympy's field of rational functions of the value's generators
    (sparse polynomial arithmetic, fast) where that can decide; else cancelled and simplified."""
    if isinstance(value, sympy.MatrixBase):
        return all(is_zero(v) for v in value)
    v = as_sympy(value)
    decided = rational_zero(v)
    if decided is not None:
        return decided
    v = sympy.cancel(v)
    return v == 0 or sympy.simplify(v) == 0


def to_float(value: Any) -> Any:
    """A numpy array (or float) of an exact value, for comparison with torch."""
    import numpy as np

    if isinstance(value, sympy.MatrixBase):
        return np.array(value.tolist(), dtype=np.float64)
    return float(value)
