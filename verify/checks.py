"""Building blocks for checks: each turns a comparison of a claim with an independent computation into an Outcome.

Problem files compose these; none of them prints, and none imports torch at module level.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from verify.model import Check, CheckFn, Context, Method, Outcome  # Outcome re-exported for problem files


def as_sympy(value: Any) -> Any:
    """A sympy object for a value that is already one, or a number: text is refused, so that no answer text can ever
    reach sympy's string parser (answers are read by verify.answers.parse)."""
    import sympy

    if isinstance(value, str):
        raise TypeError("text must be parsed by verify.answers.parse before it is compared")
    return sympy.sympify(value)


def symbolic(name: str, fn: CheckFn) -> Check:
    return Check(name=name, method=Method.SYMBOLIC, fn=fn)


def torch_check(name: str, fn: CheckFn, uses_device: bool = False, threads: int = 1) -> Check:
    return Check(name=name, method=Method.TORCH, fn=fn, uses_device=uses_device, threads=threads)


def fmt(value: Any) -> str:
    """A compact, deterministic text form of a value for evidence strings."""
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(fmt(v) for v in sorted(value)) + "}" if value else "∅ (impossible)"
    if isinstance(value, tuple):
        return "(" + ", ".join(fmt(v) for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.12g}"
    return str(value)


def exact(claim: Any, truth: Any, how: str, what: str = "") -> Outcome:
    """The claim must equal ``truth`` exactly; ``how`` says where the truth came from."""
    ok = _normal(claim) == _normal(truth)
    rel = "=" if ok else "≠"
    return Outcome(
        ok=ok,
        compared=f"claim vs {what or how}",
        evidence=f"{how} gives {fmt(truth)} {rel} claim {fmt(claim)}",
        value=numbers(truth),
    )


def under_conventions(conventions: Sequence[str], check_for: Callable[[str], CheckFn]) -> CheckFn:
    """A check for a question that leaves a convention open: the claim passes when it passes ``check_for(c)`` for some
    convention ``c`` (the first is the reference's), and the evidence names the one it matched."""

    def fn(claim: Any, ctx: Context) -> Outcome:
        failed = []
        for c in conventions:
            o = check_for(c)(claim, ctx)
            if o.ok:
                return Outcome(
                    True, o.compared, f"under '{c}': {o.evidence}", o.max_error, o.tolerance, o.figures, o.value
                )
            failed.append(f"under '{c}': {o.evidence}")
        return Outcome(False, f"claim vs each of {len(conventions)} conventions", "; ".join(failed))

    return fn


def decision(finding: CheckFn, yes_when_found: bool = True) -> CheckFn:
    """A check of a yes/no claim: ``finding`` computes whether something holds (its Outcome's ``ok``), and the claim
    must be that answer (or its negation, when the question asks the opposite)."""

    def fn(claim: Any, ctx: Context) -> Outcome:
        o = finding(claim, ctx)
        truth = o.ok if yes_when_found else not o.ok
        ok = isinstance(claim, bool) and claim is truth
        return Outcome(
            ok,
            f"claim vs {o.compared}",
            f"{'yes' if truth else 'no'}, computed: {o.evidence}; claim {fmt(claim).lower()}",
            o.max_error,
            o.tolerance,
            o.figures,
        )

    return fn


def _normal(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(_normal(x) for x in v)
    if isinstance(v, (set, frozenset)):
        return frozenset(_normal(x) for x in v)
    if hasattr(v, "is_Integer") and v.is_Integer:
        return int(v)
    return v


def numbers(value: Any) -> tuple[float, ...] | None:
    """A value's numbers, flattened (tensors, arrays, nested lists, ints, floats), or None when it has none."""
    import numpy as np

    if isinstance(value, (str, bytes, set, frozenset, dict)) or value is None:
        return None
    try:
        array = np.asarray(_to_numpy(value), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return tuple(float(v) for v in array.ravel()) if array.size else None


def close(claim: Any, truth: Any, tol: float, how: str) -> Outcome:
    """Element-wise comparison of arrays (nested lists, numpy or torch) with an absolute tolerance."""
    import numpy as np

    a = np.asarray(_to_numpy(claim), dtype=np.float64)
    b = np.asarray(_to_numpy(truth), dtype=np.float64)
    if a.shape != b.shape:
        return Outcome(
            ok=False,
            compared=f"claim vs {how}",
            evidence=f"{how} has shape {tuple(b.shape)}, claim has shape {tuple(a.shape)}",
            tolerance=tol,
        )
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    ok = bool(np.isfinite(err) and err <= tol)
    return Outcome(
        ok=ok,
        compared=f"claim vs {how}",
        evidence=f"{how} gives {fmt(b.round(12).tolist())}; largest difference {err:.1e} (tolerance {tol:.0e})",
        max_error=err,
        tolerance=tol,
        value=tuple(float(v) for v in b.ravel()),
    )


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    if hasattr(x, "tolist") and not isinstance(x, list):
        return x.tolist()
    try:
        import sympy

        if isinstance(x, sympy.MatrixBase):
            return [[float(v) for v in row] for row in x.tolist()]
    except ImportError:  # pragma: no cover - sympy is a dependency
        pass
    return x


def sweep(
    claim: Any,
    configs: Sequence[dict[str, int]],
    bind: dict[str, str],
    truth: Callable[[dict[str, int]], int],
    describe: Callable[[dict[str, int]], str],
) -> Outcome:
    """Evaluate an expression claim at many integer configurations and compare with a torch-measured truth.

    ``bind`` maps the claim's symbol names to config keys; ``truth(cfg)`` measures the value with a real layer;
    ``describe(cfg)`` names that layer for the evidence.
    """
    import sympy

    expr = as_sympy(claim)
    names = {s.name: s for s in expr.free_symbols}
    unknown = sorted(set(names) - set(bind))
    if unknown:
        return Outcome(False, "claim vs torch layers", f"the claim uses unknown symbols {', '.join(unknown)}")
    first = ""
    for cfg in configs:
        want = truth(cfg)
        got = expr.xreplace({names[n]: sympy.Integer(cfg[bind[n]]) for n in names})
        if got != want:
            return Outcome(
                False,
                f"claim vs torch layers over {len(configs)} configurations",
                f"{describe(cfg)} gives {want}, the claim gives {got}",
            )
        first = first or f"{describe(cfg)} gives {want} = claim"
    return Outcome(
        True,
        f"claim vs torch layers over {len(configs)} configurations",
        f"all {len(configs)} agree, e.g. {first}",
    )


def at_points(
    claim: Any,
    prop: Callable[[Any, dict[str, int]], tuple[bool, str]],
    configs: Iterable[dict[str, int]],
    what: str,
) -> Outcome:
    """A symbolic property of the claim, checked exactly (sympy integers) at each configuration."""
    n = 0
    for cfg in configs:
        n += 1
        ok, detail = prop(claim, cfg)
        if not ok:
            return Outcome(False, what, detail)
    return Outcome(True, what, f"holds exactly at all {n} configurations")


def random_configs(n: int, seed: int, gen: Callable[[random.Random], dict[str, int] | None]) -> list[dict[str, int]]:
    """``n`` configurations drawn by ``gen`` (which returns None to reject one), deterministic for a seed."""
    rng = random.Random(seed)
    out: list[dict[str, int]] = []
    tries = 0
    while len(out) < n and tries < n * 50:
        tries += 1
        cfg = gen(rng)
        if cfg is not None:
            out.append(cfg)
    return out


__all__ = [
    "Context",
    "Outcome",
    "at_points",
    "close",
    "decision",
    "exact",
    "fmt",
    "numbers",
    "random_configs",
    "sweep",
    "symbolic",
    "torch_check",
    "under_conventions",
]
