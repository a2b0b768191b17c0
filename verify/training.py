"""Tiny seeded training runs that return a trace (losses, the trained module) for checks to assert on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Trace:
    losses: tuple[float, ...]
    module: Any
    seed: int
    restarts: int


def two_layer(width: int, activation: Any, n_in: int = 2) -> Any:
    """Linear → activation → Linear, float64. ``activation`` is 'relu', 'square' (σ(x) = x²) or a module factory."""
    import torch.nn as nn

    class Square(nn.Module):
        def forward(self, x: Any) -> Any:
            return x * x

    act = activation() if callable(activation) else {"relu": nn.ReLU, "square": Square}[activation]()
    return nn.Sequential(nn.Linear(n_in, width), act, nn.Linear(width, 1)).double()


def fit_exactly(
    make: Any, x: Any, y: Any, seed: int, tol: float = 1e-6, attempts: int = 20, max_iter: int = 400
) -> Trace | None:
    """Full-batch L-BFGS on the mean squared error from seeded random starts until max |f(x) − y| ≤ tol.

    Returns the first successful trace (its seed and how many starts failed before it), or None.
    """
    import torch

    for restart in range(attempts):
        torch.manual_seed(seed + restart)
        module = make()
        opt = torch.optim.LBFGS(
            module.parameters(),
            lr=1,
            max_iter=max_iter,
            tolerance_grad=1e-14,
            tolerance_change=1e-16,
            history_size=20,
            line_search_fn="strong_wolfe",
        )
        losses: list[float] = []

        def closure(module: Any = module, opt: Any = opt, losses: list[float] = losses) -> Any:
            opt.zero_grad()
            loss = ((module(x).squeeze(-1) - y) ** 2).mean()
            loss.backward()
            losses.append(float(loss.detach()))
            return loss

        opt.step(closure)
        with torch.no_grad():
            err = float((module(x).squeeze(-1) - y).abs().max())
        if err <= tol:
            return Trace(tuple(losses), module, seed + restart, restart)
    return None
