"""cpen455-hw2, question 2.5: four ways to normalize a B×C×H×W activation, which one behaves like a convolution, and
its learnable affine transform."""

from __future__ import annotations

from typing import Any

from verify import checks
from verify.model import Context, Derivation, Kind, Outcome, Part, Problem, Step

SEED = "004_4c45ad93401b8073.txt"
AXES = ("B", "C", "H", "W")
EPS = 1e-5
TOL = 1e-10

# part key: (the number of means the question asks for, the torch layer that computes it)
VARIANTS = {
    "one": ("1", "nn.BatchNorm1d(1) on X.reshape(-1, 1)"),
    "per_channel": ("C", "nn.BatchNorm2d(C) in training mode"),
    "per_location": ("H*W", "nn.BatchNorm1d(H·W) on X.reshape(B·C, H·W)"),
    "per_channel_location": ("C*H*W", "nn.BatchNorm1d(C·H·W) on X.reshape(B, C·H·W)"),
}


def _axes(claim: Any) -> tuple[str, ...]:
    items = {str(a) for a in claim}
    return tuple(a for a in AXES if a in items) if items <= set(AXES) else tuple(sorted(items))


def _reference(key: str, x: Any) -> Any:
    """The torch layer that computes this normalization (training mode: batch statistics, biased variance)."""
    import torch.nn as nn

    b, c, h, w = x.shape
    if key == "one":
        return nn.BatchNorm1d(1, eps=EPS, affine=False).double()(x.reshape(-1, 1)).reshape(x.shape)
    if key == "per_channel":
        return nn.BatchNorm2d(c, eps=EPS, affine=False).double()(x)
    if key == "per_location":
        return nn.BatchNorm1d(h * w, eps=EPS, affine=False).double()(x.reshape(b * c, h * w)).reshape(x.shape)
    return nn.BatchNorm1d(c * h * w, eps=EPS, affine=False).double()(x.reshape(b, c * h * w)).reshape(x.shape)


def normalize(x: Any, axes: tuple[str, ...]) -> Any:
    """(x − mean) / √(var + ε) with mean and biased variance over the named axes."""
    dims = tuple(AXES.index(a) for a in axes)
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    return (x - mean) / (var + EPS).sqrt()


def _reduced_axes(count: str) -> tuple[str, ...]:
    """The question asks for ``count`` means: one per value of the axes that count multiplies; the others are
    averaged over."""
    import sympy

    sizes = sympy.sympify(count, locals={a: sympy.Symbol(a) for a in AXES})
    return tuple(a for a in AXES if sympy.Symbol(a) not in sizes.free_symbols)


def _derive(key: str) -> Derivation:
    import sympy

    count, layer = VARIANTS[key]
    axes = _reduced_axes(count)
    kept = [a for a in AXES if a not in axes]
    idx = ",".join(a.lower() for a in kept) or r"\cdot"
    n = r"\cdot ".join(axes)
    sums = "".join(rf"\sum_{{{a.lower()}}}" for a in axes)
    return Derivation(
        frozenset(axes),
        steps=(
            Step(f"The question asks for {count} mean(s): one per value of ({', '.join(kept) or 'nothing'})."),
            Step(
                f"One mean and variance per ({', '.join(kept) or 'nothing'}): {count} of each, averaging over {', '.join(axes)}.",
                rf"m_{{{idx}}} = \frac{{1}}{{{n}}} {sums} X_{{b,c,h,w}},\quad v_{{{idx}}} = \frac{{1}}{{{n}}} {sums} (X_{{b,c,h,w}} - m_{{{idx}}})^2",
            ),
            Step(
                "then", rf"\hat X_{{b,c,h,w}} = \frac{{X_{{b,c,h,w}} - m_{{{idx}}}}}{{\sqrt{{v_{{{idx}}} + \epsilon}}}}"
            ),
            Step(f"In torch: {layer}."),
        ),
        latex=sympy.latex(sympy.FiniteSet(*[sympy.Symbol(a) for a in axes])),
    )


def _count_check(key: str) -> Any:
    """The statistics kept are indexed by the axes not reduced; their number must be what the question asks for."""

    def check(claim: Any, ctx: Context) -> Outcome:
        import sympy

        syms = {a: sympy.Symbol(a, integer=True, positive=True) for a in AXES}
        axes = _axes(claim)
        if not set(axes) <= set(AXES):
            return Outcome(False, "number of means", f"unknown axes {axes}")
        kept = sympy.Mul(*[syms[a] for a in AXES if a not in axes])
        want = sympy.sympify(VARIANTS[key][0], locals=syms)
        ok = sympy.simplify(kept - want) == 0 and "B" in axes
        return Outcome(
            ok,
            "the number of means the claim keeps vs the question's",
            f"reducing over {axes} keeps {kept} means; the question asks for {want} (batch statistics reduce over B)",
        )

    return check


def _torch_check(key: str) -> Any:
    def check(claim: Any, ctx: Context) -> Outcome:
        import torch

        g = torch.Generator().manual_seed(ctx.seed)
        x = torch.randn(4, 3, 5, 6, generator=g, dtype=torch.float64) * 2 + 1
        axes = _axes(claim)
        if not set(axes) <= set(AXES):
            return Outcome(False, "claim vs torch", f"unknown axes {axes}")
        return checks.close(normalize(x, axes), _reference(key, x), TOL, VARIANTS[key][1] + " on a 4×3×5×6 tensor")

    return check


def _variant_part(key: str) -> Part:
    return Part(
        key,
        Kind.SET,
        lambda: _derive(key),
        (
            checks.symbolic("number of statistics", _count_check(key)),
            checks.torch_check("torch normalization layer", _torch_check(key)),
        ),
        symbols=AXES,
        note="The answer is the set of axes the mean and variance are taken over.",
    )


def _derive_conv_choice() -> Derivation:
    return Derivation(
        frozenset(("B", "H", "W")),
        stated=True,
        steps=(
            Step(
                "A convolution applies the same weights at every position of a channel and different ones per channel."
            ),
            Step(
                "Per-channel statistics (averaging over B, H, W) treat every position of a channel alike, so the "
                "normalization commutes with spatial shifts and differs across channels: the per-channel choice."
            ),
        ),
    )


def _maps(x: Any, axes: tuple[str, ...]) -> tuple[Any, Any]:
    """The normalization as a map per (c, h, w): its mean and scale broadcast to C×H×W (batch element 0)."""
    dims = tuple(AXES.index(a) for a in axes)
    mean = x.mean(dim=dims, keepdim=True).expand_as(x)[0]
    std = (x.var(dim=dims, unbiased=False, keepdim=True) + EPS).sqrt().expand_as(x)[0]
    return mean, std


def _shift_check(claim: Any, ctx: Context) -> Outcome:
    """The map applied to a value depends on its position only if a statistic is indexed by (h, w), and on its channel
    only if one is indexed by c. Convolution-like: the same map at every position, different maps across channels."""
    import torch

    g = torch.Generator().manual_seed(ctx.seed)
    scale = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)[None, :, None, None]
    x = (
        torch.randn(4, 3, 6, 6, generator=g, dtype=torch.float64) * scale
        + torch.arange(6.0, dtype=torch.float64)[None, None, :, None]
    )
    axes = _axes(claim)
    if not set(axes) <= set(AXES) or "B" not in axes:
        return Outcome(
            False,
            "the normalization map at different positions and channels",
            f"axes {axes} do not reduce over the batch",
        )

    def spread(ax: tuple[str, ...]) -> tuple[float, float]:
        mean, std = _maps(x, ax)
        across_positions = float(
            torch.maximum(mean.amax((1, 2)) - mean.amin((1, 2)), std.amax((1, 2)) - std.amin((1, 2))).max()
        )
        across_channels = float(
            (mean[:, 0, 0].max() - mean[:, 0, 0].min()).abs() + (std[:, 0, 0].max() - std[:, 0, 0].min()).abs()
        )
        return across_positions, across_channels

    pos, ch = spread(axes)
    table = "; ".join(
        f"{name}: positions {'same' if spread(ax)[0] < TOL else 'differ'}, channels {'differ' if spread(ax)[1] > TOL else 'same'}"
        for name, ax in ((name, _reduced_axes(count)) for name, (count, _) in VARIANTS.items())
    )
    return Outcome(
        pos < TOL and ch > TOL,
        "the normalization map at different positions and channels (data with position- and channel-dependent statistics)",
        f"claim {axes}: largest difference across positions {pos:.1e}, across channels {ch:.2f}. {table}",
        max_error=pos,
        tolerance=TOL,
    )


def _conv_choice_symbolic(claim: Any, ctx: Context) -> Outcome:
    """A statistic indexed by (h, w) breaks shift equivariance; one pooled over c mixes channels: the only set that is
    neither keeps exactly the channel index."""
    axes = set(_axes(claim))
    kept = set(AXES) - axes
    ok = kept == {"C"}
    return Outcome(
        ok,
        "the statistics' index set",
        f"the claim keeps statistics indexed by {sorted(kept) or 'nothing'}; convolution-like needs exactly (c)",
    )


def _derive_affine() -> Derivation:
    return Derivation(
        "Y[b,c,h,w] = γ_c · X̂[b,c,h,w] + β_c, with one learnable γ and β per channel (2C parameters)",
        (
            Step(
                "After per-channel normalization, scale and shift each channel:",
                r"Y_{b,c,h,w} = \gamma_c \hat X_{b,c,h,w} + \beta_c",
            ),
        ),
    )


def _affine_torch(claim: Any, ctx: Context) -> Outcome:
    import torch
    import torch.nn as nn

    g = torch.Generator().manual_seed(ctx.seed)
    x = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    bn = nn.BatchNorm2d(3, eps=EPS).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
        bn.bias.copy_(torch.tensor([1.0, -3.0, 0.25]))
    y = bn(x)
    ours = bn.weight[None, :, None, None] * normalize(x, ("B", "H", "W")) + bn.bias[None, :, None, None]
    err = float((y - ours).detach().abs().max())
    bn.eval()  # running statistics after one training step: momentum 0.1 from (0, 1)
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), unbiased=True)
    run_mean, run_var = 0.1 * mean, 0.9 + 0.1 * var
    with torch.no_grad():
        ye = bn(x)
    ours_e = (
        bn.weight[None, :, None, None]
        * (x - run_mean[None, :, None, None])
        / (run_var[None, :, None, None] + EPS).sqrt()
        + bn.bias[None, :, None, None]
    )
    err_e = float((ye - ours_e).detach().abs().max())
    params = sum(p.numel() for p in bn.parameters())
    return Outcome(
        max(err, err_e) < TOL and params == 6,
        "γ_c·X̂ + β_c vs nn.BatchNorm2d's weight and bias",
        f"training mode: {err:.1e}; eval mode with running statistics (momentum 0.1, unbiased running variance): {err_e:.1e}; "
        f"{params} learnable parameters for C = 3",
        max_error=max(err, err_e),
        tolerance=TOL,
    )


def _affine_symbolic(claim: Any, ctx: Context) -> Outcome:
    """γ_c X̂ + β_c has per-channel mean β_c and variance γ_c² (up to ε): the transform can undo the normalization.
    With s standing for the standard deviation √v, both differences are polynomials that expand to 0 (then s² = v)."""
    import sympy

    n = 6
    xs = sympy.symbols(f"x0:{n}", real=True)
    gamma, beta = sympy.symbols("gamma beta", real=True)
    s = sympy.Symbol("s", positive=True)  # √v
    m = sum(xs) / n
    v = sum((x - m) ** 2 for x in xs) / n
    y = [gamma * (x - m) / s + beta for x in xs]
    my = sum(y) / n
    vy = sum((yi - my) ** 2 for yi in y) / n
    mean_gap = sympy.expand(my - beta)
    var_gap = sympy.expand(vy * s**2 - gamma**2 * v)  # variance · s² − γ²·v: variance = γ² where s² = v
    ok = mean_gap == 0 and var_gap == 0
    return Outcome(
        ok,
        "mean and variance of γX̂ + β (ε = 0), symbolically",
        f"for {n} values: mean − β expands to {mean_gap}, variance·s² − γ²·v to {var_gap} (s = √v the standard "
        "deviation): mean β, variance γ²",
    )


def _derive_affine_params() -> Derivation:
    import sympy

    kept = [a for a in AXES if a not in _derive_conv_choice().answer]  # the convolution-like choice's statistics
    size = sympy.Mul(*[sympy.Symbol(a, integer=True, positive=True) for a in kept])
    count = len(("gamma", "beta")) * size
    return Derivation(
        count,
        (
            Step(
                "The transform must act like a convolution, as the normalization does (conv_choice): γ and β are "
                f"indexed by the axes its statistics keep, ({', '.join(kept)}), one value of each per index",
                rf"\gamma, \beta \in \mathbb{{R}}^{{{sympy.latex(size)}}}:\ {sympy.latex(count)}",
            ),
        ),
    )


def _affine_params_symbolic(claim: Any, ctx: Context) -> Outcome:
    """Count the distinct (γ, β) entries a per-channel transform indexes, summing over the kept axis only."""
    import sympy

    from verify.symbolic import equal

    C = sympy.Symbol("C", integer=True, positive=True)
    c = sympy.Symbol("c", integer=True)
    kept = [a for a in AXES if a not in ("B", "H", "W")]  # the axes the per-channel statistics keep
    count = sympy.summation(2, (c, 1, C)) if kept == ["C"] else sympy.Integer(0)
    cmp = equal(claim, count)
    return Outcome(cmp.equal, "claim vs a count over the kept axis (C) of γ_c and β_c", f"{count}: {cmp.detail}")


def _affine_params_torch(claim: Any, ctx: Context) -> Outcome:
    import torch.nn as nn

    return checks.sweep(
        claim,
        [{"C": c} for c in (1, 3, 16, 64)],
        {"C": "C"},
        lambda cfg: sum(p.numel() for p in nn.BatchNorm2d(cfg["C"], device="meta").parameters()),
        lambda cfg: f"learnable parameters of nn.BatchNorm2d({cfg['C']})",
    )


PROBLEMS = [
    Problem(
        id="cpen455-hw2/2.5",
        title="Batch normalization for convolutional layers",
        statement="For an activation X ∈ ℝ^{B×C×H×W}, write the normalization with one mean and standard deviation for the "
        "whole mini-batch; with C of each; with H×W of each; with C×H×W of each. Which one behaves like a convolution (the "
        "same operation at every position, different across channels), and how is the learnable affine transform added?",
        source=f"{SEED}, question 2.5",
        topics=("normalization",),
        parts=(
            *(_variant_part(k) for k in VARIANTS),
            Part(
                "conv_choice",
                Kind.SET,
                _derive_conv_choice,
                (
                    checks.symbolic("index set of the statistics", _conv_choice_symbolic),
                    checks.torch_check("same map at every position", _shift_check),
                ),
                symbols=AXES,
                note="The answer is the chosen variant's set of reduced axes: {B, H, W}, per channel.",
            ),
            Part(
                "affine_params",
                Kind.EXPR,
                _derive_affine_params,
                (
                    checks.symbolic("count over the kept axis", _affine_params_symbolic),
                    checks.torch_check("nn.BatchNorm2d parameters", _affine_params_torch),
                ),
                symbols=("C",),
                note="How many learnable numbers the affine transform adds, in C.",
            ),
            Part(
                "affine",
                Kind.TEXT,
                _derive_affine,
                (
                    checks.symbolic("the transform's mean and variance", _affine_symbolic),
                    checks.torch_check("nn.BatchNorm2d weight and bias", _affine_torch),
                ),
                note="Explained, not graded; the checks confirm what the explanation states.",
            ),
        ),
    ),
]
