"""Receptive fields, two independent ways.

1. :func:`propagate`: exact index arithmetic. Each layer of a chain maps an output index to the set of input indices it
   reads (per axis, from the layer's definition: convolution and pooling windows, the inputs a transposed convolution
   scatters into a position, nearest upsampling's source); composing the maps gives every output position's support.
   The input is taken as unbounded (the theoretical receptive field, padding never clips it).
2. :func:`measure`: the gradient support of real output units of a real torch model, on an input large enough that the
   sampled units do not reach the border. Weights are made positive and biases zero so that nothing cancels; max
   pooling becomes average pooling with the same window (max pooling's gradient reaches only the argmax).

Both report, per layer, the min and max receptive-field size over output positions and the stride (the input distance
between neighbouring output units). A fully connected layer sees the whole input.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class AxisLayer:
    """One layer along one axis: kind is conv (also pooling), tconv, upsample or full (fully connected)."""

    kind: str
    k: int = 1
    s: int = 1
    p: int = 0
    d: int = 1
    scale: int = 1

    def sources(self, o: int) -> set[int]:
        if self.kind == "conv":
            return {o * self.s - self.p + u * self.d for u in range(self.k)}
        if self.kind == "tconv":
            out = set()
            for u in range(self.k):
                num = o + self.p - u * self.d
                if num % self.s == 0:
                    out.add(num // self.s)
            return out
        if self.kind == "upsample":
            return {o // self.scale}
        raise ValueError(self.kind)


@dataclass(frozen=True)
class RF:
    min: int | None  # None: the whole input (a fully connected layer)
    max: int | None
    stride: Fraction

    @property
    def size(self) -> int | None:
        return self.max

    def text(self) -> str:
        if self.max is None:
            return "whole input"
        rng = f"{self.min}" if self.min == self.max else f"{self.min}–{self.max}"
        return f"{rng} (stride {self.stride})"


def propagate(layers: Sequence[AxisLayer], positions: Sequence[int] | None = None) -> list[RF]:
    """Receptive field after each layer of a chain along one axis, by composing index maps over many positions."""
    out: list[RF] = []
    full = False
    for i, layer in enumerate(layers):
        if layer.kind == "full" or full:
            full = True
            out.append(RF(None, None, Fraction(0)))
            continue
        chain = layers[: i + 1]
        period = 1  # output positions repeat their pattern every Π(transposed strides, upsampling scales)
        for x in chain:
            period *= x.scale if x.kind == "upsample" else x.s if x.kind == "tconv" else 1
        pos = list(positions or range(50, 50 + 2 * period + 1))
        sizes, starts = [], []
        for o in pos:
            support = {o}
            for x in reversed(chain):
                support = set().union(*(x.sources(v) for v in support))
            sizes.append(max(support) - min(support) + 1)
            starts.append(min(support))
        stride = Fraction(starts[-1] - starts[0], len(pos) - 1) if len(pos) > 1 else Fraction(1)
        out.append(RF(min(sizes), max(sizes), stride))
    return out


def closed_form(layers: Sequence[AxisLayer]) -> list[int | None]:
    """The classical recursion r ← r + (k − 1)·d·j, j ← j·s for chains of convolutions and pooling (no transposed
    layers or upsampling, where the receptive field differs between positions)."""
    r, j = 1, 1
    out: list[int | None] = []
    for layer in layers:
        if layer.kind == "full":
            out.append(None)
            r = -1
            continue
        if layer.kind != "conv" or r < 0:
            raise ValueError("the closed form covers convolution and pooling chains only")
        r += (layer.k - 1) * layer.d * j
        j *= layer.s
        out.append(r)
    return out


# ---- measured by the gradient of real units -----------------------------------------------------------------------


def positive_copy(model: Any) -> Any:
    """A float64 CPU copy whose gradients cannot cancel: positive weights, zero biases, max → average pooling."""
    import torch
    import torch.nn as nn

    m = copy.deepcopy(model).to("cpu").double().eval()
    for child in list(m.modules()):
        for cname, c in list(child.named_children()):
            if isinstance(c, nn.MaxPool2d):
                setattr(child, cname, nn.AvgPool2d(c.kernel_size, c.stride, c.padding, ceil_mode=c.ceil_mode))
            elif isinstance(c, nn.AdaptiveMaxPool2d):
                setattr(child, cname, nn.AdaptiveAvgPool2d(c.output_size))
    with torch.no_grad():
        for pname, p in m.named_parameters():
            if pname.endswith("bias"):
                p.zero_()
            else:
                p.copy_(p.abs() + 0.1)
        for b in m.buffers():
            if b.dtype.is_floating_point:
                b.copy_(b.abs() if b.numel() > 1 else b)
    return m


def measure(
    model: Any, input_shape: Sequence[int], layer: str, radius: int = 4, prepared: Any = None
) -> tuple[RF, bool]:
    """Gradient support of units of ``layer``'s output around its centre (±radius along each axis), along the height.

    Returns the RF over the units whose support stays off the border, and whether any unit had to be dropped because
    its support reached the border. :func:`measure_axes` gives both axes.
    """
    rf_h, _, clipped = measure_axes(model, input_shape, layer, radius, prepared)
    return rf_h, clipped


def measure_axes(
    model: Any, input_shape: Sequence[int], layer: str, radius: int = 4, prepared: Any = None
) -> tuple[RF, RF, bool]:
    """Receptive field along the height and along the width, measured by gradient support (see :func:`measure`)."""
    import torch

    whole = RF(None, None, Fraction(0))
    m = prepared if prepared is not None else positive_copy(model)
    captured: list[Any] = []
    target = m.get_submodule(layer)
    handle = target.register_forward_hook(lambda mod, i, o: captured.append(o))
    try:
        with torch.no_grad():
            m(torch.ones(1, *input_shape[1:], dtype=torch.float64))
        out_shape = captured[0].shape
        captured.clear()
        if len(out_shape) < 4:  # not spatial: does one output unit see every input pixel?
            x = torch.ones(1, *input_shape[1:], dtype=torch.float64, requires_grad=True)
            m(x)
            (g,) = torch.autograd.grad(captured[0].reshape(-1)[0], x)
            seen = (g.abs().sum(dim=1) > 0)[0]
            if bool(seen.all()):
                return whole, whole, False
            nz = seen.nonzero()
            h = int(nz[:, 0].max() - nz[:, 0].min()) + 1
            w = int(nz[:, 1].max() - nz[:, 1].min()) + 1
            return RF(h, h, Fraction(0)), RF(w, w, Fraction(0)), False
        hc, wc = out_shape[-2] // 2, out_shape[-1] // 2
        units = [(hc + dr, wc) for dr in range(-radius, radius + 1) if 0 <= hc + dr < out_shape[-2]]
        units += [(hc, wc + dc) for dc in range(-radius, radius + 1) if dc and 0 <= wc + dc < out_shape[-1]]
        x = torch.ones(len(units), *input_shape[1:], dtype=torch.float64, requires_grad=True)
        m(x)
        out = captured[0]
        total = sum(out[b, 0, i, j] for b, (i, j) in enumerate(units))
        (g,) = torch.autograd.grad(total, x)
    finally:
        handle.remove()
    support = g.abs().sum(dim=1) > 0  # (units, H, W)
    H, W = input_shape[-2], input_shape[-1]
    rows: dict[int, tuple[int, int]] = {}
    cols: dict[int, tuple[int, int]] = {}
    rows_all: dict[int, tuple[int, int]] = {}  # including units whose support reached the border (lower bounds)
    cols_all: dict[int, tuple[int, int]] = {}
    clipped = False
    for b, (i, j) in enumerate(units):
        nz = support[b].nonzero()
        if nz.numel() == 0:
            continue
        r0, r1 = int(nz[:, 0].min()), int(nz[:, 0].max())
        c0, c1 = int(nz[:, 1].min()), int(nz[:, 1].max())
        border = r0 == 0 or c0 == 0 or r1 == H - 1 or c1 == W - 1
        clipped = clipped or border
        for keep, full in ((rows, rows_all), (cols, cols_all)):
            if (keep is rows and j == wc) or (keep is cols and i == hc):
                start, size = (r0, r1 - r0 + 1) if keep is rows else (c0, c1 - c0 + 1)
                full[i if keep is rows else j] = (start, size)
                if not border:
                    keep[i if keep is rows else j] = (start, size)
    rows, cols = rows or rows_all, cols or cols_all

    def summarize(axis: dict[int, tuple[int, int]]) -> RF:
        if not axis:
            return whole
        sizes = [sz for _, sz in axis.values()]
        keys = sorted(axis)
        stride = Fraction(axis[keys[-1]][0] - axis[keys[0]][0], keys[-1] - keys[0]) if len(keys) > 1 else Fraction(1)
        return RF(min(sizes), max(sizes), stride)

    return summarize(rows), summarize(cols), clipped or not rows or not cols
