"""csc413-a2, question 5.4: the paddings that keep ConvTransposeNet's shapes for kernel sizes 4 and 5."""

from __future__ import annotations

import warnings
from typing import Any

from verify import VerifyError, checks
from verify.arith import conv
from verify.model import Context, Derivation, Kind, Outcome, Part, Problem, Step

SEED = "003_c85582041e1ef3a7.txt"

# ConvTransposeNet on 32×32 inputs: two stride-2 convolutions (32 → 16 → 8), two stride-2 transposed convolutions
# (8 → 16 → 32), and a final stride-1 convolution that keeps 32×32.
DOWN = ((32, 16), (16, 8))
UP = ((8, 16), (16, 32))
FINAL = (32, 32)
SEARCH = range(0, 12)  # every padding beyond the kernel size only grows the output; 12 > 5 covers all


def _try(fn: Any, *args: Any) -> int | None:
    try:
        return int(fn(*args))
    except VerifyError:
        return None


def conv_paddings(k: int) -> set[int]:
    return {p for p in SEARCH if all(_try(conv.conv_out, n, k, 2, p) == m for n, m in DOWN)}


def tconv_paddings(k: int) -> set[tuple[int, int]]:
    return {
        (p, op)
        for p in SEARCH
        for op in range(2)
        if all(_try(conv.conv_transpose_out, n, k, 2, p, op) == m for n, m in UP)
    }


def final_paddings(k: int) -> set[int]:
    return {p for p in SEARCH if _try(conv.conv_out, FINAL[0], k, 1, p) == FINAL[1]}


def _derive(layer: str, k: int) -> Derivation:
    import sympy

    p = sympy.Symbol("p", integer=True, nonnegative=True)
    if layer == "conv":
        ineq = rf"16 = \left\lfloor \frac{{32 + 2p - {k}}}{{2}} \right\rfloor + 1 \iff 30 \le {32 - k} + 2p \le 31"
        sol = sympy.reduce_inequalities([32 - k + 2 * p >= 30, 32 - k + 2 * p <= 31], [p])
        answer: set[Any] = conv_paddings(k)
        steps = (
            Step("Both stride-2 convolutions halve the size (32 → 16, 16 → 8); for 32 → 16", ineq),
            Step("Over the reals", sympy.latex(sol)),
            Step(
                "16 → 8 gives the same condition; the integer solutions",
                sympy.latex(sympy.FiniteSet(*answer)) if answer else r"\emptyset",
            ),
        )
    elif layer == "tconv":
        eq = rf"16 = (8 - 1)\cdot 2 - 2p + {k} + o_p"
        answer = tconv_paddings(k)
        steps = (
            Step("Both transposed convolutions double the size (8 → 16, 16 → 32); for 8 → 16", eq),
            Step("so", rf"2p - o_p = {k - 2},\quad 0 \le o_p < 2 \text{{ (output\_padding < stride)}}"),
            Step(
                "16 → 32 gives the same condition; the integer solutions (p, o_p)",
                sympy.latex(sympy.FiniteSet(*answer)) if answer else r"\emptyset",
            ),
        )
    else:
        eq = rf"32 = 32 + 2p - {k} + 1 \iff 2p = {k - 1}"
        answer = final_paddings(k)
        instead = (
            "No symmetric integer padding exists: an even kernel needs one more row of padding on one side than the "
            f"other. What works instead: nn.ZeroPad2d(({(k - 1) // 2}, {k // 2}, {(k - 1) // 2}, {k // 2})) before a "
            "convolution with padding 0, or padding='same' (torch pads asymmetrically)."
        )
        steps = (
            Step("The last convolution has stride 1 and keeps 32", eq),
            Step("Integer solutions", sympy.latex(sympy.FiniteSet(*answer)) if answer else r"\emptyset"),
            *((Step(instead),) if not answer else ()),
        )
    return Derivation(frozenset(answer), steps)


def _formula_check(layer: str, k: int) -> Any:
    """Each claimed member satisfies every size equation exactly, and no other value in the search range does."""

    def check(claim: Any, ctx: Context) -> Outcome:
        members = set(claim)

        def holds(m: Any) -> bool:
            if layer == "conv":
                return all(conv.window_property(out, n, k, 2, int(m)) for n, out in DOWN)
            if layer == "tconv":
                p, op = m
                return op in (0, 1) and all((n - 1) * 2 - 2 * p + k + op == out for n, out in UP)
            return conv.window_property(FINAL[1], FINAL[0], k, 1, int(m))

        candidates = [(p, op) for p in SEARCH for op in range(2)] if layer == "tconv" else list(SEARCH)
        truth = {c for c in candidates if holds(c)}
        return checks.exact(frozenset(members), frozenset(truth), f"the size equations solved over p ∈ 0..{SEARCH[-1]}")

    return check


def _torch_check(layer: str, k: int) -> Any:
    """Build every candidate as a real layer and keep those whose output shapes are the figure's."""

    def check(claim: Any, ctx: Context) -> Outcome:
        import torch
        import torch.nn as nn

        def shape_ok(make: Any, pairs: Any) -> bool:
            try:
                return all(make()(torch.empty(1, 1, n, n, device="meta")).shape[-1] == m for n, m in pairs)
            except RuntimeError:
                return False

        if layer == "conv":
            found = {p for p in SEARCH if shape_ok(lambda p=p: nn.Conv2d(1, 1, k, 2, p, device="meta"), DOWN)}
            what = f"nn.Conv2d(·, ·, {k}, stride=2, padding=p) for p in 0..{SEARCH[-1]}"
        elif layer == "tconv":
            found = set()
            for p in SEARCH:
                for op in range(2):
                    layer_ = nn.ConvTranspose2d(1, 1, k, 2, p, output_padding=op)
                    try:
                        if all(layer_(torch.zeros(1, 1, n, n)).shape[-1] == m for n, m in UP):
                            found.add((p, op))
                    except RuntimeError:
                        pass
            what = f"nn.ConvTranspose2d(·, ·, {k}, stride=2, padding=p, output_padding=o) for p in 0..{SEARCH[-1]}, o in 0..1"
        else:
            found = {p for p in SEARCH if shape_ok(lambda p=p: nn.Conv2d(1, 1, k, 1, p, device="meta"), (FINAL,))}
            what = f"nn.Conv2d(·, ·, {k}, padding=p) for p in 0..{SEARCH[-1]}"
            if not found:
                fix = nn.Sequential(nn.ZeroPad2d(((k - 1) // 2, k // 2, (k - 1) // 2, k // 2)), nn.Conv2d(1, 1, k))
                same = nn.Conv2d(1, 1, k, padding="same")
                x = torch.zeros(1, 1, FINAL[0], FINAL[0])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch notes that 'same' with an even kernel pads by copying
                    same_shape = tuple(same(x).shape[-2:])
                what += (
                    f"; instead ZeroPad2d then conv gives {tuple(fix(x).shape[-2:])} and padding='same' gives "
                    f"{same_shape}"
                )
        return checks.exact(frozenset(claim), frozenset(found), what, "torch layers built for every candidate")

    return check


def _parts() -> tuple[Part, ...]:
    parts = []
    for k in (4, 5):
        for layer, key, note in (
            ("conv", f"k{k}_conv_padding", "padding of the two stride-2 convolutions"),
            ("tconv", f"k{k}_tconv", "(padding, output_padding) of the two stride-2 transposed convolutions"),
            ("final", f"k{k}_final_padding", "padding of the final stride-1 convolution"),
        ):
            parts.append(
                Part(
                    key,
                    Kind.SET,
                    (lambda layer=layer, k=k: _derive(layer, k)),
                    (
                        checks.symbolic("size equations", _formula_check(layer, k)),
                        checks.torch_check("real layers for every candidate", _torch_check(layer, k)),
                    ),
                    note=f"Kernel {k}: the set of every {note} that keeps the shapes; empty means impossible.",
                )
            )
    return tuple(parts)


PROBLEMS = [
    Problem(
        id="csc413-a2/5.4",
        title="Paddings for kernel sizes 4 and 5 in ConvTransposeNet",
        statement=(
            "ConvTransposeNet takes 32×32 inputs through two stride-2 convolutions (32 → 16 → 8), two stride-2 "
            "transposed convolutions (8 → 16 → 32) and a final stride-1 convolution at 32×32. With kernel size 4 or 5 "
            "instead of 3, which paddings (and output paddings) keep every shape?"
        ),
        source=f"{SEED}, question 5.4",
        topics=("conv-arithmetic", "transposed-conv"),
        parts=_parts(),
    ),
]
