"""csc413-a2: sizes of a CNN and an FCNN (3.2), what sets a receptive field (3.3), PoolUpsampleNet's counts (4.3)."""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any

from verify import checks
from verify.count.models import register_model
from verify.model import Context, Derivation, Kind, Outcome, Part, Problem, Step

SEED = "003_c85582041e1ef3a7.txt"

# ---- 3.2 -----------------------------------------------------------------------------------------------------------
# The handout's figure of the two architectures is not in its text; the layers are as the write-up
# (000_07a28d7e8d8cb81d.txt) reads the figure: a CNN Conv3-32, MaxPool, Conv3-64, MaxPool, Conv3-3 (3×3 kernels, zero padding
# keeping the size, 2×2 pools of stride 2, no bias) and an FCNN with the convolutions replaced by shape-keeping fully
# connected layers, on 32×32×3 inputs.
NEURON_NOTE = (
    "Neurons: the outputs of every layer, pooling included, the input not counted (one image); counts that leave the "
    "pooling outputs out, or that add the input, are also accepted and named. Parameters: weights only, no bias."
)
NEURON_CONVENTIONS = ("every layer's outputs", "pooling outputs left out", "the input counted too")


def _neurons(sizes: list[tuple[str, int]], convention: str, input_size: int) -> int:
    """The neuron count of (layer kind, output size) rows under a convention."""
    total = sum(n for kind, n in sizes if not (convention == NEURON_CONVENTIONS[1] and kind == "pool"))
    return total + (input_size if convention == NEURON_CONVENTIONS[2] else 0)


def _cnn(device: str = "meta") -> Any:
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False, device=device),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False, device=device),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(64, 3, 3, padding=1, bias=False, device=device),
    )


def _fcnn(device: str = "meta") -> Any:
    import torch.nn as nn

    def fc(c: int, h: int) -> Any:
        return nn.Sequential(
            nn.Flatten(), nn.Linear(c * h * h, c * h * h, bias=False, device=device), nn.Unflatten(1, (c, h, h))
        )

    return nn.Sequential(fc(3, 32), nn.MaxPool2d(2, 2), fc(3, 16), nn.MaxPool2d(2, 2), fc(3, 8))


# (layer, filters) on a 32×32×3 input: convolutions 3×3 with size-keeping padding, pools 2×2 of stride 2, FC layers
# that keep their input's shape.
PLAN_32 = {
    "cnn": [("Conv3-32", 32), ("MaxPool", 0), ("Conv3-64", 64), ("MaxPool", 0), ("Conv3-3", 3)],
    "fcnn": [("FC", 0), ("MaxPool", 0), ("FC", 0), ("MaxPool", 0), ("FC", 0)],
}


def _layers_32(net: str) -> list[tuple[str, tuple[int, int, int], int]]:
    """(layer, output (C, H, W), weights) from the size and parameter formulas, layer by layer."""
    from verify.arith import conv

    ch, side, rows = 3, 32, []
    for name, filters in PLAN_32[net]:
        if name.startswith("Conv"):
            weights = int(conv.conv_params(ch, filters, 3))
            ch, side = filters, int(conv.conv_out(side, 3, 1, 1))
        elif name == "MaxPool":
            weights, side = 0, int(conv.pool_out(side, 2, 2))
        else:
            weights = int(conv.linear_params(ch * side * side, ch * side * side))
        rows.append((name, (ch, side, side), weights))
    return rows


def _derive_32(net: str, what: str) -> Derivation:
    rows = _layers_32(net)
    steps = []
    total = 0
    for name, (c, h, w), weights in rows:
        value = c * h * w if what == "neurons" else weights
        total += value
        steps.append(
            Step(
                f"{name}: output {h}×{w}×{c}",
                f"{c}\\cdot{h}\\cdot{w} = {c * h * w}" if what == "neurons" else str(weights),
            )
        )
    steps.append(Step("Total", str(total)))
    accepted: tuple[tuple[str, Any], ...] = ()
    if what == "neurons":
        sizes = [("pool" if name == "MaxPool" else "layer", c * h * w) for name, (c, h, w), _ in rows]
        accepted = tuple((c, _neurons(sizes, c, 3 * 32 * 32)) for c in NEURON_CONVENTIONS[1:])
    return Derivation(total, tuple(steps), accepted=accepted, convention=NEURON_CONVENTIONS[0] if accepted else "")


def _check_32_symbolic(net: str, what: str, convention: str = NEURON_CONVENTIONS[0]) -> Any:
    """Each layer's output size by counting window positions, and its weights by index counting."""

    def check(claim: Any, ctx: Context) -> Outcome:
        from verify import routes
        from verify.count.parts import index_count

        side, ch, total = 32, 3, 0
        sizes: list[tuple[str, int]] = []
        plan = {
            "cnn": [("conv", 32), ("pool", 0), ("conv", 64), ("pool", 0), ("conv", 3)],
            "fcnn": [("fc", 0), ("pool", 0), ("fc", 0), ("pool", 0), ("fc", 0)],
        }[net]
        for kind, filters in plan:
            if kind == "conv":
                n_w = int(index_count(ch, filters, 3, 3))
                side, ch = routes.count_windows(side, 3, 1, 1), filters
            elif kind == "pool":
                n_w, side = 0, routes.count_windows(side, 2, 2)
            else:
                n = ch * side * side
                n_w = int(index_count(n, n, 1, 1))
            total += n_w
            sizes.append((kind, ch * side * side))
        if what == "neurons":  # the convention applied here, not by the derivation's helper
            counted = [n for kind, n in sizes if kind != "pool" or convention != NEURON_CONVENTIONS[1]]
            total = sum(counted) + (3 * 32 * 32 if convention == NEURON_CONVENTIONS[2] else 0)
        return checks.exact(
            int(claim), total, "window positions counted and an index-range weight count, layer by layer"
        )

    return check


def _check_32_torch(net: str, what: str, convention: str = NEURON_CONVENTIONS[0]) -> Any:
    def check(claim: Any, ctx: Context) -> Outcome:
        import torch
        import torch.nn as nn

        model = _cnn() if net == "cnn" else _fcnn()
        if what == "params":
            return checks.exact(int(claim), sum(p.numel() for p in model.parameters()), "p.numel() over the real model")
        # outputs of each top-level layer (a shape-keeping FC block counts once), from forward hooks
        seen: list[tuple[str, int]] = []
        hooks = [
            m.register_forward_hook(
                lambda mod, i, o: seen.append(("pool" if isinstance(mod, nn.MaxPool2d) else "layer", o.numel()))
            )
            for m in model
        ]
        x = torch.empty(1, 3, 32, 32, device="meta")
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()
        kinds = ", ".join(type(m).__name__ if not isinstance(m, nn.Sequential) else "FC" for m in model)
        return checks.exact(
            int(claim),
            sum(n for kind, n in seen if kind == "layer" or convention != NEURON_CONVENTIONS[1])
            + (x.numel() if convention == NEURON_CONVENTIONS[2] else 0),
            f"forward hooks on the real model ({kinds}) on 1×3×32×32: {[n for _, n in seen]}",
        )

    return check


def _part_32(key: str, net: str, what: str) -> Part:
    symbolic, real = _check_32_symbolic(net, what), _check_32_torch(net, what)
    if what == "neurons":
        symbolic = checks.under_conventions(NEURON_CONVENTIONS, lambda c: _check_32_symbolic(net, what, c))
        real = checks.under_conventions(NEURON_CONVENTIONS, lambda c: _check_32_torch(net, what, c))
    return Part(
        key,
        Kind.INT,
        lambda: _derive_32(net, what),
        (
            checks.symbolic("formulas layer by layer", symbolic),
            checks.torch_check("the real model", real),
        ),
        note=NEURON_NOTE,
    )


# ---- 3.3 -----------------------------------------------------------------------------------------------------------


# A base chain of two 3×3 convolutions, and the same chain with one thing changed. Factors must change the receptive
# field of the last layer's units; the other things an answer might name must leave it as it is.
FACTORS = ("kernel size", "stride", "depth", "dilation", "pooling")
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "base": [{"k": 3}, {"k": 3}],
    "kernel size": [{"k": 5}, {"k": 3}],
    "stride": [{"k": 3, "s": 2}, {"k": 3}],
    "depth": [{"k": 3}, {"k": 3}, {"k": 3}],
    "dilation": [{"k": 3}, {"k": 3, "d": 2}],
    "pooling": [{"k": 3}, {"k": 2, "s": 2, "pool": True}, {"k": 3}],
    "padding": [{"k": 3, "p": 1}, {"k": 3, "p": 1}],
    "channels": [{"k": 3, "c": 8}, {"k": 3, "c": 8}],
    "activation": [{"k": 3, "relu": True}, {"k": 3}],
}
MIN_FACTORS = 3  # the question asks for three


def _factor_verdict(claim: Any, field: Any, route: str) -> Outcome:
    """Every named factor changes the field of the base chain, and there are as many as the question asks."""
    base = field("base")
    notes, ok = [], True
    for name in sorted(claim):
        if name not in VARIANTS:
            ok = False
            notes.append(f"'{name}' is not a change the bank can make to a network")
            continue
        after = field(name)
        changes = after != base
        ok = ok and changes
        notes.append(f"{name}: {base} → {after}" + ("" if changes else " (unchanged: not a factor)"))
    if len(claim) < MIN_FACTORS:
        ok = False
        notes.append(f"{len(claim)} named, the question asks for {MIN_FACTORS}")
    return Outcome(ok, f"each named factor vs the {route} of a 3×3, 3×3 chain", "; ".join(notes))


def _check_33_symbolic(claim: Any, ctx: Context) -> Outcome:
    from verify import routes

    def field(name: str) -> int:
        steps = [routes.AxisStep("conv", x["k"], x.get("s", 1), x.get("p", 0), x.get("d", 1)) for x in VARIANTS[name]]
        return routes.axis_field(steps, 96).max

    return _factor_verdict(claim, field, "receptive field from composed connectivity matrices")


def _check_33_torch(claim: Any, ctx: Context) -> Outcome:
    import torch
    import torch.nn as nn

    from verify import routes

    def field(name: str) -> int:
        mods: OrderedDict[str, nn.Module] = OrderedDict()
        ch = VARIANTS[name][0].get("c", 1)
        for i, x in enumerate(VARIANTS[name]):
            if x.get("pool"):
                mods[f"l{i}"] = nn.AvgPool2d(x["k"], x["s"])
            else:
                mods[f"l{i}"] = nn.Conv2d(
                    ch, ch, x["k"], x.get("s", 1), x.get("p", 0), dilation=x.get("d", 1), bias=False
                )
            if x.get("relu"):
                mods[f"r{i}"] = nn.ReLU()
        model = nn.Sequential(mods)
        last = [n for n in mods if n.startswith("l")][-1]
        with torch.no_grad():
            model(torch.zeros(1, ch, 48, 48))
        return routes.gradient_side(model, (1, ch, 48, 48), last)[1]

    return _factor_verdict(claim, field, "gradient-measured receptive field of real layers")


def _derive_factors() -> Derivation:
    return Derivation(
        frozenset(FACTORS),
        stated=True,
        steps=(
            Step(
                "A unit's field grows by (k − 1)·d·j per layer, and the jump j multiplies by every stride (pooling is a "
                "window with a stride): kernel size k, dilation d, stride s, depth (the number of terms) and pooling "
                "all change it; padding, channel counts and activations do not.",
                r"r_l = r_{l-1} + (k_l - 1)\, d_l\, j_{l-1},\quad j_l = j_{l-1} s_l",
            ),
        ),
    )


# ---- 4.3 -----------------------------------------------------------------------------------------------------------

COUNT_SYMS = ("NIC", "NF", "NC", "k")
COUNT_NOTE = (
    "One image of 32×32 (64×64 for the _2x parts); biases and BatchNorm ignored, as the handout asks. Outputs: every "
    "layer's output (convolution, pooling or upsampling, ReLU) except BatchNorm's; connections: the convolutions' "
    "multiply-accumulates. The handout also accepts counts that include BatchNorm: its γ and β (2 weights per channel), "
    "its outputs, and one connection per output; those are accepted and named."
)
BN_CONVENTIONS = ("BatchNorm ignored", "BatchNorm counted")


def _blocks(NIC: Any, NF: Any, NC: Any) -> list[tuple[Any, Any, str]]:
    """PoolUpsampleNet: (in channels, out channels, what follows the conv) for its five blocks."""
    return [(NIC, NF, "pool"), (NF, 2 * NF, "pool"), (2 * NF, NF, "up"), (NF, NC, "up"), (NC, NC, "none")]


def _derive_43(what: str, side: int) -> Derivation:
    import sympy

    NIC, NF, NC, k = sympy.symbols(COUNT_SYMS, integer=True, positive=True)
    total, bn = sympy.Integer(0), sympy.Integer(0)
    steps = []
    s = side
    for i, (cin, cout, after) in enumerate(_blocks(NIC, NF, NC), 1):
        conv_out = cout * s * s
        s2 = s // 2 if after == "pool" else s * 2 if after == "up" else s
        if what == "weights":
            term = cin * cout * k**2
            bn_term = 2 * cout  # γ and β per channel
        elif what == "connections":
            term = conv_out * cin * k**2
            bn_term = cout * s2 * s2  # each normalized output reads one input
        else:
            term = conv_out + (cout * s2 * s2 * 2 if after != "none" else 0)
            bn_term = cout * s2 * s2
        steps.append(Step(f"block {i}: conv {s}×{s}, {after}", sympy.latex(sympy.expand(term))))
        total += term
        bn += bn_term if after != "none" else 0
        s = s2
    total = sympy.expand(total)
    steps.append(Step("Total, BatchNorm ignored", sympy.latex(sympy.factor(total))))
    steps.append(Step("BatchNorm's share (counted only under the accepted convention)", sympy.latex(sympy.expand(bn))))
    return Derivation(
        total,
        tuple(steps),
        accepted=((BN_CONVENTIONS[1], sympy.expand(total + bn)),),
        convention=BN_CONVENTIONS[0],
    )


def pool_upsample_net(NIC: int, NF: int, NC: int, k: int, device: str = "meta") -> Any:
    import torch.nn as nn

    def block(cin: int, cout: int, after: str) -> Any:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False, device=device)]
        if after == "pool":
            layers.append(nn.MaxPool2d(2))
        elif after == "up":
            layers.append(nn.Upsample(scale_factor=2))
        if after != "none":
            layers += [nn.BatchNorm2d(cout, device=device), nn.ReLU()]
        return nn.Sequential(*layers)

    return nn.Sequential(*(block(*b) for b in _blocks(NIC, NF, NC)))


def _check_43_symbolic(what: str, side: int, convention: str = BN_CONVENTIONS[0]) -> Any:
    """The same totals from the formula modules (conv sizes, parameter and work formulas) with sympy symbols."""

    def check(claim: Any, ctx: Context) -> Outcome:
        import sympy

        from verify.arith import conv
        from verify.count.conventions import conv2d_work
        from verify.symbolic import equal

        NIC, NF, NC, k = sympy.symbols(COUNT_SYMS, integer=True, positive=True)
        total = sympy.Integer(0)
        s = side
        for cin, cout, after in _blocks(NIC, NF, NC):
            # "same" padding for odd k keeps s
            if what == "weights":
                total += conv.conv_params(cin, cout, k)
            elif what == "connections":
                total += conv2d_work(1, cin, cout, s, s, k, k).macs
            else:
                total += cout * s * s
            if after != "none":
                s = conv.pool_out(s, 2, 2) if after == "pool" else 2 * s
                if what == "outputs":
                    total += 2 * cout * s * s
                if convention == BN_CONVENTIONS[1]:  # nn.BatchNorm2d(cout): an affine pair per channel, one map
                    total += 2 * cout if what == "weights" else cout * s * s
        cmp = equal(claim, total)
        return Outcome(
            cmp.equal, "claim vs the formula modules with symbolic channels", f"{sympy.factor(total)}: {cmp.detail}"
        )

    return check


@functools.cache
def _meta_net(NIC: int, NF: int, NC: int, k: int) -> Any:
    """PoolUpsampleNet on the meta device (parameters without data: what is counted is their number), built once per
    configuration and process (the weights checks of both input sizes and both conventions read the same one)."""
    return pool_upsample_net(NIC, NF, NC, k)


@functools.cache
def _measure_43(NIC: int, NF: int, NC: int, k: int, side: int) -> tuple[int, int, int]:
    """(connections, outputs, BatchNorm outputs) of a real PoolUpsampleNet on a side×side input, from one forward pass
    on a zero CPU input in eval mode (a fraction of the time a meta pass takes: batch norm has no fast meta kernel): torch's
    flop counter / 2, and forward hooks on the leaf layers (BatchNorm left out). The outputs and connections checks
    build the same network on the same input, so each configuration is measured once per process."""
    import torch
    import torch.nn as nn
    from torch.utils.flop_counter import FlopCounterMode

    # float32: what is counted (operations, output sizes) does not depend on the dtype, and its kernels are fast
    model = pool_upsample_net(NIC, NF, NC, k, device="cpu").float().eval()
    seen: list[int] = []
    bn_seen: list[int] = []
    for m in (m for m in model.modules() if not list(m.children())):
        m.register_forward_hook(
            lambda mod, i, o: (bn_seen if isinstance(mod, nn.BatchNorm2d) else seen).append(o.numel())
        )
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, NIC, side, side, dtype=torch.float32))
    return fc.get_total_flops() // 2, sum(seen), sum(bn_seen)


def _check_43_torch(what: str, side: int, convention: str = BN_CONVENTIONS[0]) -> Any:
    def check(claim: Any, ctx: Context) -> Outcome:
        import torch.nn as nn

        with_bn = convention == BN_CONVENTIONS[1]

        def truth(c: dict[str, int]) -> int:
            if what == "weights":
                model = _meta_net(c["NIC"], c["NF"], c["NC"], c["k"])
                kinds = (nn.Conv2d, nn.BatchNorm2d) if with_bn else (nn.Conv2d,)
                return sum(p.numel() for m in model.modules() if isinstance(m, kinds) for p in m.parameters())
            connections, outputs, bn_outputs = _measure_43(c["NIC"], c["NF"], c["NC"], c["k"], side)
            extra = bn_outputs if with_bn else 0  # a normalized output reads one input: one connection each
            return (connections if what == "connections" else outputs) + extra

        configs = checks.random_configs(
            25,
            ctx.seed,
            lambda r: {
                "NIC": r.randint(1, 4),
                "NF": r.randint(1, 6),
                "NC": r.randint(1, 6),
                "k": r.choice([1, 3, 5, 7]),
            },
        )
        bn = convention == BN_CONVENTIONS[1]
        how = {
            "weights": "conv (and BatchNorm) parameter numel" if bn else "conv weight numel",
            "connections": "torch's flop counter / 2" + (" + BatchNorm outputs" if bn else ""),
            "outputs": "forward hooks" + ("" if bn else " (BatchNorm left out)"),
        }[what]
        return checks.sweep(
            claim,
            configs,
            {n: n for n in COUNT_SYMS},
            truth,
            lambda c: (
                f"PoolUpsampleNet(NIC={c['NIC']}, NF={c['NF']}, NC={c['NC']}, k={c['k']}) on {side}×{side}, {how},"
            ),
        )

    return check


def _part_43(key: str) -> Part:
    what = key.removesuffix("_2x")
    side = 64 if key.endswith("_2x") else 32
    return Part(
        key,
        Kind.EXPR,
        lambda: _derive_43(what, side),
        (
            checks.symbolic(
                "formula modules", checks.under_conventions(BN_CONVENTIONS, lambda c: _check_43_symbolic(what, side, c))
            ),
            checks.torch_check(
                "real PoolUpsampleNet",
                checks.under_conventions(BN_CONVENTIONS, lambda c: _check_43_torch(what, side, c)),
            ),
        ),
        symbols=COUNT_SYMS,
        note=COUNT_NOTE,
    )


PROBLEMS = [
    Problem(
        id="csc413-a2/3.2",
        title="Neurons and parameters of a small CNN and its fully connected twin",
        statement="On 32×32×3 inputs, a CNN Conv3-32, 2×2 max pool, Conv3-64, 2×2 max pool, Conv3-3 (3×3 kernels, size-keeping "
        "zero padding, no bias) is compared with an FCNN whose convolutions are replaced by fully connected layers that keep "
        "the shape. Count the neurons and the trainable parameters of each.",
        source=f"{SEED}, question 3.2; the architecture as the write-up 000_07a28d7e8d8cb81d.txt gives it (the "
        "handout's figure is not in its text)",
        topics=("counting",),
        parts=(
            _part_32("cnn_neurons", "cnn", "neurons"),
            _part_32("cnn_params", "cnn", "params"),
            _part_32("fcnn_neurons", "fcnn", "neurons"),
            _part_32("fcnn_params", "fcnn", "params"),
        ),
    ),
    Problem(
        id="csc413-a2/3.3",
        title="What sets the size of a receptive field",
        statement="Name three things that change the size of the receptive field of a unit in a CNN, and explain each "
        "briefly.",
        source=f"{SEED}, question 3.3",
        topics=("receptive-field",),
        parts=(
            Part(
                "factors",
                Kind.FACTORS,
                _derive_factors,
                (
                    checks.symbolic("composed connectivity per factor", _check_33_symbolic),
                    checks.torch_check("gradient-measured per factor", _check_33_torch),
                ),
                note="Name at least three, e.g. 'kernel size, stride, depth'; each is measured to change the field.",
            ),
            Part(
                "text",
                Kind.TEXT,
                lambda: Derivation(
                    "Kernel size, stride (of every earlier layer: it multiplies the step between inputs), depth (each layer "
                    "adds (k − 1)·jump), dilation (spreads a kernel over d(k − 1) + 1 inputs) and pooling (a window and a stride)."
                ),
                (),
                note="The explanation beside the graded factors.",
            ),
        ),
    ),
    Problem(
        id="csc413-a2/4.3",
        title="Weights, outputs and connections of PoolUpsampleNet",
        statement="PoolUpsampleNet has five blocks: Conv(NIC→NF), MaxPool, BN, ReLU; Conv(NF→2NF), MaxPool, BN, ReLU; "
        "Conv(2NF→NF), Upsample ×2, BN, ReLU; Conv(NF→NC), Upsample ×2, BN, ReLU; Conv(NC→NC); k×k kernels with size-keeping "
        "padding. Count its weights, outputs and connections as functions of NIC, NF, NC and k on 32×32 inputs, and again "
        "with the input's width and height doubled. Biases and BatchNorm are ignored, though counts that include BatchNorm "
        "are accepted too.",
        source=f"{SEED}, question 4.3",
        topics=("counting",),
        parts=tuple(
            _part_43(k) for k in ("weights", "outputs", "connections", "weights_2x", "outputs_2x", "connections_2x")
        ),
    ),
]

register_model(
    "pool-upsample-net",
    lambda: pool_upsample_net(1, 32, 24, 3, device="cpu"),
    "csc413-a2/4.3 with NIC=1, NF=32, NC=24, k=3 (1,1,32,32)",
)
