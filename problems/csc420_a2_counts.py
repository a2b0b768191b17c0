"""csc420-a2: the operation count of a convolution and a max pooling (question 4); LeNet-5's parameters, and the filter
sizes and strides its feature-map sizes imply (question 5)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from verify import VerifyError, checks
from verify.arith import conv
from verify.conv_parts import Layer, materialized
from verify.count.conventions import Convention, Work, conv2d_work, pool2d_work
from verify.count.models import register_model
from verify.count.parts import network_param_parts
from verify.model import Context, Derivation, Kind, Outcome, Part, Problem, Step
from verify.variants import Drawer, parametrized

SEED = "001_7d9d876135843e22.txt"

# ---- 4: operations of a convolution C followed by a max pooling P --------------------------------------------------
# The sizes the write-up's arithmetic implies: a 12×12×50 input, C with 20 filters 4×4 (padding 1, stride 2) giving
# 6×6 maps, P a 3×3 max pooling of stride 1 giving 4×4 maps.
Q4 = {"side": 12, "c_in": 50, "filters": 20, "k": 4, "s": 2, "p": 1, "pool": 3, "pool_s": 1}
Q4_CONVENTIONS = ("exact operations", "FLOPs = 2·MACs")
Q4_NOTE = (
    "Reference in exact operations: a dot product of length k is k multiplies and k − 1 additions, a bias one more "
    "addition per output, a maximum over n values n − 1 comparisons. FLOPs = 2·MACs (torch's flop counter's "
    "convention) for C is also accepted and named; MACs alone are not a FLOP count."
)


def _q4_space(d: Drawer) -> dict[str, int]:
    """A convolution with a stride of 1 or 2 and a padding up to half the kernel, then a max pooling of window 2 or 3
    that fits C's maps (a side of at least 8 leaves C at least 2 wide)."""
    side, k = d.integer(8, 16), d.integer(2, 5)
    s, p = d.integer(1, 2), d.integer(0, k // 2)
    c_side = (side + 2 * p - k) // s + 1
    pool = d.integer(2, min(3, c_side))
    return {
        "side": side,
        "c_in": d.integer(1, 64),
        "filters": d.integer(1, 32),
        "k": k,
        "s": s,
        "p": p,
        "pool": pool,
        "pool_s": d.integer(1, 2),
    }


def _q4(q: Mapping[str, int]) -> Problem:
    return Problem(
        id="csc420-a2/q4",
        title="Operations of a convolution and a max pooling",
        statement=f"A {q['side']}×{q['side']} input with {q['c_in']} channels goes through a convolution layer C of "
        f"{q['filters']} filters, each {q['k']}×{q['k']}×{q['c_in']}, with zero padding {q['p']} and stride {q['s']}, "
        f"and then through a max pooling layer P with a {q['pool']}×{q['pool']} window and stride {q['pool_s']} on "
        f"each of C's {q['filters']} maps. How many floating-point operations do C and P take in one forward pass, "
        "once without C's bias and once with it? A maximum over n values costs n − 1 comparisons.",
        source=f"{SEED}, question 4 (layer sizes as the write-up's arithmetic implies them)",
        topics=("counting",),
        parts=(_q4_part("flops_no_bias", q), _q4_part("flops_bias", q)),
    )


def _q4_unit(convention: str) -> str:
    return "exact" if convention == Q4_CONVENTIONS[0] else "flops"


def _q4_work(q: Mapping[str, int]) -> tuple[Work, Work, int, int]:
    """C's and P's work and their output sides, from the layer formulas."""
    c_side = conv.conv_out(q["side"], q["k"], q["s"], q["p"])
    p_side = conv.pool_out(c_side, q["pool"], q["pool_s"])
    c = conv2d_work(1, q["c_in"], q["filters"], c_side, c_side, q["k"], q["k"])
    pool = pool2d_work(q["filters"] * p_side * p_side, q["pool"] ** 2, "max")
    return c, pool, c_side, p_side


def _q4_total(q: Mapping[str, int], convention: str, bias: bool) -> int:
    c, pool, _, _ = _q4_work(q)
    return int(Convention(_q4_unit(convention), bias=bias, elementwise=True).total(c + pool))


def _q4_network(q: Mapping[str, int]) -> tuple[Any, tuple[int, ...]]:
    import torch.nn as nn

    model = nn.Sequential(
        nn.Conv2d(q["c_in"], q["filters"], q["k"], stride=q["s"], padding=q["p"]),
        nn.MaxPool2d(q["pool"], stride=q["pool_s"]),
    )
    return model, (1, q["c_in"], q["side"], q["side"])


@functools.lru_cache(maxsize=8)
def _q4_counted(items: tuple[tuple[str, int], ...], bias: bool, seed: int) -> tuple[float, Any, Any, int, int]:
    """C and P run once per (instance, bias, seed) for every convention's check: the counting reference's distance
    from the real layers, its counted operations for C and for P, torch's flop count for C, and C's number of
    outputs."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from verify.count.instrumented import conv2d_counted, max_pool2d_counted

    q = dict(items)
    model, shape = _q4_network(q)
    model = model.double()
    conv_layer, pool_layer = model[0], model[1]
    x = torch.randn(*shape, dtype=torch.float64)
    b = conv_layer.bias if bias else None
    with torch.no_grad():
        y, c_ops = conv2d_counted(x, conv_layer.weight, b, conv_layer.stride[0], conv_layer.padding[0])
        want_y = torch.nn.functional.conv2d(x, conv_layer.weight, b, conv_layer.stride, conv_layer.padding)
        z, p_ops = max_pool2d_counted(y, q["pool"], q["pool_s"])
        with FlopCounterMode(display=False) as fc:
            conv_layer(x)
        want_z = pool_layer(want_y)
    err = max(float((y - want_y).abs().max()), float((z - want_z).abs().max()))
    return err, c_ops, p_ops, int(fc.get_total_flops()), y.numel()


def _q4_part(key: str, q: Mapping[str, int]) -> Part:
    bias = key == "flops_bias"

    def derive() -> Derivation:
        c, pool, c_side, p_side = _q4_work(q)
        length = q["c_in"] * q["k"] ** 2
        outs = q["filters"] * c_side**2
        steps = (
            Step(
                f"C's maps: ⌊({q['side']} + 2·{q['p']} − {q['k']})/{q['s']}⌋ + 1 = {c_side}; P's maps: "
                f"⌊({c_side} − {q['pool']})/{q['pool_s']}⌋ + 1 = {p_side}"
            ),
            Step(
                f"C computes {q['filters']}·{c_side}·{c_side} = {outs} outputs, each a dot product of length "
                f"{q['k']}·{q['k']}·{q['c_in']} = {length}",
                f"\\text{{MACs}} = {outs}\\cdot{length} = {c.macs}",
            ),
            Step(
                "C under each convention: FLOPs = 2·MACs; exact operations = a multiply per term and one addition "
                "fewer than the terms, per output; a bias adds one addition per output",
                f"2\\cdot\\text{{MACs}} = {2 * c.macs},\\quad {outs}\\cdot(2\\cdot{length} - 1) = "
                f"{int(Convention('exact').total(c))},\\quad \\text{{bias}}: +{outs}",
            ),
            Step(
                f"P takes the maximum of {q['pool'] ** 2} values for each of {q['filters']}·{p_side}·{p_side} outputs: "
                f"{q['pool'] ** 2 - 1} comparisons each",
                f"{q['pool'] ** 2 - 1}\\cdot{p_side * p_side}\\cdot{q['filters']} = {pool.elementwise}",
            ),
            Step(
                f"In exact operations, {'with' if bias else 'without'} C's bias",
                f"{int(Convention('exact', bias=bias).total(c))} + {pool.elementwise} = {_q4_total(q, Q4_CONVENTIONS[0], bias)}",
            ),
        )
        return Derivation(
            _q4_total(q, Q4_CONVENTIONS[0], bias),
            steps,
            accepted=tuple((c, _q4_total(q, c, bias)) for c in Q4_CONVENTIONS[1:]),
            convention=Q4_CONVENTIONS[0],
        )

    def by_sums(convention: str) -> Any:
        def check(claim: Any, ctx: Context) -> Outcome:
            """Sum each output's cost over every output position, the positions counted window by window."""
            import sympy

            def windows(size: int, span: int, stride: int) -> int:
                return sum(1 for start in range(size) if start % stride == 0 and start + span <= size)

            c_side = windows(q["side"] + 2 * q["p"], q["k"], q["s"])
            p_side = windows(c_side, q["pool"], q["pool_s"])
            o, i, j = sympy.symbols("o i j", integer=True)
            length = q["c_in"] * q["k"] ** 2
            exact = convention == Q4_CONVENTIONS[0]  # read here, not through the derivation's _q4_unit
            per_output = (2 * length - (1 if exact else 0)) + (1 if bias else 0)
            conv_ops = sympy.summation(
                sympy.summation(sympy.summation(per_output, (j, 1, c_side)), (i, 1, c_side)), (o, 1, q["filters"])
            )
            pool_ops = sympy.summation(
                sympy.summation(sympy.summation(q["pool"] ** 2 - 1, (j, 1, p_side)), (i, 1, p_side)),
                (o, 1, q["filters"]),
            )
            return checks.exact(
                int(claim),
                int(conv_ops + pool_ops),
                f"a sum over C's {q['filters']}×{c_side}×{c_side} outputs of {per_output} operations and P's "
                f"{q['filters']}×{p_side}×{p_side} outputs of {q['pool'] ** 2 - 1} comparisons",
            )

        return check

    def by_counting(convention: str) -> Any:
        def check(claim: Any, ctx: Context) -> Outcome:
            """Real layers, a reference implementation that counts its own operations, and torch's flop counter."""
            err, c_ops, p_ops, torch_flops, outputs = _q4_counted(tuple(sorted(q.items())), bias, ctx.seed)
            if err > 1e-10:
                return Outcome(False, "the counting reference vs the real layers", f"outputs differ by {err:.3g}")
            if torch_flops != 2 * c_ops.multiplies:
                return Outcome(
                    False,
                    "torch's flop counter vs counted multiplies",
                    f"flop counter {torch_flops} ≠ 2 × {c_ops.multiplies} counted multiplies",
                )
            bias_adds = outputs if bias else 0
            if convention == Q4_CONVENTIONS[0]:  # read here, not through the derivation's _q4_unit
                truth = c_ops.total + p_ops.comparisons  # the bias adds are among the counted additions
                how = (
                    f"a reference convolution and max pooling equal to nn.Conv2d/nn.MaxPool2d (to {err:.1g}) count "
                    f"{c_ops.multiplies} multiplies, {c_ops.additions} additions and {p_ops.comparisons} comparisons"
                )
            else:
                truth = torch_flops + bias_adds + p_ops.comparisons
                how = (
                    f"torch's flop counter gives {torch_flops} for nn.Conv2d (= 2 × {c_ops.multiplies} counted "
                    f"multiplies){f', plus {bias_adds} bias adds' if bias else ''}, plus P's {p_ops.comparisons} "
                    "counted comparisons"
                )
            outcome = checks.exact(int(claim), truth, how, "counted operations")
            return replace(outcome, max_error=err, tolerance=1e-10)  # how far the reference is from the real layers

        return check

    return Part(
        key,
        Kind.INT,
        derive,
        (
            checks.symbolic("sum over outputs", checks.under_conventions(Q4_CONVENTIONS, by_sums)),
            checks.torch_check("counted operations", checks.under_conventions(Q4_CONVENTIONS, by_counting)),
        ),
        note=Q4_NOTE,
        network=functools.partial(_q4_network, q),
    )


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
        n, m = SIZES[layer]
        found = {pair[idx] for pair in _conv_fits(n, m)}
        return checks.exact(
            int(claim),
            next(iter(found)) if len(found) == 1 else frozenset(found),
            f"torch's conv2d with an f×f filter and stride s, for every f ≤ {n}, s ≤ {SEARCH[-1]}, on {n}×{n}",
        )

    return Part(
        key,
        Kind.INT,
        derive,
        (checks.symbolic("window inequalities", by_inequalities), checks.torch_check("real layers", by_layers)),
        note="Unique: only one (filter size, stride) pair fits.",
    )


@functools.cache
def _conv_fits(n: int, m: int) -> frozenset[tuple[int, int]]:
    """The (filter size, stride) pairs for which torch's conv2d, without padding, maps n×n to m×m (on meta tensors:
    shapes only); the filter- and stride-parts of a layer share one enumeration."""
    import torch
    import torch.nn.functional as F

    x = torch.empty(1, 1, n, n, device="meta")
    found = set()
    for f in range(1, n + 1):
        w = torch.empty(1, 1, f, f, device="meta")
        found.update((f, s) for s in SEARCH if F.conv2d(x, w, stride=s).shape[-1] == m)
    return frozenset(found)


PROBLEMS = [
    parametrized("csc420-a2/q4", _q4_space, _q4, Q4),
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

register_model("lenet5", materialized(LENET, 1, 32), "csc420-a2/q5 LeNet-5 (1,1,32,32)")
