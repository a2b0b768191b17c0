"""cpen455-hw2: parameter counts (2.3, 2.4), receptive fields (2.6, 7), grouped and depthwise-separable convolution (5, 6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from problems.cpen455_hw2_conv import FILTERS, RF_SIDE, SEED, classifier_question
from verify import checks
from verify.conv_parts import Layer, materialized
from verify.count.models import register_model
from verify.count.parts import index_count, network_param_parts, rf_parts, with_bias
from verify.model import Context, Derivation, Kind, Outcome, Part, Problem, Step
from verify.variants import Drawer, parametrized

PARAM_KEYS = {"H1": "H1", "H2": "H2", "H3": "H3", "H4": "H4", "Y": "Y"}

# Question 7's network: a stride-2 convolution, a stride-2 depthwise convolution, a pointwise convolution, a stride-2
# transposed convolution (no output padding), each with a ReLU, 2×2 average pooling of stride 2 and a linear layer.
# Its data are parameters.
Q7 = {
    "batch": 100,
    "channels": 3,
    "side": 512,
    "conv": [32, 5, 2],  # filters, kernel, padding (stride 2)
    "dwconv": [5, 2],  # kernel, padding (stride 2)
    "pointwise": 64,
    "tconv": [32, 3, 0],  # filters, kernel, padding (stride 2, no output padding)
    "classes": 10,
}


def _net_7(q: Mapping[str, Any]) -> tuple[Layer, ...]:
    (f1, k1, p1), (k2, p2), (f4, k4, p4) = q["conv"], q["dwconv"], q["tconv"]
    return (
        Layer("H1", "conv", out=f1, k=k1, s=2, p=p1),
        Layer("relu1", "relu"),
        Layer("H2", "dwconv", out=f1, k=k2, s=2, p=p2),
        Layer("relu2", "relu"),
        Layer("H3", "conv", out=q["pointwise"], k=1, s=1, p=0),
        Layer("relu3", "relu"),
        Layer("H4", "tconv", out=f4, k=k4, s=2, p=p4),
        Layer("relu4", "relu"),
        Layer("H5", "avgpool", k=2, s=2, p=0),
        Layer("flat", "flatten"),
        Layer("Y", "linear", out=q["classes"]),
    )


def _space_7(d: Drawer) -> dict[str, Any]:
    """Kernels 3, 5 or 7 on the two strided convolutions with a padding of 1 up to half the kernel, and a transposed
    convolution of kernel 2, 3 or 4: every input pixel reaches the logits, so Y's field is the whole input at any side
    (the drawn one and the one the gradient check measures on). A strided convolution with a padding of at least 1
    covers its whole input; a transposed convolution of padding at most k − 1 keeps a row from each input row; its
    output has the kernel's parity (no output padding), and when that is odd the 2×2 pooling drops the last row, which
    a padding of at most k − 2 keeps from being the only one the last input row reaches."""
    k1, k2, k4 = d.choice((3, 5, 7)), d.choice((3, 5, 7)), d.choice((2, 3, 4))
    return {
        "batch": d.integer(1, 256),
        "channels": d.choice((1, 3)),
        "side": d.integer(64, 512),
        "conv": [d.choice(FILTERS), k1, d.integer(1, k1 // 2)],
        "dwconv": [k2, d.integer(1, k2 // 2)],
        "pointwise": d.choice(FILTERS),
        "tconv": [d.choice(FILTERS), k4, d.integer(0, k4 - 1 - k4 % 2)],
        "classes": d.integer(2, 100),
    }


def _problem_7(q: Mapping[str, Any]) -> Problem:
    (f1, k1, p1), (k2, p2), (f4, k4, p4) = q["conv"], q["dwconv"], q["tconv"]
    n, c, side = q["batch"], q["channels"], q["side"]
    statement = (
        f"A batch of {n}×{c}×{side}×{side} images goes through: {f1} filters {k1}×{k1} (stride 2, padding {p1}), ReLU; "
        f"a depthwise {k2}×{k2} convolution (stride 2, padding {p2}), ReLU; {q['pointwise']} pointwise 1×1 filters, "
        f"ReLU; a transposed convolution with {f4} filters {k4}×{k4}, stride 2, padding {p4}, no output padding, ReLU; "
        f"2×2 average pooling with stride 2; a linear layer to {q['classes']} logits."
    )
    return Problem(
        id="cpen455-hw2/7",
        title="Receptive fields with a transposed convolution",
        statement=statement + " How large is the receptive field of a unit of H1, H2, H3, H4, H5 and Y?",
        source=f"{SEED}, question 7",
        topics=("receptive-field", "transposed-conv"),
        parts=rf_parts(_net_7(q), (n, c, side, side), ("H1", "H2", "H3", "H4", "H5", "Y")),
    )


NET7 = _net_7(Q7)

SYMS = ("B", "C", "H", "W", "K", "N", "M")


def _s() -> dict[str, Any]:
    import sympy

    return {n: sympy.Symbol(n, integer=True, positive=True) for n in SYMS}


def _sweep_configs(seed: int, grouped: bool) -> list[dict[str, int]]:
    def gen(r: Any) -> dict[str, int]:
        m = r.randint(1, 4) if grouped else 1
        return {
            "B": r.randint(1, 3),
            "C": m * r.randint(1, 4),
            "N": m * r.randint(1, 4),
            "K": r.choice([1, 3, 5]),
            "H": r.randint(5, 12),
            "W": r.randint(5, 12),
            "M": m,
        }

    return checks.random_configs(40, seed, gen)


def _params_part(key: str, grouped: bool) -> Part:
    def derive() -> Derivation:
        import sympy

        from verify.arith import conv

        s = _s()
        g = s["M"] if grouped else 1
        ans = conv.conv_params(s["C"], s["N"], s["K"], groups=g)
        steps = [
            Step(
                "Each of the N filters spans K×K positions of the C/g channels of its group (no bias).",
                sympy.latex(ans),
            )
        ]
        if grouped:
            steps.insert(
                0,
                Step(
                    "M groups, each mapping C/M input channels to N/M output channels with K×K kernels:",
                    r"M \cdot \frac{N}{M} \cdot \frac{C}{M} K^2",
                ),
            )
        return Derivation(ans, tuple(steps))

    def by_indices(claim: Any, ctx: Context) -> Outcome:
        from verify.symbolic import equal

        s = _s()
        count = index_count(s["C"], s["N"], s["K"], s["K"], s["M"] if grouped else 1)
        cmp = equal(
            claim,
            count,
            valid=lambda pt: not grouped or all(v % pt[s["M"]] == 0 for k, v in pt.items() if k.name in ("C", "N")),
        )
        return Outcome(
            cmp.equal, "claim vs a sum over filters, channels and kernel positions", f"{count}: {cmp.detail}"
        )

    def numel(claim: Any, ctx: Context) -> Outcome:
        import torch.nn as nn

        def truth(c: dict[str, int]) -> int:
            layer = nn.Conv2d(c["C"], c["N"], c["K"], padding=c["K"] // 2, groups=c["M"], bias=False, device="meta")
            return sum(p.numel() for p in layer.parameters())

        return checks.sweep(
            claim,
            _sweep_configs(ctx.seed, grouped),
            {n: n for n in SYMS},
            truth,
            lambda c: f"nn.Conv2d({c['C']}, {c['N']}, {c['K']}, groups={c['M']}, bias=False)",
        )

    return Part(
        key,
        Kind.EXPR,
        derive,
        (checks.symbolic("index-range count", by_indices), checks.torch_check("numel of nn.Conv2d", numel)),
        symbols=SYMS if grouped else ("C", "K", "N"),
        note="Weights only (the question ignores bias); half padding keeps H×W.",
    )


# ---- 6: vanilla versus depthwise-separable ---------------------------------------------------------------------------

OPS_NOTE = (
    "Operations are multiplications plus additions (k multiplies and k − 1 additions per dot product of length "
    "k, no bias). In MACs: vanilla B·H·W·N·C·K², separable B·H·W·C·(K² + N); the common approximation "
    "FLOPs = 2·MACs (one multiply and one add per term) is also accepted and named."
)
OPS_CONVENTIONS = ("exact operations", "FLOPs = 2·MACs")


def _derive_6(key: str) -> Derivation:
    import sympy

    from verify.arith import conv

    s = _s()
    B, C, H, W, K, N = (s[x] for x in "BCHWKN")
    # (weights, output channels) of each layer, from the parameter formula; half padding keeps H×W, so every weight
    # meets B·H·W positions (one multiply-accumulate each), and each of the B·H·W·(channels) outputs sums its terms
    # with one addition fewer than it has terms.
    layers = {
        "vanilla": [(conv.conv_params(C, N, K), N)],
        "separable": [(conv.conv_params(C, C, K, groups=C), C), (conv.conv_params(C, N, 1), N)],
    }
    net = key.split("_")[1]
    per_layer_macs = [weights * B * H * W for weights, _ in layers[net]]
    values = {
        f"params_{net}": sympy.expand(sum(weights for weights, _ in layers[net])),
        f"ops_{net}": sum(
            sympy.factor(2 * macs - B * H * W * out) for macs, (_, out) in zip(per_layer_macs, layers[net], strict=True)
        ),
    }
    why = {
        "params_vanilla": "N filters of size K×K×C",
        "params_separable": "a depthwise K×K filter per channel (C·K²) and a pointwise 1×1×C filter per output (C·N)",
        "ops_vanilla": "B·N·H·W outputs, each a dot product of length C·K²: C·K² multiplies and C·K² − 1 additions",
        "ops_separable": "depthwise: B·C·H·W dot products of length K²; pointwise: B·N·H·W dot products of length C",
    }
    steps = [Step(f"Weights per layer from the parameter formula: {', '.join(str(w) for w, _ in layers[net])}")]
    if key.startswith("ops"):
        steps.append(
            Step(
                "Each weight meets B·H·W positions (half padding keeps H×W): multiply-accumulates",
                sympy.latex(sum(sympy.factor(m) for m in per_layer_macs)),
            )
        )
    steps.append(Step(why[key], sympy.latex(values[key])))
    accepted: tuple[tuple[str, Any], ...] = ()
    if key.startswith("ops"):
        accepted = ((OPS_CONVENTIONS[1], sum(sympy.factor(2 * m) for m in per_layer_macs)),)
    return Derivation(values[key], tuple(steps), accepted=accepted, convention=OPS_CONVENTIONS[0] if accepted else "")


def _layers_6(c: dict[str, int], separable: bool) -> list[Any]:
    import torch.nn as nn

    if not separable:
        return [nn.Conv2d(c["C"], c["N"], c["K"], padding=c["K"] // 2, bias=False, device="meta")]
    return [
        nn.Conv2d(c["C"], c["C"], c["K"], padding=c["K"] // 2, groups=c["C"], bias=False, device="meta"),
        nn.Conv2d(c["C"], c["N"], 1, bias=False, device="meta"),
    ]


def _torch_6(key: str, convention: str = OPS_CONVENTIONS[0]) -> Any:
    def check(claim: Any, ctx: Context) -> Outcome:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        separable = key.endswith("separable")

        def truth(c: dict[str, int]) -> int:
            layers = _layers_6(c, separable)
            if key.startswith("params"):
                return sum(p.numel() for layer in layers for p in layer.parameters())
            if convention == OPS_CONVENTIONS[0]:
                # exact operations: a reference convolution that tallies every multiply and addition it performs,
                # run on real tensors with the layers' weights, its outputs checked against the layers'
                from verify.count.instrumented import conv2d_counted

                x = torch.randn(c["B"], c["C"], c["H"], c["W"], dtype=torch.float64)
                total = 0
                for layer in layers:
                    w = torch.randn(*layer.weight.shape, dtype=torch.float64)
                    y, ops = conv2d_counted(x, w, padding=layer.padding[0], groups=layer.groups)
                    want = torch.nn.functional.conv2d(x, w, padding=layer.padding, groups=layer.groups)
                    if not torch.allclose(y, want, atol=1e-10):
                        raise AssertionError("the counting reference differs from F.conv2d")
                    total += ops.multiplies + ops.additions
                    x = y
                return int(total)
            # FLOPs = 2·MACs: torch's flop counter, on meta tensors
            x = torch.empty(c["B"], c["C"], c["H"], c["W"], device="meta")
            total = 0
            for layer in layers:
                with FlopCounterMode(display=False) as fc:
                    x = layer(x)
                total += fc.get_total_flops()
            return int(total)

        what = (
            "numel of"
            if key.startswith("params")
            else "multiplies and additions counted by a reference convolution equal to"
            if convention == OPS_CONVENTIONS[0]
            else "torch's flop counter (2 per MAC) of"
        )
        return checks.sweep(
            claim,
            _sweep_configs(ctx.seed, False),
            {n: n for n in "BCHWKN"},
            truth,
            lambda c: (
                f"{what} {'depthwise + pointwise' if separable else 'a vanilla'} nn.Conv2d, "
                f"C={c['C']}, N={c['N']}, K={c['K']}, input {c['B']}×{c['C']}×{c['H']}×{c['W']}"
            ),
        )

    return check


def _symbolic_6(key: str, convention: str = OPS_CONVENTIONS[0]) -> Any:
    """Count by summing over every output and every term of its dot product (sympy summations)."""

    def check(claim: Any, ctx: Context) -> Outcome:
        import sympy

        from verify.symbolic import equal

        s = _s()
        B, C, H, W, K, N = (s[x] for x in "BCHWKN")
        b, h, w, o = sympy.symbols("b h w o", integer=True)

        def per_output_sum(length: Any, channels: Any) -> Any:
            # length multiplies and length − 1 additions; a multiply and an add per term under 2·MACs
            ops = 2 * length - (1 if convention == OPS_CONVENTIONS[0] else 0)
            return sympy.summation(
                sympy.summation(sympy.summation(sympy.summation(ops, (w, 1, W)), (h, 1, H)), (o, 1, channels)),
                (b, 1, B),
            )

        count = {
            "params_vanilla": index_count(C, N, K, K),
            "params_separable": index_count(C, C, K, K, C) + index_count(C, N, 1, 1),
            "ops_vanilla": per_output_sum(C * K**2, N),
            "ops_separable": per_output_sum(K**2, C) + per_output_sum(C, N),
        }[key]
        cmp = equal(claim, count)
        return Outcome(
            cmp.equal, "claim vs a sum over outputs (or weights) of their cost", f"{sympy.factor(count)}: {cmp.detail}"
        )

    return check


def _part_6(key: str) -> Part:
    symbolic, real = _symbolic_6(key), _torch_6(key)
    if key.startswith("ops"):
        symbolic = checks.under_conventions(OPS_CONVENTIONS, lambda c: _symbolic_6(key, c))
        real = checks.under_conventions(OPS_CONVENTIONS, lambda c: _torch_6(key, c))
    return Part(
        key,
        Kind.EXPR,
        lambda: _derive_6(key),
        (
            checks.symbolic("sum over outputs and terms", symbolic),
            checks.torch_check("real layers", real),
        ),
        symbols=("B", "C", "H", "W", "K", "N"),
        note=OPS_NOTE if key.startswith("ops") else "Weights only, no bias.",
    )


PROBLEMS = [
    classifier_question(
        "2.3",
        "Parameters of the classifier without biases",
        "No layer has a bias. Count the learnable parameters of each layer and in total.",
        lambda net, shape: network_param_parts(net, shape, PARAM_KEYS, "total", "No biases."),
        topics=("counting",),
    ),
    classifier_question(
        "2.4",
        "Parameters of the classifier with biases",
        "Every convolution and the linear layer have biases. Count the bias parameters of each layer, and the "
        "learnable parameters in total.",
        lambda net, shape: network_param_parts(
            with_bias(net),
            shape,
            PARAM_KEYS,
            "total",
            "Per layer: its biases, as the question asks; total: every learnable parameter, weights and biases.",
            per_layer="bias",
        ),
        topics=("counting",),
    ),
    classifier_question(
        "2.6",
        "Receptive fields through the classifier",
        "How large is the receptive field of a unit of H1, H2, H3, H4, H5 and Y?",
        lambda net, shape: rf_parts(net, shape, ("H1", "H2", "H3", "H4", "H5", "Y"), small_side=RF_SIDE),
        topics=("receptive-field",),
    ),
    Problem(
        id="cpen455-hw2/5.1",
        title="Parameters of a convolution",
        statement="N kernels of K×K (stride 1, half padding) are applied to a B×C×H×W input; no bias. How many learnable "
        "parameters?",
        source=f"{SEED}, question 5.1",
        topics=("counting", "grouped-conv"),
        parts=(_params_part("params", grouped=False),),
    ),
    Problem(
        id="cpen455-hw2/5.2",
        title="Parameters of a grouped convolution",
        statement="The convolution of 5.1 is split into M groups (M divides C and N), output still B×N×H×W. How many "
        "learnable parameters?",
        source=f"{SEED}, question 5.2",
        topics=("counting", "grouped-conv"),
        parts=(_params_part("params", grouped=True),),
    ),
    Problem(
        id="cpen455-hw2/6",
        title="Vanilla versus depthwise-separable convolution",
        statement="Compare a vanilla convolution (N kernels K×K×C, stride 1, half padding, no bias) with a depthwise-separable "
        "one of the same kernel size and output: learnable parameters and scalar multiplications plus additions.",
        source=f"{SEED}, question 6",
        topics=("counting", "grouped-conv"),
        parts=tuple(_part_6(k) for k in ("params_vanilla", "params_separable", "ops_vanilla", "ops_separable")),
    ),
    parametrized("cpen455-hw2/7", _space_7, _problem_7, Q7),
]

register_model("cpen455-q7", materialized(NET7, 3, 512), "cpen455-hw2/7 network with a transposed conv (100,3,512,512)")
