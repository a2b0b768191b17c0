"""cpen455-hw2, question 1: XOR is not linearly separable; two-layer constructions with σ(x) = x² and with ReLU."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import replace
from fractions import Fraction
from typing import Any

from verify import checks
from verify.model import Context, Derivation, Figure, Kind, Outcome, Part, Problem, Step
from verify.variants import parametrized

SEED = "004_4c45ad93401b8073.txt"
INPUTS = ((0, 0), (0, 1), (1, 0), (1, 1))
XOR = (0, 1, 1, 0)
TOL = 1e-12


# ---- 1.1 ---------------------------------------------------------------------------------------------------------


def _separability() -> tuple[Any, Any, Any]:
    """Exact facts about a linear f(x) = w·x + b on the four inputs: the solution set of f = XOR (empty), a Farkas
    certificate that the threshold conditions contradict each other, and the least-squares fit."""
    import sympy

    w1, w2, b = sympy.symbols("w_1 w_2 b", real=True)
    f = [w1 * x1 + w2 * x2 + b for x1, x2 in INPUTS]
    exact_fit = sympy.linsolve([fi - yi for fi, yi in zip(f, XOR, strict=True)], [w1, w2, b])
    # Class 1 needs f > 0, class 0 needs f ≤ 0; write every condition as g ≥ 0 (g > 0 for the strict ones).
    g = [-f[0], f[1], f[2], -f[3]]
    lam = sympy.symbols("l0:4", nonnegative=True)
    combo = sympy.expand(sum(li * gi for li, gi in zip(lam, g, strict=True)))
    coeffs = [combo.coeff(v) for v in (w1, w2, b)]
    cert = sympy.linsolve([*coeffs, sum(lam) - 1], list(lam))
    a = sympy.Matrix([[x1, x2, 1] for x1, x2 in INPUTS])
    theta = (a.T * a).inv() * a.T * sympy.Matrix(XOR)
    sse = sum((a * theta - sympy.Matrix(XOR)).applyfunc(lambda v: v**2))
    return exact_fit, (g, cert), (theta, sse)


def _derive_separable() -> Derivation:
    import sympy

    exact_fit, (g, cert), (theta, sse) = _separability()
    certs = [c for c in cert if all(v.is_nonnegative for v in c)]
    if not certs:
        raise ValueError(f"no non-negative certificate among {cert}: the derivation cannot decide")
    lam = certs[0]
    total = sympy.expand(sum(li * gi for li, gi in zip(lam, g, strict=True)))
    # g₁, g₂ are the strict conditions: weighting one of them makes the sum 0 > 0, a contradiction.
    contradiction = total == 0 and sum(lam[1:3]) > 0
    return Derivation(
        not contradiction,
        steps=(
            Step(
                "A linear model gives f(x) = w₁x₁ + w₂x₂ + b; on the four inputs f = XOR would need",
                r"b = 0,\ w_2 + b = 1,\ w_1 + b = 1,\ w_1 + w_2 + b = 0",
            ),
            Step("which has no solution", sympy.latex(exact_fit)),
            Step(
                "Even as a classifier (f > 0 for output 1, f ≤ 0 for 0) the conditions g ≥ 0 contradict each other",
                r",\ ".join(sympy.latex(gi) + (r" > 0" if i in (1, 2) else r" \ge 0") for i, gi in enumerate(g)),
            ),
            Step(
                "Adding them with the non-negative weights λ = " + ", ".join(str(v) for v in lam) + " cancels every "
                "unknown and leaves 0 > 0, a contradiction (a Farkas certificate)",
                sympy.latex(sympy.expand(sum(li * gi for li, gi in zip(lam, g, strict=True)))) + r" > 0",
            ),
            Step(
                "The best least-squares fit (w₁, w₂, b) and its squared error are",
                f"{sympy.latex(theta.T)},\\ {sympy.latex(sse)} > 0",
            ),
        ),
    )


def _check_separable_symbolic(claim: Any, ctx: Context) -> Outcome:
    """An exact linear program (sympy's simplex), not the certificate: a separating f can be scaled so that f ≥ 1 on
    XOR's ones and f ≤ 0 on its zeros, so XOR is separable exactly when those four constraints are feasible."""
    import sympy
    from sympy.solvers.simplex import InfeasibleLPError, UnboundedLPError, lpmax

    w1, w2, b = sympy.symbols("w_1 w_2 b", real=True)
    constraints = [
        (w1 * x1 + w2 * x2 + b >= 1) if y else (w1 * x1 + w2 * x2 + b <= 0)
        for (x1, x2), y in zip(INPUTS, XOR, strict=True)
    ]
    try:
        _, point = lpmax(w1 + w2, constraints)
        feasible, found = True, f"a separator {point}"
    except InfeasibleLPError:
        feasible, found = False, "the constraint set is empty"
    except UnboundedLPError:
        feasible, found = True, "an unbounded feasible set"
    return checks.exact(
        bool(claim),
        feasible,
        f"sympy's simplex on f ≥ 1 at (0,1), (1,0) and f ≤ 0 at (0,0), (1,1): {found}",
        "the exact linear program",
    )


def _check_separable_torch(claim: Any, ctx: Context) -> Outcome:
    import torch

    x = torch.tensor(INPUTS, dtype=torch.float64)
    a = torch.cat([x, torch.ones(4, 1, dtype=torch.float64)], dim=1)
    y = torch.tensor(XOR, dtype=torch.float64)
    theta = torch.linalg.lstsq(a, y[:, None]).solution[:, 0]
    sse = float(((a @ theta - y) ** 2).sum())
    # A linear layer trained on a hinge loss: separable data would reach zero loss; XOR stays at ≥ 1 on average.
    layer = torch.nn.Linear(2, 1).double()
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    sign = 2 * y - 1
    for _ in range(200):
        opt.zero_grad()
        hinge = torch.clamp(1 - sign * layer(x).squeeze(-1), min=0).mean()
        hinge.backward()
        opt.step()
    wrong = int(((layer(x).squeeze(-1) > 0).double() != y).sum())
    separable = sse <= 1e-12
    out = checks.exact(
        bool(claim),
        separable,
        f"torch.linalg.lstsq (best fit θ = {[round(float(v), 12) + 0.0 for v in theta]}, squared error {sse:.12g} > 0; "
        f"a linear layer after 200 hinge-loss SGD steps still misclassifies {wrong} of 4, hinge {float(hinge.detach()):.3f})",
        "the best linear fit's error",
    )
    return Outcome(out.ok, out.compared, out.evidence, max_error=sse, tolerance=1e-12)


# ---- 1.2 and 1.3 -------------------------------------------------------------------------------------------------

# 1.3's activation is a family: a leaky ReLU σ(x) = max(x, αx) ("relu" is α = 0, the bank's question, otherwise
# "leaky_relu(α)"); its data are α, the output weights 1/(1 − α). 1.2 has no data: the construction (x₁ − x₂)² has no
# number an instance could change (every even power takes the same weights), so it has no variants.
SLOPES = (
    "1/5",
    "1/3",
    "1/2",
    "3/5",
    "2/3",
    "3/4",
)  # 1/(1 − α) is a binary fraction: the output weights are exact floats


def _activation(name: str) -> tuple[str, Fraction]:
    """'square', 'relu' or 'leaky_relu(α)' → ('power', 2) or ('leaky', α)."""
    if name in ("square", "relu"):
        return ("power", Fraction(2)) if name == "square" else ("leaky", Fraction(0))
    m = re.fullmatch(r"leaky_relu\((\d+(?:/\d+)?)\)", name)
    if not m:
        raise ValueError(f"unknown activation {name!r}")
    return "leaky", Fraction(m[1])


def _construction(activation: str) -> tuple[list[list[int]], list[int], str]:
    """Hidden weights W (rows = hidden units), hidden bias c, and why these features."""
    kind, a = _activation(activation)
    if kind == "power":
        return [[1, -1]], [0], "one unit: (x₁ − x₂)², which is 1 exactly when the inputs differ"
    unit, total = ("relu", "|x₁ − x₂|") if a == 0 else ("σ", f"{1 - a}·|x₁ − x₂|")
    return [[1, -1], [-1, 1]], [0, 0], f"two units: {unit}(x₁ − x₂) and {unit}(x₂ − x₁), whose sum is {total}"


def _alias(activation: str) -> str:
    """The name an answer file may give the question's activation by."""
    kind, a = _activation(activation)
    return f"x^{a}" if kind == "power" else ("relu" if a == 0 else "leaky_relu")


def _torch_activation(activation: str) -> Any:
    """What verify.training.two_layer takes: its own name for square and ReLU, a module factory otherwise."""
    if activation in ("square", "relu"):
        return activation
    import torch.nn as nn

    _, a = _activation(activation)
    return lambda: nn.LeakyReLU(float(a))


def _sigma(activation: str, v: Any) -> Any:
    import sympy

    kind, a = _activation(activation)
    return v ** int(a) if kind == "power" else sympy.Max(v, sympy.Rational(a.numerator, a.denominator) * v)


def _hidden(activation: str, w: Any, c: Any, x: tuple[int, int]) -> list[Any]:
    import sympy

    return [
        _sigma(activation, sum(sympy.Rational(wi) * xi for wi, xi in zip(row, x, strict=True)) + sympy.Rational(ci))
        for row, ci in zip(w, c, strict=True)
    ]


def _derive_network(activation: str) -> Derivation:
    import sympy

    w_hidden, c_hidden, why = _construction(activation)
    h = sympy.Matrix([_hidden(activation, w_hidden, c_hidden, x) for x in INPUTS])
    unknown_w = sympy.symbols(f"w1:{len(c_hidden) + 1}")
    b = sympy.Symbol("b")
    eqs = [sum(hi * wi for hi, wi in zip(h.row(r), unknown_w, strict=True)) + b - XOR[r] for r in range(4)]
    sol = sympy.solve(eqs, [*unknown_w, b], dict=True)[0]
    w_out = [sol.get(v, 0) for v in unknown_w]
    net = {
        "activation": activation,
        "W": w_hidden,
        "c": c_hidden,
        "w": [int(v) if v.is_Integer else v for v in w_out],
        "b": int(sol.get(b, 0)),
    }
    return Derivation(
        net,
        (
            Step(
                f"Hidden layer h = σ(Wx + c) with {why}",
                rf"W = {sympy.latex(sympy.Matrix(w_hidden))},\ c = {sympy.latex(sympy.Matrix(c_hidden))}",
            ),
            Step("On the inputs (0,0), (0,1), (1,0), (1,1) the hidden activations are the rows of", sympy.latex(h)),
            Step("The output layer solves h·w + b = XOR exactly (four linear equations)", sympy.latex(sol)),
            Step("So f(x) = w·σ(Wx + c) + b implements XOR on all four inputs."),
        ),
        stated=True,  # the hidden layer is a construction; the output layer is solved for it
    )


def _claim_parts(claim: Any, activation: str) -> tuple[list[list[float]], list[float], list[float], float]:
    if not isinstance(claim, dict) or not {"W", "c", "w", "b"} <= set(claim):
        raise ValueError("a network claim needs W, c, w and b")
    act = str(claim.get("activation", activation)).lower()
    if act not in (activation, _alias(activation)):
        raise ValueError(f"the question fixes σ to {activation}, the claim uses {act}")
    return claim["W"], claim["c"], claim["w"], claim["b"]


def _check_network_exact(activation: str) -> Any:
    def check(claim: Any, ctx: Context) -> Outcome:
        import sympy

        try:
            w, c, wo, bo = _claim_parts(claim, activation)
        except ValueError as exc:
            return Outcome(False, "exact evaluation in sympy", str(exc))
        outs = []
        for x in INPUTS:
            h = _hidden(activation, w, c, x)
            outs.append(
                sympy.nsimplify(
                    sum(sympy.Rational(str(a)) * hi for a, hi in zip(wo, h, strict=True)) + sympy.Rational(str(bo))
                )
            )
        return checks.exact(
            tuple(outs), XOR, "exact rational evaluation of w·σ(Wx + c) + b on (0,0), (0,1), (1,0), (1,1)", "XOR"
        )

    return check


def _torch_module(activation: str, claim: Any) -> Any:
    import torch

    from verify.training import two_layer

    w, c, wo, bo = _claim_parts(claim, activation)
    net = two_layer(len(c), _torch_activation(activation))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w, dtype=torch.float64))
        net[0].bias.copy_(torch.tensor(c, dtype=torch.float64))
        net[2].weight.copy_(torch.tensor([wo], dtype=torch.float64))
        net[2].bias.copy_(torch.tensor([bo], dtype=torch.float64))
    return net


def _check_network_torch(activation: str) -> Any:
    def check(claim: Any, ctx: Context) -> Outcome:
        import torch

        try:
            net = _torch_module(activation, claim).to(ctx.device)
        except (ValueError, RuntimeError) as exc:
            return Outcome(False, "the claim as a torch module", str(exc).splitlines()[0])
        x = torch.tensor(INPUTS, dtype=torch.float64, device=ctx.device)
        with torch.no_grad():
            out = net(x).squeeze(-1)
        desc = f"nn.Sequential(Linear(2, {len(claim['c'])}), {type(net[1]).__name__}, Linear({len(claim['c'])}, 1)) on the four inputs"
        return replace(checks.close(out, XOR, TOL, desc), compared="claim run as a torch module vs XOR")

    return check


def _check_network_training(activation: str) -> Any:
    def check(claim: Any, ctx: Context) -> Outcome:
        import torch

        from verify.training import fit_exactly, two_layer

        try:
            claimed = _torch_module(activation, claim)
        except (ValueError, RuntimeError) as exc:
            return Outcome(False, "a trained network vs the claim", str(exc).splitlines()[0])
        width = len(claim["c"])
        x = torch.tensor(INPUTS, dtype=torch.float64)
        y = torch.tensor(XOR, dtype=torch.float64)
        trace = fit_exactly(lambda: two_layer(width, _torch_activation(activation)), x, y, seed=ctx.seed)
        if trace is None:
            return Outcome(
                False, "a trained network vs the claim", f"no run of width {width} reached XOR in 20 seeded starts"
            )
        with torch.no_grad():
            trained, given = trace.module(x).squeeze(-1), claimed(x).squeeze(-1)
        err = float((trained - given).abs().max())
        digest = hashlib.sha256(repr([round(v, 10) for v in trace.losses]).encode()).hexdigest()[:12]
        losses = trace.losses
        fig = Figure(
            name=f"xor_{re.sub(r'[^a-z0-9]+', '_', activation).strip('_')}_loss",
            caption=f"L-BFGS training loss, width {width}, σ = {activation} (seed {trace.seed})",
            draw=lambda path: _plot_losses(path, losses, f"XOR, σ = {activation}, {width} hidden unit(s)"),
            data_key=digest,
        )
        return Outcome(
            err <= 1e-6,
            "a network of the claim's architecture trained from random weights vs the claim",
            f"L-BFGS from seed {trace.seed} ({trace.restarts} earlier start(s) stalled) reached XOR in {len(losses)} "
            f"evaluations (final loss {losses[-1]:.1e}); its outputs and the claim's differ by at most {err:.1e}",
            max_error=err,
            tolerance=1e-6,
            figures=(fig,),
        )

    return check


def _plot_losses(path: str, losses: tuple[float, ...], title: str) -> None:
    from verify.report.plots import line_plot

    line_plot(
        path,
        [("mean squared error", list(range(1, len(losses) + 1)), list(losses))],
        title,
        "evaluation",
        "loss",
        logy=True,
    )


def _network_part(activation: str) -> Part:
    return Part(
        "network",
        Kind.NETWORK,
        lambda: _derive_network(activation),
        (
            checks.symbolic("exact evaluation", _check_network_exact(activation)),
            checks.torch_check("torch module on all inputs", _check_network_torch(activation), uses_device=True),
            checks.torch_check("seeded training run", _check_network_training(activation)),
        ),
        note="f(x) = w·σ(Wx + c) + b with W of shape (hidden, 2); any construction that computes XOR exactly is right."
        + ("" if activation in ("square", "relu") else f' An answer names σ as activation = "{_alias(activation)}".'),
    )


def _leaky_problem(q: Mapping[str, Any]) -> Problem:
    alpha = q["alpha"]
    relu = alpha == "0"
    return Problem(
        id="cpen455-hw2/1.3",
        title="XOR with ReLU" if relu else "XOR with a leaky ReLU",
        statement=f"Build a Linear–activation–Linear network with σ(x) = max(x, {'0' if relu else f'{alpha}·x'}) that "
        "computes XOR exactly.",
        source=f"{SEED}, question 1.3",
        topics=("xor",),
        parts=(_network_part("relu" if relu else f"leaky_relu({alpha})"),),
    )


PROBLEMS = [
    Problem(
        id="cpen455-hw2/1.1",
        title="A single linear layer cannot compute XOR",
        statement="XOR maps two bits to 1 when they differ and to 0 otherwise. Can a single linear layer "
        "f(x) = wᵀx + b, with x ∈ {0,1}², w ∈ ℝ², b ∈ ℝ, compute it (is XOR linearly separable)?",
        source=f"{SEED}, question 1.1",
        topics=("xor",),
        parts=(
            Part(
                "separable",
                Kind.BOOL,
                _derive_separable,
                (
                    checks.symbolic("exact linear program", _check_separable_symbolic),
                    checks.torch_check("best linear fit", _check_separable_torch),
                ),
            ),
        ),
    ),
    Problem(
        id="cpen455-hw2/1.2",
        title="XOR with a square activation",
        statement="Build a Linear–activation–Linear network with σ(x) = x² that computes XOR exactly; any number of "
        "hidden units may be used.",
        source=f"{SEED}, question 1.2",
        topics=("xor",),
        parts=(_network_part("square"),),
    ),
    parametrized("cpen455-hw2/1.3", lambda d: {"alpha": d.choice(SLOPES)}, _leaky_problem, {"alpha": "0"}),
]
