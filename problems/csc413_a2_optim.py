"""csc413-a2, questions 1–2: min-norm SGD, the RMSProp counterexample, hyper-gradient memory, the optimal one-step
learning rate, and L2 regularization versus weight decay.

The loss throughout is L(w) = (1/n)‖Xw − t‖² with X ∈ ℝ^{n×d}; a = X w0 − t.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from verify import checks
from verify.checks import as_sympy
from verify.model import Context, Derivation, Figure, Kind, Outcome, Part, Problem, Step
from verify.variants import Drawer, parametrized

SEED = "003_c85582041e1ef3a7.txt"
RTOL = 1e-9


# ---- symbols and instances ----------------------------------------------------------------------------------------


def _sym() -> dict[str, Any]:
    import sympy

    from verify.matrices import d, n

    return {
        "n": n,
        "d": d,
        "eta": sympy.Symbol("eta", positive=True),
        "lambda": sympy.Symbol("lambda", positive=True),
        "lambda_tilde": sympy.Symbol("lambda_tilde", positive=True),
        "beta": sympy.Symbol("beta", positive=True),
        "epsilon": sympy.Symbol("epsilon", positive=True),
        "X": sympy.MatrixSymbol("X", n, d),
        "t": sympy.MatrixSymbol("t", n, 1),
        "w0": sympy.MatrixSymbol("w0", d, 1),
        "a": sympy.MatrixSymbol("a", n, 1),
    }


def _pseudo_inverse() -> dict[str, Any]:
    """X⁺ = Xᵀ(XXᵀ)⁻¹: the statement gives X full row rank (d > n)."""
    x = _sym()["X"]
    return {"X^+": x.T * (x * x.T).I}


MATRIX_SYMBOLS = ("X", "t", "w0", "a", "n", "eta")


def _instances(seed: int, scalars: tuple[str, ...] = (), symbolic_eta: bool = True) -> list[Any]:
    """Random (X, t, w0) at sizes with d > n, d < n and n = 1, with a = X w0 − t; η kept symbolic by default."""
    import sympy

    from verify.matrices import instances

    s = _sym()
    draws: dict[str, Callable[[random.Random], Any]] = {}
    for name in scalars:
        draws[name] = lambda r: sympy.Rational(r.randint(1, 9), r.randint(10, 40))
    if symbolic_eta:
        draws["eta"] = lambda r: s["eta"]
    return instances(
        {"X": ("n", "d"), "t": ("n", 1), "w0": ("d", 1)},
        draws,
        derived={"a": lambda m: m["X"] * m["w0"] - m["t"]},
        seed=seed,
    )


def _explicit_loss(inst: Any, w: Any, reg: Any = 0) -> Any:
    """(1/n)‖Xw − t‖² + reg·‖w‖², written out entry by entry for an explicit instance."""
    r = inst.matrices["X"] * w - inst.matrices["t"]
    return (r.T * r)[0, 0] / inst.sizes["n"] + reg * (w.T * w)[0, 0]


def _explicit_grad(inst: Any, at: Any, reg: Any = 0) -> Any:
    """sympy's gradient of the explicit loss, by differentiating each coordinate (of the loss as a polynomial in the
    weights: exact, and far quicker than differentiating the unexpanded products)."""
    import sympy

    dd = inst.sizes["d"]
    ws = sympy.symbols(f"v0:{dd}")
    loss = sympy.Poly(_explicit_loss(inst, sympy.Matrix(ws), reg), *ws)
    grad = sympy.Matrix([loss.diff(v).as_expr() for v in ws])
    return grad.xreplace(dict(zip(ws, at, strict=True)))


def _torch_tensors(inst: Any, device: str = "cpu") -> dict[str, Any]:
    import torch

    return {k: torch.tensor(v.tolist(), dtype=torch.float64, device=device) for k, v in inst.matrices.items()}


def _compare_exact(claim: Any, truth_fn: Callable[[Any], Any], insts: list[Any], what: str) -> Outcome:
    """The claim, evaluated exactly at each instance, must equal sympy's own computation there (η symbolic)."""
    import sympy

    from verify.matrices import evaluate, is_zero

    for inst in insts:
        try:
            got = evaluate(claim, inst)
        except (ValueError, TypeError, sympy.ShapeError) as exc:
            return Outcome(False, what, f"the claim cannot be evaluated at {inst.describe()}: {exc}")
        want = truth_fn(inst)
        if hasattr(want, "shape"):
            ok = getattr(got, "shape", None) == want.shape and is_zero(sympy.Matrix(got) - sympy.Matrix(want))
        else:
            ok = getattr(got, "shape", None) is None and is_zero(got - want)
        if not ok:
            return Outcome(False, what, f"at {inst.describe()}: sympy gives {want}, the claim gives {got}")
    return Outcome(True, what, f"equal exactly at {len(insts)} random instances (n×d = 2×3, 3×2, 1×3, 3×5)")


def _compare_torch(
    claim: Any, truth_fn: Callable[[Any, dict[str, Any], float], Any], ctx: Context, what: str
) -> Outcome:
    """The claim at numeric instances (η drawn) against a torch autograd computation, relative tolerance 1e-9."""
    import numpy as np
    import sympy

    from verify.matrices import evaluate, to_float

    worst = 0.0
    insts = _instances(ctx.seed + 7, scalars=("eta",), symbolic_eta=False)
    for inst in insts:
        eta = float(inst.scalars["eta"])
        truth = np.asarray(truth_fn(inst, _torch_tensors(inst, ctx.device), eta), dtype=float)
        try:
            got = np.asarray(to_float(evaluate(claim, inst)), dtype=float)
        except (ValueError, TypeError, sympy.ShapeError) as exc:
            return Outcome(False, what, f"the claim cannot be evaluated at {inst.describe()}: {exc}")
        if got.size != truth.size:
            return Outcome(False, what, f"at {inst.describe()}: torch gives shape {truth.shape}, the claim {got.shape}")
        err = float(np.max(np.abs(got.reshape(-1) - truth.reshape(-1))) / max(1.0, float(np.max(np.abs(truth)))))
        worst = max(worst, err)
        if not err <= RTOL:
            return Outcome(
                False,
                what,
                f"at {inst.describe()}: torch gives {np.round(truth, 9).tolist()}, the claim "
                f"{np.round(got, 9).tolist()}",
                max_error=err,
                tolerance=RTOL,
            )
    return Outcome(True, what, f"agree at {len(insts)} random float64 instances", max_error=worst, tolerance=RTOL)


def _expr_part(
    key: str,
    derive: Callable[[], Derivation],
    exact: Callable[[Any], Any],
    torch_truth: Callable[[Any, dict[str, Any], float], Any],
    exact_what: str,
    torch_what: str,
    symbols: tuple[str, ...] = MATRIX_SYMBOLS,
    note: str = "",
) -> Part:
    return Part(
        key,
        Kind.EXPR,
        derive,
        (
            checks.symbolic(exact_what, lambda c, ctx: _compare_exact(c, exact, _instances(ctx.seed), exact_what)),
            checks.torch_check(
                torch_what, lambda c, ctx: _compare_torch(c, torch_truth, ctx, torch_what), uses_device=True
            ),
        ),
        symbols=symbols,
        note=note,
        names=_sym,
        domain=(("eta", "(0, oo)"),),
    )


# ---- 1.1.1 min-norm SGD ----------------------------------------------------------------------------------------------


def _derive_w_hat() -> Derivation:
    import sympy

    s = _sym()
    X, t = s["X"], s["t"]
    answer = X.T * (X * X.T).I * t
    return Derivation(
        answer,
        (
            Step(
                "The gradient of one example's loss is a multiple of that example's row:",
                r"\nabla_w (x_j^\top w - t_j)^2 = 2 (x_j^\top w - t_j)\, x_j",
            ),
            Step(
                "So every mini-batch update adds a combination of rows of X; from w₀ = 0 every iterate stays in the row space:",
                r"w_k = X^\top c_k \text{ for some } c_k \in \mathbb{R}^n",
            ),
            Step(
                "At convergence Xŵ = t, so X Xᵀ c = t; X has full row rank (d > n), so X Xᵀ is invertible:",
                r"c = (X X^\top)^{-1} t",
            ),
            Step(
                "Hence",
                r"\hat w = "
                + sympy.latex(answer)
                + r" = w^*, \text{ the unique solution of } Xw = t \text{ in the row space, i.e. of least norm}",
            ),
        ),
        stated=True,  # the row-space argument above is carried out by hand; the checks solve each instance
    )


def _check_w_hat_symbolic(claim: Any, ctx: Context) -> Outcome:
    """On explicit symbolic 2×3 data: the claim solves Xw = t and lies in the row space (the projection onto the row
    space leaves it unchanged), which together characterize the least-norm solution."""
    import sympy

    from verify.matrices import Instance, evaluate, is_zero

    X = sympy.Matrix(2, 3, sympy.symbols("x0:6"))
    t = sympy.Matrix(2, 1, sympy.symbols("t0:2"))
    inst = Instance({"n": 2, "d": 3}, {}, {"X": sympy.ImmutableMatrix(X), "t": sympy.ImmutableMatrix(t)})
    try:
        w = sympy.Matrix(evaluate(claim, inst))
    except (ValueError, TypeError, sympy.ShapeError) as exc:
        return Outcome(False, "claim on symbolic 2×3 data", f"cannot evaluate the claim: {exc}")
    if w.shape != (3, 1):
        return Outcome(False, "claim on symbolic 2×3 data", f"the claim has shape {w.shape}, not (3, 1)")
    # w is in the row space iff it is orthogonal to the null space of X, spanned here by the cross product of the rows
    null = X.row(0).cross(X.row(1)).T
    solves = is_zero(X * w - t)
    in_row_space = is_zero(null.T * w)
    return Outcome(
        bool(solves and in_row_space),
        "claim on a symbolic 2×3 X: Xw = t and w in the row space of X",
        f"X·claim − t is 0: {solves}; claim ⟂ null(X) = row₁ × row₂: {in_row_space}",
    )


EPOCHS = 100


def _sgd_run(X: Any, t: Any, w0: Any, steps: int, seed: int) -> Any:
    import torch

    n = X.shape[0]
    w = w0.clone().requires_grad_(True)
    lr = 0.5 * n / float(torch.linalg.matrix_norm(X, 2) ** 2)
    opt = torch.optim.SGD([w], lr=lr)
    g = torch.Generator().manual_seed(seed)
    b = 2
    for _ in range(steps):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, b):
            idx = perm[i : i + b]
            opt.zero_grad()
            loss = ((X[idx] @ w - t[idx]) ** 2).mean()
            loss.backward()
            opt.step()
    return w.detach()


def _check_w_hat_torch(claim: Any, ctx: Context) -> Outcome:
    import sympy
    import torch

    from verify.matrices import Instance, evaluate

    worst = 0.0
    for n, d, seed in ((4, 9, 0), (3, 7, 2)):
        g = torch.Generator().manual_seed(ctx.seed + seed)
        X = torch.randn(n, d, generator=g, dtype=torch.float64)
        t = torch.randn(n, generator=g, dtype=torch.float64)
        w = _sgd_run(X, t, torch.zeros(d, dtype=torch.float64), EPOCHS, seed)
        inst = Instance(
            {"n": n, "d": d},
            {},
            {  # float entries: the claim is evaluated in floating point here
                "X": sympy.ImmutableMatrix(X.tolist()),
                "t": sympy.ImmutableMatrix([[v] for v in t.tolist()]),
            },
        )
        try:
            want = torch.tensor([float(v) for v in sympy.Matrix(evaluate(claim, inst))], dtype=torch.float64)
        except (ValueError, TypeError, sympy.ShapeError) as exc:
            return Outcome(False, "mini-batch SGD vs the claim", f"cannot evaluate the claim: {exc}")
        if want.shape != w.shape:
            return Outcome(False, "mini-batch SGD vs the claim", f"claim has {want.numel()} entries, w has {d}")
        rel = float((w - want).norm() / want.norm())
        worst = max(worst, rel)
        if rel > 1e-8:
            return Outcome(
                False,
                "mini-batch SGD vs the claim",
                f"n={n}, d={d}: SGD from 0 lands {rel:.1e} (relative) from the claim",
                rel,
                1e-8,
            )
    g = torch.Generator().manual_seed(ctx.seed + 9)
    X = torch.randn(4, 9, generator=g, dtype=torch.float64)
    t = torch.randn(4, generator=g, dtype=torch.float64)
    w_ctrl = _sgd_run(X, t, torch.randn(9, generator=g, dtype=torch.float64), EPOCHS, 3)
    pinv = torch.linalg.pinv(X) @ t
    ctrl = float((w_ctrl - pinv).norm() / pinv.norm())
    residual = float((X @ w_ctrl - t).abs().max())
    return Outcome(
        ctrl > 1e-3,
        "torch.optim.SGD (batches of 2, random order) from w₀ = 0 vs the claim",
        f"from w₀ = 0 at (n, d) = (4, 9), (3, 7) SGD reaches the claim to {worst:.1e} relative; the control from a "
        f"random w₀ also solves Xw = t (residual {residual:.1e}) but lands {ctrl:.2f} (relative) away from it",
        max_error=worst,
        tolerance=1e-8,
    )


# ---- 1.2.1 / 1.2.2 the RMSProp counterexample -------------------------------------------------------------------------

RMS_1 = {"x1": [2, 1], "t": 2}  # the handout's example


def _rms_space(d: Drawer) -> dict[str, Any]:
    """x₁ with two non-zero integer entries of different size (equal sizes would keep RMSProp's steps parallel to x₁,
    so it would find the minimum-norm point) and a non-zero target (zero would make w₀ = 0 the answer). RMSProp's
    steps from 0 all point along sign(t·x₁) and meet x₁·w = t at |t|/(|a| + |b|) in each coordinate; t keeps that
    between 1/3 and 5/6, the distances the runs of the torch check (fixed rates, 300 decaying steps) settle over."""
    nonzero = [v for v in range(-4, 5) if v]
    a = d.choice(nonzero)
    b = d.choice([v for v in nonzero if abs(v) != abs(a)])
    total = abs(a) + abs(b)
    size = d.integer(-(-total // 3), 5 * total // 6)
    return {"x1": [a, b], "t": size * d.choice((1, -1))}


@dataclass(frozen=True)
class RmsExample:
    """One example x₁ (a row of X) and its target t, from w₀ = 0."""

    x1: tuple[int, int]
    t: int

    @property
    def min_norm(self) -> tuple[float, float]:
        return tuple(float(v) for v in self._min_norm_exact())  # type: ignore[return-value]

    def _min_norm_exact(self) -> tuple[Fraction, Fraction]:
        a, b = self.x1
        return Fraction(self.t * a, a * a + b * b), Fraction(self.t * b, a * a + b * b)

    def min_norm_text(self) -> str:
        return "[" + ", ".join(str(v) for v in self._min_norm_exact()) + "]"

    def line_text(self) -> str:
        """x₁·w = t written out, as 2w₁ + w₂ = 2."""
        (a, b), terms = self.x1, []
        for i, c in enumerate((a, b)):
            mag = "" if abs(c) == 1 else str(abs(c))
            sign = ("−" if c < 0 else "") if i == 0 else (" − " if c < 0 else " + ")
            terms.append(f"{sign}{mag}w{'₁₂'[i]}")
        return "".join(terms) + f" = {self.t}"

    def landing_text(self) -> str:
        """Where RMSProp's sign-like steps from 0 meet the line x₁·w = t (every step is along sign(t·x₁))."""
        a, b = self.x1
        c = Fraction(abs(self.t), abs(a) + abs(b))
        sign = 1 if self.t > 0 else -1
        return "[" + ", ".join(str(c * sign * (1 if v > 0 else -1)) for v in (a, b)) + "]"


EX_1 = RmsExample((2, 1), 2)
CONVERGED = 1e-6  # |x₁·w − t| at the end of a run that counts as having reached a solution
RMS_CONFIGS = ((0.05, 0.9, 1e-8), (0.02, 0.99, 1e-6), (0.1, 0.9, 1e-3))


def _rms_grad(ex: RmsExample) -> Any:
    import sympy

    w1, w2 = sympy.symbols("w_1 w_2")
    loss = (ex.x1[0] * w1 + ex.x1[1] * w2 - ex.t) ** 2 / 1  # (1/n)‖Xw − t‖² with n = 1
    return loss, [sympy.diff(loss, v).subs({w1: 0, w2: 0}) for v in (w1, w2)]


def _derive_grad_w0(ex: RmsExample) -> Derivation:
    import sympy

    loss, grad = _rms_grad(ex)
    return Derivation(
        [int(g) for g in grad],
        (
            Step("With one example (n = 1) the loss is", sympy.latex(loss)),
            Step(
                f"Its gradient is 2(x₁·w − t)x₁; at w₀ = 0, x₁·w₀ − t = {str(-ex.t).replace('-', '−')}, so",
                rf"\nabla L(w_0) = 2\cdot({-ex.t})\cdot[{ex.x1[0]}, {ex.x1[1]}] = " + sympy.latex(sympy.Matrix(grad).T),
            ),
        ),
    )


@functools.cache
def _derive_w1(ex: RmsExample) -> Derivation:
    import sympy

    s = _sym()
    _, grad = _rms_grad(ex)
    v0 = [(1 - s["beta"]) * g**2 for g in grad]
    root = [sympy.Abs(g) * sympy.sqrt(1 - s["beta"]) for g in grad]  # √v₀ = |g₀|·√(1 − β), as 0 < β < 1
    w1 = [-s["eta"] * g / (r + s["epsilon"]) for g, r in zip(grad, root, strict=True)]
    return Derivation(
        w1,
        (
            Step(
                "v starts at 0, so after the first gradient",
                r"v_0 = (1-\beta)\, g_0^2 = " + sympy.latex(sympy.Matrix(v0).T),
            ),
            Step(
                "The first step divides each coordinate by √v₀ + ε (ε outside the root, as in torch.optim.RMSprop):",
                r"w_1 = -\frac{\eta\, g_0}{\sqrt{v_0} + \epsilon} = " + sympy.latex(sympy.Matrix(w1).T),
            ),
            Step(
                "For small ε both coordinates move by about η/√(1 − β): w₁ points along "
                f"{[(1 if v * ex.t > 0 else -1) for v in ex.x1]}, not along the row x₁ = {list(ex.x1)}."
            ),
        ),
    )


def _check_grad_symbolic(ex: RmsExample, claim: Any, ctx: Context) -> Outcome:
    from verify import routes

    def loss(w: list[Any]) -> Any:  # (1/n)‖Xw − t‖² with n = 1, evaluated on exact rationals
        return (sum(x * v for x, v in zip(ex.x1, w, strict=True)) - ex.t) ** 2

    grad = routes.central_difference(loss, [0, 0])  # exact for a quadratic: no derivative taken symbolically
    return checks.exact(
        tuple(claim),
        tuple(int(g) if g.denominator == 1 else g for g in grad),
        "exact central differences of (x₁·w − t)² at w = 0 (step ½, in rationals)",
    )


def _check_grad_torch(ex: RmsExample, claim: Any, ctx: Context) -> Outcome:
    import torch

    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    loss = ((torch.tensor([list(ex.x1)], dtype=torch.float64) @ w - ex.t) ** 2).mean()
    (g,) = torch.autograd.grad(loss, w)
    return checks.close(claim, g, 1e-12, "torch.autograd.grad of (1/n)‖Xw − t‖² at w₀ = 0")


def _w1_values(claim: Any, eta: float, beta: float, eps: float) -> list[Any]:
    import sympy

    from verify.symbolic import evaluate

    values = {"eta": sympy.nsimplify(eta), "beta": sympy.nsimplify(beta), "epsilon": sympy.nsimplify(eps)}
    return [evaluate(c, values) for c in claim]


def _check_w1_symbolic(ex: RmsExample, claim: Any, ctx: Context) -> Outcome:
    """The update rule executed on exact numbers (no symbols), at several (η, β, ε), against the claim there."""
    import sympy

    rng = random.Random(ctx.seed)
    for _ in range(6):
        eta, beta, eps = (
            sympy.Rational(rng.randint(1, 20), 100),
            sympy.Rational(rng.randint(80, 99), 100),
            sympy.Rational(rng.randint(1, 9), 10 ** rng.randint(1, 6)),
        )
        g = [2 * (ex.x1[0] * 0 + ex.x1[1] * 0 - ex.t) * x for x in ex.x1]
        v = [(1 - beta) * gi**2 for gi in g]
        step = [-eta * gi / (sympy.sqrt(vi) + eps) for gi, vi in zip(g, v, strict=True)]
        got = _w1_values(claim, eta, beta, eps)
        if len(got) != 2 or any(sympy.simplify(a - b) != 0 for a, b in zip(got, step, strict=True)):
            return Outcome(
                False,
                "claim vs one exact RMSProp step",
                f"at η={eta}, β={beta}, ε={eps}: the rule gives {step}, the claim {got}",
            )
    return Outcome(True, "claim vs one exact RMSProp step", "equal exactly at 6 random (η, β, ε)")


def _check_w1_torch(ex: RmsExample, claim: Any, ctx: Context) -> Outcome:
    import torch

    worst = 0.0
    for eta, beta, eps in ((0.01, 0.9, 1e-8), (0.1, 0.99, 1e-3), (0.3, 0.95, 0.2)):
        w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.RMSprop([w], lr=eta, alpha=beta, eps=eps)
        opt.zero_grad()
        ((torch.tensor([list(ex.x1)], dtype=torch.float64) @ w - ex.t) ** 2).mean().backward()
        opt.step()
        got = [float(v) for v in _w1_values(claim, eta, beta, eps)]
        err = max(abs(a - b) for a, b in zip(got, w.detach().tolist(), strict=True)) if len(got) == 2 else float("inf")
        worst = max(worst, err)
        if err > 1e-12:
            return Outcome(
                False,
                "claim vs torch.optim.RMSprop(alpha=β) one step",
                f"at η={eta}, β={beta}, ε={eps}: torch {w.detach().tolist()}, claim {got}",
                err,
                1e-12,
            )
    return Outcome(
        True,
        "claim vs torch.optim.RMSprop(alpha=β) one step",
        "torch's RMSprop (v = αv + (1−α)g², w −= lr·g/(√v + eps): ε outside the root, as in the handout) matches at 3 (η, β, ε)",
        max_error=worst,
        tolerance=1e-12,
    )


# The runs to convergence of 1.2.1 (RMSprop, SGD as a control) and 1.2.2 (Adagrad, Adam, the same control), in order:
# name, torch.optim class, its arguments.
ADAPTIVE_RUNS: tuple[tuple[str, str, dict[str, float]], ...] = (
    *((f"RMSprop η={e}, β={b}, ε={p:g}", "RMSprop", {"lr": e, "alpha": b, "eps": p}) for e, b, p in RMS_CONFIGS),
    ("Adagrad η=0.5", "Adagrad", {"lr": 0.5}),
    ("Adam η=0.05", "Adam", {"lr": 0.05}),
    ("SGD η=0.05 (control)", "SGD", {"lr": 0.05}),
)


def _adaptive_runs(ex: RmsExample, keep: Callable[[str], bool]) -> dict[str, Any]:
    """The runs of :data:`ADAPTIVE_RUNS` that ``keep`` admits, by name (each made once per process: the two problems
    that read them may run in different ones, and each needs only its own)."""
    return {name: _adaptive_run(ex, name) for name, _, _ in ADAPTIVE_RUNS if keep(name)}


@functools.lru_cache(maxsize=16)
def _adaptive_run(ex: RmsExample, name: str) -> Any:
    """The path of one run to convergence on x₁, t from w₀ = 0 (a 1/(1 + k/25) learning-rate decay lets it settle)."""
    import torch

    optimizer, kwargs = next((o, k) for n, o, k in ADAPTIVE_RUNS if n == name)
    X = torch.tensor([list(ex.x1)], dtype=torch.float64)
    t = torch.tensor([float(ex.t)], dtype=torch.float64)
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, optimizer)([w], **kwargs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 / (1 + k / 25))
    path = [w.detach().clone()]
    for _ in range(300):
        opt.zero_grad()
        ((X @ w - t) ** 2).mean().backward()
        opt.step()
        sched.step()
        path.append(w.detach().clone())
    return torch.stack(path)


def _trajectory_figure(ex: RmsExample, runs: dict[str, Any], name: str, keep: Callable[[str], bool]) -> Figure:
    shown = {k: v for k, v in runs.items() if keep(k)}
    digest = hashlib.sha256(
        repr({k: [round(x, 9) for x in v[-1].tolist()] for k, v in shown.items()}).encode()
    ).hexdigest()[:12]

    def draw(path: str) -> None:
        from verify.report.plots import line_plot

        series = [(k, v[:, 0].tolist(), v[:, 1].tolist()) for k, v in shown.items()]
        series.append((f"solutions of {ex.line_text()}", [0.0, ex.t / ex.x1[0]], [ex.t / ex.x1[1], 0.0]))
        line_plot(
            path,
            series,
            "Trajectories from w₀ = 0",
            "w₁",
            "w₂",
            points=[(f"min-norm {ex.min_norm_text()}", *ex.min_norm)],
        )

    return Figure(name, "optimizer trajectories against the line Xw = t and the min-norm point", draw, digest)


def _landing(ex: RmsExample, runs: dict[str, Any], keep: Callable[[str], bool]) -> tuple[list[str], float, float]:
    import torch

    lines, worst_res, closest = [], 0.0, float("inf")
    for name, path in runs.items():
        if not keep(name):
            continue
        w = path[-1]
        res = abs(float(ex.x1[0] * w[0] + ex.x1[1] * w[1] - ex.t))
        dist = float((w - torch.tensor(ex.min_norm, dtype=torch.float64)).norm())
        worst_res, closest = max(worst_res, res), min(closest, dist)
        lines.append(f"{name} → [{float(w[0]):.6f}, {float(w[1]):.6f}] (residual {res:.0e}, {dist:.4f} from min-norm)")
    return lines, worst_res, closest


def _check_min_norm_symbolic(ex: RmsExample, claim: Any, ctx: Context) -> Outcome:
    """The first RMSProp iterate leaves the row space of X for every η > 0, 0 < β < 1, ε > 0, while gradient steps
    never do; a point outside the row space cannot reach the min-norm solution without moving back into it."""
    import sympy

    w1 = _derive_w1(ex).answer
    # the determinant as one cancelled fraction (exact: 0 only if it is 0), its denominator's sign made positive
    top, bottom = sympy.fraction(sympy.cancel(sympy.Matrix([[ex.x1[0], ex.x1[1]], [w1[0], w1[1]]]).det()))
    if bottom.could_extract_minus_sign():
        top, bottom = -top, -bottom
    det = top / bottom
    leaves = top != 0
    return checks.exact(
        bool(claim),
        not leaves,
        f"the row-space argument (det[x₁; w₁] = {det} ≠ 0: w₁ is not parallel to x₁)",
        "the row-space argument",
    )


def _check_min_norm_torch(ex: RmsExample, claim: Any, ctx: Context) -> Outcome:
    runs = _adaptive_runs(ex, lambda k: k.startswith(("RMSprop", "SGD")))
    lines, res, closest = _landing(ex, runs, lambda k: k.startswith("RMSprop"))
    ctrl, _, _ = _landing(ex, runs, lambda k: k.startswith("SGD"))
    converged_elsewhere = res < CONVERGED and closest > 1e-2
    out = checks.exact(
        bool(claim),
        not converged_elsewhere,
        "RMSprop runs (" + "; ".join(lines) + f"; control {ctrl[0]})",
        "RMSprop runs to convergence",
    )
    fig = _trajectory_figure(ex, runs, "rmsprop_trajectories", lambda k: k.startswith(("RMSprop", "SGD")))
    return Outcome(out.ok, out.compared, out.evidence, max_error=res, tolerance=CONVERGED, figures=(fig,))


def _check_other_adaptive(ex: RmsExample, claim: Any, ctx: Context) -> Outcome:
    runs = _adaptive_runs(ex, lambda k: k.startswith(("Adagrad", "Adam", "SGD")))
    lines, res, closest = _landing(ex, runs, lambda k: k.startswith(("Adagrad", "Adam")))
    fig = _trajectory_figure(ex, runs, "adagrad_adam_trajectories", lambda k: k.startswith(("Adagrad", "Adam", "SGD")))
    return Outcome(
        res < CONVERGED and closest > 1e-2,
        "Adagrad and Adam runs to convergence vs the min-norm point",
        "; ".join(lines) + " — both solve Xw = t away from the min-norm point, as RMSProp does",
        max_error=res,
        tolerance=CONVERGED,
        figures=(fig,),
    )


def _check_other_adaptive_first_step(ex: RmsExample, claim: Any, ctx: Context) -> Outcome:
    """Exactly: the first Adagrad and Adam steps from 0 are coordinate-wise normalized, so they leave span(x₁)."""
    import sympy

    _, g = _rms_grad(ex)
    eta, eps = sympy.symbols("eta epsilon", positive=True)
    adagrad = [-eta * gi / (sympy.sqrt(gi**2) + eps) for gi in g]
    adam = [-eta * gi / (sympy.sqrt(gi**2) + eps) for gi in g]  # bias-corrected m and v at step 1: g and g²
    dets = [sympy.simplify(ex.x1[0] * w[1] - ex.x1[1] * w[0]) for w in (adagrad, adam)]
    return Outcome(
        all(dd != 0 for dd in dets),
        "first Adagrad / Adam step vs the row space",
        f"det[x₁; w₁] = {dets[0]} for Adagrad and {dets[1]} for Adam: non-zero, so both leave span(x₁) at once",
    )


# ---- 2.1.2 hyper-gradient memory -----------------------------------------------------------------------------------


def _measure_memory(steps: int, graph: bool) -> tuple[int, int]:
    """Unroll ``steps`` GD steps of the L2-regularized loss with η a tensor; return (bytes saved by autograd through
    saved-tensor hooks, peak bytes of live tensors seen by a dispatch-mode tracker)."""
    import weakref

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class LiveBytes(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.live = 0
            self.peak = 0

        def _free(self, nbytes: int) -> None:
            self.live -= nbytes

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            for x in tree_flatten(out)[0]:
                if isinstance(x, torch.Tensor) and x._base is None:
                    nbytes = x.untyped_storage().nbytes()
                    self.live += nbytes
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(x, self._free, nbytes)
            return out

    g = torch.Generator().manual_seed(0)
    X = torch.randn(6, 4, generator=g, dtype=torch.float64)
    t = torch.randn(6, generator=g, dtype=torch.float64)
    w = torch.zeros(4, dtype=torch.float64)
    eta = torch.tensor(0.05, dtype=torch.float64, requires_grad=graph)
    lam = 0.1
    saved = [0]

    def pack(x: Any) -> Any:
        saved[0] += x.untyped_storage().nbytes()
        return x

    mode = LiveBytes()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x), mode, torch.set_grad_enabled(graph):
        for _ in range(steps):
            w = w - eta * (2 / 6 * X.T @ (X @ w - t) + 2 * lam * w)
        loss = ((X @ w - t) ** 2).mean() + lam * (w * w).sum()
    if graph:
        loss.backward()
    return saved[0], mode.peak


def _growth(values: dict[int, int]) -> int:
    """Growth degree from bytes at t = N, 2N, 4N: no change → 0, differences doubling → 1, quadrupling → 2."""
    a, b, c = (values[k] for k in sorted(values))
    d1, d2 = b - a, c - b
    if d1 == 0 and d2 == 0:
        return 0
    ratio = d2 / d1 if d1 else float("inf")
    return 1 if 1.5 <= ratio <= 2.5 else 2 if 3 <= ratio <= 5 else -1


def _order(deg: int) -> Any:
    import sympy

    t = sympy.Symbol("t", positive=True)
    return sympy.Order(t**deg, (t, sympy.oo))


def _claim_degree(claim: Any) -> int | None:
    import sympy

    expr = claim.expr if isinstance(claim, sympy.Order) else as_sympy(claim)
    syms = list(expr.free_symbols)
    if not syms:
        return 0
    try:
        return int(sympy.degree(expr, syms[0]))
    except (sympy.PolynomialError, TypeError, ValueError):
        return None


def _memory_part(key: str, graph: bool) -> Part:
    what = "bytes saved by autograd for ∇η L_t" if graph else "peak bytes of live tensors, forward pass with no graph"

    def derive() -> Derivation:
        if graph:
            steps = (
                Step(
                    "Back-propagating to η needs every intermediate of every step: each w_k and each gradient is saved for the backward pass."
                ),
                Step("t steps save t copies of a constant-size set of tensors:", r"\mathcal{O}(t)"),
            )
        else:
            steps = (
                Step(
                    "A forward pass that keeps no graph needs only the current w_k (and the data): each step overwrites the last."
                ),
                Step("Memory does not grow with t:", r"\mathcal{O}(1)"),
            )
        return Derivation(_order(1 if graph else 0), steps, stated=True)  # the growth class the measurements confirm

    def measured(claim: Any, ctx: Context) -> Outcome:
        sizes = (8, 16, 32)
        vals = {s: _measure_memory(s, graph)[0 if graph else 1] for s in sizes}
        deg = _growth(vals)
        claimed = _claim_degree(claim)
        return Outcome(
            claimed == deg,
            f"claim vs the measured growth of {what}",
            f"t = 8, 16, 32 → {', '.join(f'{v} B' for v in vals.values())}: growth class O(t^{deg}) = "
            f"{'O(1)' if deg == 0 else 'O(t)' if deg == 1 else 'O(t²)' if deg == 2 else 'unclear'}; claim degree {claimed}",
        )

    def symbolic(claim: Any, ctx: Context) -> Outcome:
        # Count the tensors the computation keeps, symbolically in t: per step, graph mode keeps w_k, X w_k − t and the
        # gradient (3 vectors) plus η; no-graph mode keeps one w.
        import sympy

        t = sympy.Symbol("t", positive=True)
        kept = 3 * t + 1 if graph else sympy.Integer(1)
        deg = int(sympy.degree(kept, t)) if kept.free_symbols else 0
        claimed = _claim_degree(claim)
        return Outcome(
            claimed == deg,
            "claim vs the count of tensors kept after t steps",
            f"tensors kept: {kept} → degree {deg}; claim degree {claimed}",
        )

    return Part(
        key,
        Kind.BIGO,
        derive,
        (
            checks.symbolic("tensors kept, counted in t", symbolic),
            checks.torch_check("measured bytes for t = 8, 16, 32", measured),
        ),
        symbols=("t",),
        note="Growth as the number of unrolled steps t → ∞.",
    )


# ---- 2.2.x one-step learning rate --------------------------------------------------------------------------------


@functools.cache
def _one_step() -> dict[str, Any]:
    """One GD step on (1/n)‖Xw − t‖² from w₀, by sympy's matrix calculus, with a = Xw₀ − t: the gradient at w₀, w₁,
    L₁ = L(w₁) as a polynomial in η, its first two η-derivatives and the stationary η (L₁ is quadratic in η, so
    dL₁/dη = c + η·d²L₁/dη² is linear and vanishes at η = −c·(d²L₁/dη²)⁻¹)."""
    import sympy

    s = _sym()
    X, t, w0, n, eta, a = s["X"], s["t"], s["w0"], s["n"], s["eta"], s["a"]
    loss = (X * w0 - t).T * (X * w0 - t) / n
    grad = loss.diff(w0).subs(X * w0 - t, a)
    w1 = w0 - eta * grad
    r1 = a + X * (w1 - w0)  # X w₁ − t = (X w₀ − t) + X (w₁ − w₀)
    l1 = sympy.expand(r1.T * r1 / n)
    d1 = sympy.expand(l1.diff(eta))
    d2 = sympy.expand(d1.diff(eta))
    c = sympy.expand(d1 - eta * d2)
    return {"grad": grad, "w1": w1, "r1": r1, "L1": l1, "d1": d1, "d2": d2, "eta_star": -c * d2.I}


def _is_gram(e: Any) -> bool:
    """Whether a 1×1 matrix expression is a positive multiple of vᵀv: its matrix factors read the same backwards with
    every factor transposed (aᵀ X Xᵀ X Xᵀ a = (Xᵀ X Xᵀ... a)ᵀ(...)), times a positive scalar."""
    import sympy

    coeff, mats = e.as_coeff_mmul()
    factors = list(mats.args)
    scalars = [f for f in factors if not getattr(f, "is_Matrix", False)]
    matrices = [f for f in factors if getattr(f, "is_Matrix", False)]
    half = len(matrices) // 2
    mirrored = len(matrices) % 2 == 0 and all(matrices[-1 - i] == matrices[i].T for i in range(half))
    return bool(mirrored and sympy.Mul(coeff, *scalars).is_positive)


def _explicit_l1(inst: Any) -> Any:
    """L1(η) on an explicit instance: one GD step computed by sympy's gradient, then the loss."""
    eta = _sym()["eta"]
    w0 = inst.matrices["w0"]
    w1 = w0 - inst.scalars.get("eta", eta) * _explicit_grad(inst, w0)
    return _explicit_loss(inst, w1)


def _torch_w1(inst: Any, m: dict[str, Any], eta: float) -> Any:
    import torch

    w0 = m["w0"][:, 0].clone().requires_grad_(True)
    loss = ((m["X"] @ w0 - m["t"][:, 0]) ** 2).mean()
    (g,) = torch.autograd.grad(loss, w0)
    return (w0 - eta * g).detach().cpu().numpy()


def _torch_l1(inst: Any, m: dict[str, Any], eta: float, order: int = 0) -> Any:
    import torch

    e = torch.tensor(eta, dtype=torch.float64, device=m["X"].device, requires_grad=True)
    w0 = m["w0"][:, 0].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(((m["X"] @ w0 - m["t"][:, 0]) ** 2).mean(), w0, create_graph=True)
    w1 = w0 - e * g
    out = ((m["X"] @ w1 - m["t"][:, 0]) ** 2).mean()
    for _ in range(order):
        (out,) = torch.autograd.grad(out, e, create_graph=True)
    return float(out.detach())


def _derive_w1_l1(which: str) -> Callable[[], Derivation]:
    def derive() -> Derivation:
        import sympy

        step = _one_step()
        w1, r1 = step["w1"], step["r1"]
        l1 = r1.T * r1 / _sym()["n"]
        steps = (
            Step(
                "sympy's matrix derivative of (1/n)‖Xw − t‖² at w₀, with a = X w₀ − t:",
                r"\nabla \mathcal{L}(w_0) = " + sympy.latex(step["grad"]),
            ),
            Step("One GD step:", r"w_1 = w_0 - \eta \nabla \mathcal{L}(w_0) = " + sympy.latex(w1)),
            Step(
                "Then X w₁ − t = (X w₀ − t) + X(w₁ − w₀), so",
                r"X w_1 - t = " + sympy.latex(r1) + r",\quad \mathcal{L}_1 = " + sympy.latex(l1),
            ),
        )
        return Derivation(w1 if which == "w1" else l1, steps)

    return derive


def _derive_d2() -> Derivation:
    import sympy

    step = _one_step()
    d2 = step["d2"]
    return Derivation(
        d2,
        (
            Step("L₁ (2.2.1) expanded is a quadratic in η:", r"\mathcal{L}_1 = " + sympy.latex(step["L1"])),
            Step("sympy differentiates it twice in η:", sympy.latex(d2) + r" = \frac{8}{n^3}\|X X^\top a\|_2^2"),
        ),
    )


def _derive_convex() -> Derivation:
    import sympy

    d2 = _one_step()["d2"]
    gram = _is_gram(d2)
    return Derivation(
        gram,
        (
            Step("The second derivative of L₁ in η (2.2.2's d2L1) is", sympy.latex(d2)),
            Step(
                "Its matrix factors read the same backwards with each transposed, so it is vᵀv (v = X Xᵀ a) times "
                "a positive constant: ≥ 0 for every η, and L₁ is convex in η."
                if gram
                else "It is not a positive multiple of a squared norm: its sign is not fixed."
            ),
        ),
    )


def _derive_eta_star() -> Derivation:
    import sympy

    step = _one_step()
    es = step["eta_star"]
    return Derivation(
        es,
        (
            Step(
                "dL₁/dη is linear in η (L₁ is quadratic):", r"\frac{d\mathcal{L}_1}{d\eta} = " + sympy.latex(step["d1"])
            ),
            Step("Setting it to 0:", r"\eta^* = " + sympy.latex(es)),
            Step("equivalently", r"\eta^* = \frac{n}{2}\,\frac{\|X^\top a\|_2^2}{\|X X^\top a\|_2^2}"),
            Step("The second derivative is ≥ 0 (2.2.2), so this stationary point is the minimum."),
        ),
    )


def _exact_d2(inst: Any) -> Any:
    import sympy

    return sympy.diff(_explicit_l1(inst), _sym()["eta"], 2)


def _check_eta_star_torch(claim: Any, ctx: Context) -> Outcome:
    """torch's hyper-gradient (autograd through one GD step, η a tensor) vanishes at the claimed η*, and a dense grid
    search finds its minimum at the same place."""
    import numpy as np
    import sympy

    from verify.matrices import evaluate

    worst_grad, worst_grid = 0.0, 0.0
    insts = _instances(ctx.seed + 3, symbolic_eta=False)
    for inst in insts:
        m = _torch_tensors(inst, ctx.device)
        try:
            es = float(evaluate(claim, inst))
        except (ValueError, TypeError, sympy.ShapeError) as exc:
            return Outcome(False, "hyper-gradient at the claimed η*", f"cannot evaluate the claim: {exc}")
        hg = _torch_l1(inst, m, es, order=1)
        curv = _torch_l1(inst, m, es, order=2)
        grid = np.linspace(0, 2 * abs(es) + 1e-3, 2001)
        losses = [_torch_l1(inst, m, float(e)) for e in grid[::20]]
        best = float(grid[::20][int(np.argmin(losses))])
        scale = max(1.0, abs(es))
        worst_grad = max(worst_grad, abs(hg) / max(curv * scale, 1e-300))
        worst_grid = max(worst_grid, abs(best - es) / scale)
        if not (abs(hg) <= 1e-8 * max(curv * scale, 1.0) and abs(best - es) <= 0.02 * scale):
            return Outcome(
                False,
                "hyper-gradient and grid search at the claimed η*",
                f"at {inst.describe()}: dL₁/dη = {hg:.3e} at η = {es:.6g}; grid minimum at {best:.6g}",
                worst_grad,
                1e-8,
            )
    return Outcome(
        True,
        "hyper-gradient and grid search at the claimed η*",
        f"dL₁/dη (autograd through one GD step) vanishes at η* on {len(insts)} instances (largest |dL/dη|/(curvature·η*) = "
        f"{worst_grad:.1e}); the grid over [0, 2η*] finds the minimum within {worst_grid:.1e} (relative) of η*",
        max_error=worst_grad,
        tolerance=1e-8,
    )


def _exact_eta_star(inst: Any) -> Any:
    import sympy

    eta = _sym()["eta"]
    slope = sympy.Poly(_explicit_l1(inst), eta).diff(eta)  # L₁ is a polynomial in η: its derivative, exactly
    sols = list(sympy.roots(slope)) if slope.degree() > 0 else []  # its roots, exactly (a constant has none)
    return sols[0] if len(sols) == 1 else sympy.nan


def _check_convex_symbolic(claim: Any, ctx: Context) -> Outcome:
    import sympy

    eta = _sym()["eta"]
    insts = _instances(ctx.seed)
    second = [sympy.diff(_explicit_l1(i), eta, 2) for i in insts]
    truth = all(v >= 0 and not v.free_symbols for v in second)
    return checks.exact(
        bool(claim),
        truth,
        f"sympy's d²L₁/dη² at {len(insts)} random instances (constants {[str(v) for v in second[:3]]}…, all ≥ 0)",
        "the second derivative's sign",
    )


def _check_convex_torch(claim: Any, ctx: Context) -> Outcome:
    insts = _instances(ctx.seed + 5, scalars=("eta",), symbolic_eta=False)
    curv = [_torch_l1(i, _torch_tensors(i, ctx.device), float(i.scalars["eta"]), order=2) for i in insts]
    return checks.exact(
        bool(claim),
        all(c >= 0 for c in curv),
        f"autograd's d²L₁/dη² at {len(insts)} random (instance, η): min {min(curv):.3g}",
        "the second derivative's sign",
    )


# ---- 2.3.x L2 versus weight decay ----------------------------------------------------------------------------------


@functools.cache
def _l2_steps() -> tuple[Any, Any]:
    """One step from w₀ with the L2 term λ̃‖w‖² (the gradient of the penalized loss, by sympy's matrix derivative) and
    with weight decay (equation 5: w₁ = (1 − λ)w₀ − η∇L(w₀))."""
    s = _sym()
    X, t, w0, n, eta = s["X"], s["t"], s["w0"], s["n"], s["eta"]
    loss = (X * w0 - t).T * (X * w0 - t) / n
    grad = loss.diff(w0)
    l2 = w0 - eta * (loss + s["lambda_tilde"] * w0.T * w0).diff(w0)
    return l2, (1 - s["lambda"]) * w0 - eta * grad


def _derive_l2(which: str) -> Callable[[], Derivation]:
    def derive() -> Derivation:
        import sympy

        l2, wd = _l2_steps()
        steps = (
            Step(
                "With the L2 term λ̃‖w‖² the gradient gains 2λ̃w:",
                r"w_1 = " + sympy.latex(l2) + r" = (1 - 2\eta\tilde\lambda) w_0 - \frac{2\eta}{n} X^\top (X w_0 - t)",
            ),
            Step("With weight decay (equation 5) on the plain loss:", r"w_1 = " + sympy.latex(wd)),
        )
        return Derivation(l2 if which == "l2" else wd, steps)

    return derive


def _l2_symbols() -> tuple[str, ...]:
    return (*MATRIX_SYMBOLS, "lambda", "lambda_tilde")


def _exact_l2(inst: Any, which: str) -> Any:
    s = _sym()
    w0 = inst.matrices["w0"]
    if which == "l2":
        return w0 - s["eta"] * _explicit_grad(inst, w0, reg=s["lambda_tilde"])
    return (1 - s["lambda"]) * w0 - s["eta"] * _explicit_grad(inst, w0)


def _instances_l2(seed: int, numeric: bool) -> list[Any]:
    insts = _instances(seed, scalars=("eta", "lambda", "lambda_tilde") if numeric else (), symbolic_eta=not numeric)
    if not numeric:
        s = _sym()
        for i in insts:
            i.scalars.update({"lambda": s["lambda"], "lambda_tilde": s["lambda_tilde"]})
    return insts


def _l2_part(key: str, which: str) -> Part:
    what_exact = "claim vs sympy's gradient step on explicit instances (η, λ, λ̃ symbolic)"
    what_torch = "claim vs one autograd step in torch"

    def exact(claim: Any, ctx: Context) -> Outcome:
        return _compare_exact(claim, lambda i: _exact_l2(i, which), _instances_l2(ctx.seed, numeric=False), what_exact)

    def torch_step(claim: Any, ctx: Context) -> Outcome:
        import numpy as np
        import sympy
        import torch

        from verify.matrices import evaluate, to_float

        worst = 0.0
        for inst in _instances_l2(ctx.seed + 11, numeric=True):
            m = _torch_tensors(inst, ctx.device)
            eta, lam, lt = (float(inst.scalars[k]) for k in ("eta", "lambda", "lambda_tilde"))
            w0 = m["w0"][:, 0].clone().requires_grad_(True)
            loss = ((m["X"] @ w0 - m["t"][:, 0]) ** 2).mean() + (lt * (w0 * w0).sum() if which == "l2" else 0)
            (g,) = torch.autograd.grad(loss, w0)
            truth = (w0 - eta * g) if which == "l2" else ((1 - lam) * w0 - eta * g)
            try:
                got = np.asarray(to_float(evaluate(claim, inst)), dtype=float).reshape(-1)
            except (ValueError, TypeError, sympy.ShapeError) as exc:
                return Outcome(False, what_torch, f"cannot evaluate the claim: {exc}")
            t_np = truth.detach().cpu().numpy()
            err = float(np.max(np.abs(got - t_np))) if got.size == t_np.size else float("inf")
            worst = max(worst, err)
            if err > 1e-10:
                return Outcome(
                    False,
                    what_torch,
                    f"at {inst.describe()}: torch {np.round(t_np, 9).tolist()}, claim {np.round(got, 9).tolist()}",
                    err,
                    1e-10,
                )
        return Outcome(True, what_torch, "agree at 10 random float64 instances", max_error=worst, tolerance=1e-10)

    return Part(
        key,
        Kind.EXPR,
        _derive_l2(which),
        (
            checks.symbolic("sympy gradient step", exact),
            checks.torch_check("autograd step", torch_step, uses_device=True),
        ),
        symbols=_l2_symbols(),
        names=_sym,
        domain=(("eta", "(0, oo)"), ("lambda", "[0, 1)")),
    )


def _derive_lambda_tilde() -> Derivation:
    import sympy

    s = _sym()
    l2, wd = _l2_steps()
    gap = sympy.expand(l2 - wd)  # the data terms cancel: a multiple of w₀ is left
    factor, rest = gap.as_coeff_mmul()
    if rest.doit() != s["w0"]:
        raise ValueError(f"the two updates differ by {gap}, not a multiple of w0")
    lt = sympy.solve(factor, s["lambda_tilde"])[0]
    return Derivation(
        lt,
        (
            Step(
                "The two updates of 2.3.1 differ only in the factor on w₀ (their difference, expanded):",
                r"w_1^{L2} - w_1^{wd} = " + sympy.latex(gap),
            ),
            Step("Equal for every w₀ exactly when", r"\tilde\lambda = " + sympy.latex(lt)),
            Step(
                "torch.optim.SGD(weight_decay=wd) adds wd·w to the gradient: one step is (1 − η·wd)w − η∇L, so wd = 2λ̃ and the weight-decay λ = η·wd."
            ),
        ),
    )


def _lt_value(claim: Any, lam: Any, eta: Any) -> Any:

    e = as_sympy(claim)
    names = {v.name: v for v in e.free_symbols}
    return e.xreplace({names[k]: v for k, v in (("lambda", lam), ("eta", eta)) if k in names})


def _check_lambda_tilde_symbolic(claim: Any, ctx: Context) -> Outcome:
    """The L2 update with λ̃ = claim equals the weight-decay update with λ, as matrix expressions."""
    import sympy

    from verify.symbolic import equal

    s = _sym()
    factor_l2 = 1 - 2 * s["eta"] * _lt_value(claim, s["lambda"], s["eta"])
    cmp = equal(factor_l2, 1 - s["lambda"])
    return Outcome(
        cmp.equal,
        "the two updates' factors on w₀ with λ̃ = claim",
        f"1 − 2η·λ̃ = {sympy.simplify(factor_l2)} vs 1 − λ: {cmp.detail}",
    )


def _check_lambda_tilde_torch(claim: Any, ctx: Context) -> Outcome:
    """torch.optim.SGD with weight_decay = 2λ̃(λ, η) on the plain loss, and plain SGD on the L2 loss with λ̃, both follow
    the weight-decay update with λ, for 1 and for 25 steps."""
    import torch

    g = torch.Generator().manual_seed(ctx.seed)
    X = torch.randn(5, 3, generator=g, dtype=torch.float64)
    t = torch.randn(5, generator=g, dtype=torch.float64)
    worst = 0.0
    for lam, eta in ((0.01, 0.1), (0.05, 0.02), (0.2, 0.3)):
        lt = float(_lt_value(claim, lam, eta))
        for steps in (1, 25):
            ref = torch.randn(3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
            w_sgd = ref.clone().requires_grad_(True)
            w_l2 = ref.clone().requires_grad_(True)
            opt = torch.optim.SGD([w_sgd], lr=eta, weight_decay=2 * lt)
            opt_l2 = torch.optim.SGD([w_l2], lr=eta)
            w_wd = ref.clone()
            for _ in range(steps):
                opt.zero_grad()
                ((X @ w_sgd - t) ** 2).mean().backward()
                opt.step()
                opt_l2.zero_grad()
                (((X @ w_l2 - t) ** 2).mean() + lt * (w_l2 * w_l2).sum()).backward()
                opt_l2.step()
                wv = w_wd.clone().requires_grad_(True)
                (gw,) = torch.autograd.grad(((X @ wv - t) ** 2).mean(), wv)
                w_wd = (1 - lam) * w_wd - eta * gw
            err = max(float((w_sgd.detach() - w_wd).abs().max()), float((w_l2.detach() - w_wd).abs().max()))
            worst = max(worst, err)
    return Outcome(
        worst <= 1e-12,
        "SGD(weight_decay=2λ̃) and SGD on the L2 loss vs the weight-decay update",
        f"λ̃ = claim(λ, η) at 3 (λ, η), after 1 and 25 steps: largest difference {worst:.1e}",
        max_error=worst,
        tolerance=1e-12,
    )


def _check_adaptive_decay(claim: Any, ctx: Context) -> Outcome:
    """With Adam and RMSprop, L2 in the loss and decoupled decay (AdamW, or (1 − ηλ) before an RMSprop step) give
    different trajectories; with SGD they coincide."""
    import torch

    g = torch.Generator().manual_seed(ctx.seed)
    X = torch.randn(8, 4, generator=g, dtype=torch.float64)
    t = torch.randn(8, generator=g, dtype=torch.float64)
    w_init = torch.randn(4, generator=g, dtype=torch.float64)
    eta, lam = 0.05, 0.1

    def run(opt_fn: Any, l2: bool, decoupled: bool) -> Any:
        w = w_init.clone().requires_grad_(True)
        opt = opt_fn([w])
        for _ in range(50):
            opt.zero_grad()
            loss = ((X @ w - t) ** 2).mean() + ((lam / 2) * (w * w).sum() if l2 else 0)
            loss.backward()
            if decoupled:
                with torch.no_grad():
                    w.mul_(1 - eta * lam)
            opt.step()
        return w.detach()

    gaps = {
        "Adam": float(
            (
                run(lambda p: torch.optim.Adam(p, lr=eta), True, False)
                - run(lambda p: torch.optim.AdamW(p, lr=eta, weight_decay=lam), False, False)
            ).norm()
        ),
        "RMSprop": float(
            (
                run(lambda p: torch.optim.RMSprop(p, lr=eta), True, False)
                - run(lambda p: torch.optim.RMSprop(p, lr=eta), False, True)
            ).norm()
        ),
        "SGD": float(
            (
                run(lambda p: torch.optim.SGD(p, lr=eta), True, False)
                - run(lambda p: torch.optim.SGD(p, lr=eta), False, True)
            ).norm()
        ),
    }
    ok = gaps["Adam"] > 1e-3 and gaps["RMSprop"] > 1e-3 and gaps["SGD"] < 1e-12
    return Outcome(
        ok,
        "L2 in the loss vs decoupled weight decay after 50 steps (λ = 0.1, η = 0.05)",
        f"‖w_L2 − w_decay‖: Adam vs AdamW {gaps['Adam']:.4f}, RMSprop {gaps['RMSprop']:.4f}, SGD {gaps['SGD']:.1e} "
        "(adaptive methods divide the L2 gradient by √v, decoupled decay is not)",
    )


def _check_adaptive_decay_symbolic(claim: Any, ctx: Context) -> Outcome:
    """One RMSprop step from v = 0 in one coordinate: the L2 term is normalized away, the decoupled one is not."""
    import sympy

    w, g, lam, eta, beta = sympy.symbols("w g lambda eta beta", positive=True)
    grad = g + lam * w
    l2_step = w - eta * grad / sympy.sqrt((1 - beta) * grad**2)
    dec_step = (1 - eta * lam) * w - eta * g / sympy.sqrt((1 - beta) * g**2)
    diff = sympy.simplify(l2_step - dec_step)
    return Outcome(
        diff != 0, "one RMSprop step: L2 gradient vs decoupled decay", f"difference of the two first steps = {diff} ≠ 0"
    )


# ---- the problems ----------------------------------------------------------------------------------------------------


def _text(text: str) -> Callable[[], Derivation]:
    return lambda: Derivation(text, (Step(text),))


def _rms_problem(q: Mapping[str, Any]) -> Problem:
    ex = RmsExample((q["x1"][0], q["x1"][1]), q["t"])
    return Problem(
        id="csc413-a2/1.2.1",
        title="RMSProp need not find the minimum-norm solution",
        statement="RMSProp (w ← w − η g/(√v + ε), v ← βv + (1 − β)g², v starting at 0) minimizes (1/n)‖Xw − t‖² with the "
        f"single example x₁ = {list(ex.x1)}, t = {ex.t}, from w₀ = 0. Give the gradient at w₀, the first iterate, and "
        f"decide whether RMSProp always reaches the minimum-norm solution {ex.min_norm_text()}.",
        source=f"{SEED}, question 1.2.1",
        topics=("optimization",),
        parts=(
            Part(
                "grad_w0",
                Kind.VECTOR,
                functools.partial(_derive_grad_w0, ex),
                (
                    checks.symbolic("exact central differences", functools.partial(_check_grad_symbolic, ex)),
                    checks.torch_check("autograd", functools.partial(_check_grad_torch, ex)),
                ),
            ),
            Part(
                "w1",
                Kind.VECTOR,
                functools.partial(_derive_w1, ex),
                (
                    checks.symbolic("one exact RMSProp step", functools.partial(_check_w1_symbolic, ex)),
                    checks.torch_check("torch.optim.RMSprop one step", functools.partial(_check_w1_torch, ex)),
                ),
                symbols=("eta", "beta", "epsilon"),
                domain=(("eta", "(0, oo)"), ("beta", "[0, 1)"), ("epsilon", "(0, oo)")),
                note="torch.optim.RMSprop(lr=η, alpha=β, eps=ε) applies exactly this rule: ε is added outside the square root.",
            ),
            Part(
                "always_min_norm",
                Kind.BOOL,
                lambda: Derivation(
                    False,
                    stated=True,
                    steps=(
                        Step(
                            f"w₁ is not a multiple of x₁ = {list(ex.x1)} (1.2.1 w1), so RMSProp leaves the row space at its "
                            "first step."
                        ),
                        Step(
                            f"Runs to convergence solve {ex.line_text()} near {ex.landing_text()}, away from "
                            f"{ex.min_norm_text()}: a counterexample."
                        ),
                    ),
                ),
                (
                    checks.symbolic("row-space argument", functools.partial(_check_min_norm_symbolic, ex)),
                    checks.torch_check("RMSprop runs to convergence", functools.partial(_check_min_norm_torch, ex)),
                ),
            ),
        ),
    )


PROBLEMS = [
    Problem(
        id="csc413-a2/1.1.1",
        title="Mini-batch SGD from zero finds the minimum-norm solution",
        statement="For an over-parameterized linear model (d > n, X of full row rank), mini-batch SGD on (1/n)‖Xw − t‖² "
        "starts at w₀ = 0 and converges to some ŵ with Xŵ = t. Show that ŵ is the minimum-norm solution w* found by "
        "gradient descent.",
        source=f"{SEED}, question 1.1.1",
        topics=("optimization",),
        parts=(
            Part(
                "w_hat",
                Kind.EXPR,
                _derive_w_hat,
                (
                    checks.symbolic("row space and Xw = t on symbolic 2×3 data", _check_w_hat_symbolic),
                    checks.torch_check("torch.optim.SGD with random mini-batches", _check_w_hat_torch),
                ),
                symbols=("X", "t", "n", "d"),
                names=_pseudo_inverse,
            ),
        ),
    ),
    parametrized("csc413-a2/1.2.1", _rms_space, _rms_problem, RMS_1),
    Problem(
        id="csc413-a2/1.2.2",
        title="Adagrad and Adam on the same example",
        statement="Does the result of 1.2.1 (an adaptive method need not reach the minimum-norm solution) hold for other "
        "adaptive methods, Adagrad and Adam? Why might rates set per dimension be desirable?",
        source=f"{SEED}, question 1.2.2",
        topics=("optimization",),
        parts=(
            Part(
                "like_rmsprop",
                Kind.BOOL,
                lambda: Derivation(
                    True,
                    stated=True,
                    steps=(
                        Step(
                            "Adagrad and Adam divide each coordinate of the gradient by its own running scale, so their "
                            "first step from 0 is not a multiple of x₁ = [2, 1]: it leaves the row space, and the "
                            "solution they reach is not the minimum-norm one."
                        ),
                    ),
                ),
                (
                    checks.symbolic(
                        "first step leaves the row space",
                        checks.decision(functools.partial(_check_other_adaptive_first_step, EX_1)),
                    ),
                    checks.torch_check(
                        "Adagrad and Adam runs", checks.decision(functools.partial(_check_other_adaptive, EX_1))
                    ),
                ),
                note="Does the result hold for them (both miss the minimum-norm solution)? A yes/no answer.",
            ),
            Part(
                "text",
                Kind.TEXT,
                _text(
                    "Yes: both scale each coordinate separately, so their first step from 0 already leaves the row space, "
                    "and they converge to a solution of Xw = t that is not the minimum-norm one. Per-coordinate rates "
                    "help where the loss is badly scaled across directions."
                ),
                (),
            ),
        ),
    ),
    Problem(
        id="csc413-a2/2.1.2",
        title="Memory of the hyper-gradient through t unrolled steps",
        statement="Gradient descent on the L2-regularized loss runs for t steps with learning rate η. How does the memory "
        "of the forward pass grow with t, and that of back-propagating to get ∇η L_t?",
        source=f"{SEED}, question 2.1.2",
        topics=("optimization", "hyper-gradients"),
        parts=(_memory_part("forward_memory", graph=False), _memory_part("backward_memory", graph=True)),
    ),
    Problem(
        id="csc413-a2/2.2.1",
        title="One gradient step and the loss after it",
        statement="For L = (1/n)‖Xw − t‖², write w₁ after one GD step from w₀ with rate η, and the loss L₁ as a function "
        "of η (with a = X w₀ − t).",
        source=f"{SEED}, question 2.2.1",
        topics=("optimization", "hyper-gradients"),
        parts=(
            _expr_part(
                "w1",
                _derive_w1_l1("w1"),
                lambda i: i.matrices["w0"] - _sym()["eta"] * _explicit_grad(i, i.matrices["w0"]),
                _torch_w1,
                "claim vs sympy's gradient step on explicit instances (η symbolic)",
                "claim vs an autograd GD step",
            ),
            _expr_part(
                "L1",
                _derive_w1_l1("L1"),
                _explicit_l1,
                lambda i, m, e: _torch_l1(i, m, e),
                "claim vs sympy's loss after the step (η symbolic)",
                "claim vs the loss after an autograd GD step",
            ),
        ),
    ),
    Problem(
        id="csc413-a2/2.2.2",
        title="Is the one-step loss convex in η?",
        statement="Is L₁(η) convex? Give d²L₁/dη².",
        source=f"{SEED}, question 2.2.2",
        topics=("optimization", "hyper-gradients"),
        parts=(
            Part(
                "convex",
                Kind.BOOL,
                _derive_convex,
                (
                    checks.symbolic("sympy second derivative", _check_convex_symbolic),
                    checks.torch_check("autograd second derivative", _check_convex_torch, uses_device=True),
                ),
            ),
            _expr_part(
                "d2L1",
                _derive_d2,
                _exact_d2,
                lambda i, m, e: _torch_l1(i, m, e, order=2),
                "claim vs sympy's d²L₁/dη² on explicit instances",
                "claim vs autograd's second derivative in η",
            ),
        ),
    ),
    Problem(
        id="csc413-a2/2.2.3",
        title="The optimal one-step learning rate",
        statement="Differentiate L₁ with respect to η and find the learning rate η* that minimizes the loss after one step.",
        source=f"{SEED}, question 2.2.3",
        topics=("optimization", "hyper-gradients"),
        parts=(
            Part(
                "eta_star",
                Kind.EXPR,
                _derive_eta_star,
                (
                    checks.symbolic(
                        "sympy solve of dL₁/dη = 0",
                        lambda c, ctx: _compare_exact(
                            c,
                            _exact_eta_star,
                            _instances(ctx.seed, symbolic_eta=False),
                            "claim vs sympy's root of dL₁/dη on explicit instances",
                        ),
                    ),
                    checks.torch_check("hyper-gradient and grid search", _check_eta_star_torch, uses_device=True),
                ),
                symbols=MATRIX_SYMBOLS,
                names=_sym,
            ),
        ),
    ),
    Problem(
        id="csc413-a2/2.3.1",
        title="One step with L2 regularization and with weight decay",
        statement="Write w₁ after one GD step from w₀ (a) on the L2-regularized loss (1/n)‖Xw − t‖² + λ̃‖w‖², and (b) on "
        "the plain loss with weight decay w ← (1 − λ)w − η∇L (with a = X w₀ − t, as in 2.2.1).",
        source=f"{SEED}, question 2.3.1",
        topics=("optimization", "regularization"),
        parts=(_l2_part("w1_l2", "l2"), _l2_part("w1_wd", "wd")),
    ),
    Problem(
        id="csc413-a2/2.3.2",
        title="The L2 coefficient equivalent to weight decay",
        statement="Which λ̃ makes the two updates of 2.3.1 identical, in terms of λ and η?",
        source=f"{SEED}, question 2.3.2",
        topics=("optimization", "regularization"),
        parts=(
            Part(
                "lambda_tilde",
                Kind.EXPR,
                _derive_lambda_tilde,
                (
                    checks.symbolic("equal updates", _check_lambda_tilde_symbolic),
                    checks.torch_check("torch.optim.SGD weight_decay", _check_lambda_tilde_torch),
                ),
                symbols=("lambda", "eta"),
                domain=(("eta", "(0, oo)"), ("lambda", "[0, 1)")),
                note="torch.optim.SGD(weight_decay=wd) corresponds to λ̃ = wd/2 and to weight decay λ = η·wd.",
            ),
        ),
    ),
    Problem(
        id="csc413-a2/2.3.3",
        title="L2 regularization versus weight decay with adaptive methods",
        statement="How do L2 regularization and weight decay differ when the optimizer adapts the rate per weight?",
        source=f"{SEED}, question 2.3.3",
        topics=("optimization", "regularization"),
        parts=(
            Part(
                "equivalent",
                Kind.BOOL,
                lambda: Derivation(
                    False,
                    stated=True,
                    steps=(
                        Step(
                            "An adaptive method divides the L2 gradient λ̃w by √v like the rest of the gradient; "
                            "decoupled decay shrinks every weight by the same factor. They coincide for SGD only."
                        ),
                    ),
                ),
                (
                    checks.symbolic(
                        "one RMSprop step, exactly",
                        checks.decision(_check_adaptive_decay_symbolic, yes_when_found=False),
                    ),
                    checks.torch_check(
                        "Adam/AdamW, RMSprop, SGD runs", checks.decision(_check_adaptive_decay, yes_when_found=False)
                    ),
                ),
                note="Are L2 regularization and weight decay still the same with an adaptive method? A yes/no answer.",
            ),
            Part(
                "text",
                Kind.TEXT,
                _text(
                    "With an adaptive method the L2 gradient λ̃w is divided by √v like the rest of the gradient, so "
                    "weights with large gradients are decayed less; decoupled weight decay shrinks every weight by the "
                    "same factor. The two no longer coincide (AdamW differs from Adam with L2)."
                ),
                (),
            ),
        ),
    ),
]
