"""Wrong claims for every answer kind: each check in the bank must fail on them."""

from __future__ import annotations

import copy
from typing import Any

from verify.model import Kind


def mutants(kind: Kind, value: Any) -> list[tuple[str, Any]]:
    """Plausible slips: off by one, one entry changed, a wrong member added, the negation."""
    if kind is Kind.INT:
        return [("off by one", value + 1), ("doubled", value * 2)]
    if kind is Kind.SHAPE:
        v = list(value)
        return [("last axis off by one", (*v[:-1], v[-1] + 1)), ("first axis off by one", (v[0] + 1, *v[1:]))]
    if kind is Kind.MATRIX:
        m = copy.deepcopy([list(r) for r in value])
        m[0][0] += 1
        t = [list(r) for r in zip(*value, strict=True)]
        out = [("one entry changed", m)]
        if t != [list(r) for r in value]:
            out.append(("transposed", t))
        return out
    if kind is Kind.VECTOR:
        first = [value[0] + 1, *value[1:]]
        return [("first entry off by one", first), ("halved (a factor 2 lost)", [v / 2 for v in value])]
    if kind is Kind.BIGO:
        import sympy

        t = sympy.Symbol("t", positive=True)
        deg = sympy.degree(value.expr, t) if value.expr.free_symbols else 0
        wrong = [deg + 1] + ([deg - 1] if deg > 0 else [])
        return [(f"O(t^{k})", sympy.Order(t**k, (t, sympy.oo))) for k in wrong]
    if kind is Kind.EXPR:
        import sympy

        if isinstance(value, sympy.MatrixExpr):
            return [("doubled", 2 * value), ("negated", -value)]
        out = [("plus one", value + 1), ("doubled", 2 * value)]
        floors = list(value.atoms(sympy.floor))
        if floors:
            out.append(("floor dropped", value.xreplace({f: f.args[0] for f in floors})))
        return out
    if kind is Kind.SET and value and all(isinstance(m, str) for m in value):
        axes = ("B", "C", "H", "W")
        out = (
            [("an extra axis", frozenset({*value, next(a for a in axes if a not in value)}))] if len(value) < 4 else []
        )
        if len(value) > 1:
            out.append(("an axis dropped", frozenset(sorted(value)[1:])))
        return out
    if kind is Kind.SET:
        members = sorted(value)
        if not members:
            return [("a member where none exists", frozenset({1}))]
        extra = tuple(x + 1 for x in members[-1]) if isinstance(members[-1], tuple) else members[-1] + 1
        return [("an extra member", frozenset({*members, extra})), ("a wrong member", frozenset({extra}))]
    if kind is Kind.BOOL:
        return [("negated", not value)]
    if kind is Kind.INTERVAL:
        from verify.answers.structured import Interval

        return [
            ("closed ends", Interval(value.lo, value.hi, False, False)),
            ("upper end off by one", Interval(value.lo, value.hi + 1, value.lo_open, value.hi_open)),
            ("lower end off by one", Interval(value.lo - 1, value.hi, value.lo_open, value.hi_open)),
        ]
    if kind is Kind.FACTORS:
        return [
            ("padding named as a factor", frozenset({*value, "padding"})),
            ("an activation named as a factor", frozenset({*value, "activation"})),
            ("fewer than asked", frozenset(sorted(value)[:2])),
            ("a name the bank does not know", frozenset({*sorted(value)[:3], "learning rate"})),
        ]
    if kind is Kind.NETWORK:
        w = copy.deepcopy(value)
        w["w"][0] = w["w"][0] + 1
        b = copy.deepcopy(value)
        b["b"] = b["b"] + 1
        return [("an output weight changed", w), ("the output bias changed", b)]
    raise AssertionError(f"no mutants for kind {kind}")
