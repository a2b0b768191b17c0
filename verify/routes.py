"""Second implementations, used only by checks: each computes what a derivation computes, by another route.

A check must not call the code that produced the reference. The derivations size layers with the floor formulas of
:mod:`verify.arith.conv`, compose receptive fields by index maps (:mod:`verify.count.receptive`) and convolve with
:func:`verify.arith.exact.correlate2d`; the routes here count window positions one by one, compose boolean connectivity
matrices of whole axes, measure gradient supports with their own hooks, and convolve through an explicit patch matrix.
Nothing here imports the derivations' helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

# ---- sizes by counting ---------------------------------------------------------------------------------------------


def count_windows(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """How many windows of k taps (spaced d) fit on n inputs padded by p each side, started every s: counted."""
    span = d * (k - 1) + 1
    return sum(1 for start in range(0, n + 2 * p, s) if start + span <= n + 2 * p)


def count_scatter(n: int, k: int, s: int = 1, p: int = 0, op: int = 0, d: int = 1) -> int:
    """Width of a transposed convolution's output: the last position an input scatters into, plus one, less the
    padding cropped from each side, plus the output padding (positions found one by one)."""
    last = max(i * s + u * d for i in range(n) for u in range(k))
    return last + 1 - 2 * p + op


def walk_shapes(layers: Sequence[Any], input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Each named layer's output shape, from counting windows (a second route to ``conv_parts.chain_shapes``)."""
    shape = tuple(input_shape)
    out: dict[str, tuple[int, ...]] = {}
    for x in layers:
        if x.kind in ("conv", "dwconv", "avgpool", "maxpool"):
            ch = x.out if x.kind == "conv" else shape[-3]
            shape = (*shape[:-3], ch, *(count_windows(n, x.k, x.s, x.p) for n in shape[-2:]))
        elif x.kind == "tconv":
            shape = (*shape[:-3], x.out, *(count_scatter(n, x.k, x.s, x.p, x.op) for n in shape[-2:]))
        elif x.kind == "flatten":
            features = 1
            for n in shape[1:]:
                features *= n
            shape = (shape[0], features)
        elif x.kind == "linear":
            shape = (*shape[:-1], x.out)
        out[x.name] = shape
    return out


# ---- receptive fields by connectivity matrices ------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisStep:
    """One layer along one axis: conv (pooling too), tconv, or full (every output reads every input)."""

    kind: str
    k: int = 1
    s: int = 1
    p: int = 0
    d: int = 1
    op: int = 0


def axis_steps(layers: Sequence[Any]) -> list[tuple[str, AxisStep]]:
    """The spatial layers of a spec network (``conv_parts.Layer``) along one axis."""
    out = []
    for x in layers:
        if x.kind in ("conv", "dwconv", "avgpool", "maxpool"):
            out.append((x.name, AxisStep("conv", x.k, x.s, x.p)))
        elif x.kind == "tconv":
            out.append((x.name, AxisStep("tconv", x.k, x.s, x.p, op=x.op)))
        elif x.kind == "linear":
            out.append((x.name, AxisStep("full")))
    return out


def connectivity(step: AxisStep, n_in: int) -> tuple[int, list[tuple[Any, Any]]]:
    """The layer's boolean matrix M[o, i] (output o reads input i, along one axis of n_in positions) by its nonzero
    entries: (n_out, groups of (o, i) index arrays), a group per kernel tap, no input twice within a group."""
    import numpy as np

    if step.kind == "full":
        return 1, [(np.zeros(n_in, dtype=np.int64), np.arange(n_in))]
    groups = []
    if step.kind == "conv":  # gather: output o reads o·s − p + u·d
        n_out = count_windows(n_in, step.k, step.s, step.p, step.d)
        for u in range(step.k):
            o = np.arange(n_out)
            groups.append((o, o * step.s - step.p + u * step.d))
    elif step.kind == "tconv":  # scatter: input i writes to i·s − p + u·d
        n_out = count_scatter(n_in, step.k, step.s, step.p, step.op, step.d)
        for u in range(step.k):
            i = np.arange(n_in)
            groups.append((i * step.s - step.p + u * step.d, i))
    else:
        raise ValueError(step.kind)
    inside = [(o >= 0) & (o < n_out) & (i >= 0) & (i < n_in) for o, i in groups]
    return n_out, [(o[k], i[k]) for (o, i), k in zip(groups, inside, strict=True)]


def axis_length(steps: Sequence[AxisStep], at_least: int) -> int:
    """An axis long enough that the middle half of every layer's units stays off its borders: four times a crude
    upper bound on any field (kernel extents times the product of every stride so far), and at least ``at_least``."""
    bound, jump = 1, 1
    for step in steps:
        if step.kind == "full":
            break
        bound += (step.d * (step.k - 1) + 1 + step.p) * jump
        jump *= step.s
    return max(at_least, 4 * (bound + jump) + 16)


@dataclass(frozen=True)
class AxisField:
    min: int
    max: int
    whole: bool  # a unit of a fully connected layer: its support is every input it reaches
    units: int  # how many interior units were measured


def axis_field(steps: Sequence[AxisStep], n: int) -> AxisField:
    """The receptive-field side after the last layer along an axis of n inputs, from the product of the layers'
    connectivity matrices.

    Units in the middle half of the last layer's output are measured (their support must stay off both borders, or
    the axis is too short and ValueError says so); after a fully connected layer the one unit's support is measured
    whole. The product is taken from the output side (the measured units' rows times each layer's matrix in turn), so
    it costs units × inputs per layer, not a whole axis squared."""
    import numpy as np

    mats, widths = [], [n]
    for step in steps:
        width, entries = connectivity(step, widths[-1])
        mats.append(entries)
        widths.append(width)
    if not mats:
        raise ValueError("no layer to measure")
    whole = any(step.kind == "full" for step in steps)
    width = widths[-1]
    rows = np.arange(width) if whole else np.arange(width // 4, max(width * 3 // 4, 1))
    reads = np.eye(width, dtype=bool)[rows]  # reads[u, o]: measured unit u reads position o of this layer's output
    for entries, n_in in zip(reversed(mats), reversed(widths[:-1]), strict=True):
        product = np.zeros((len(rows), n_in), dtype=bool)  # (reads · M)[u, i] = OR over o of reads[u, o] ∧ M[o, i]
        for o, i in entries:
            product[:, i] |= reads[:, o]
        reads = product
    hit = reads[reads.any(axis=1)]  # units that read nothing (all padding) have no field
    if not len(hit):
        raise ValueError(f"an axis of {n} is too short: no unit to measure")
    first = hit.argmax(axis=1)
    last = n - 1 - hit[:, ::-1].argmax(axis=1)
    if not whole and (first.min() == 0 or last.max() == n - 1):
        raise ValueError(f"an axis of {n} is too short: a measured unit reaches the border")
    sizes = last - first + 1
    return AxisField(int(sizes.min()), int(sizes.max()), whole, len(sizes))


# ---- receptive fields by gradients --------------------------------------------------------------------------------


def gradient_side(model: Any, input_shape: tuple[int, ...], layer: str, units: int = 8) -> tuple[int, int, bool]:
    """(min, max) side of the gradient support of ``units`` neighbouring central units of ``layer``'s output (all
    weights made positive so that nothing cancels), and whether any support touched the input's border."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.zeros_like(p) if name.endswith("bias") else torch.rand_like(p) + 0.5)
    captured: dict[str, Any] = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda mod, i, o: captured.update(y=o))
    x = (torch.rand(*input_shape, dtype=torch.float64) + 0.5).requires_grad_(True)
    try:
        model(x)
    finally:
        handle.remove()
    y = captured["y"]
    picks: list[tuple[int, ...]] = []
    if y.dim() == 2:
        picks = [(0, 0)]
    else:
        h, w = y.shape[-2:]
        count = max(1, min(units, w // 2))  # neighbours in the middle half of a row
        picks = [(0, 0, h // 2, w // 2 - count // 2 + j) for j in range(count)]
    sides, touched = [], False
    for idx in picks:
        (g,) = torch.autograd.grad(y[idx], x, retain_graph=True)
        nz = g.abs().sum(dim=(0, 1)) > 0
        rows, cols = torch.nonzero(nz.any(dim=1)).flatten(), torch.nonzero(nz.any(dim=0)).flatten()
        side = max(int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))
        touched = touched or min(int(rows[0]), int(cols[0])) == 0
        touched = touched or int(rows[-1]) == input_shape[-2] - 1 or int(cols[-1]) == input_shape[-1] - 1
        sides.append(side)
    return min(sides), max(sides), touched


# ---- convolution through a patch matrix -------------------------------------------------------------------------------


def patch_matrix_conv(
    x: Sequence[Sequence[Any]], w: Sequence[Sequence[Any]], s: int, p: int, d: int
) -> list[list[Any]]:
    """A 2-D cross-correlation written as (patch matrix) · (flattened kernel): every output position's patch is a row,
    taken from the zero-padded input at the kernel's dilated offsets. Exact for ints and Fractions."""
    n_h, n_w, k_h, k_w = len(x), len(x[0]), len(w), len(w[0])

    def at(i: int, j: int) -> Any:
        i, j = i - p, j - p
        return x[i][j] if 0 <= i < n_h and 0 <= j < n_w else 0

    out_h, out_w = count_windows(n_h, k_h, s, p, d), count_windows(n_w, k_w, s, p, d)
    kernel = [w[u][v] for u in range(k_h) for v in range(k_w)]
    rows = [
        [at(i * s + u * d, j * s + v * d) for u in range(k_h) for v in range(k_w)]
        for i in range(out_h)
        for j in range(out_w)
    ]
    flat = [sum((a * b for a, b in zip(r, kernel, strict=True)), 0) for r in rows]
    return [flat[i * out_w : (i + 1) * out_w] for i in range(out_h)]


# ---- derivatives by differences ------------------------------------------------------------------------------------


def central_difference(f: Any, point: Sequence[Any], h: Fraction = Fraction(1, 2)) -> list[Fraction]:
    """The gradient of f at ``point`` by central differences in exact rationals (exact for quadratics)."""
    grad = []
    for i in range(len(point)):
        up = [Fraction(v) + (h if j == i else 0) for j, v in enumerate(point)]
        down = [Fraction(v) - (h if j == i else 0) for j, v in enumerate(point)]
        grad.append((Fraction(f(up)) - Fraction(f(down))) / (2 * h))
    return grad
