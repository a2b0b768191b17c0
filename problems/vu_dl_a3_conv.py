"""vu-dl-a3: convolution parameters and output sizes, image sizes and global pooling (part 1 q1–q2, part 3 q10–q11)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from verify import checks
from verify.arith import conv
from verify.conv_parts import Layer, shape_parts, size_formula_part
from verify.count.models import register_model
from verify.model import Context, Derivation, Kind, Outcome, Part, Problem, Step
from verify.variants import Drawer, parametrized

SEED = "002_c9e08a185d8834d2.txt"


Q10 = {"filters": 16, "k": 5, "s": 2, "p": 1}


def _q10_space(d: Drawer) -> dict[str, Any]:
    """Any kernel from 1 to 7, a stride of 2 to 4, a padding up to half the kernel (the images are large)."""
    k = d.integer(1, 7)
    return {"filters": d.integer(4, 64), "k": k, "s": d.integer(2, 4), "p": d.integer(0, k // 2)}


def _image_parts(q: Mapping[str, Any]) -> tuple[Part, ...]:
    f, k, s, p = q["filters"], q["k"], q["s"], q["p"]
    note = (
        f"One image, unbatched, in torch order (C, H, W); the layer has {f} filters {k}×{k}, stride {s}, padding {p}."
    )

    def layer(name: str) -> tuple[Layer, ...]:
        return (Layer(name, "conv", out=f, k=k, s=s, p=p),)

    return (
        *shape_parts(layer("out_768x1024"), (3, 768, 1024), ("out_768x1024",), note=note),
        *shape_parts(
            layer("out_1920x1080"), (3, 1080, 1920), ("out_1920x1080",), note=note + " Width 1920, height 1080."
        ),
        *shape_parts(layer("out_8ch"), (8, 1080, 1920), ("out_8ch",), note=note + " Eight input channels."),
    )


def _q10(q: Mapping[str, Any]) -> Problem:
    return Problem(
        id="vu-dl-a3/q10",
        title="Output sizes of one convolution on real image sizes",
        statement=(
            f"A layer of {q['filters']} filters {q['k']}×{q['k']}×3 with padding {q['p']} and stride {q['s']} is "
            "applied to a 768×1024 RGB image, then to a 1920×1080 one (1920 wide). What are the output sizes, and what "
            "changes for a 1920×1080 image with 8 channels?"
        ),
        source=f"{SEED}, part 3, question 10",
        topics=("conv-arithmetic", "shapes"),
        parts=_image_parts(q),
    )


PARAM_NAMES = ("C_in", "C_out", "K_h", "K_w")


def _params_part() -> Part:
    def derive() -> Derivation:
        import sympy

        c_in, c_out, kh, kw = sympy.symbols(PARAM_NAMES, integer=True, positive=True)
        answer = conv.conv_params(c_in, c_out, kh, kw)
        return Derivation(
            answer,
            (
                Step(
                    "The weight tensor has shape (C_out, C_in, K_h, K_w): one K_h×K_w slice per input channel per filter."
                ),
                Step("Its entries, without bias", sympy.latex(answer)),
            ),
        )

    def per_filter_sum(claim: Any, ctx: Context) -> Outcome:
        import sympy

        from verify.symbolic import equal

        c_in, c_out, kh, kw = sympy.symbols(PARAM_NAMES, integer=True, positive=True)
        o, c = sympy.symbols("o c", integer=True, positive=True)
        # Count filter by filter and channel by channel: each (filter, channel) pair holds a K_h×K_w slice.
        count = sympy.summation(sympy.summation(kh * kw, (c, 1, c_in)), (o, 1, c_out))
        cmp = equal(claim, count)
        return Outcome(
            cmp.equal, "claim vs Σ over filters and channels of K_h·K_w", f"{sympy.latex(count)}: {cmp.detail}"
        )

    def numel(claim: Any, ctx: Context) -> Outcome:
        import torch.nn as nn

        configs = checks.random_configs(
            60,
            ctx.seed,
            lambda r: {
                "C_in": r.randint(1, 9),
                "C_out": r.randint(1, 9),
                "K_h": r.randint(1, 6),
                "K_w": r.randint(1, 6),
            },
        )

        def truth(c: dict[str, int]) -> int:
            layer = nn.Conv2d(c["C_in"], c["C_out"], (c["K_h"], c["K_w"]), bias=False, device="meta")
            return sum(p.numel() for p in layer.parameters())

        return checks.sweep(
            claim,
            configs,
            {n: n for n in PARAM_NAMES},
            truth,
            lambda c: f"nn.Conv2d({c['C_in']}, {c['C_out']}, ({c['K_h']}, {c['K_w']}), bias=False)",
        )

    return Part(
        "params",
        Kind.EXPR,
        derive,
        (
            checks.symbolic("count by filters and channels", per_filter_sum),
            checks.torch_check("parameter numel", numel),
        ),
        symbols=PARAM_NAMES,
        note="Weights only (no bias), as the question counts them.",
    )


Q11 = {"b": 4, "c": 10, "h": 32}


def _q11_space(d: Drawer) -> dict[str, Any]:
    """At least two samples and channels (so only the spatial axes squeeze away) and square maps of 2 to 64."""
    return {"b": d.integer(2, 16), "c": d.integer(2, 64), "h": d.integer(2, 64)}


def sympy_int(v: int) -> Any:
    import sympy

    return sympy.Integer(v)


def _global_pool_part(q: Mapping[str, Any]) -> Part:
    b, c, h, w = q["b"], q["c"], q["h"], q["h"]

    def derive() -> Derivation:
        size = conv.pool_out(h, h)
        return Derivation(
            (b, c),
            (
                Step(f"Global pooling uses the whole {h}×{w} map as its window (kernel = stride = {h})."),
                Step(
                    "Each spatial axis then has one window",
                    rf"\left\lfloor \frac{{{h} - {h}}}{{{h}}} \right\rfloor + 1 = {size}",
                ),
                Step(
                    f"The pooled tensor is ({b}, {c}, {size}, {size}); squeezing the two unit axes leaves ({b}, {c})."
                ),
            ),
        )

    def rule(claim: Any, ctx: Context) -> Outcome:
        ok_windows = conv.window_property(1, h, h, h) and conv.window_property(1, w, w, w)
        pooled = (b, c, 1, 1)
        squeezed = tuple(x for x in pooled if x != 1)
        return Outcome(
            ok_windows and tuple(claim) == squeezed,
            "claim vs one window per axis, then squeeze",
            f"one {h}×{w} window fits each map: {ok_windows}; squeeze{pooled} = {squeezed}, claim {checks.fmt(tuple(claim))}",
        )

    def pools(claim: Any, ctx: Context) -> Outcome:
        import torch
        import torch.nn.functional as F

        x = torch.randn(b, c, h, w, dtype=torch.float64, device=ctx.device)
        mx = F.max_pool2d(x, kernel_size=x.shape[2:]).squeeze()
        av = F.avg_pool2d(x, kernel_size=x.shape[2:]).squeeze()
        err = max(float((mx - x.amax(dim=(2, 3))).abs().max()), float((av - x.mean(dim=(2, 3))).abs().max()))
        same = tuple(mx.shape) == tuple(av.shape) == tuple(claim) and err <= 1e-12
        return Outcome(
            same,
            "claim vs F.max_pool2d / F.avg_pool2d(kernel_size=x.shape[2:]).squeeze()",
            f"both give {tuple(mx.shape)} on a ({b}, {c}, {h}, {w}) tensor, claim {checks.fmt(tuple(claim))}; "
            f"values equal amax / mean over (H, W) to {err:.1e}",
            max_error=err,
            tolerance=1e-12,
        )

    return Part(
        "shape",
        Kind.SHAPE,
        derive,
        (checks.symbolic("window rule", rule), checks.torch_check("global pooling in torch", pools, uses_device=True)),
        note=f"For the example tensor of the question: b = {b}, c = {c}, {h}×{w} maps.",
        names=lambda: {"b": sympy_int(b), "c": sympy_int(c), "h": sympy_int(h), "w": sympy_int(w)},
    )


# ---- the convolution through unfold, forward and backward ---------------------------------------------------------


def _unfold_symbolic(claim: Any, ctx: Context) -> Outcome:
    """On explicit symbolic tensors: Y = W·U equals the convolution sum, and the hand-written gradients
    ∇W = ∇Y·Uᵀ and ∇X = fold(Wᵀ·∇Y) equal sympy's derivatives of Σ ∇Y ⊙ Y."""
    import sympy

    from verify.arith import exact

    h = w = 3
    k = 2
    X = sympy.Matrix(h, w, sympy.symbols("x0:9"))
    K = sympy.Matrix(k, k, sympy.symbols("k0:4"))
    Y = sympy.Matrix(exact.correlate2d(X.tolist(), K.tolist()))
    oh, ow = Y.shape
    # unfold: one column per output position, k·k rows
    U = sympy.Matrix([[X[i + u, j + v] for i in range(oh) for j in range(ow)] for u in range(k) for v in range(k)])
    Wrow = sympy.Matrix([[K[u, v] for u in range(k) for v in range(k)]])
    forward_ok = (Wrow * U - sympy.Matrix([list(Y)])).is_zero_matrix
    G = sympy.Matrix(oh, ow, sympy.symbols("g0:4"))
    loss = sum(G[i] * Y[i] for i in range(oh * ow))
    gW = sympy.Matrix([list(sympy.Matrix([list(G)]) * U.T)])
    want_w = sympy.Matrix([[sympy.diff(loss, K[u, v]) for u in range(k) for v in range(k)]])
    gU = Wrow.T * sympy.Matrix([list(G)])
    gX = sympy.zeros(h, w)
    for r, (u, v) in enumerate((u, v) for u in range(k) for v in range(k)):
        for c, (i, j) in enumerate((i, j) for i in range(oh) for j in range(ow)):
            gX[i + u, j + v] += gU[r, c]  # fold: overlapping patches add up
    want_x = sympy.Matrix(h, w, lambda i, j: sympy.diff(loss, X[i, j]))
    ok = forward_ok and (gW - want_w).expand().is_zero_matrix and (gX - want_x).expand().is_zero_matrix
    return Outcome(
        ok,
        "unfold forward and fold backward vs sympy's derivatives (3×3 input, 2×2 kernel)",
        f"forward W·U = conv: {forward_ok}; ∇W = ∇Y·Uᵀ and ∇X = fold(Wᵀ∇Y) equal sympy's: {ok}",
    )


def _unfold_torch(claim: Any, ctx: Context) -> Outcome:
    import torch
    import torch.nn.functional as F

    from verify.unfold_conv import conv2d_unfold

    g = torch.Generator().manual_seed(ctx.seed)
    worst, n = 0.0, 0
    for b, c, o, h, w, k, s, p in (
        (2, 3, 4, 7, 6, 3, 1, 1),
        (1, 2, 3, 8, 8, 3, 2, 0),
        (3, 1, 2, 5, 9, 2, 2, 1),
        (2, 2, 2, 6, 6, 1, 3, 2),
    ):
        x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64, requires_grad=True)
        wt = torch.randn(o, c, k, k, generator=g, dtype=torch.float64, requires_grad=True)
        err = float((conv2d_unfold(x, wt, s, p) - F.conv2d(x, wt, stride=s, padding=p)).detach().abs().max())
        worst = max(worst, err)
        # fast mode: the backward's vector-Jacobian product against finite differences along random directions
        # (a backward that differs from the true Jacobian anywhere fails with probability 1), not column by column
        if err > 1e-12 or not torch.autograd.gradcheck(
            lambda a, bb, s=s, p=p: conv2d_unfold(a, bb, s, p),
            (x, wt),
            eps=1e-6,
            atol=1e-8,
            fast_mode=True,
            raise_exception=False,
        ):
            return Outcome(False, "Conv2dUnfold vs F.conv2d and gradcheck", f"config {(b, c, o, h, w, k, s, p)} fails")
        n += 1
    return Outcome(
        True,
        "Conv2dUnfold (autograd.Function, hand-written backward) vs F.conv2d and gradcheck",
        f"{n} configurations (batch, channels, sizes, kernel, stride, padding): forward within {worst:.1e}, gradcheck "
        "(fast mode, random directions) passes (the test suite sweeps 200 more)",
        max_error=worst,
        tolerance=1e-12,
    )


# ---- q15: a fixed-resolution MNIST net and a variable-resolution one with N channels -----------------------------------


Q15 = {"c1": 16, "c2": 32, "c3": 64, "classes": 10}  # channels of the three convolutions, and the classes


def _q15_space(d: Drawer) -> dict[str, int]:
    """Channels and classes for which the best N (about c3·(9·c2 + 1 + 9·classes)/(9·c2 + 1 + classes), under 2·c3)
    stays inside the 1..200 that the checks search."""
    return {"c1": d.integer(4, 32), "c2": d.integer(8, 64), "c3": d.integer(16, 96), "classes": d.integer(2, 10)}


def _stem(device: str, q: Mapping[str, int] = Q15) -> list[Any]:
    """The two 3×3 conv, ReLU, 2×2 max-pool stages both networks start with (1 → 16 → 32 channels)."""
    import torch.nn as nn

    return [
        nn.Conv2d(1, q["c1"], 3, padding=1, device=device),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(q["c1"], q["c2"], 3, padding=1, device=device),
        nn.ReLU(),
        nn.MaxPool2d(2),
    ]


def fixed_net(device: str = "meta", q: Mapping[str, int] = Q15) -> Any:
    import torch.nn as nn

    return nn.Sequential(
        *_stem(device, q),
        nn.Conv2d(q["c2"], q["c3"], 3, padding=1, device=device),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(q["c3"] * 3 * 3, q["classes"], device=device),
    )


def variable_net(n: int, device: str = "meta", q: Mapping[str, int] = Q15) -> Any:
    import torch.nn as nn

    return nn.Sequential(
        *_stem(device, q),
        nn.Conv2d(q["c2"], n, 3, padding=1, device=device),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(n, q["classes"], device=device),
    )


def _q15_formula(which: str, q: Mapping[str, int]) -> Any:
    """Parameters from the layer formulas (weights + biases), with N symbolic for the variable net."""
    import sympy

    N = sympy.Symbol("N", integer=True, positive=True)
    c1, c2, c3, classes = q["c1"], q["c2"], q["c3"], q["classes"]
    common = conv.conv_params(1, c1, 3, bias=True) + conv.conv_params(c1, c2, 3, bias=True)
    if which == "fixed":
        side = 28  # the MNIST input: each 3×3 convolution (padding 1) keeps it, each 2×2 pool halves it
        for _ in range(3):
            side = conv.pool_out(conv.conv_out(side, 3, 1, 1), 2, 2)
        return (
            common + conv.conv_params(c2, c3, 3, bias=True) + conv.linear_params(c3 * side * side, classes, bias=True)
        )
    return common + conv.conv_params(c2, N, 3, bias=True) + conv.linear_params(N, classes, bias=True)


def _derive_q15(key: str, q: Mapping[str, int]) -> Derivation:
    import sympy

    fixed = _q15_formula("fixed", q)
    var = _q15_formula("var", q)
    N = sympy.Symbol("N", integer=True, positive=True)
    c1, c2, c3, classes = q["c1"], q["c2"], q["c3"], q["classes"]
    steps = [
        Step(
            f"Fixed net: 3×3 convolutions 1→{c1}→{c2}→{c3} with biases, three 2×2 pools (28 → 3), linear "
            f"{9 * c3}→{classes}",
            str(fixed),
        ),
        Step(
            f"Variable net: the same first two convolutions, {c2}→N, global pooling, linear N→{classes}",
            sympy.latex(var),
        ),
    ]
    if key == "params_fixed":
        return Derivation(int(fixed), tuple(steps[:1]))
    if key == "params_var_64":
        return Derivation(int(var.subs(N, 64)), (steps[1], Step("At N = 64", str(var.subs(N, 64)))))
    x = sympy.Symbol("x", positive=True)  # N as a real number, to locate the crossing
    exact = sympy.solve(sympy.Eq(var.subs(N, x), fixed), x)[0]
    lo, hi = sympy.floor(exact), sympy.ceiling(exact)
    best = min((lo, hi), key=lambda n: abs(var.subs(N, n) - fixed))
    return Derivation(
        int(best),
        (
            *steps,
            Step("Equal counts at", f"N = {sympy.latex(exact)} \\approx {float(exact):.2f}"),
            Step(
                f"N = {lo} gives {var.subs(N, lo)}, N = {hi} gives {var.subs(N, hi)}; the closer to {fixed} is",
                str(best),
            ),
        ),
    )


def _q15_symbolic(key: str, q: Mapping[str, int]) -> Any:
    def check(claim: Any, ctx: Context) -> Outcome:
        from verify.count.parts import index_count

        c1, c2, c3, classes = q["c1"], q["c2"], q["c3"], q["classes"]

        def count(n: int | None) -> int:
            layers = [(1, c1, 3), (c1, c2, 3)] + (
                [(c2, c3, 3), (c3 * 9, classes, 1)] if n is None else [(c2, n, 3), (n, classes, 1)]
            )
            return sum(int(index_count(a, b, k, k, bias=True)) for a, b, k in layers)

        if key == "params_fixed":
            return checks.exact(int(claim), count(None), "an index-range count of every layer")
        if key == "params_var_64":
            return checks.exact(int(claim), count(64), "an index-range count of every layer at N = 64")
        target = count(None)
        best = min(range(1, 201), key=lambda n: abs(count(n) - target))
        return checks.exact(int(claim), best, f"index-range counts for N = 1..200 against {target}")

    return check


def _q15_torch(key: str, q: Mapping[str, int]) -> Any:
    def check(claim: Any, ctx: Context) -> Outcome:
        def numel(model: Any) -> int:
            return sum(p.numel() for p in model.parameters() if p.requires_grad)

        if key == "params_fixed":
            return checks.exact(int(claim), numel(fixed_net(q=q)), "numel of the real fixed-resolution net")
        if key == "params_var_64":
            return checks.exact(
                int(claim), numel(variable_net(64, q=q)), "numel of the real variable-resolution net with N = 64"
            )
        target = numel(fixed_net(q=q))
        counts = {n: numel(variable_net(n, q=q)) for n in range(1, 201)}
        best = min(counts, key=lambda n: abs(counts[n] - target))
        return checks.exact(
            int(claim), best, f"real variable nets for N = 1..200 (N={best}: {counts[best]}, fixed: {target})"
        )

    return check


def _q15(q: Mapping[str, int]) -> Problem:
    c1, c2, c3, classes = q["c1"], q["c2"], q["c3"], q["classes"]
    return Problem(
        id="vu-dl-a3/q15",
        title="Matching a variable-resolution net's size to a fixed one",
        statement=f"A fixed-resolution MNIST classifier (3×3 convolutions 1→{c1}→{c2}→{c3} with padding 1, each "
        f"followed by ReLU and 2×2 max pooling, then a linear layer {9 * c3}→{classes}) is compared with a "
        f"variable-resolution one (the same first two convolutions, a third {c2}→N, global max pooling, a linear layer "
        f"N→{classes}); every layer has biases. Count the trainable parameters of the first and of the second at N = 64, "
        "and find the N that brings the second closest to the first.",
        source=f"{SEED}, part 3, question 15",
        topics=("counting",),
        parts=tuple(
            Part(
                k,
                Kind.INT,
                functools.partial(_derive_q15, k, q),
                (
                    checks.symbolic("index-range counts", _q15_symbolic(k, q)),
                    checks.torch_check("real models", _q15_torch(k, q)),
                ),
            )
            for k in ("params_fixed", "params_var_64", "best_N")
        ),
    )


PROBLEMS = [
    Problem(
        id="vu-dl-a3/conv",
        title="A convolution layer's weights and output size",
        statement=(
            "A convolution maps C_in input channels to C_out output channels with a K_h×K_w kernel. How many weights "
            "does it learn (bias aside)? For an input of width W_in, with kernel size K, stride S and padding P, how wide "
            "is its output?"
        ),
        source=f"{SEED}, part 1, questions 1–2",
        topics=("conv-arithmetic", "counting"),
        parts=(
            _params_part(),
            size_formula_part("out_size", {"H": "W_in", "K": "K", "S": "S", "P": "P"}),
            Part(
                "unfold_conv",
                Kind.TEXT,
                lambda: Derivation(
                    "Forward: U = unfold(X), Y = W·U. Backward: ∇W = Σ_b ∇Y_b U_bᵀ; ∇U = Wᵀ∇Y, and ∇X = fold(∇U), where "
                    "fold adds the overlapping patches back onto the input.",
                    (
                        Step(
                            "Each output is a dot product of a kernel with one column of U:",
                            r"Y_{o,p} = \sum_k W_{o,k} U_{k,p}",
                        ),
                        Step(
                            "so",
                            r"\nabla W = \nabla Y\, U^\top,\quad \nabla U = W^\top \nabla Y,\quad \nabla X = \mathrm{fold}(\nabla U)",
                        ),
                    ),
                ),
                (
                    checks.symbolic("sympy derivatives on explicit tensors", _unfold_symbolic),
                    checks.torch_check("autograd.Function vs F.conv2d", _unfold_torch),
                ),
                note="Added to the catalog's parts: the convolution written with F.unfold and F.fold, forward and backward.",
            ),
        ),
    ),
    parametrized("vu-dl-a3/q10", _q10_space, _q10, Q10),
    parametrized(
        "vu-dl-a3/q11",
        _q11_space,
        lambda q: Problem(
            id="vu-dl-a3/q11",
            title="Global max and mean pooling",
            statement="A (b, c, h, w) feature map is pooled over its whole spatial extent with F.max_pool2d and "
            "F.avg_pool2d (kernel size = the map's size) and squeezed. What shape results?",
            source=f"{SEED}, part 3, question 11",
            topics=("conv-arithmetic", "pooling", "shapes"),
            parts=(_global_pool_part(q),),
        ),
        Q11,
    ),
    parametrized("vu-dl-a3/q15", _q15_space, _q15, Q15),
]

register_model("vu-fixed-net", lambda: fixed_net("cpu"), "vu-dl-a3/q15 fixed-resolution MNIST net (1,1,28,28)")
