"""csc413-a2, question 5.4: the paddings that keep ConvTransposeNet's shapes for kernel sizes 4 and 5."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verify import VerifyError, checks
from verify.arith import conv
from verify.model import Context, Derivation, Kind, Outcome, Part, Problem, Step
from verify.variants import Drawer, parametrized

SEED = "003_c85582041e1ef3a7.txt"

# ConvTransposeNet on 32×32 inputs: two stride-2 convolutions (32 → 16 → 8), two stride-2 transposed convolutions
# (8 → 16 → 32), and a final stride-1 convolution that keeps 32×32, asked for an even and an odd kernel size (4 and 5)
# instead of 3. Its data are parameters: the bottleneck side, the stride, the remainder each stride leaves (the sizes are
# n1 = s·n2 + r, n0 = s·n1 + r, so the two transposed convolutions can share their paddings) and the two kernel sizes.
NET_54 = {"bottleneck": 8, "s": 2, "r": 0, "kernels": [4, 5]}
SEARCH = range(0, 12)  # every padding beyond the kernel size only grows the output; 12 > 9 + 2 covers all


@dataclass(frozen=True)
class Net:
    bottleneck: int
    s: int  # the stride of the two convolutions and the two transposed convolutions
    r: int  # n0 = s·n1 + r and n1 = s·n2 + r: what the floor of a strided convolution drops (r ≥ 0) or adds (r < 0)

    @property
    def sizes(self) -> tuple[int, int, int]:
        n2 = self.bottleneck
        n1 = self.s * n2 + self.r
        return self.s * n1 + self.r, n1, n2

    @property
    def down(self) -> tuple[tuple[int, int], ...]:
        n0, n1, n2 = self.sizes
        return (n0, n1), (n1, n2)

    @property
    def up(self) -> tuple[tuple[int, int], ...]:
        n0, n1, n2 = self.sizes
        return (n2, n1), (n1, n0)

    @property
    def final(self) -> tuple[int, int]:
        n0 = self.sizes[0]
        return n0, n0


EVEN_KERNELS, ODD_KERNELS = (4, 6, 8), (5, 7, 9)  # larger than 3 (the network's own) and than either stride


def _space(d: Drawer) -> dict[str, Any]:
    """A stride of 2 or 3, an even and an odd kernel size, a remainder r with |r| < s (the sizes are floor(n/s) for
    r ≥ 0 and ceil(n/s) for r < 0; the conv paddings solve a floor inequality), and a bottleneck of 4 to 12. Every
    draw keeps all six answers' structure: r ≤ k − 1 for both kernels, so a conv padding and a transposed
    (padding, output padding) pair exist for each; the even kernel has no symmetric 'same' padding, the odd one has."""
    s = d.choice((2, 3))
    kernels = sorted((d.choice(EVEN_KERNELS), d.choice(ODD_KERNELS)))
    return {"bottleneck": d.integer(4, 12), "s": s, "r": d.integer(-(s - 1), s - 1), "kernels": kernels}


def _try(fn: Any, *args: Any) -> int | None:
    try:
        return int(fn(*args))
    except VerifyError:
        return None


def conv_paddings(net: Net, k: int) -> set[int]:
    return {p for p in SEARCH if all(_try(conv.conv_out, n, k, net.s, p) == m for n, m in net.down)}


def tconv_paddings(net: Net, k: int) -> set[tuple[int, int]]:
    return {
        (p, op)
        for p in SEARCH
        for op in range(net.s)
        if all(_try(conv.conv_transpose_out, n, k, net.s, p, op) == m for n, m in net.up)
    }


def final_paddings(net: Net, k: int) -> set[int]:
    return {p for p in SEARCH if _try(conv.conv_out, net.final[0], k, 1, p) == net.final[1]}


def _derive(net: Net, layer: str, k: int) -> Derivation:
    import sympy

    p = sympy.Symbol("p", integer=True, nonnegative=True)
    s, (n0, n1, n2) = net.s, net.sizes
    if layer == "conv":
        lo, hi = s * n1 - s, s * n1 - 1  # s·(n1 − 1) ≤ n0 + 2p − k ≤ s·(n1 − 1) + s − 1
        ineq = (
            rf"{n1} = \left\lfloor \frac{{{n0} + 2p - {k}}}{{{s}}} \right\rfloor + 1 \iff {lo} \le {n0 - k} + 2p "
            rf"\le {hi}"
        )
        sol = sympy.reduce_inequalities([n0 - k + 2 * p >= lo, n0 - k + 2 * p <= hi], [p])
        answer: set[Any] = conv_paddings(net, k)
        shrink = ("halve the size" if s == 2 else f"divide the size by {s}") + (
            "" if net.r == 0 else f" (rounded {'down' if net.r > 0 else 'up'})"
        )
        steps = (
            Step(f"Both stride-{s} convolutions {shrink} ({n0} → {n1}, {n1} → {n2}); for {n0} → {n1}", ineq),
            Step("Over the reals", sympy.latex(sol)),
            Step(
                f"{n1} → {n2} gives the same condition; the integer solutions",
                sympy.latex(sympy.FiniteSet(*answer)) if answer else r"\emptyset",
            ),
        )
    elif layer == "tconv":
        eq = rf"{n1} = ({n2} - 1)\cdot {s} - 2p + {k} + o_p"
        answer = tconv_paddings(net, k)
        grow = ("double the size" if s == 2 else f"multiply the size by {s}") + (
            "" if net.r == 0 else f" and {'add' if net.r > 0 else 'subtract'} {abs(net.r)}"
        )
        steps = (
            Step(f"Both transposed convolutions {grow} ({n2} → {n1}, {n1} → {n0}); for {n2} → {n1}", eq),
            Step("so", rf"2p - o_p = {k - s - net.r},\quad 0 \le o_p < {s} \text{{ (output\_padding < stride)}}"),
            Step(
                f"{n1} → {n0} gives the same condition; the integer solutions (p, o_p)",
                sympy.latex(sympy.FiniteSet(*answer)) if answer else r"\emptyset",
            ),
        )
    else:
        eq = rf"{n0} = {n0} + 2p - {k} + 1 \iff 2p = {k - 1}"
        answer = final_paddings(net, k)
        instead = (
            "No symmetric integer padding exists: an even kernel needs one more row of padding on one side than the "
            f"other. What works instead: nn.ZeroPad2d(({(k - 1) // 2}, {k // 2}, {(k - 1) // 2}, {k // 2})) before a "
            "convolution with padding 0, or padding='same' (torch pads asymmetrically)."
        )
        steps = (
            Step(f"The last convolution has stride 1 and keeps {n0}", eq),
            Step("Integer solutions", sympy.latex(sympy.FiniteSet(*answer)) if answer else r"\emptyset"),
            *((Step(instead),) if not answer else ()),
        )
    return Derivation(frozenset(answer), steps)


def _formula_check(net: Net, layer: str, k: int) -> Any:
    """Each claimed member satisfies every size equation exactly, and no other value in the search range does."""

    def check(claim: Any, ctx: Context) -> Outcome:
        members = set(claim)

        def holds(m: Any) -> bool:
            if layer == "conv":
                return all(conv.window_property(out, n, k, net.s, int(m)) for n, out in net.down)
            if layer == "tconv":
                p, op = m
                return 0 <= op < net.s and all((n - 1) * net.s - 2 * p + k + op == out for n, out in net.up)
            return conv.window_property(net.final[1], net.final[0], k, 1, int(m))

        candidates = [(p, op) for p in SEARCH for op in range(net.s)] if layer == "tconv" else list(SEARCH)
        truth = {c for c in candidates if holds(c)}
        return checks.exact(frozenset(members), frozenset(truth), f"the size equations solved over p ∈ 0..{SEARCH[-1]}")

    return check


def _torch_check(net: Net, layer: str, k: int) -> Any:
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
            found = {p for p in SEARCH if shape_ok(lambda p=p: nn.Conv2d(1, 1, k, net.s, p, device="meta"), net.down)}
            what = f"nn.Conv2d(·, ·, {k}, stride={net.s}, padding=p) for p in 0..{SEARCH[-1]}"
        elif layer == "tconv":
            found = set()
            for p in SEARCH:
                for op in range(net.s):
                    layer_ = nn.ConvTranspose2d(1, 1, k, net.s, p, output_padding=op)
                    try:
                        if all(layer_(torch.zeros(1, 1, n, n)).shape[-1] == m for n, m in net.up):
                            found.add((p, op))
                    except RuntimeError:
                        pass
            what = (
                f"nn.ConvTranspose2d(·, ·, {k}, stride={net.s}, padding=p, output_padding=o) for p in "
                f"0..{SEARCH[-1]}, o in 0..{net.s - 1}"
            )
        else:
            found = {p for p in SEARCH if shape_ok(lambda p=p: nn.Conv2d(1, 1, k, 1, p, device="meta"), (net.final,))}
            what = f"nn.Conv2d(·, ·, {k}, padding=p) for p in 0..{SEARCH[-1]}"
            if not found:
                fix = nn.Sequential(nn.ZeroPad2d(((k - 1) // 2, k // 2, (k - 1) // 2, k // 2)), nn.Conv2d(1, 1, k))
                same = nn.Conv2d(1, 1, k, padding="same")
                x = torch.zeros(1, 1, net.final[0], net.final[0])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch notes that 'same' with an even kernel pads by copying
                    same_shape = tuple(same(x).shape[-2:])
                what += (
                    f"; instead ZeroPad2d then conv gives {tuple(fix(x).shape[-2:])} and padding='same' gives "
                    f"{same_shape}"
                )
        return checks.exact(frozenset(claim), frozenset(found), what, "torch layers built for every candidate")

    return check


def _parts(net: Net, kernels: tuple[int, ...]) -> tuple[Part, ...]:
    parts = []
    for k in kernels:
        for layer, key, note in (
            ("conv", f"k{k}_conv_padding", f"padding of the two stride-{net.s} convolutions"),
            ("tconv", f"k{k}_tconv", f"(padding, output_padding) of the two stride-{net.s} transposed convolutions"),
            ("final", f"k{k}_final_padding", "padding of the final stride-1 convolution"),
        ):
            parts.append(
                Part(
                    key,
                    Kind.SET,
                    (lambda layer=layer, k=k: _derive(net, layer, k)),
                    (
                        checks.symbolic("size equations", _formula_check(net, layer, k)),
                        checks.torch_check("real layers for every candidate", _torch_check(net, layer, k)),
                    ),
                    note=f"Kernel {k}: the set of every {note} that keeps the shapes; empty means impossible.",
                )
            )
    return tuple(parts)


def _problem(q: Mapping[str, Any]) -> Problem:
    net = Net(q["bottleneck"], q["s"], q["r"])
    ke, ko = q["kernels"]
    n0, n1, n2 = net.sizes
    return Problem(
        id="csc413-a2/5.4",
        title=f"Paddings for kernel sizes {ke} and {ko} in ConvTransposeNet",
        statement=(
            f"ConvTransposeNet takes {n0}×{n0} inputs through two stride-{net.s} convolutions ({n0} → {n1} → {n2}), "
            f"two stride-{net.s} transposed convolutions ({n2} → {n1} → {n0}) and a final stride-1 convolution at "
            f"{n0}×{n0}. With kernel size {ke} or {ko} instead of 3, which paddings (and output paddings) keep every shape?"
        ),
        source=f"{SEED}, question 5.4",
        topics=("conv-arithmetic", "transposed-conv"),
        parts=_parts(net, (ke, ko)),
    )


PROBLEMS = [parametrized("csc413-a2/5.4", _space, _problem, NET_54)]
