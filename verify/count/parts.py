"""Ready-made parts for counting questions: parameters, operations and receptive fields of layers and small networks.

Like :mod:`verify.conv_parts`, each builder derives the answer with sympy and attaches a symbolic check (an
independent count: summation over index ranges, exact index propagation) and a torch check (``numel`` of real layers,
torch's flop counter, the gradient support of real units).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any

from verify import checks
from verify.conv_parts import Layer, build_model
from verify.model import Context, Derivation, Kind, Outcome, Part, Step


def index_count(c_in: Any, c_out: Any, kh: Any, kw: Any, groups: Any = 1, bias: bool = False) -> Any:
    """Count a layer's learnable numbers by summing over its index ranges (filter o, input channel c of o's group,
    kernel row u, column v), plus one bias per filter: an independent route to the parameter formula. Sizes that are
    all integers are counted by enumerating the ranges; symbolic ones by sympy's summation."""
    if all(isinstance(x, int) for x in (c_in, c_out, kh, kw, groups)) and c_in % groups == 0:
        per_filter = sum(1 for _c in range(c_in // groups) for _u in range(kh) for _v in range(kw))
        return sum(per_filter + (1 if bias else 0) for _o in range(c_out))
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
    layers: Sequence[Layer],
    input_shape: tuple[int, ...],
    keys: Mapping[str, str],
    total_key: str | None,
    note: str,
    per_layer: str = "params",
) -> tuple[Part, ...]:
    """Parameter count per named layer (``keys`` maps part key → layer name) and the total, for a spec network.

    ``per_layer="bias"`` makes the per-layer parts count only the layer's biases (the total still counts every
    learnable parameter)."""
    only_bias = per_layer == "bias"
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
            if only_bias:
                n_bias = params_of(x, widths[name]) - params_of(replace(x, bias=False), widths[name])
                return Derivation(
                    n_bias,
                    (
                        Step(
                            f"{name}: one bias per output {'feature' if x.kind == 'linear' else 'channel'}", str(n_bias)
                        ),
                    ),
                )
            return Derivation(params_of(x, widths[name]), tuple(s for s in steps if s.text.startswith(name + ":")))

        return derive

    def counted_inputs() -> dict[str, int]:
        """The input width each layer sees, from shapes found by counting windows (not the formula chain)."""
        from verify import routes

        walked = routes.walk_shapes(layers, input_shape)
        seen, prev = {}, tuple(input_shape)
        for x in layers:
            seen[x.name] = prev[-1] if x.kind == "linear" else prev[-3]
            prev = walked[x.name]
        return seen

    def symbolic_for(name: str | None) -> Callable[[Any, Context], Outcome]:
        def check(claim: Any, ctx: Context) -> Outcome:
            widths = counted_inputs()
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
                if only_bias and name is not None:  # the layer's count less its count without biases
                    total -= int(index_count(widths[x.name], x.out, k, k, groups, False))
            what = (
                "biases"
                if only_bias and name is not None
                else "every filter, channel, kernel row and column (+ biases)"
            )
            return checks.exact(int(claim), total, f"a sum over {what}")

        return check

    def torch_for(name: str | None) -> Callable[[Any, Context], Outcome]:
        def check(claim: Any, ctx: Context) -> Outcome:
            from verify.layers import meta

            model = build_model(layers, input_shape[-3])
            model(meta(*input_shape))  # materializes the lazy linear layer
            targets = list(keys.values()) if name is None else [name]
            got = sum(
                p.numel()
                for t in targets
                for n, p in model.get_submodule(t).named_parameters()
                if not (only_bias and name is not None) or n == "bias"
            )
            what = (
                f"{'bias.numel() of' if only_bias else 'p.numel() summed over'} "
                f"{', '.join(repr(model.get_submodule(t)) for t in targets)}"
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


def _frac(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else rf"\tfrac{{{x.numerator}}}{{{x.denominator}}}"


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
            steps = [
                Step(
                    "Each layer widens the field by (k − 1)·j input pixels, j the input distance between neighbouring "
                    "units, which each stride multiplies (a transposed convolution divides it; its units then differ "
                    "by position and the field is found by composing index maps):",
                    r"r_l = r_{l-1} + (k_l - 1)\, j_{l-1},\qquad j_l = j_{l-1}\, s_l,\qquad r_0 = j_0 = 1",
                )
            ]
            r, j, exact_rec = 1, Fraction(1), True
            for n, a in axis[: names.index(key) + 1]:
                rf = rfs[n]
                if a.kind == "full":
                    steps.append(Step(f"{n}: fully connected, every pixel of the whole {side}×{side} input", str(side)))
                    continue
                if a.kind == "conv" and exact_rec:
                    r_new, j_new = r + (a.k - 1) * a.d * j, j * a.s
                    formula = (
                        rf"r_{{\mathrm{{{n}}}}} = {r} + ({a.k} - 1) \cdot {_frac(j)} = {r_new},\quad j = {_frac(j_new)}"
                    )
                    r, j = int(r_new), j_new
                else:  # a transposed convolution: j shrinks and units differ by position
                    exact_rec = False
                    formula = rf"r_{{\mathrm{{{n}}}}} \in [{rf.min}, {rf.max}]"
                steps.append(Step(f"{n}: {rf.text()}", formula))
            rf = rfs[key]
            if rf.max is not None and rf.min != rf.max:
                steps.append(
                    Step(f"Units of {key} differ by position ({rf.min} to {rf.max}); the part takes the largest.")
                )
            return Derivation(rf.max if rf.max is not None else side, tuple(steps))

        return derive

    def symbolic_for(key: str) -> Callable[[Any, Context], Outcome]:
        def check(claim: Any, ctx: Context) -> Outcome:
            from verify import routes

            steps = routes.axis_steps(layers)
            step_names = [n for n, _ in steps]
            upto = [s for _, s in steps[: step_names.index(key) + 1]]
            # a fully connected unit is measured on the real input; any other on an axis its field cannot fill
            n = (
                side
                if upto[-1].kind == "full" or any(s.kind == "full" for s in upto)
                else routes.axis_length(upto, side)
            )
            f = routes.axis_field(upto, n)
            how = f"connectivity matrices of every layer along a {n}-pixel axis, multiplied: " + (
                f"the fully connected unit reads {f.max} contiguous pixels"
                if f.whole
                else f"{f.units} central units read {f.min}–{f.max} pixels"
            )
            return checks.exact(int(claim), f.max, how, "composed connectivity")

        return check

    def torch_for(key: str) -> Callable[[Any, Context], Outcome]:
        def check(claim: Any, ctx: Context) -> Outcome:
            from verify import routes

            full = any(x.kind == "linear" for x in layers[: [x.name for x in layers].index(key) + 1])
            steps = routes.axis_steps(layers)
            upto = [s for _, s in steps[: [name for name, _ in steps].index(key) + 1]]
            # a fully connected unit is measured on the real input; any other on an input its field cannot fill
            n = side if full else routes.axis_length(upto, small_side)
            thin = tuple(replace(x, out=2) if x.kind in ("conv", "dwconv", "tconv") else x for x in layers)
            model = build_model(thin, 2, device="cpu")
            import torch

            with torch.no_grad():
                model(torch.zeros(1, 2, n, n))
            lo, hi, touched = routes.gradient_side(model, (1, 2, n, n), key)
            if touched and not full:
                return Outcome(
                    False, "claim vs gradient support", f"the {n}-pixel input is too small: units reach its border"
                )
            how = (
                f"gradient support of {'one logit' if full else 'central units'} of the real model (same kernels, "
                f"strides and paddings, 2 channels, positive weights, {n}×{n} input): "
                + (f"{hi} pixels per side" if lo == hi else f"{lo} to {hi} pixels per side")
            )
            return checks.exact(int(claim), hi, how, "gradient support")

        return check

    return tuple(
        Part(
            k,
            Kind.INT,
            derive_for(k),
            (
                checks.symbolic("composed connectivity", symbolic_for(k)),
                checks.torch_check("gradient support", torch_for(k)),
            ),
            note="Theoretical receptive field (padding never clips it); side length, largest over positions.",
        )
        for k in keys
    )
