"""Ready-made parts for counting questions: parameters, operations and receptive fields of layers and small networks.

Like :mod:`verify.conv_parts`, each builder derives the answer with sympy and attaches a symbolic check (an
independent count: summation over index ranges, exact index propagation) and a torch check (``numel`` of real layers,
torch's flop counter, the gradient support of real units).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from verify import checks
from verify.conv_parts import Layer, build_model
from verify.model import Context, Derivation, Kind, Outcome, Part, Step


def index_count(c_in: Any, c_out: Any, kh: Any, kw: Any, groups: Any = 1, bias: bool = False) -> Any:
    """Count a layer's learnable numbers by summing over its index ranges (filter o, input channel c of o's group,
    kernel row u, column v), plus one bias per filter: an independent route to the parameter formula."""
    import sympy

    o, c, u, v = sympy.symbols("o c u v", integer=True)
    per_filter = sympy.summation(
        sympy.summation(sympy.summation(1, (v, 1, kw)), (u, 1, kh)), (c, 1, sympy.Integer(1) * c_in / groups)
    )
    return sympy.summation(per_filter + (1 if bias else 0), (o, 1, c_out))


def params_of(layer: Layer, c_in: int) -> int:
    from verify.arith import conv

    if layer.kind in ("conv", "tconv"):
        return int(conv.conv_params(c_in, layer.out, layer.k, bias=layer.bias))
    if layer.kind == "dwconv":
        return int(conv.conv_params(c_in, layer.out, layer.k, groups=c_in, bias=layer.bias))
    if layer.kind == "linear":
        return int(conv.linear_params(c_in, layer.out, bias=layer.bias))
    return 0


def network_param_parts(
    layers: Sequence[Layer], input_shape: tuple[int, ...], keys: Mapping[str, str], total_key: str | None, note: str
) -> tuple[Part, ...]:
    """Parameter count per named layer (``keys`` maps part key → layer name) and the total, for a spec network."""
    from verify.conv_parts import chain_shapes

    def inputs() -> dict[str, int]:
        """The input width each layer sees (channels, or features after flattening)."""
        chain = chain_shapes(layers, input_shape)
        seen, prev = {}, tuple(input_shape)
        for layer, shape, _ in chain:
            seen[layer.name] = prev[-1] if layer.kind == "linear" else prev[-3]
            prev = shape
        return seen

    def derive_for(name: str | None) -> Callable[[], Derivation]:
        def derive() -> Derivation:
            widths = inputs()
            named = [x for x in layers if x.name in keys.values()]
            steps = []
            for x in named:
                c_in = widths[x.name]
                extra = f" + {x.out} bias" if x.bias else ""
                if x.kind == "linear":
                    steps.append(Step(f"{x.name}: {c_in}·{x.out}{extra}", str(params_of(x, c_in))))
                else:
                    steps.append(Step(f"{x.name}: {x.k}·{x.k}·{c_in}·{x.out}{extra}", str(params_of(x, c_in))))
            if name is None:
                total = sum(params_of(x, widths[x.name]) for x in named)
                steps.append(Step("Pooling, activations and flattening have no parameters; the total is", str(total)))
                return Derivation(total, tuple(steps))
            x = next(x for x in layers if x.name == name)
            return Derivation(params_of(x, widths[name]), tuple(s for s in steps if s.text.startswith(name + ":")))

        return derive

    def symbolic_for(name: str | None) -> Callable[[Any, Context], Outcome]:
        def check(claim: Any, ctx: Context) -> Outcome:
            widths = inputs()
            targets = (
                [x for x in layers if x.name in keys.values()]
                if name is None
                else [next(x for x in layers if x.name == name)]
            )
            total = 0
            for x in targets:
                k = 1 if x.kind == "linear" else x.k
                groups = widths[x.name] if x.kind == "dwconv" else 1
                total += int(index_count(widths[x.name], x.out, k, k, groups, x.bias))
            return checks.exact(int(claim), total, "a sum over every filter, channel, kernel row and column (+ biases)")

        return check

    def torch_for(name: str | None) -> Callable[[Any, Context], Outcome]:
        def check(claim: Any, ctx: Context) -> Outcome:
            from verify.layers import meta

            model = build_model(layers, input_shape[-3])
            model(meta(*input_shape))  # materializes the lazy linear layer
            targets = list(keys.values()) if name is None else [name]
            got = sum(p.numel() for t in targets for p in model.get_submodule(t).parameters())
            what = (
                f"p.numel() summed over {', '.join(repr(model.get_submodule(t)) for t in targets)}"
                if name
                else "p.numel() over the real model"
            )
            return checks.exact(int(claim), got, what, "torch parameter count")

        return check

    wanted: list[tuple[str, Any]] = [*keys.items(), *([(total_key, None)] if total_key else [])]
    return tuple(
        Part(
            key,
            Kind.INT,
            derive_for(layer),
            (
                checks.symbolic("index-range count", symbolic_for(layer)),
                checks.torch_check(f"numel of the real {'model' if layer is None else 'layers'}", torch_for(layer)),
            ),
            note=note,
        )
        for key, layer in wanted
    )


def with_bias(layers: Sequence[Layer]) -> tuple[Layer, ...]:
    return tuple(replace(x, bias=True) if x.kind in ("conv", "dwconv", "tconv", "linear") else x for x in layers)


# ---- receptive fields of a spec network ------------------------------------------------------------------------------


def axis_layers(layers: Sequence[Layer]) -> list[tuple[str, Any]]:
    from verify.count.receptive import AxisLayer

    out = []
    for x in layers:
        if x.kind in ("conv", "dwconv", "avgpool", "maxpool"):
            out.append((x.name, AxisLayer("conv", x.k, x.s, x.p)))
        elif x.kind == "tconv":
            out.append((x.name, AxisLayer("tconv", x.k, x.s, x.p)))
        elif x.kind == "linear":
            out.append((x.name, AxisLayer("full")))
    return out


def rf_parts(
    layers: Sequence[Layer], input_shape: tuple[int, ...], keys: Sequence[str], small_side: int = 192
) -> tuple[Part, ...]:
    """Receptive-field side of each named layer's units (the largest over positions; the range is in the evidence).

    A fully connected layer sees the whole input: its answer is the input's side."""
    from verify.count.receptive import propagate

    side = input_shape[-1]
    axis = axis_layers(layers)
    names = [n for n, _ in axis]

    def derive_for(key: str) -> Callable[[], Derivation]:
        def derive() -> Derivation:
            rfs = dict(zip(names, propagate([a for _, a in axis]), strict=True))
            steps = []
            for n in names[: names.index(key) + 1]:
                rf = rfs[n]
                steps.append(
                    Step(
                        f"{n}: {rf.text() if rf.max is not None else f'fully connected, the whole {side}×{side} input'}"
                    )
                )
            rf = rfs[key]
            if rf.max is not None and rf.min != rf.max:
                steps.append(
                    Step(f"Units of {key} differ by position ({rf.min} to {rf.max}); the part takes the largest.")
                )
            return Derivation(rf.max if rf.max is not None else side, tuple(steps))

        return derive

    def symbolic_for(key: str) -> Callable[[Any, Context], Outcome]:
        def check(claim: Any, ctx: Context) -> Outcome:
            rf = dict(zip(names, propagate([a for _, a in axis]), strict=True))[key]
            truth = rf.max if rf.max is not None else side
            return checks.exact(
                int(claim), truth, f"exact index propagation through the layers ({rf.text()})", "index propagation"
            )

        return check

    def torch_for(key: str) -> Callable[[Any, Context], Outcome]:
        def check(claim: Any, ctx: Context) -> Outcome:
            from verify.count.receptive import measure

            thin = tuple(replace(x, out=2) if x.kind in ("conv", "dwconv", "tconv") else x for x in layers)
            model = build_model(thin, 2, device="cpu")
            import torch

            model(torch.zeros(1, 2, small_side, small_side))
            rf, clipped = measure(model, (1, 2, small_side, small_side), key)
            if rf.lower_bound:
                return Outcome(
                    False, "claim vs gradient support", f"{rf.text()}: the {small_side}-pixel input is too small"
                )
            truth = rf.max if rf.max is not None else side
            how = (
                f"gradient support of units of the real model (same kernels, strides and paddings, 2 channels, "
                f"{small_side}×{small_side} input): {rf.text() if rf.max is not None else 'every input pixel (fully connected)'}"
                + ("; units whose support reached the border were left out" if clipped else "")
            )
            return checks.exact(int(claim), truth, how, "gradient support")

        return check

    return tuple(
        Part(
            k,
            Kind.INT,
            derive_for(k),
            (
                checks.symbolic("index propagation", symbolic_for(k)),
                checks.torch_check("gradient support", torch_for(k)),
            ),
            note="Theoretical receptive field (padding never clips it); side length, largest over positions.",
        )
        for k in keys
    )
