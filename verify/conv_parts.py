"""Ready-made parts for convolution-arithmetic questions, shared by the bank and by a course's own problem files.

Each builder derives the answer from :mod:`verify.arith.conv` with sympy and attaches two independent checks: a
symbolic one (an exact property of the claim at many integer configurations) and a torch one (real layers).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verify import checks
from verify.arith import conv
from verify.model import Context, Derivation, Kind, Outcome, Part, Step

ROLES = ("H", "K", "S", "P", "D")  # input size, kernel, stride, padding, dilation


def _symbols(names: Mapping[str, str]) -> dict[str, Any]:
    import sympy

    return {role: sympy.Symbol(name, integer=True, positive=True) for role, name in names.items()}


def _configs(dilation: bool, n: int, seed: int) -> list[dict[str, int]]:
    from verify.layers import conv_config

    return checks.random_configs(n, seed, lambda rng: conv_config(rng, dilation=dilation))


def _bind(names: Mapping[str, str]) -> dict[str, str]:
    return {name: role for role, name in names.items()}


def _at(claim: Any, names: Mapping[str, str], cfg: Mapping[str, int]) -> Any:
    from verify.symbolic import evaluate

    return evaluate(claim, {names[r]: cfg[r] for r in names})


def size_formula_part(key: str, names: Mapping[str, str], note: str = "", sweep: int = 100) -> Part:
    """A part whose answer is the output size of a (dilated) convolution as an expression.

    ``names`` maps roles (H, K, S, P and optionally D) to the symbol names the question uses.
    """
    dilation = "D" in names

    def derive() -> Derivation:
        import sympy

        s = _symbols(names)
        d = s.get("D", 1)
        span = conv.effective_kernel(s["K"], d)
        out = conv.conv_out(s["H"], s["K"], s["S"], s["P"], d)
        steps = (
            Step("Pad the input on both sides; the padded length is", sympy.latex(s["H"] + 2 * s["P"])),
            Step("A dilated kernel spans", sympy.latex(span))
            if dilation
            else Step("The kernel spans", sympy.latex(s["K"])),
            Step(
                "Window i (from 0) starts at i·stride and must end inside the padded input, so the largest i is",
                sympy.latex(sympy.floor((s["H"] + 2 * s["P"] - span) / s["S"])),
            ),
            Step("Counting windows 0..i_max gives", sympy.latex(out)),
        )
        return Derivation(out, steps)

    def window_count(claim: Any, ctx: Context) -> Outcome:
        def prop(c: Any, cfg: dict[str, int]) -> tuple[bool, str]:
            m = _at(c, names, cfg)
            ok = m.is_Integer and conv.window_property(int(m), cfg["H"], cfg["K"], cfg["S"], cfg["P"], cfg["D"])
            return bool(ok), f"at {cfg}: the claim gives {m}, which is not the number of windows that fit"

        return checks.at_points(
            claim,
            prop,
            _configs(dilation, 120, ctx.seed + 1),
            "claim vs the window-count inequalities (m−1)·S + span ≤ H + 2P < m·S + span",
        )

    def against_torch(claim: Any, ctx: Context) -> Outcome:
        from verify.layers import conv_size, describe_conv

        return checks.sweep(
            claim,
            _configs(dilation, sweep, ctx.seed),
            _bind(names),
            lambda c: conv_size(c["H"], c["K"], c["S"], c["P"], c["D"]),
            describe_conv,
        )

    return Part(
        key=key,
        kind=Kind.EXPR,
        derive=derive,
        checks=(
            checks.symbolic("window count", window_count),
            checks.torch_check("nn.Conv2d sweep (meta)", against_torch),
        ),
        symbols=tuple(names.values()),
        note=note,
    )


def output_padding_part(key: str, names: Mapping[str, str], note: str = "", sweep: int = 50) -> Part:
    """A part whose answer is the output_padding that makes a transposed convolution restore a convolution's input."""
    dilation = "D" in names

    def derive() -> Derivation:
        import sympy

        s = _symbols(names)
        d = s.get("D", 1)
        h_out = sympy.Symbol(names["H"] + "'", integer=True, positive=True)
        op = sympy.Symbol("P'", integer=True, nonnegative=True)
        tconv = conv.conv_transpose_out(h_out, s["K"], s["S"], s["P"], op, d)
        solved = sympy.solve(sympy.Eq(tconv, s["H"]), op)[0]
        answer = conv.output_padding(s["H"], s["K"], s["S"], s["P"], d)
        steps = (
            Step(
                "The convolution gives",
                f"{sympy.latex(h_out)} = {sympy.latex(conv.conv_out(s['H'], s['K'], s['S'], s['P'], d))}",
            ),
            Step("The transposed convolution of that has size", f"{sympy.latex(tconv)}"),
            Step("Setting it equal to the original size and solving for P'", f"P' = {sympy.latex(solved)}"),
            Step(
                "Substituting the convolution's size, the floor leaves exactly the remainder it dropped",
                f"P' = {sympy.latex(answer)}",
            ),
            Step(
                "So 0 ≤ P' < S; torch accepts output_padding < max(stride, dilation)",
                r"0 \le P' < S",
            ),
        )
        return Derivation(answer, steps)

    def round_trip(claim: Any, ctx: Context) -> Outcome:
        def prop(c: Any, cfg: dict[str, int]) -> tuple[bool, str]:
            op = _at(c, names, cfg)
            if not op.is_Integer or not 0 <= int(op) < max(cfg["S"], cfg["D"]):
                return False, f"at {cfg}: the claim gives output_padding {op}, outside what torch accepts"
            m = conv.conv_out(cfg["H"], cfg["K"], cfg["S"], cfg["P"], cfg["D"])
            back = conv.conv_transpose_out(m, cfg["K"], cfg["S"], cfg["P"], int(op), cfg["D"])
            return back == cfg["H"], f"at {cfg}: conv gives {m}, transposed conv with P'={op} gives {back}"

        return checks.at_points(
            claim,
            prop,
            _configs(dilation, 120, ctx.seed + 1),
            "claim substituted into the size formulas: transposed(conv(H)) = H",
        )

    def against_torch(claim: Any, ctx: Context) -> Outcome:
        from verify.layers import describe_conv, restoring_output_padding

        def truth(c: dict[str, int]) -> int:
            op = restoring_output_padding(c["H"], c["K"], c["S"], c["P"], c["D"])
            assert op is not None, f"no output_padding restores {c}"
            return op

        small = [c for c in _configs(dilation, sweep * 3, ctx.seed) if c["H"] <= 40][:sweep]
        return checks.sweep(
            claim,
            small,
            _bind(names),
            truth,
            lambda c: describe_conv(c, transposed=True) + " after " + describe_conv(c).split(" on ")[0],
        )

    return Part(
        key=key,
        kind=Kind.EXPR,
        derive=derive,
        checks=(
            checks.symbolic("round trip through the size formulas", round_trip),
            checks.torch_check("nn.Conv2d then nn.ConvTranspose2d", against_torch),
        ),
        symbols=tuple(names.values()),
        note=note or "Valid range: 0 ≤ P' < S (torch accepts output_padding < max(stride, dilation)).",
        names=lambda: _output_size_name(names),
    )


def _output_size_name(names: Mapping[str, str]) -> dict[str, Any]:
    """H' (the convolution's output size, as the question defines it) for answers written with it."""
    s = _symbols(names)
    return {names["H"] + "'": conv.conv_out(s["H"], s["K"], s["S"], s["P"], s.get("D", 1))}


# ---- networks given as a list of layers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One layer of a small network spec: kind is conv, dwconv, tconv, avgpool, maxpool, relu, flatten or linear."""

    name: str
    kind: str
    out: int = 0  # filters / features
    k: int = 1
    s: int = 1
    p: int = 0
    op: int = 0
    bias: bool = False

    def text(self) -> str:
        if self.kind in ("conv", "dwconv", "tconv"):
            extra = f", output_padding {self.op}" if self.op else ""
            what = {"conv": "convolution", "dwconv": "depthwise convolution", "tconv": "transposed convolution"}
            return f"{what[self.kind]}, {self.out} filters {self.k}×{self.k}, stride {self.s}, padding {self.p}{extra}"
        if self.kind in ("avgpool", "maxpool"):
            return f"{self.kind[:3]} pooling {self.k}×{self.k}, stride {self.s}, padding {self.p}"
        return f"linear to {self.out} outputs" if self.kind == "linear" else self.kind


def chain_shapes(layers: Sequence[Layer], input_shape: tuple[int, ...]) -> list[tuple[Layer, tuple[int, ...], str]]:
    """Shapes after each layer, from the formulas (ints), with a one-line LaTeX step for each.

    Channels are axis −3 and the spatial axes −2 and −1, so batched (N, C, H, W) and unbatched (C, H, W) inputs work.
    """
    shape = tuple(input_shape)
    out = []
    for layer in layers:
        lead = shape[:-3]
        if layer.kind in ("conv", "dwconv", "avgpool", "maxpool"):
            pool = layer.kind in ("avgpool", "maxpool")
            sizes = tuple(
                conv.pool_out(n, layer.k, layer.s, layer.p) if pool else conv.conv_out(n, layer.k, layer.s, layer.p)
                for n in shape[-2:]
            )
            ch = shape[-3] if pool or layer.kind == "dwconv" else layer.out
            step = r",\ ".join(
                rf"\left\lfloor \frac{{{n} + 2\cdot {layer.p} - {layer.k}}}{{{layer.s}}} \right\rfloor + 1 = {m}"
                for n, m in sorted(set(zip(shape[-2:], sizes, strict=True)))
            )
            shape = (*lead, ch, *sizes)
        elif layer.kind == "tconv":
            sizes = tuple(conv.conv_transpose_out(n, layer.k, layer.s, layer.p, layer.op) for n in shape[-2:])
            step = r",\ ".join(
                rf"({n} - 1)\cdot {layer.s} - 2\cdot {layer.p} + {layer.k} + {layer.op} = {m}"
                for n, m in sorted(set(zip(shape[-2:], sizes, strict=True)))
            )
            shape = (*lead, layer.out, *sizes)
        elif layer.kind == "flatten":
            flat = 1
            for x in shape[1:]:
                flat *= x
            step = r" \times ".join(str(x) for x in shape[1:]) + f" = {flat}"
            shape = (shape[0], flat)
        elif layer.kind == "linear":
            step = rf"{shape[-1]} \to {layer.out}"
            shape = (*shape[:-1], layer.out)
        else:
            step = r"\text{elementwise: shape unchanged}"
        out.append((layer, shape, step))
    return out


def materialized(layers: Sequence[Layer], in_channels: int, side: int) -> Callable[[], Any]:
    """A factory for the spec's model on the CPU, its lazy linear layer sized by one pass at ``side``×``side``."""

    def make() -> Any:
        import torch

        model = build_model(layers, in_channels, device="cpu")
        with torch.no_grad():
            model(torch.zeros(1, in_channels, side, side))
        return model

    return make


def build_model(
    layers: Sequence[Layer], in_channels: int, device: str = "meta", in_override: Mapping[str, int] | None = None
) -> Any:
    """The spec as a real nn.Sequential whose children are named after the layers.

    ``in_override`` forces a layer's in_channels (to test a claimed kernel depth).
    """
    import torch.nn as nn

    mods: dict[str, Any] = {}
    ch = in_channels
    for layer in layers:
        c_in = (in_override or {}).get(layer.name, ch)
        if layer.kind == "conv":
            mods[layer.name] = nn.Conv2d(c_in, layer.out, layer.k, layer.s, layer.p, bias=layer.bias, device=device)
            ch = layer.out
        elif layer.kind == "dwconv":
            mods[layer.name] = nn.Conv2d(
                c_in, layer.out, layer.k, layer.s, layer.p, groups=c_in, bias=layer.bias, device=device
            )
            ch = layer.out
        elif layer.kind == "tconv":
            mods[layer.name] = nn.ConvTranspose2d(
                c_in, layer.out, layer.k, layer.s, layer.p, output_padding=layer.op, bias=layer.bias, device=device
            )
            ch = layer.out
        elif layer.kind == "avgpool":
            mods[layer.name] = nn.AvgPool2d(layer.k, layer.s, layer.p)
        elif layer.kind == "maxpool":
            mods[layer.name] = nn.MaxPool2d(layer.k, layer.s, layer.p)
        elif layer.kind == "relu":
            mods[layer.name] = nn.ReLU()
        elif layer.kind == "flatten":
            mods[layer.name] = nn.Flatten()
        elif layer.kind == "linear":
            mods[layer.name] = nn.LazyLinear(layer.out, bias=layer.bias, device=device)
        else:  # pragma: no cover - the bank's specs use the kinds above
            raise ValueError(layer.kind)
    return nn.Sequential(OrderedDict(mods))


def shape_parts(
    layers: Sequence[Layer], input_shape: tuple[int, ...], keys: Sequence[str], note: str = ""
) -> tuple[Part, ...]:
    """One `shape` part per named layer output: derived by the formulas, checked by the window inequalities and by
    a forward pass of the real model on meta tensors."""
    spec = {layer.name: i for i, layer in enumerate(layers)}

    def derive_for(key: str) -> Callable[[], Derivation]:
        def derive() -> Derivation:
            chain = chain_shapes(layers, input_shape)
            steps = [Step(f"Input: {checks.fmt(tuple(input_shape))}")]
            for layer, shape, step in chain[: spec[key] + 1]:
                steps.append(Step(f"{layer.name} ({layer.text()}): {checks.fmt(shape)}", step))
            return Derivation(chain[spec[key]][1], tuple(steps))

        return derive

    def windows_for(key: str) -> Callable[[Any, Context], Outcome]:
        def check(claim: Any, ctx: Context) -> Outcome:
            from verify import routes

            # the input this layer sees, from counting windows layer by layer (not the formula chain being checked)
            walked = routes.walk_shapes(layers, input_shape)
            i = spec[key]
            prev = tuple(input_shape) if i == 0 else walked[layers[i - 1].name]
            layer = layers[i]
            claim = tuple(int(x) for x in claim)
            if len(claim) != len(walked[key]):
                return Outcome(False, "claim vs the layer's defining rule", f"claim has {len(claim)} axes")
            if layer.kind in ("conv", "dwconv", "avgpool", "maxpool"):
                ch_ok = claim[-3] == (prev[-3] if layer.kind in ("avgpool", "maxpool", "dwconv") else layer.out)
                sp_ok = all(
                    conv.window_property(m, n, layer.k, layer.s, layer.p)
                    for m, n in zip(claim[-2:], prev[-2:], strict=True)
                )
                ok = ch_ok and sp_ok and claim[:-3] == prev[:-3]
                why = f"{key}: {'' if ch_ok else 'channel count wrong; '}window count {'holds' if sp_ok else 'fails'}"
                why += (
                    f" for {claim[-2]}×{claim[-1]} windows of {layer.k} at stride {layer.s} "
                    f"on {prev[-2]}×{prev[-1]} padded by {layer.p}"
                )
                return Outcome(ok, "claim vs the window-count inequalities", why)
            if layer.kind == "linear":
                ok = claim == (*prev[:-1], layer.out)
                return Outcome(
                    ok,
                    "claim vs a linear layer's rule (N, F) → (N, out)",
                    f"expected (N, {layer.out}) from {checks.fmt(prev)}, claim {checks.fmt(claim)}",
                )
            return Outcome(
                claim == walked[key], "claim vs the layer's rule", f"expected {walked[key]} from {checks.fmt(prev)}"
            )

        return check

    def torch_for(key: str) -> Callable[[Any, Context], Outcome]:
        def check(claim: Any, ctx: Context) -> Outcome:
            from verify.layers import trace_shapes

            model = build_model(layers, input_shape[-3])
            shapes = trace_shapes(model, input_shape, [key])
            return checks.exact(
                tuple(claim),
                shapes[key],
                f"the real model (meta tensors) on {checks.fmt(tuple(input_shape))}: {key} = {getattr(model, key)!r}",
                "torch forward shape",
            )

        return check

    return tuple(
        Part(
            key=k,
            kind=Kind.SHAPE,
            derive=derive_for(k),
            checks=(
                checks.symbolic("layer rule", windows_for(k)),
                checks.torch_check("forward pass of the real model", torch_for(k)),
            ),
            note=note,
        )
        for k in keys
    )


# ---- worked matrices ---------------------------------------------------------------------------------------------


def transposed_matrix_part(
    key: str, y: list[list[int]], w: list[list[int]], s: int = 1, p: int = 0, op: int = 0
) -> Part:
    """The output of a worked transposed convolution: derived by scattering weighted kernel copies, checked by
    adjointness with the exact convolution and by F.conv_transpose2d."""
    from verify.arith import exact

    def derive() -> Derivation:
        from verify.symbolic import matrix_latex

        canvas = exact.scatter_canvas(y, w, s)
        out = exact.scatter_transpose2d(y, w, s, p, op)
        steps = [Step(f"Each input entry stamps a copy of the kernel scaled by it, {s} apart (stride {s}):")]
        if len(y) * len(y[0]) <= 4:
            copies = [
                matrix_latex(exact.scatter_canvas(exact.unit(len(y), len(y[0]), i, j), w, s))
                for i in range(len(y))
                for j in range(len(y[0]))
            ]
            terms = [f"{y[i][j]}\\cdot" for i in range(len(y)) for j in range(len(y[0]))]
            steps.append(
                Step("the copies, to be summed", " + ".join(t + c for t, c in zip(terms, copies, strict=True)))
            )
        steps.append(Step(f"Summing the copies gives the {len(canvas)}×{len(canvas[0])} canvas", matrix_latex(canvas)))
        if p or op:
            steps.append(
                Step(
                    f"Padding {p} removes {p} row(s)/column(s) at the top/left; the output keeps "
                    f"(n−1)s − 2p + k + op = {len(out)} rows and columns (output_padding {op} keeps that many more at the bottom/right)",
                    matrix_latex(out),
                )
            )
        return Derivation(out, tuple(steps))

    def adjoint(claim: Any, ctx: Context) -> Outcome:
        n_out = len(exact.scatter_transpose2d(y, w, s, p, op))
        try:
            rows = [[int(v) if float(v).is_integer() else v for v in r] for r in claim]
            if len(rows) != n_out or any(len(r) != n_out for r in rows):
                return Outcome(False, "claim vs adjointness", f"the output must be {n_out}×{n_out}")
        except TypeError:
            return Outcome(False, "claim vs adjointness", "the claim is not a matrix")
        for i in range(n_out):
            for j in range(n_out):
                want = exact.inner(exact.correlate2d(exact.unit(n_out, n_out, i, j), w, s, p), y)
                if rows[i][j] != want:
                    return Outcome(
                        False,
                        "claim vs adjointness ⟨conv(E_ij), Y⟩",
                        f"entry ({i}, {j}): ⟨conv2d(E_{i}{j}, W, stride {s}, padding {p}), Y⟩ = {want}, claim {rows[i][j]}",
                    )
        return Outcome(
            True,
            "claim vs adjointness ⟨conv(E_ij), Y⟩",
            f"every entry equals ⟨conv2d(E_ij, W, stride {s}, padding {p}), Y⟩ exactly ({n_out}×{n_out} entries)",
        )

    def against_torch(claim: Any, ctx: Context) -> Outcome:
        import torch
        import torch.nn.functional as F

        t = F.conv_transpose2d(
            torch.tensor(y, dtype=torch.float64, device=ctx.device)[None, None],
            torch.tensor(w, dtype=torch.float64, device=ctx.device)[None, None],
            stride=s,
            padding=p,
            output_padding=op,
        )[0, 0]
        return checks.close(claim, t, 1e-12, f"F.conv_transpose2d(stride={s}, padding={p}, output_padding={op})")

    return Part(
        key=key,
        kind=Kind.MATRIX,
        derive=derive,
        checks=(
            checks.symbolic("adjoint of the exact convolution", adjoint),
            checks.torch_check("F.conv_transpose2d", against_torch, uses_device=True),
        ),
    )


def conv_matrix_part(key: str, x: list[list[int]], w: list[list[int]], s: int = 1, p: int = 0, d: int = 1) -> Part:
    """The output of a worked (dilated, strided) convolution: derived from the definition, checked through a
    zero-inserted kernel and by F.conv2d."""
    from verify.arith import exact

    def derive() -> Derivation:
        from verify.symbolic import matrix_latex

        out = exact.correlate2d(x, w, s, p, d)
        xp = exact.pad(x, p)
        steps = [
            Step(f"Pad the input by {p}", matrix_latex(xp)),
            Step(
                f"Y[i][j] = Σ_(u,v) X_pad[{s}i + {d}u][{s}j + {d}v] · W[u][v] (torch's conv2d is a cross-correlation)",
            ),
        ]
        k = len(w)
        for i in range(len(out)):
            for j in range(len(out[0])):
                patch = [[xp[i * s + u * d][j * s + v * d] for v in range(k)] for u in range(k)]
                steps.append(Step(f"Y[{i}][{j}]", f"{matrix_latex(patch)} \\odot W \\to {out[i][j]}"))
        steps.append(Step("So", "Y = " + matrix_latex(out)))
        return Derivation(out, tuple(steps))

    def zero_inserted(claim: Any, ctx: Context) -> Outcome:
        from verify import routes

        # d − 1 zeros between neighbouring taps, then an undilated convolution through a patch matrix
        span = d * (len(w) - 1) + 1
        kernel = [[0] * span for _ in range(span)]
        for u, row in enumerate(w):
            for v, value in enumerate(row):
                kernel[u * d][v * d] = value
        truth = routes.patch_matrix_conv(x, kernel, s, p, 1)
        return checks.close(
            claim, truth, 0.0, f"an ordinary convolution with the zero-inserted {len(kernel)}×{len(kernel)} kernel"
        )

    def against_torch(claim: Any, ctx: Context) -> Outcome:
        import torch
        import torch.nn.functional as F

        t = F.conv2d(
            torch.tensor(x, dtype=torch.float64, device=ctx.device)[None, None],
            torch.tensor(w, dtype=torch.float64, device=ctx.device)[None, None],
            stride=s,
            padding=p,
            dilation=d,
        )[0, 0]
        return checks.close(claim, t, 1e-12, f"F.conv2d(stride={s}, padding={p}, dilation={d})")

    return Part(
        key=key,
        kind=Kind.MATRIX,
        derive=derive,
        checks=(
            checks.symbolic("zero-inserted kernel", zero_inserted),
            checks.torch_check("F.conv2d", against_torch, uses_device=True),
        ),
    )
