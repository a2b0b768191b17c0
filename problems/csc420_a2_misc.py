"""csc420-a2: Gaussian and Laplacian pyramids (q1), stacked affine layers (q2), the derivatives of σ and tanh (q6, q7)."""

from __future__ import annotations

import functools
import itertools
from typing import Any

from verify import checks
from verify.checks import as_sympy
from verify.model import Context, Derivation, Kind, Outcome, Part, Problem, Step

SEED = "001_7d9d876135843e22.txt"
TOL = 1e-12


# ---- q1: pyramids ------------------------------------------------------------------------------------------------


def _blur_down(x: Any) -> Any:
    import torch
    import torch.nn.functional as F

    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64) / 16
    k = (k1[:, None] * k1[None, :]).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=x.shape[1])[:, :, ::2, ::2]


def _up(x: Any, size: tuple[int, int]) -> Any:
    import torch.nn.functional as F

    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def pyramids(image: Any, levels: int) -> tuple[list[Any], list[Any]]:
    """Gaussian pyramid G_0..G_L (blur with the 5-tap binomial kernel, keep every other pixel) and Laplacian
    pyramid L_k = G_k − up(G_{k+1})."""
    gauss = [image]
    for _ in range(levels):
        gauss.append(_blur_down(gauss[-1]))
    lap = [g - _up(gn, g.shape[-2:]) for g, gn in itertools.pairwise(gauss)]
    return gauss, lap


def reconstruct(top: Any, laplacians: list[Any]) -> Any:
    x = top
    for lap in reversed(laplacians):
        x = _up(x, lap.shape[-2:]) + lap
    return x


def _q1_symbolic(claim: Any, ctx: Context) -> Outcome:
    """With L_k = G_k − U(G_{k+1}) for any map U, adding back from the top telescopes to G_0 exactly (3 levels)."""
    import sympy

    U = sympy.Function("U")
    G = sympy.symbols("G0:4")
    L = [G[k] - U(G[k + 1]) for k in range(3)]
    x = G[3]
    for k in reversed(range(3)):
        x = U(x) + L[k]
    diff = sympy.simplify(x - G[0])
    return Outcome(diff == 0, "reconstruction from the top level and the Laplacians, symbolically", f"x − G₀ = {diff}")


def _q1_torch(claim: Any, ctx: Context) -> Outcome:
    import torch

    worst = 0.0
    rows = []
    for c, h, w, levels in ((1, 64, 64, 4), (3, 48, 80, 3), (2, 37, 53, 3)):
        g = torch.Generator().manual_seed(ctx.seed)
        img = torch.rand(1, c, h, w, generator=g, dtype=torch.float64)
        gauss, lap = pyramids(img, levels)
        err = float((reconstruct(gauss[-1], lap) - img).abs().max())
        worst = max(worst, err)
        rows.append(f"{c}×{h}×{w}, {levels} levels: {err:.1e}")
    return Outcome(
        worst <= TOL,
        "I₀ rebuilt from the top Gaussian level and the Laplacians (torch, float64)",
        "; ".join(rows),
        worst,
        TOL,
    )


# ---- q2: affine layers compose to one --------------------------------------------------------------------------


def _q2_symbolic(claim: Any, ctx: Context) -> Outcome:
    import sympy

    msgs = []
    for depth in (2, 3):
        dims = [2, 3, 2, 3][: depth + 1]
        Ws = [
            sympy.Matrix(dims[i + 1], dims[i], sympy.symbols(f"w{i}_0:{dims[i] * dims[i + 1]}")) for i in range(depth)
        ]
        bs = [sympy.Matrix(dims[i + 1], 1, sympy.symbols(f"b{i}_0:{dims[i + 1]}")) for i in range(depth)]
        x = sympy.Matrix(dims[0], 1, sympy.symbols(f"x0:{dims[0]}"))
        y = x
        for W, b in zip(Ws, bs, strict=True):
            y = W * y + b
        w_star = Ws[0]
        b_star = bs[0]
        for W, b in zip(Ws[1:], bs[1:], strict=True):
            w_star, b_star = W * w_star, W * b_star + b
        if not (y - (w_star * x + b_star)).expand().is_zero_matrix:
            return Outcome(False, "stacked affine layers vs W*x + b*", f"{depth} layers do not collapse")
        msgs.append(
            f"{depth} layers: W* = {'·'.join(f'W{i + 1}' for i in reversed(range(depth)))}, b* collapses exactly"
        )
    return Outcome(True, "stacked affine layers vs W*x + b*, symbolic matrices", "; ".join(msgs))


def _q2_torch(claim: Any, ctx: Context) -> Outcome:
    import torch
    import torch.nn as nn

    torch.manual_seed(ctx.seed)
    worst = 0.0
    for depth in (2, 5, 8):
        dims = [4, 7, 3, 6, 5, 4, 6, 3, 5][: depth + 1]
        stack = nn.Sequential(*[nn.Linear(dims[i], dims[i + 1]) for i in range(depth)]).double()
        w_star = torch.eye(dims[0], dtype=torch.float64)
        b_star = torch.zeros(dims[0], dtype=torch.float64)
        for layer in stack:
            w_star, b_star = layer.weight @ w_star, layer.weight @ b_star + layer.bias
        one = nn.Linear(dims[0], dims[-1]).double()
        with torch.no_grad():
            one.weight.copy_(w_star)
            one.bias.copy_(b_star)
            x = torch.randn(10, dims[0], dtype=torch.float64)
            worst = max(worst, float((stack(x) - one(x)).abs().max()))
    return Outcome(
        worst <= TOL,
        "nn.Sequential of nn.Linear vs one nn.Linear(W*, b*)",
        f"depths 2, 5, 8: largest difference {worst:.1e}",
        worst,
        TOL,
    )


def _output_of_sigma() -> dict[str, Any]:
    """y = σ(x), as the statement of q6 defines it: an answer may be written in y or in σ(x)."""
    import sympy

    x = sympy.Symbol("x", real=True)
    return {"x": x, "y": 1 / (1 + sympy.exp(-x))}


# ---- q6, q7: σ and tanh ------------------------------------------------------------------------------------------


def _sig(v: Any) -> Any:
    import sympy

    return 1 / (1 + sympy.exp(-v))


@functools.cache
def _derive_dsigma() -> Derivation:
    import sympy

    x, y = sympy.symbols("x y", real=True)
    d = sympy.diff(_sig(x), x)
    (logit,) = sympy.solve(sympy.Eq(_sig(x), y), x)  # x in terms of the output y
    in_y = sympy.factor(sympy.simplify(d.subs(x, logit)))
    return Derivation(
        in_y,
        (
            Step("Differentiate σ(x) = 1/(1 + e^{−x}):", rf"\sigma'(x) = {sympy.latex(d)}"),
            Step("Invert y = σ(x):", rf"x = {sympy.latex(logit)}"),
            Step("and substitute, so the derivative is a function of y alone", rf"\sigma'(x) = {sympy.latex(in_y)}"),
            Step("So the backward pass needs only the forward output y, not x."),
        ),
    )


def _dsigma_symbolic(claim: Any, ctx: Context) -> Outcome:
    import sympy

    from verify.symbolic import equal, evaluate

    x = sympy.Symbol("x", real=True)
    cmp = equal(evaluate(claim, {"y": _sig(x)}), sympy.diff(_sig(x), x))
    return Outcome(cmp.equal, "claim at y = σ(x) vs sympy's dσ/dx", cmp.detail)


def _dsigma_torch(claim: Any, ctx: Context) -> Outcome:
    import torch

    from verify.symbolic import evaluate

    g = torch.Generator().manual_seed(ctx.seed)
    x = (torch.rand(50, generator=g, dtype=torch.float64) * 12 - 6).requires_grad_(True)
    y = x.sigmoid()
    (d,) = torch.autograd.grad(y.sum(), x)
    got = [float(evaluate(claim, {"y": v})) for v in y.detach().tolist()]
    return checks.close(got, d, TOL, "torch.autograd.grad of sigmoid at 50 points in [−6, 6]")


def _derive_dtanh() -> Derivation:
    import sympy

    x = sympy.Symbol("x", real=True)
    gap = sympy.simplify((2 * _sig(2 * x) - 1 - sympy.tanh(x)).rewrite(sympy.exp))
    if gap != 0:
        raise ValueError(f"tanh(x) − (2σ(2x) − 1) = {gap}")
    dsigma = _derive_dsigma().answer  # σ′ as a function of σ's output (q6)
    y = next(iter(dsigma.free_symbols))

    class Logistic(sympy.Function):
        """σ with the derivative q6 found: the chain rule applies it."""

        def fdiff(self, argindex: int = 1) -> Any:
            return dsigma.subs(y, self)

    answer = sympy.diff(2 * Logistic(2 * x) - 1, x).replace(Logistic, sympy.Function("sigma"))
    return Derivation(
        answer,
        (
            Step(
                "tanh(x) = 2σ(2x) − 1: sympy simplifies their difference (written in exponentials) to",
                sympy.latex(gap),
            ),
            Step(
                f"Differentiating with the chain rule and σ′ = {dsigma} at y = σ (q6):",
                r"\tanh'(x) = " + sympy.latex(answer),
            ),
            Step("equivalently 1 − tanh²(x)."),
        ),
    )


def _as_function_of_x(claim: Any) -> Any:
    import sympy

    x = sympy.Symbol("x", real=True)
    e = as_sympy(claim)
    by = {s.name: s for s in e.free_symbols}
    if "x" in by:
        e = e.xreplace({by["x"]: x})
    return e.replace(sympy.Function("sigma"), sympy.Lambda(sympy.Symbol("u"), _sig(sympy.Symbol("u")))), x


def _dtanh_symbolic(claim: Any, ctx: Context) -> Outcome:
    import sympy

    from verify.symbolic import equal

    e, x = _as_function_of_x(claim)
    ident = sympy.simplify((2 * _sig(2 * x) - 1 - sympy.tanh(x)).rewrite(sympy.exp))
    cmp = equal(e, sympy.diff(sympy.tanh(x), x))
    return Outcome(
        cmp.equal and ident == 0,
        "claim with σ the logistic function vs sympy's d tanh/dx",
        f"tanh = 2σ(2x) − 1 holds ({ident} difference); {cmp.detail}",
    )


def _dtanh_torch(claim: Any, ctx: Context) -> Outcome:
    import torch

    e, x = _as_function_of_x(claim)
    g = torch.Generator().manual_seed(ctx.seed)
    xs = (torch.rand(50, generator=g, dtype=torch.float64) * 8 - 4).requires_grad_(True)
    (d,) = torch.autograd.grad(torch.tanh(xs).sum(), xs)
    ident = float((torch.tanh(xs) - (2 * torch.sigmoid(2 * xs) - 1)).detach().abs().max())
    got = [float(e.xreplace({x: v})) for v in xs.detach().tolist()]
    out = checks.close(got, d, TOL, f"torch.autograd.grad of tanh at 50 points (and tanh − (2σ(2x) − 1) = {ident:.1e})")
    return out


def _range_part(key: str, fn: str) -> Part:
    def derive() -> Derivation:
        import sympy

        from verify.answers.structured import Interval

        x = sympy.Symbol("x", real=True)
        f = sympy.tanh(x) if fn == "tanh" else _sig(x)
        lo, hi = sympy.limit(f, x, -sympy.oo), sympy.limit(f, x, sympy.oo)
        rng = Interval(lo, hi, True, True)
        name = r"\tanh" if fn == "tanh" else r"\sigma"
        return Derivation(
            rng,
            (
                Step(
                    f"{fn} increases strictly (its derivative is positive), so its values lie strictly between its "
                    "limits at −∞ and +∞, which it never reaches:",
                    rf"\lim_{{x\to-\infty}} {name}(x) = {sympy.latex(lo)},\quad \lim_{{x\to\infty}} {name}(x) = "
                    rf"{sympy.latex(hi)}",
                ),
            ),
            latex=rng.latex(),
        )

    def symbolic(claim: Any, ctx: Context) -> Outcome:
        """Through t = e^{2x} (tanh) or t = e^{-x} (σ), which runs over (0, ∞): a Möbius map of t, monotone, whose
        values at t = 0 and t → ∞ are the ends, and which reaches neither (t = 0 and t = ∞ are not attained)."""
        import sympy

        t = sympy.Symbol("t", positive=True)
        g = (t - 1) / (t + 1) if fn == "tanh" else 1 / (1 + t)
        ends = sorted([g.subs(t, 0), sympy.limit(g, t, sympy.oo)])
        monotone = sympy.simplify(sympy.diff(g, t)).is_positive or sympy.simplify(sympy.diff(g, t)).is_negative
        ok = (
            bool(monotone)
            and sympy.simplify(claim.lo - ends[0]) == 0
            and sympy.simplify(claim.hi - ends[1]) == 0
            and claim.lo_open
            and claim.hi_open
        )
        return Outcome(
            ok,
            f"claim vs the image of (0, ∞) under {fn} written in t",
            f"{fn} = {g} in t ∈ (0, ∞), monotone: ends {ends[0]} and {ends[1]}, neither reached, so "
            f"({ends[0]}, {ends[1]}); claim {claim}",
        )

    def numeric(claim: Any, ctx: Context) -> Outcome:
        import torch

        span = 18 if fn == "tanh" else 30  # float64 rounds tanh and σ to their ends beyond
        xs = torch.linspace(-span, span, 3601, dtype=torch.float64)
        ys = torch.tanh(xs) if fn == "tanh" else torch.sigmoid(xs)
        lo, hi = float(claim.lo), float(claim.hi)
        inside = bool(
            ((ys > lo) if claim.lo_open else (ys >= lo)).all() and ((ys < hi) if claim.hi_open else (ys <= hi)).all()
        )
        reached_lo, reached_hi = bool((ys == lo).any()), bool((ys == hi).any())
        close = float(ys.min()) - lo < 1e-12 and hi - float(ys.max()) < 1e-12  # the ends are approached
        closed_ok = (claim.lo_open or reached_lo) and (claim.hi_open or reached_hi)
        return Outcome(
            inside and close and closed_ok,
            f"claim vs torch.{fn} at 3601 points of [−{span}, {span}]",
            f"values from {float(ys.min()):.15g} to {float(ys.max()):.15g}, ends reached: {reached_lo}, {reached_hi}; "
            f"claim {claim}",
            max_error=max(float(ys.min()) - lo, hi - float(ys.max())),
            tolerance=1e-12,
        )

    return Part(
        key,
        Kind.INTERVAL,
        derive,
        (checks.symbolic("image of (0, ∞) in t", symbolic), checks.torch_check("values in torch", numeric)),
        note="An interval with its ends: written '(-1, 1)', '[0, 1)' and so on.",
    )


PROBLEMS = [
    Problem(
        id="csc420-a2/q1",
        title="Gaussian and Laplacian pyramids reconstruct the image exactly",
        statement="Build a Gaussian pyramid (blur, subsample) and the Laplacian pyramid of differences with the upsampled next "
        "level. Show that the image is recovered from the top Gaussian level and the Laplacians.",
        source=f"{SEED}, question 1",
        topics=("identities",),
        parts=(
            Part(
                "exact_reconstruction",
                Kind.BOOL,
                lambda: Derivation(
                    True,
                    stated=True,
                    steps=(
                        Step(
                            "L_k = G_k − U(G_{k+1}), so G_k = U(G_{k+1}) + L_k; from the top down this telescopes to "
                            "G_0, whatever the blur and the upsampling U:",
                            r"G_0 = L_0 + U(L_1 + U(\cdots + U(G_L)))",
                        ),
                    ),
                ),
                (
                    checks.symbolic("telescoping sum", checks.decision(_q1_symbolic)),
                    checks.torch_check("torch pyramids", checks.decision(_q1_torch)),
                ),
                note="Is I₀ recovered exactly? A yes/no answer; the torch check reports the float64 error.",
            ),
            Part(
                "text",
                Kind.TEXT,
                lambda: Derivation(
                    "L_k = G_k − up(G_{k+1}), so G_k = up(G_{k+1}) + L_k; applying this from the top down telescopes "
                    "to G_0 exactly, whatever blur and upsampling are used."
                ),
                (),
            ),
        ),
    ),
    Problem(
        id="csc420-a2/q2",
        title="Stacked affine layers are one affine layer",
        statement="Show that a network of affine layers without non-linearities, y = W_n(…(W_1 x + b_1)…) + b_n, equals a single "
        "affine layer, and write its W* and b*.",
        source=f"{SEED}, question 2",
        topics=("identities",),
        parts=(
            Part(
                "one_affine_layer",
                Kind.BOOL,
                lambda: Derivation(
                    True,
                    stated=True,
                    steps=(
                        Step(
                            "Two layers:",
                            r"W_2(W_1x + b_1) + b_2 = (W_2W_1)x + (W_2b_1 + b_2)",
                        ),
                        Step(
                            "and by induction",
                            r"W^* = W_n \cdots W_1,\quad b^* = \sum_{k=1}^{n} W_n \cdots W_{k+1}\, b_k",
                        ),
                    ),
                ),
                (
                    checks.symbolic("symbolic matrices, 2 and 3 layers", checks.decision(_q2_symbolic)),
                    checks.torch_check("nn.Sequential of nn.Linear", checks.decision(_q2_torch)),
                ),
                note="Is the stack one affine layer? A yes/no answer; W* and b* are in the derivation.",
            ),
            Part(
                "text",
                Kind.TEXT,
                lambda: Derivation(
                    "W* = W_n ⋯ W_1 and b* = Σ_k W_n ⋯ W_{k+1} b_k (b_n last): the composition is affine, so depth adds "
                    "no expressive power without non-linearities."
                ),
                (),
            ),
        ),
    ),
    Problem(
        id="csc420-a2/q6",
        title="The derivative of σ from its output",
        statement="Write σ′(x) for the logistic function in terms of its output y = σ(x).",
        source=f"{SEED}, question 6",
        topics=("identities", "backward"),
        parts=(
            Part(
                "dsigma",
                Kind.EXPR,
                _derive_dsigma,
                (checks.symbolic("sympy derivative", _dsigma_symbolic), checks.torch_check("autograd", _dsigma_torch)),
                symbols=("y", "x", "sigma"),
                names=_output_of_sigma,
                form=("y", "sigma"),
            ),
        ),
    ),
    Problem(
        id="csc420-a2/q7",
        title="tanh through σ: ranges and derivative",
        statement="Give the ranges of tanh and of the logistic σ, and write tanh′(x) in terms of σ(2x).",
        source=f"{SEED}, question 7",
        topics=("identities",),
        parts=(
            _range_part("tanh_range", "tanh"),
            _range_part("sigmoid_range", "sigmoid"),
            Part(
                "dtanh",
                Kind.EXPR,
                _derive_dtanh,
                (checks.symbolic("sympy identity", _dtanh_symbolic), checks.torch_check("autograd", _dtanh_torch)),
                symbols=("x", "sigma"),
                form=("sigma",),
                note="σ is the logistic function.",
            ),
        ),
    ),
]
