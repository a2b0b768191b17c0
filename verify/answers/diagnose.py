"""Why a wrong answer is wrong, when a common slip explains it: a factor, an offset, a missing floor, an off-by-one,
a bias counted, a transposed answer. Each diagnosis is checked exactly, never guessed."""

from __future__ import annotations

from typing import Any

from verify.model import Kind, Part


def _expr_diagnosis(claim: Any, ref: Any) -> str:
    import sympy

    from verify.symbolic import equal

    try:
        ratio = sympy.factor(sympy.simplify(claim / ref))
        simple = ratio.is_number or (len(ratio.free_symbols) <= 2 and (ratio.is_Pow or ratio.is_Mul or ratio.is_Symbol))
        if ratio != 1 and simple and (not ratio.is_number or ratio.is_real):
            return f"off by a factor of {sympy.sstr(ratio)}"
        diff = sympy.factor(sympy.simplify(claim - ref))
        if diff.is_number and diff.is_real:
            more = "more" if diff > 0 else "less"
            return f"{sympy.sstr(abs(diff))} {more} than the answer"
        floors = list(ref.atoms(sympy.floor))
        if floors and equal(claim, ref.xreplace({f: f.args[0] for f in floors})).equal:
            return "the floor is missing"
        for s in ref.free_symbols:
            for wrong in (s + 1, s - 1, 2 * s, s / 2):
                if equal(claim, ref.xreplace({s: wrong})).equal:
                    return f"{s} replaced by {wrong}"
    except (TypeError, ValueError, ZeroDivisionError):
        return ""
    return ""


def _number_diagnosis(claim: int, ref: int, counting: bool) -> str:
    """Slips in a whole number; the counting slips (FLOPs for MACs, a batch multiplied in, biases) only on parts that
    count parameters or operations."""
    if ref and claim == 2 * ref:
        return "twice the answer (FLOPs for MACs, or counted twice)" if counting else "twice the answer"
    if ref and claim * 2 == ref:
        return "half the answer (a factor 2 lost)"
    if claim - ref in (1, -1):
        return "off by one"
    if not counting:
        return ""
    if ref and claim % ref == 0:
        return f"{claim // ref} times the answer (a batch or a channel count multiplied in?)"
    if claim and ref % claim == 0:
        return f"1/{ref // claim} of the answer (one sample of a batch, or groups divided twice?)"
    if claim > ref and (claim - ref) in range(1, 4097):
        return f"{claim - ref} more than the answer (biases counted?)"
    return ""


def _count_diagnosis(part: Part, claim: int) -> str:
    """The counting conventions and slips that give this number on the part's real model (verify.count.diagnose)."""
    from verify.count.diagnose import diagnose as count_diagnose

    assert part.network is not None
    model, shape = part.network()
    matches = count_diagnose(model, shape, claim)
    if not matches:
        return ""
    names = [m.name for m in matches[:3]]
    return "the count under " + " · or under ".join(names)


def diagnose(part: Part, claim: Any, reference: Any, topics: tuple[str, ...] = ()) -> str:
    """A short note naming the slip, or an empty string when none of the known ones explains the answer. ``topics``
    (the problem's) keep the notes to the part's kind: counting slips only where parameters or operations are
    counted."""
    try:
        return _diagnose(part, claim, reference, topics)
    except Exception:
        return ""


def _diagnose(part: Part, claim: Any, reference: Any, topics: tuple[str, ...]) -> str:
    import sympy

    if part.kind is Kind.INT and part.network is not None:
        conventions = _count_diagnosis(part, int(claim))
        if conventions:
            return conventions
    if part.kind is Kind.INT:
        counting = part.network is not None or ("counting" in topics and "receptive-field" not in topics)
        return _number_diagnosis(int(claim), int(reference), counting)
    matrices = any(isinstance(x, sympy.Basic) and x.atoms(sympy.MatrixSymbol) for x in (claim, reference))
    if part.kind is Kind.EXPR and not matrices and isinstance(claim, sympy.Expr) and isinstance(reference, sympy.Expr):
        return _expr_diagnosis(claim, reference)
    if part.kind is Kind.SHAPE:
        diffs = [i for i, (a, b) in enumerate(zip(claim, reference, strict=False)) if a != b]
        if len(claim) != len(reference):
            return f"{len(claim)} axes, expected {len(reference)}"
        return "axes " + ", ".join(f"{i} ({claim[i]} for {reference[i]})" for i in diffs) + " differ"
    if part.kind is Kind.MATRIX:
        ref = [list(r) for r in reference]
        if len(claim) != len(ref):
            return f"{len(claim)}×{len(claim[0])} instead of {len(ref)}×{len(ref[0])}: a different stride, padding or output padding?"
        if [list(r) for r in zip(*claim, strict=True)] == ref:
            return "the transpose of the answer"
    return ""
