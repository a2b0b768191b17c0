"""Which convention or slip produces a given (wrong) count: the helper answer checking uses to explain a verdict.

Given a model, an input shape and a number, every named convention (MACs, FLOPs, exact operations; with or without
bias, BatchNorm, element-wise work) and every common slip (doubled, transposed convolutions counted by output
position, groups divided twice, one sample of the batch) is computed; the ones that equal the number are returned.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from verify.count.analyze import Analysis, analyze
from verify.count.conventions import Convention, Work


@dataclass(frozen=True)
class Match:
    name: str
    value: int


def _slips(model: Any, result: Analysis) -> dict[str, Work]:
    """Alternative per-model work totals for common slips (MAC-level)."""
    import torch.nn as nn

    total = result.total_work()
    by_output = by_groups = 0
    for layer in result.leaves:
        module = model.get_submodule(layer.name)
        if isinstance(module, nn.ConvTranspose2d):
            kh, kw = module.kernel_size
            outs = layer.outputs
            wrong = outs * module.in_channels // module.groups * kh * kw
            by_output += wrong - layer.work.macs
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.groups > 1:
            by_groups += layer.work.macs // module.groups - layer.work.macs
    n = result.input_shape[0] if result.input_shape else 1
    out = {}
    if by_output:
        out["transposed convolution counted by output position (multiplying inserted zeros)"] = Work(
            total.macs + by_output, total.dots
        )
    if by_groups:
        out["grouped convolution divided by the groups twice"] = Work(total.macs + by_groups, total.dots)
    if n > 1:
        out[f"one sample of the batch of {n}"] = Work(total.macs // n, total.dots // n, total.bias_outputs // n)
    return out


def diagnose(model: Any, input_shape: tuple[int, ...], value: int) -> list[Match]:
    """Every convention and slip whose count equals ``value`` (an empty list when none does), plain matches first and
    each reading named once; a convention choice that cannot change this model's count is not named."""
    base = analyze(model, input_shape)
    works = {"": base.total_work(), **{f"{k}, ": w for k, w in _slips(model, base).items()}}
    plain: list[Match] = []
    doubled: list[Match] = []
    for (slip, work), unit, bias, bn, elem in itertools.product(
        works.items(), ("macs", "flops", "exact"), (False, True), (False, True), (False, True)
    ):
        if (bias and not work.bias_outputs) or (bn and not work.batchnorm) or (elem and not work.elementwise):
            continue  # the same count as without that choice
        conv = Convention(unit, bias=bias, batchnorm=bn, elementwise=elem)
        total = int(conv.total(work))
        if total == value:
            plain.append(Match(slip + conv.describe(work), total))
        if total * 2 == value and unit != "flops":
            doubled.append(Match(slip + conv.describe(work) + ", doubled", value))
    return plain + (doubled if not plain else [])
