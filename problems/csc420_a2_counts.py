"""csc420-a2, question 5: LeNet-5's parameters, and the filter sizes and strides its feature-map sizes imply."""

from __future__ import annotations

from typing import Any

from verify import VerifyError, checks
from verify.arith import conv
from verify.conv_parts import Layer
from verify.count_parts import network_param_parts
from verify.model import Context, Derivation, Kind, Outcome, Part, Problem, Step

SEED = "001_7d9d876135843e22.txt"

LENET = (
    Layer("c1", "conv", out=6, k=5, bias=True),
    Layer("s2", "avgpool", k=2, s=2),
    Layer("c3", "conv", out=16, k=5, bias=True),
    Layer("s4", "avgpool", k=2, s=2),
    Layer("c5", "conv", out=120, k=5, bias=True),
    Layer("flat", "flatten"),
    Layer("f6", "linear", out=84, bias=True),
    Layer("out", "linear", out=10, bias=True),
)
INPUT = (1, 1, 32, 32)
SIZES = {"c1": (32, 28), "c3": (14, 10)}  # feature-map side before and after each convolution
SEARCH = range(1, 33)


def solutions(layer: str) -> set[tuple[int, int]]:
    """Every (filter size, stride), padding 0, that maps the side before the layer to the side after it."""
    n, m = SIZES[layer]
    out = set()
    for f in SEARCH:
        for s in SEARCH:
            try:
                if conv.conv_out(n, f, s) == m:
                    out.add((f, s))
            except VerifyError:
                continue
    return out


def _fs_part(key: str) -> Part:
    which, layer = key.split("_")  # f or s, c1 or c3
    idx = 0 if which == "f" else 1

    def derive() -> Derivation:
        n, m = SIZES[layer]
        sols = solutions(layer)
        return Derivation(
            next(iter(sols))[idx] if len(sols) == 1 else sorted(sols)[0][idx],
            (
                Step(f"With no padding, ⌊({n} − f)/s⌋ + 1 = {m}, that is {m - 1}·s ≤ {n} − f < {m}·s, for f, s ≥ 1."),
                Step(
                    f"Enumerating f, s in 1..{SEARCH[-1]} leaves",
                    ", ".join(f"(f, s) = ({f}, {s})" for f, s in sorted(sols)),
                ),
            ),
        )

    def by_inequalities(claim: Any, ctx: Context) -> Outcome:
        n, m = SIZES[layer]
        values = {(f, s)[idx] for f in SEARCH for s in SEARCH if conv.window_property(m, n, f, s, 0)}
        return checks.exact(
            int(claim),
            next(iter(values)) if len(values) == 1 else frozenset(values),
            f"the window inequalities over f, s in 1..{SEARCH[-1]}",
        )

    def by_layers(claim: Any, ctx: Context) -> Outcome:
        import torch
        import torch.nn as nn

        n, m = SIZES[layer]
        found = set()
        for f in range(1, n + 1):
            for s in SEARCH:
                if nn.Conv2d(1, 1, f, s, device="meta")(torch.empty(1, 1, n, n, device="meta")).shape[-1] == m:
                    found.add((f, s)[idx])
        return checks.exact(
            int(claim),
            next(iter(found)) if len(found) == 1 else frozenset(found),
            f"nn.Conv2d(1, 1, f, stride=s) built for every f ≤ {n}, s ≤ {SEARCH[-1]} on {n}×{n}",
        )

    return Part(
        key,
        Kind.INT,
        derive,
        (checks.symbolic("window inequalities", by_inequalities), checks.torch_check("real layers", by_layers)),
        note="Unique: only one (filter size, stride) pair fits.",
    )


PROBLEMS = [
    Problem(
        id="csc420-a2/q5",
        title="LeNet-5: parameters per layer, filter sizes and strides",
        statement="LeNet-5 on a 32×32 grey image: C1 6 maps of 28×28, S2 pooling to 14×14, C3 16 maps of 10×10, S4 pooling "
        "to 5×5, C5 120 units, F6 84 units, 10 outputs, every layer with biases. Count the trainable parameters of C1, C3, "
        "C5, F6 and the output layer and in total, and find the filter sizes and strides of C1 and C3.",
        source=f"{SEED}, question 5",
        topics=("counting", "conv-arithmetic"),
        parts=(
            *network_param_parts(
                LENET,
                INPUT,
                {"c1": "c1", "c3": "c3", "c5": "c5", "f6": "f6", "out": "out"},
                "total",
                "Weights and biases; C3 fully connected to S2's 6 maps.",
            ),
            *(_fs_part(k) for k in ("f_c1", "s_c1", "f_c3", "s_c3")),
        ),
    ),
]
