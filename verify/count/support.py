"""Receptive fields measured on real units: the second route beside index propagation (:mod:`verify.count.receptive`).

:func:`measure`: the gradient support of real output units of a real torch model, on an input large enough that the
   sampled units do not reach the border. Weights are made positive and biases zero so that nothing cancels; max
   pooling becomes average pooling with the same window (max pooling's gradient reaches only the argmax).

Both report, per layer, the min and max receptive-field size over output positions and the stride (the input distance
between neighbouring output units). A fully connected layer sees the whole input.
"""

from __future__ import annotations

import copy
import math
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


def positive_copy(model: Any, pools: bool = True) -> Any:
    """A float32 CPU copy whose gradients cannot cancel: positive weights, zero biases, max → average pooling
    (MaxPool2d modules; ``pools=False`` leaves them, for :func:`confirm_fields`, which averages every max pooling).

    Each filter's weights are made positive and scaled to sum to one, and normalization layers become the identity, so
    every layer averages its inputs: activations and gradients stay near one at any depth (no overflow or underflow in
    float32), and a gradient is zero exactly where no path joins the unit to the pixel."""
    import torch
    import torch.nn as nn

    m = copy.deepcopy(model).to("cpu").float().eval()
    for child in list(m.modules()) if pools else []:
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


# ---- confirming propagated fields (``verify count --confirm-rf``) -------------------------------------------------

CONFIRM_LIMIT_BYTES = 2 << 30  # the most memory the confirmation may take
_SAMPLES = 9  # units sampled per axis and layer


def example_inputs(shapes: Any, dtypes: Sequence[str] | None = None) -> list[Any]:
    """Meta tensors of the given shapes (one shape, or a list of shapes) and dtypes (one for all, or one each; the
    names ``verify count --input-dtype`` takes, checked by :func:`verify.count.analyze.input_dtypes`)."""
    import torch

    from verify.count.analyze import DTYPES, input_dtypes

    many = [tuple(s) for s in shapes] if shapes and not isinstance(shapes[0], int) else [tuple(shapes)]
    kinds = input_dtypes(dtypes, len(many))
    return [torch.empty(s, dtype=getattr(torch, DTYPES[k]), device="meta") for s, k in zip(many, kinds, strict=True)]


def _mean_pool(x: Any, k: Any, s: Any, p: Any, d: Any, ceil: bool, nsp: int) -> Any:
    """Max pooling's windows averaged instead (same kernel, stride, padding, dilation, ceil mode): its gradient reaches
    every position of the window, not only the argmax. 1-D and 2-D."""
    import torch.nn.functional as F

    def tup(v: Any, default: Any) -> tuple[int, ...]:
        if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
            v = default
        return tuple(v) * (nsp if len(tuple(v)) == 1 else 1) if isinstance(v, (list, tuple)) else (int(v),) * nsp

    kk = tup(k, k)
    ss, pp, dd = tup(s, kk), tup(p, 0), tup(d, 1)
    unbatched = x.dim() == nsp + 1
    y = x.unsqueeze(0) if unbatched else x
    if nsp == 1:
        y = y.unsqueeze(-2)
        kk, ss, pp, dd = (1, *kk), (1, *ss), (0, *pp), (1, *dd)
    n, c = y.shape[0], y.shape[1]
    sizes, extra = [], []
    for i in range(2):
        length = y.shape[2 + i]
        span = dd[i] * (kk[i] - 1) + 1
        num = length + 2 * pp[i] - span
        o = (-(-num // ss[i]) if ceil else num // ss[i]) + 1
        if ceil and (o - 1) * ss[i] >= length + pp[i]:
            o -= 1
        sizes.append(o)
        extra.append(max(0, (o - 1) * ss[i] + span - (length + 2 * pp[i])))
    y = F.pad(y, (pp[1], pp[1] + extra[1], pp[0], pp[0] + extra[0]))
    cols = F.unfold(y, kk, dilation=dd, stride=ss)
    out = cols.view(n, c, kk[0] * kk[1], -1).mean(dim=2).view(n, c, *sizes)
    if nsp == 1:
        out = out.squeeze(-2)
    return out.squeeze(0) if unbatched else out


def _max_as_mean() -> Any:
    """A function mode that runs 1-D/2-D max pooling (modules and functional calls) as the mean over each window."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            for nsp in (1, 2):
                if name in (f"_max_pool{nsp}d", f"max_pool{nsp}d", f"max_pool{nsp}d_with_indices"):
                    names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
                    a = dict(zip(names, args, strict=False)) | kwargs
                    y = _mean_pool(
                        a["input"],
                        a["kernel_size"],
                        a.get("stride"),
                        a.get("padding", 0),
                        a.get("dilation", 1),
                        bool(a.get("ceil_mode", False)),
                        nsp,
                    )
                    if name.endswith("with_indices") or a.get("return_indices"):
                        with torch.no_grad():
                            _, idx = (
                                func(*args, **kwargs)
                                if name.endswith("indices")
                                else func(*args, **(kwargs | {"return_indices": True}))
                            )
                        return y, idx
                    return y
                if name == f"adaptive_max_pool{nsp}d" or name == f"_adaptive_max_pool{nsp}d":
                    pool = F.adaptive_avg_pool1d if nsp == 1 else F.adaptive_avg_pool2d
                    return pool(args[0], args[1] if len(args) > 1 else kwargs["output_size"])
            return func(*args, **kwargs)

    return Mode()


def confirm_fields(model: Any, inputs: Sequence[Any], g: Any, limit: int | None = None) -> list[str]:
    """Compare the propagated fields (inside the real input) with the gradient support of sampled real units: for
    every layer, up to 9 units spread along each axis (the borders included) through the centre of the others. One
    line per disagreement and a summary line. Raises VerifyError (one line) when the memory estimate is over ``limit``.
    """
    import torch

    from verify import VerifyError

    if len(inputs) != 1 or not inputs[0].dtype.is_floating_point:
        return ["verify: --confirm-rf: only models with one floating-point input are confirmed"]
    shape = tuple(inputs[0].shape)
    axes = g.axes
    batch = _SAMPLES * max(len(axes), 1)
    per_sample = sum(math.prod(r.shape) for c in g.trace.calls for r in c.outputs) / max(shape[0], 1)
    need = int(batch * per_sample * 8 * 2 + batch * math.prod(shape[1:]) * 16)
    if need > (CONFIRM_LIMIT_BYTES if limit is None else limit):
        raise VerifyError(
            f"--confirm-rf would need about {need / 2**30:.1f} GiB (the gradient of {batch} sampled units through "
            f"every activation, float64); give a smaller --input or leave --confirm-rf off (the fields do not need it)"
        )
    m = positive_copy(model, pools=False).double()
    layers = {name: outs[0] for name, outs in _module_outputs(g).items() if outs}
    captured: dict[str, Any] = {}

    def keep(name: str) -> Any:
        def hook(mod: Any, i: Any, o: Any) -> None:
            if name not in captured:
                flat = [t for t in (o if isinstance(o, (tuple, list)) else (o,)) if isinstance(t, torch.Tensor)]
                if flat:
                    captured[name] = flat[0]

        return hook

    handles = [m.get_submodule(name).register_forward_hook(keep(name)) for name in layers if name]
    x = torch.ones(batch, *shape[1:], dtype=torch.float64, requires_grad=True)
    try:
        with _max_as_mean():
            m(x)
    except Exception as exc:  # a model the positive copy cannot run (3-D max pooling, data-dependent code, ...)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return [
            f"verify: --confirm-rf: the model could not be run for the gradient support: {type(exc).__name__}: {first}"
        ]
    finally:
        for h in handles:
            h.remove()
    lines: list[str] = []
    checked = agreed = 0
    for name, uid in layers.items():
        y = captured.get(name)
        if y is None or y.dim() < 2 or y.shape[0] != batch:
            continue
        dims = {a: g.axis_dim(uid, a) for a in range(len(axes))}
        if any(d is None for d in dims.values()):  # an axis seen whole (or folded into another): check that claim
            bad = _check_whole(y, x, batch, axes, [a for a, d in dims.items() if d is None])
            checked += 1
            agreed += not bad
            if bad:
                lines.append(f"verify: --confirm-rf: {name or 'output'}: " + "; ".join(bad[:3]))
            continue
        units = _units(y.shape, [d for d in dims.values() if d is not None])
        total = sum(y[(b, *idx)].sum() for b, idx in enumerate(units))
        (grad,) = torch.autograd.grad(total, x, retain_graph=True)
        bad = []
        for b, idx in enumerate(units):
            nz = grad[b] != 0
            for a, (_, dim, _n) in enumerate(axes):
                other = tuple(i for i in range(nz.dim()) if i != dim - 1)
                rows = nz.any(dim=other).nonzero().flatten() if other else nz.nonzero().flatten()
                got = (int(rows.min()), int(rows.max())) if len(rows) else None
                iv = g.intervals(uid, a)
                pos = idx[dims[a] - 1]
                want = None if iv is None or iv[0][pos] > iv[1][pos] else (int(iv[0][pos]), int(iv[1][pos]))
                if got != want:
                    bad.append(f"axis {a} position {pos}: propagated {want}, gradient {got}")
        checked += 1
        agreed += not bad
        if bad:
            lines.append(f"verify: --confirm-rf: {name or 'output'}: " + "; ".join(bad[:3]))
    lines.append(
        f"verify: --confirm-rf: {agreed} of {checked} layers agree with the gradient support of {batch} sampled units "
        "each (max pooling measured as the mean over its window)"
    )
    return lines


def _check_whole(y: Any, x: Any, batch: int, axes: Sequence[Any], whole: Sequence[int]) -> list[str]:
    """Units spread over a layer whose field is the whole input along the ``whole`` axes: the rows each depends on,
    compared with every row of those axes."""
    import torch

    n_units = y[0].numel()
    picks = sorted({round(i * (n_units - 1) / max(batch - 1, 1)) for i in range(batch)})
    total = sum(y[b].flatten()[p] for b, p in enumerate(picks))
    (grad,) = torch.autograd.grad(total, x, retain_graph=True)
    bad = []
    for b, p in enumerate(picks):
        nz = grad[b] != 0
        for a in whole:
            dim, n = axes[a][1], axes[a][2]
            other = tuple(i for i in range(nz.dim()) if i != dim - 1)
            rows = nz.any(dim=other).nonzero().flatten() if other else nz.nonzero().flatten()
            got = (int(rows.min()), int(rows.max())) if len(rows) else None
            if got != (0, n - 1):
                bad.append(f"axis {a} unit {p}: propagated the whole input (0, {n - 1}), gradient {got}")
    return bad


def _module_outputs(g: Any) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for mc in g.trace.modules:
        if mc.name not in out:
            out[mc.name] = [ref.uid for _, ref in mc.outputs]
    return {k: v for k, v in out.items() if v}


def _units(shape: Sequence[int], spatial: Sequence[int]) -> list[tuple[Any, ...]]:
    """Index tuples (without the batch dimension) of units spread along each spatial dimension (borders included),
    at the centre of the other spatial dimensions, every channel."""
    out: list[tuple[Any, ...]] = []
    for d in spatial:
        n = shape[d]
        for p in sorted({round(i * (n - 1) / (_SAMPLES - 1)) for i in range(_SAMPLES)}):
            idx: list[Any] = [slice(None)] * (len(shape) - 1)
            for e in spatial:
                idx[e - 1] = p if e == d else shape[e] // 2
            out.append(tuple(idx))
    return out
