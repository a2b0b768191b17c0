"""Receptive fields measured on real units: the second route beside index propagation (:mod:`verify.count.receptive`).

:func:`measure`: the gradient support of real output units of a real torch model, on an input large enough that the
   sampled units do not reach the border. Weights are made positive and biases zero so that nothing cancels; max
   pooling becomes average pooling with the same window (max pooling's gradient reaches only the argmax).

Both report, per layer, the min and max receptive-field size over output positions and the stride (the input distance
between neighbouring output units). A fully connected layer sees the whole input.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from verify.count.receptive import RF

# ---- measured by the gradient of real units -----------------------------------------------------------------------


def _elementwise() -> tuple[type, ...]:
    import torch.nn as nn

    return (
        nn.ReLU,
        nn.ReLU6,
        nn.LeakyReLU,
        nn.GELU,
        nn.SiLU,
        nn.Sigmoid,
        nn.Tanh,
        nn.ELU,
        nn.Hardswish,
        nn.Dropout,
        nn.Identity,
        nn.modules.batchnorm._BatchNorm,
    )


def positive_copy(model: Any) -> Any:
    """A float32 CPU copy whose gradients cannot cancel: positive weights, zero biases, max → average pooling.

    Each filter's weights are made positive and scaled to sum to one, and normalization layers become the identity, so
    every layer averages its inputs: activations and gradients stay near one at any depth (no overflow or underflow in
    float32), and a gradient is zero exactly where no path joins the unit to the pixel."""
    import torch
    import torch.nn as nn

    m = copy.deepcopy(model).to("cpu").float().eval()
    for child in list(m.modules()):
        for cname, c in list(child.named_children()):
            if isinstance(c, nn.MaxPool2d):
                setattr(child, cname, nn.AvgPool2d(c.kernel_size, c.stride, c.padding, ceil_mode=c.ceil_mode))
            elif isinstance(c, nn.AdaptiveMaxPool2d):
                setattr(child, cname, nn.AdaptiveAvgPool2d(c.output_size))
    with torch.no_grad():
        for module in m.modules():
            norm = isinstance(module, nn.modules.batchnorm._NormBase | nn.GroupNorm | nn.LayerNorm)
            for pname, p in module.named_parameters(recurse=False):
                if pname == "bias" or norm:
                    p.fill_(0.0 if pname == "bias" else 1.0)
                elif p.dim() >= 2:  # a filter: positive, summing to one over what one output unit reads
                    w = p.abs() + 0.1
                    dims = (
                        (0, *range(2, p.dim())) if isinstance(module, nn.ConvTranspose2d) else tuple(range(1, p.dim()))
                    )
                    p.copy_(w / w.sum(dim=dims, keepdim=True))
                else:
                    p.copy_(p.abs() + 0.1)
            if norm and getattr(module, "running_mean", None) is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
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
    return measure_layers(model, input_shape, [layer], radius, prepared)[layer]


def measure_layers(
    model: Any, input_shape: Sequence[int], layers: Sequence[str], radius: int = 4, prepared: Any = None
) -> dict[str, tuple[RF, RF, bool]]:
    """:func:`measure_axes` for several layers (``""`` is the model's output) from one forward pass: a batch of inputs
    of ones, one batch element per sampled unit, and one backward pass per layer through the kept graph."""
    import torch

    m = prepared if prepared is not None else positive_copy(model)
    captured: dict[str, tuple[Any, Any]] = {}  # layer → (its input tensor, its output tensor)

    def first(t: Any) -> Any:
        return t if isinstance(t, torch.Tensor) else (t[0] if isinstance(t, (tuple, list)) and t else None)

    def keep(name: str) -> Any:
        def hook(mod: Any, i: Any, o: Any) -> None:
            captured.setdefault(name, (first(i), first(o)))

        return hook

    handles = [m.get_submodule(name).register_forward_hook(keep(name)) for name in layers]
    batch = 4 * radius + 1
    x = torch.ones(batch, *input_shape[1:], dtype=torch.float32, requires_grad=True)
    try:
        m(x)
    finally:
        for h in handles:
            h.remove()
    # Layers whose output is a tensor already measured (a container's last child, an in-place activation) or an
    # element-wise function of one (activations, normalization) share its receptive field: one backward pass each is
    # saved.
    by_output = {id(o): name for name, (_, o) in captured.items() if o is not None}
    out: dict[str, tuple[RF, RF, bool]] = {}

    def same_as(name: str) -> str | None:
        inp, y = captured[name]
        other = by_output.get(id(y))
        if other is not None and other != name and other in out:
            return other
        if isinstance(m.get_submodule(name), _elementwise()) and inp is not None:
            source = by_output.get(id(inp))
            if source is not None and source in out:
                return source
        return None

    for name in layers:
        if name not in captured:
            continue  # never called in the forward pass
        twin = same_as(name)
        if twin is not None:
            out[name] = out[twin]
            continue
        y = captured[name][1]
        if y.dim() < 4:  # not spatial: does one output unit see every input pixel?
            (g,) = torch.autograd.grad(y[0].reshape(-1)[0], x, retain_graph=True)
            out[name] = _whole_or_patch(g[0])
            continue
        hc, wc = y.shape[-2] // 2, y.shape[-1] // 2
        units = [(hc + dr, wc) for dr in range(-radius, radius + 1) if 0 <= hc + dr < y.shape[-2]]
        units += [(hc, wc + dc) for dc in range(-radius, radius + 1) if dc and 0 <= wc + dc < y.shape[-1]]
        total = sum(y[b, 0, i, j] for b, (i, j) in enumerate(units))
        (g,) = torch.autograd.grad(total, x, retain_graph=True)
        out[name] = _support_fields(g, units, (hc, wc), input_shape)
    return out


def _whole_or_patch(g: Any) -> tuple[RF, RF, bool]:
    whole = RF(None, None, Fraction(0))
    seen = g.abs().sum(dim=0) > 0
    if bool(seen.all()):
        return whole, whole, False
    nz = seen.nonzero()
    h = int(nz[:, 0].max() - nz[:, 0].min()) + 1
    w = int(nz[:, 1].max() - nz[:, 1].min()) + 1
    return RF(h, h, Fraction(0)), RF(w, w, Fraction(0)), False


def _support_fields(
    g: Any, units: list[tuple[int, int]], centre: tuple[int, int], input_shape: Sequence[int]
) -> tuple[RF, RF, bool]:
    """Per axis RF of the sampled units from their gradient supports (units reaching the border set aside)."""
    whole = RF(None, None, Fraction(0))
    hc, wc = centre
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

    def summarize(interior: dict[int, tuple[int, int]], every: dict[int, tuple[int, int]]) -> RF:
        if not every:
            return whole
        if not interior:  # only units that reach the border: their supports are cut, so the sizes are lower bounds
            return RF(min(sz for _, sz in every.values()), max(sz for _, sz in every.values()), None, True)
        sizes = [sz for _, sz in interior.values()]
        keys = sorted(interior)
        # the stride needs every sampled unit: where sizes repeat with a period (transposed convolution, upsampling),
        # two neighbours alone can share a start
        complete = len(interior) == len(every) and len(keys) > 1
        stride = Fraction(interior[keys[-1]][0] - interior[keys[0]][0], keys[-1] - keys[0]) if complete else None
        return RF(min(sizes), max(sizes), stride)

    return summarize(rows, rows_all), summarize(cols, cols_all), clipped
