"""Measurements with real torch layers: output sizes on meta tensors, shapes through a model, exact small runs.

torch is imported inside each function, never at module level.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any


def meta(*shape: int) -> Any:
    import torch

    return torch.empty(*shape, device="meta")


def conv_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """Height of ``nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)`` applied to an n×(n+1) input (meta)."""
    import torch.nn as nn

    layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, bias=False, device="meta")
    return int(layer(meta(1, 1, n, n + 1)).shape[-2])


def conv_transpose_size(n: int, k: int, s: int = 1, p: int = 0, op: int = 0, d: int = 1) -> int:
    """Height of ``nn.ConvTranspose2d`` on a real (CPU) 1×1×n×n input, so that torch validates output_padding."""
    import torch
    import torch.nn as nn

    layer = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op, dilation=d, bias=False)
    with torch.no_grad():
        return int(layer(torch.zeros(1, 1, n, n)).shape[-2])


def restoring_output_padding(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int | None:
    """The output_padding (found by trying each one torch accepts) that brings conv's output back to size n."""
    m = conv_size(n, k, s, p, d)
    for op in range(max(s, d)):
        try:
            if conv_transpose_size(m, k, s, p, op, d) == n:
                return op
        except RuntimeError:
            continue
    return None


def describe_conv(cfg: dict[str, int], transposed: bool = False) -> str:
    name = "nn.ConvTranspose2d" if transposed else "nn.Conv2d"
    args = [f"kernel_size={cfg['K']}"]
    for key, arg in (("S", "stride"), ("P", "padding"), ("D", "dilation")):
        if cfg.get(key, 0 if key == "P" else 1) != (0 if key == "P" else 1):
            args.append(f"{arg}={cfg[key]}")
    return f"{name}(1, 1, {', '.join(args)}) on size {cfg['H']}"


def conv_config(rng: random.Random, dilation: bool = False, max_n: int = 64) -> dict[str, int] | None:
    """A random convolution configuration that torch accepts (the kernel span fits the padded input)."""
    cfg = {
        "H": rng.randint(1, max_n),
        "K": rng.randint(1, 7),
        "S": rng.randint(1, 5),
        "P": rng.randint(0, 4),
        "D": rng.randint(1, 4) if dilation else 1,
    }
    if cfg["D"] * (cfg["K"] - 1) + 1 > cfg["H"] + 2 * cfg["P"]:
        return None
    return cfg


def trace_shapes(model: Any, input_shape: Sequence[int], names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Run ``model`` (an nn.Sequential built on meta) and record the output shape of each named child."""
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, child in model.named_children():
        if name in names:
            hooks.append(
                child.register_forward_hook(lambda mod, inp, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
            )
    try:
        model(meta(*input_shape))
    finally:
        for h in hooks:
            h.remove()
    return shapes
