"""vu-dl-a3, part 1 questions 1–4: backward passes of element-wise division, element-wise functions, Y = W Xᵀ and a
broadcast, each derived with sympy over explicit index sums and checked by torch.autograd.

G denotes the upstream gradient ∂L/∂(output), of the output's shape.
"""

from __future__ import annotations

import random
from typing import Any

from verify import checks
from verify.checks import as_sympy
from verify.model import Context, Derivation, Kind, Outcome, Part, Problem, Step

SEED = "002_c9e08a185d8834d2.txt"
TOL = 1e-10


def _elem_syms() -> tuple[Any, Any, Any, Any]:
    import sympy

    g, x, y = sympy.symbols("g x y", real=True)
    return g, x, y, sympy.Function("F")


# ---- element-wise parts (p1.1, p1.2) -----------------------------------------------------------------------------

RANGES = {
    "sigmoid": (-3.0, 3.0),
    "tanh": (-3.0, 3.0),
    "relu (x > 0)": (0.1, 3.0),
    "softplus": (-3.0, 3.0),
    "square": (-3.0, 3.0),
}


def sym_f(name: str, v: Any) -> Any:
    """The scalar function in sympy."""
    import sympy

    return {
        "sigmoid": lambda: 1 / (1 + sympy.exp(-v)),
        "tanh": lambda: sympy.tanh(v),
        "relu (x > 0)": lambda: sympy.Max(v, 0),
        "softplus": lambda: sympy.log(1 + sympy.exp(v)),
        "square": lambda: v**2,
    }[name]()


def torch_f(name: str, t: Any) -> Any:
    """The same function in torch."""
    import torch.nn.functional as F

    return {
        "sigmoid": t.sigmoid,
        "tanh": t.tanh,
        "relu (x > 0)": t.relu,
        "softplus": lambda: F.softplus(t),
        "square": lambda: t * t,
    }[name]()


def _division_part(key: str) -> Part:
    wrt = key[-1]  # X or Y

    def derive() -> Derivation:
        import sympy

        g, x, y, _ = _elem_syms()
        d = sympy.diff(x / y, x if wrt == "X" else y)
        ans = sympy.simplify(g * d)
        return Derivation(
            ans,
            (
                Step(
                    "L depends on X and Y only through S_ij = X_ij / Y_ij, so by the chain rule",
                    rf"\frac{{\partial L}}{{\partial {wrt}_{{ij}}}} = G_{{ij}} \frac{{\partial S_{{ij}}}}{{\partial {wrt}_{{ij}}}}",
                ),
                Step("element-wise (g = G_ij, x = X_ij, y = Y_ij)", sympy.latex(ans)),
            ),
        )

    def index_sums(claim: Any, ctx: Context) -> Outcome:
        import sympy

        from verify.symbolic import evaluate

        X = sympy.Matrix(2, 3, sympy.symbols("x0:6", real=True))
        Y = sympy.Matrix(2, 3, sympy.symbols("y0:6", positive=True))
        G = sympy.Matrix(2, 3, sympy.symbols("g0:6", real=True))
        loss = sum(G[i] * X[i] / Y[i] for i in range(6))
        target = X if wrt == "X" else Y
        for i in range(6):
            want = sympy.diff(loss, target[i])
            got = evaluate(claim, {"g": G[i], "x": X[i], "y": Y[i]})
            if sympy.simplify(got - want) != 0:
                return Outcome(
                    False,
                    "claim vs ∂/∂" + wrt + " of Σ G_ij X_ij / Y_ij",
                    f"entry {i}: sympy gives {want}, the claim {got}",
                )
        return Outcome(
            True, "claim vs ∂/∂" + wrt + " of Σ G_ij X_ij / Y_ij", "equal for every entry of symbolic 2×3 matrices"
        )

    def autograd(claim: Any, ctx: Context) -> Outcome:
        import torch

        from verify.symbolic import evaluate

        g = torch.Generator().manual_seed(ctx.seed)
        X = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
        Y = (torch.rand(3, 4, generator=g, dtype=torch.float64) + 0.5).requires_grad_(True)
        G = torch.randn(3, 4, generator=g, dtype=torch.float64)
        ok_gc = torch.autograd.gradcheck(lambda a, b: a / b, (X, Y), eps=1e-6, atol=1e-8)
        gx, gy = torch.autograd.grad((X / Y * G).sum(), (X, Y))
        truth = gx if wrt == "X" else gy
        got = [
            [float(evaluate(claim, {"g": G[i, j].item(), "x": X[i, j].item(), "y": Y[i, j].item()})) for j in range(4)]
            for i in range(3)
        ]
        out = checks.close(
            got, truth, TOL, f"torch.autograd.grad of (X / Y · G).sum() (gradcheck {'passed' if ok_gc else 'failed'})"
        )
        return out

    return Part(
        key,
        Kind.EXPR,
        derive,
        (checks.symbolic("index sums", index_sums), checks.torch_check("autograd", autograd)),
        symbols=("g", "x", "y"),
        names=lambda: {"dL/dS": _elem_syms()[0]},
        note="Element-wise, with g = G_ij, x = X_ij, y = Y_ij.",
    )


def _elementwise_part() -> Part:
    def derive() -> Derivation:
        import sympy

        g, x, _, F = _elem_syms()
        ans = g * sympy.diff(F(x), x)
        return Derivation(
            ans, (Step("Y_ij = F(X_ij) depends on X_ij alone, so ∂L/∂X_ij = G_ij F′(X_ij):", sympy.latex(ans)),)
        )

    def _value(claim: Any, name: str, xv: Any, gv: Any) -> Any:
        import sympy

        g, x, _, F = _elem_syms()
        e = as_sympy(claim)
        by = {s.name: s for s in e.free_symbols}
        e = e.xreplace({by[k]: v for k, v in (("g", g), ("x", x)) if k in by})
        e = e.replace(F, sympy.Lambda(x, sym_f(name, x))).doit()
        return e.xreplace({g: gv, x: xv})

    def index_sums(claim: Any, ctx: Context) -> Outcome:
        import sympy

        rng = random.Random(ctx.seed)
        for name, (lo, hi) in RANGES.items():
            xs = sympy.symbols("x0:4", real=True)
            gs = sympy.symbols("g0:4", real=True)
            loss = sum(gi * sym_f(name, xi) for gi, xi in zip(gs, xs, strict=True))
            for i in range(4):
                pt = {
                    xs[i]: sympy.Rational(rng.randint(int(lo * 10) + 1, int(hi * 10)), 10),
                    gs[i]: sympy.Rational(rng.randint(-9, 9), 4),
                }
                want = sympy.diff(loss, xs[i]).xreplace(pt)
                got = _value(claim, name, pt[xs[i]], pt[gs[i]])
                if abs(complex(sympy.N(got - want, 30))) > 1e-20:
                    return Outcome(
                        False,
                        "claim vs ∂/∂X of Σ G_ij F(X_ij)",
                        f"F = {name} at x = {pt[xs[i]]}: sympy gives {want}, the claim {got}",
                    )
        return Outcome(True, "claim vs ∂/∂X of Σ G_ij F(X_ij)", f"equal for F in {', '.join(RANGES)}")

    def autograd(claim: Any, ctx: Context) -> Outcome:
        import torch

        worst = 0.0
        for name, (lo, hi) in RANGES.items():
            g = torch.Generator().manual_seed(ctx.seed)
            X = (torch.rand(3, 3, generator=g, dtype=torch.float64) * (hi - lo) + lo).requires_grad_(True)
            G = torch.randn(3, 3, generator=g, dtype=torch.float64)
            (gx,) = torch.autograd.grad((torch_f(name, X) * G).sum(), X)
            got = torch.tensor(
                [[float(_value(claim, name, X[i, j].item(), G[i, j].item())) for j in range(3)] for i in range(3)],
                dtype=torch.float64,
            )
            err = float((got - gx).abs().max())
            worst = max(worst, err)
            if err > TOL:
                return Outcome(
                    False, "claim vs autograd for several F", f"F = {name}: largest difference {err:.1e}", err, TOL
                )
        return Outcome(
            True,
            "claim vs autograd for several F",
            f"F in {', '.join(RANGES)}: largest difference {worst:.1e}",
            worst,
            TOL,
        )

    return Part(
        "grad_X",
        Kind.EXPR,
        derive,
        (
            checks.symbolic("index sums for several F", index_sums),
            checks.torch_check("autograd for several F", autograd),
        ),
        symbols=("g", "x", "F"),
        names=lambda: {"dL/dY": _elem_syms()[0]},
        note="Element-wise; F is any differentiable scalar function, F′ its derivative.",
    )


# ---- matrix parts (p1.3, p1.4) -----------------------------------------------------------------------------------


def _matrix_value(claim: Any, mats: dict[str, Any]) -> Any:
    import sympy

    from verify.matrices import explicit

    e = as_sympy(claim)
    rep = {m: mats[m.name] for m in e.atoms(sympy.MatrixSymbol) if m.name in mats}
    return sympy.Matrix(explicit(e.xreplace(rep)))


def _gw_syms() -> tuple[Any, Any, Any]:
    import sympy

    m, n, f = sympy.symbols("m n f", integer=True, positive=True)
    return sympy.MatrixSymbol("G", m, n), sympy.MatrixSymbol("X", n, f), sympy.MatrixSymbol("W", m, f)


def _grad_w_part() -> Part:
    def derive() -> Derivation:
        import sympy

        G, X, W = _gw_syms()
        linear = sympy.Trace(G.T * W * X.T)  # Σ_ij G_ij Y_ij with Y = W Xᵀ: L's first-order change in Y
        ans = linear.diff(W)
        return Derivation(
            ans,
            (
                Step(
                    "Y_ij = Σ_k W_ik X_jk, that is Y = W Xᵀ; to first order L changes by Σ_ij G_ij ΔY_ij, so the "
                    "gradient is that of",
                    sympy.latex(linear),
                ),
                Step("sympy's matrix derivative in W", r"\frac{\partial L}{\partial W} = " + sympy.latex(ans)),
            ),
        )

    def index_sums(claim: Any, ctx: Context) -> Outcome:
        import sympy

        for m, n, f in ((2, 3, 2), (1, 2, 3), (3, 1, 2)):
            W = sympy.Matrix(m, f, sympy.symbols(f"w0:{m * f}"))
            X = sympy.Matrix(n, f, sympy.symbols(f"x0:{n * f}"))
            G = sympy.Matrix(m, n, sympy.symbols(f"g0:{m * n}"))
            Y = W * X.T
            loss = sum(G[i] * Y[i] for i in range(m * n))
            want = sympy.Matrix([[sympy.diff(loss, W[i, k]) for k in range(f)] for i in range(m)])
            try:
                got = _matrix_value(claim, {"G": G, "X": X})
            except (ValueError, TypeError, sympy.ShapeError) as exc:
                return Outcome(False, "claim vs ∂/∂W of Σ G_ij (W Xᵀ)_ij", f"m, n, f = {m}, {n}, {f}: {exc}")
            if got.shape != want.shape or sympy.simplify(got - want) != sympy.zeros(*want.shape):
                return Outcome(
                    False,
                    "claim vs ∂/∂W of Σ G_ij (W Xᵀ)_ij",
                    f"m, n, f = {m}, {n}, {f}: sympy gives {want.tolist()}, the claim {got.tolist()}",
                )
        return Outcome(
            True,
            "claim vs ∂/∂W of Σ G_ij (W Xᵀ)_ij",
            "equal on symbolic matrices of sizes (m, n, f) = (2, 3, 2), (1, 2, 3), (3, 1, 2)",
        )

    def autograd(claim: Any, ctx: Context) -> Outcome:
        import sympy
        import torch

        g = torch.Generator().manual_seed(ctx.seed)
        W = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
        X = torch.randn(5, 3, generator=g, dtype=torch.float64)
        G = torch.randn(4, 5, generator=g, dtype=torch.float64)
        ok_gc = torch.autograd.gradcheck(lambda w: w @ X.T, (W,))
        (gw,) = torch.autograd.grad((W @ X.T * G).sum(), W)
        try:
            got = _matrix_value(claim, {"G": sympy.Matrix(G.tolist()), "X": sympy.Matrix(X.tolist())})
        except (ValueError, TypeError, sympy.ShapeError) as exc:
            return Outcome(False, "claim vs autograd", f"cannot evaluate the claim: {exc}")
        return checks.close(
            got.tolist(),
            gw,
            TOL,
            f"torch.autograd.grad of (W Xᵀ ⊙ G).sum() (gradcheck {'passed' if ok_gc else 'failed'})",
        )

    return Part(
        "grad_W",
        Kind.EXPR,
        derive,
        (checks.symbolic("index sums", index_sums), checks.torch_check("autograd", autograd)),
        symbols=("G", "X", "W"),
        names=lambda: {"dL/dY": _gw_syms()[0]},
        note="W ∈ ℝ^{m×f}, X ∈ ℝ^{n×f}, G = ∂L/∂Y ∈ ℝ^{m×n}.",
    )


def _broadcast_gradient() -> dict[str, Any]:
    """G = ∂L/∂Y, as the statement names it."""
    import sympy

    return {"dL/dY": sympy.MatrixSymbol("G", sympy.Symbol("h", integer=True, positive=True), 16)}


def _grad_x_broadcast_part() -> Part:
    def derive() -> Derivation:
        import sympy

        h = sympy.Symbol("h", integer=True, positive=True)
        G, x = sympy.MatrixSymbol("G", h, 16), sympy.MatrixSymbol("x", h, 1)
        linear = sympy.Trace(G.T * x * sympy.OneMatrix(1, 16))  # Σ_ij G_ij Y_ij with Y = x 1ᵀ (x copied 16 times)
        ans = linear.diff(x)
        return Derivation(
            ans,
            (
                Step(
                    "x_i is copied into all 16 entries of row i: Y = x 1ᵀ; to first order L changes by "
                    "Σ_ij G_ij ΔY_ij, so the gradient is that of",
                    sympy.latex(linear),
                ),
                Step(
                    "sympy's matrix derivative in x: the row sums of G, G times a column of ones",
                    r"\frac{\partial L}{\partial x} = " + sympy.latex(ans),
                ),
            ),
        )

    def index_sums(claim: Any, ctx: Context) -> Outcome:
        import sympy

        for h in (1, 3):
            x = sympy.symbols(f"x0:{h}")
            G = sympy.Matrix(h, 16, sympy.symbols(f"g0:{16 * h}"))
            loss = sum(G[i, j] * x[i] for i in range(h) for j in range(16))
            want = sympy.Matrix([sympy.diff(loss, xi) for xi in x])
            try:
                got = _matrix_value(claim, {"G": G})
            except (ValueError, TypeError, sympy.ShapeError) as exc:
                return Outcome(False, "claim vs ∂/∂x of Σ G_ij x_i", f"h = {h}: {exc}")
            if got.shape != want.shape or sympy.simplify(got - want) != sympy.zeros(*want.shape):
                return Outcome(
                    False,
                    "claim vs ∂/∂x of Σ G_ij x_i",
                    f"h = {h}: sympy gives the row sums, the claim {got.T.tolist()}",
                )
        return Outcome(True, "claim vs ∂/∂x of Σ G_ij x_i", "equal on symbolic G of sizes 1×16 and 3×16")

    def autograd(claim: Any, ctx: Context) -> Outcome:
        import sympy
        import torch

        g = torch.Generator().manual_seed(ctx.seed)
        x = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
        G = torch.randn(5, 16, generator=g, dtype=torch.float64)
        (gx,) = torch.autograd.grad((x[:, None].expand(5, 16) * G).sum(), x)
        try:
            got = _matrix_value(claim, {"G": sympy.Matrix(G.tolist())})
        except (ValueError, TypeError, sympy.ShapeError) as exc:
            return Outcome(False, "claim vs autograd", f"cannot evaluate the claim: {exc}")
        return checks.close([float(v) for v in got], gx, TOL, "torch.autograd.grad through x[:, None].expand(h, 16)")

    return Part(
        "grad_x",
        Kind.EXPR,
        derive,
        (checks.symbolic("index sums", index_sums), checks.torch_check("autograd", autograd)),
        symbols=("G", "h"),
        names=_broadcast_gradient,
        note="x ∈ ℝ^h, Y ∈ ℝ^{h×16} with Y_ij = x_i, G = ∂L/∂Y.",
    )


PROBLEMS = [
    Problem(
        id="vu-dl-a3/p1.1",
        title="Backward pass of element-wise division",
        statement="S = X / Y element-wise. Given G = ∂L/∂S, give ∂L/∂X and ∂L/∂Y.",
        source=f"{SEED}, part 1, question 1",
        topics=("backward",),
        parts=(_division_part("grad_X"), _division_part("grad_Y")),
    ),
    Problem(
        id="vu-dl-a3/p1.2",
        title="Backward pass of an element-wise function",
        statement="Y = F(X) applies a scalar function to every entry. Given G = ∂L/∂Y, give ∂L/∂X.",
        source=f"{SEED}, part 1, question 2",
        topics=("backward",),
        parts=(_elementwise_part(),),
    ),
    Problem(
        id="vu-dl-a3/p1.3",
        title="Backward pass of Y = W Xᵀ",
        statement="Y = W Xᵀ with W ∈ ℝ^{m×f} and X ∈ ℝ^{n×f}. Given G = ∂L/∂Y, give ∂L/∂W.",
        source=f"{SEED}, part 1, question 3",
        topics=("backward",),
        parts=(_grad_w_part(),),
    ),
    Problem(
        id="vu-dl-a3/p1.4",
        title="Backward pass of a broadcast",
        statement="Y ∈ ℝ^{h×16} repeats x ∈ ℝ^h in every column: Y_ij = x_i. Given G = ∂L/∂Y, give ∂L/∂x.",
        source=f"{SEED}, part 1, question 4",
        topics=("backward",),
        parts=(_grad_x_broadcast_part(),),
    ),
]
