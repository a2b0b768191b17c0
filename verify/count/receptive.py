"""Receptive fields by index propagation through a traced graph of operators.

:func:`graph_fields` walks the operators of one traced run (:mod:`verify.count.trace`) in order. Each tensor carries,
for every input axis (the dimensions after batch and channel of each model input), either "whole input" (a reduction,
a linear or attention layer, a view that breaks the axis up: every element sees the whole axis) or the exact interval
``[lo, hi]`` of input indices seen at EVERY position of the tensor axis that the input axis survives in. Each
operator moves these intervals with its index map (:mod:`verify.count.index_maps`: convolution and pooling windows of
any dimension, transposed/dilated/strided/padded/grouped, adaptive pooling, max-unpooling, interpolation, padding,
slicing, concatenation, views, permutations); element-wise operators, broadcasting, concatenation and stacking along
other axes take the union of their operands' intervals position by position, so residual, dense and multi-branch
graphs are exact. A position's field is the union over every unit at that position (all channels). The cost is
O(positions × taps) per operator and axis — never a backward pass.

Two intervals are kept per position:

- the receptive field proper (the *theoretical* field): the input taken as unbounded, padding never clips it, so a
  unit of ResNet-50's last stage sees 427 pixels even on a 224-pixel input. It is computed on the real positions of
  every tensor with a margin of virtual positions around the input (enlarged until every real position is known).
  Sizes are given as min and max over positions and the stride (input positions per output position) as an exact
  fraction, per axis.
- the support inside the real input (*seen*): exactly what a one-hot perturbation or the gradient of a unit reaches,
  border effects included (padding reads nothing, interpolation clamps as torch does). ``covers`` says that every
  position sees the whole axis.

Operators without an index map (``im2col``, ``gather``, ...) and tensors written through views (``x[..., 1:] = y``:
the tensor keeps its identity) are taken as mixing every position of their inputs (listed, never silent). In train
mode BatchNorm normalizes with statistics of every position, so its units see the whole input; in eval mode (the
default of ``verify count``) it is element-wise.

What is measured, and the classical formula: the classical recursion r ← r + (k − 1)·d·j, j ← j·s gives, for a graph,
the largest r over input-to-unit paths. The field here is the hull of the union of the paths' supports. The two agree
whenever the branches are centred alike (every torchvision classifier: the fields reproduced in the tests equal the
published max-over-paths figures); the hull is larger when branches are offset (e.g. a branch with padding 0 beside one
with "same" padding), because their supports are not nested — the hull is the true extent of the support.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from verify import VerifyError
from verify.count import index_maps as im

# ---- the summary ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RF:
    """A receptive field along one axis: sizes over output positions, the stride, and what the units see of the input.

    ``min``/``max`` None: the whole input (a reduction or a fully connected layer). ``stride`` None: not known (an
    irregular map). ``covers``: every unit sees the whole real input along this axis (``seen`` is its size range
    inside the input). ``lower_bound``: the sizes are only at least these."""

    min: int | None
    max: int | None
    stride: Fraction | None
    lower_bound: bool = False
    covers: bool = False
    seen: tuple[int, int] | None = None

    @property
    def size(self) -> int | None:
        return self.max

    @property
    def whole(self) -> bool:
        return self.max is None

    def text(self) -> str:
        if self.max is None:
            return "whole input"
        rng = f"{self.min}" if self.min == self.max else f"{self.min}–{self.max}"
        if self.lower_bound:
            return f"at least {rng}"
        return rng if self.stride is None else f"{rng} (stride {self.stride})"


# ---- per-axis intervals of one tensor axis --------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One input axis's intervals along one tensor axis: ``lo``/``hi`` on the real input (index = position), and the
    theoretical ``tlo``/``thi`` at positions ``first, first + 1, …`` (None where not known); ``jump`` is the stride."""

    axis: int
    lo: np.ndarray
    hi: np.ndarray
    first: int
    tlo: np.ndarray | None
    thi: np.ndarray | None
    jump: Fraction | None


Factor = tuple[int, Span | None]  # (size, intervals) — a tensor dimension is one or more factors (row-major)
Dim = tuple[Factor, ...]


@dataclass(frozen=True)
class State:
    dims: tuple[Dim, ...]
    whole: frozenset[int]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(math.prod(s for s, _ in d) for d in self.dims)


class _Context:
    def __init__(self, margin: int) -> None:
        self.margin = margin
        self.exhausted = False  # some theoretical interval needed positions beyond the margin
        self.approximated: dict[str, int] = {}  # operators without an index map, treated as mixing every position

    def note(self, name: str) -> None:
        self.approximated[name] = self.approximated.get(name, 0) + 1


def apply_map(ctx: _Context, f: Span, n_out: int, taps: im.Taps, rate: Fraction | None) -> Span:
    """An index map applied to one span: the real input's intervals and the theoretical ones (with their margin)."""
    n_in = len(f.lo)
    o = np.arange(n_out, dtype=np.int64)
    lo, hi, _ = im.gather(f.lo, f.hi, 0, taps(o, True, n_in), True)
    tlo = thi = None
    first = 0
    if f.tlo is not None and f.thi is not None:
        reach = max(-f.first, f.first + len(f.tlo) - n_in, 0)
        c = (reach + 1) * max(1, -(-n_out // max(n_in, 1))) + 2
        o = np.arange(-c, n_out + c, dtype=np.int64)
        a, b, ok = im.gather(f.tlo, f.thi, f.first, taps(o, False, n_in), False)
        if ok[c : c + n_out].all():
            left = c
            while left > 0 and ok[left - 1]:
                left -= 1
            right = c + n_out
            while right < len(ok) and ok[right]:
                right += 1
            tlo, thi, first = a[left:right], b[left:right], left - c
        else:
            ctx.exhausted = True
    jump = f.jump * rate if f.jump is not None and rate is not None else None
    return Span(f.axis, lo, hi, first, tlo, thi, jump)


def _union_span(a: Span, b: Span) -> Span:
    lo, hi = np.minimum(a.lo, b.lo), np.maximum(a.hi, b.hi)
    tlo = thi = None
    first = 0
    if a.tlo is not None and a.thi is not None and b.tlo is not None and b.thi is not None:
        first = max(a.first, b.first)
        end = min(a.first + len(a.tlo), b.first + len(b.tlo))
        sa, sb = slice(first - a.first, end - a.first), slice(first - b.first, end - b.first)
        tlo, thi = np.minimum(a.tlo[sa], b.tlo[sb]), np.maximum(a.thi[sa], b.thi[sb])
    jump = a.jump if a.jump == b.jump else None
    return Span(a.axis, lo, hi, first, tlo, thi, jump)


def _broadcast_span(f: Span, n: int) -> Span:
    """A size-1 span repeated over n positions (no longer translation-invariant: the theoretical field is unknown)."""
    return Span(f.axis, np.repeat(f.lo[:1], n), np.repeat(f.hi[:1], n), 0, None, None, None)


def _flip(f: Span) -> Span:
    """The span read backwards: position o of n takes what position n − 1 − o saw."""
    n = len(f.lo)
    if f.tlo is None or f.thi is None:
        return Span(f.axis, f.lo[::-1].copy(), f.hi[::-1].copy(), 0, None, None, f.jump)
    first = n - f.first - len(f.tlo)
    return Span(f.axis, f.lo[::-1].copy(), f.hi[::-1].copy(), first, f.tlo[::-1].copy(), f.thi[::-1].copy(), f.jump)


def _pick(f: Span, pos: int) -> Span:
    """The span at one position, as a size-1 span."""
    return Span(f.axis, f.lo[pos : pos + 1], f.hi[pos : pos + 1], 0, None, None, None)


# ---- states ---------------------------------------------------------------------------------------------------------


def _axes_of(dims: Sequence[Dim]) -> set[int]:
    return {f.axis for d in dims for _, f in d if f is not None}


def _norm(dims: Sequence[Dim], whole: frozenset[int] | set[int]) -> State:
    """Drop intervals of axes seen whole; an input axis that ends up in two tensor axes is taken as seen whole."""
    seen: dict[int, int] = {}
    for d in dims:
        for _, f in d:
            if f is not None:
                seen[f.axis] = seen.get(f.axis, 0) + 1
    w = frozenset(whole) | {a for a, c in seen.items() if c > 1}
    return State(
        tuple(tuple((s, f if f is None or f.axis not in w else None) for s, f in d) for d in dims),
        w,
    )


def _plain(n: int) -> Dim:
    return ((n, None),)


def _mixed(d: Dim) -> tuple[Dim, set[int]]:
    """A dimension whose positions are all mixed (reduced or read as a whole): no intervals, its axes seen whole."""
    n = math.prod(s for s, _ in d)
    return _plain(n), {f.axis for _, f in d if f is not None}


def _single(d: Dim) -> tuple[int, Span | None] | None:
    """The dimension as one factor (size-1 factors without intervals ignored), or None when it merges several."""
    real = [(s, f) for s, f in d if s != 1 or f is not None]
    if not real:
        return (math.prod(s for s, _ in d), None)
    if len(real) == 1 and real[0][0] == math.prod(s for s, _ in d):
        return real[0]
    return None


def _union_dims(n: int, options: list[Dim]) -> tuple[Dim, set[int]]:
    """Union of several operands' factorizations of one output dimension of size n (broadcast ones already
    expanded)."""
    with_span = [d for d in options if any(f is not None for _, f in d)]
    if not with_span:
        return _plain(n), set()
    sizes = [s for s, _ in with_span[0]]
    if all([s for s, _ in d] == sizes for d in with_span):
        out: list[Factor] = []
        for i, s in enumerate(sizes):
            spans = [f for d in with_span if (f := d[i][1]) is not None]
            merged: Span | None = None
            for f in spans:
                if merged is None:
                    merged = f
                elif merged.axis == f.axis:
                    merged = _union_span(merged, f)
                else:
                    return _plain(n), _axes_of(with_span)
            out.append((s, merged))
        return tuple(out), set()
    return _plain(n), _axes_of(with_span)


def _expand_dim(d: Dim, n: int) -> Dim:
    """A size-1 dimension broadcast to n positions."""
    spans = [f for _, f in d if f is not None]
    if not spans or n == 1:
        return d if n == 1 else _plain(n)
    merged = _broadcast_span(spans[0], n)
    for f in spans[1:]:
        merged = _union_span(merged, _broadcast_span(f, n)) if f.axis == merged.axis else merged
    return ((n, merged),)


def _broadcast(shape: tuple[int, ...], states: Sequence[State]) -> State:
    """Element-wise operators: each output element sees the union of what the operands' elements it reads see."""
    r = len(shape)
    whole: set[int] = set()
    dims: list[Dim] = []
    for i in range(r):
        n = shape[i]
        options: list[Dim] = []
        for st in states:
            j = i - (r - len(st.dims))
            if j < 0:
                continue
            d = st.dims[j]
            size = math.prod(s for s, _ in d)
            if size == n:
                options.append(d)
            elif size == 1:
                options.append(_expand_dim(d, n))
            else:  # shapes that do not broadcast: keep it safe
                whole |= _axes_of([d])
        dim, lost = _union_dims(n, options)
        whole |= lost
        dims.append(dim)
    for st in states:
        whole |= st.whole
        extra = len(st.dims) - r
        if extra > 0:
            whole |= _axes_of(st.dims[:extra])
    return _norm(dims, whole)


def _everything(states: Sequence[State], shape: tuple[int, ...]) -> State:
    """An operator without an index map: every output element sees everything its inputs see."""
    whole: set[int] = set()
    for st in states:
        whole |= st.whole | _axes_of(st.dims)
    return State(tuple(_plain(n) for n in shape), frozenset(whole))


# ---- operators ------------------------------------------------------------------------------------------------------


def _ints(v: Any, n: int) -> list[int]:
    if isinstance(v, int):
        return [v] * n
    v = list(v)
    if not v:
        return []
    return [int(x) for x in v] * n if len(v) == 1 else [int(x) for x in v]


def _spatial(
    ctx: _Context,
    st: State,
    out_shape: tuple[int, ...],
    maps: Sequence[tuple[im.Taps, Fraction | None]],
    mix_channels: bool,
) -> State:
    """An operator on the last len(maps) dimensions, one index map each; the dimension before them is the channel
    dimension (mixed or not), earlier ones are kept."""
    nsp = len(maps)
    r = len(st.dims)
    dims: list[Dim] = []
    whole = set(st.whole)
    for i in range(r - nsp):
        d = st.dims[i]
        if i == r - nsp - 1 and mix_channels:
            d, lost = _mixed(d)
            d = _plain(out_shape[i])
            whole |= lost
        dims.append(d)
    for i, (taps, rate) in enumerate(maps):
        d = st.dims[r - nsp + i]
        n_out = out_shape[r - nsp + i]
        one = _single(d)
        if one is None:
            whole |= _axes_of([d])
            dims.append(_plain(n_out))
        elif one[1] is None:
            dims.append(_plain(n_out))
        else:
            dims.append(((n_out, apply_map(ctx, one[1], n_out, taps, rate)),))
    return _norm(dims, whole)


def _reduce(st: State, reduced: Sequence[int], keepdim: bool) -> State:
    r = len(st.dims)
    red = {d % r for d in reduced} if reduced else set(range(r))
    whole = set(st.whole)
    dims: list[Dim] = []
    for i, d in enumerate(st.dims):
        if i in red:
            whole |= _axes_of([d])
            if keepdim:
                dims.append(_plain(1))
        else:
            dims.append(d)
    return _norm(dims, whole)


def _mix(st: State, mixed: Sequence[int]) -> State:
    """Same shape, but each element sees every position of the given dimensions (softmax, layer norm)."""
    r = len(st.dims)
    whole = set(st.whole)
    dims = list(st.dims)
    for i in {m % r for m in mixed}:
        dims[i], lost = _mixed(dims[i])
        whole |= lost
    return _norm(dims, whole)


def _view(st: State, shape: Sequence[int]) -> State:
    """Regroup the factors into the new dimensions; a factor split across dimensions is seen whole."""
    factors = [f for d in st.dims for f in d if f[0] != 1 or f[1] is not None]
    whole = set(st.whole)
    dims: list[list[Factor]] = [[] for _ in shape]
    j = 0
    rem = shape[0] if shape else 1
    for s, f in factors:
        while j < len(shape) - 1 and rem == 1 and s != 1:
            j += 1
            rem = shape[j]
        if s == 1 or (rem % s == 0 and j < len(shape)):
            dims[min(j, len(shape) - 1)].append((s, f))
            rem //= s
            continue
        if f is not None:
            whole.add(f.axis)
        while s > 1 and j < len(shape):
            g = math.gcd(s, rem)
            if g == 1:
                j += 1
                if j < len(shape):
                    rem = shape[j]
                continue
            dims[j].append((g, None))
            s //= g
            rem //= g
            if rem == 1 and s > 1 and j < len(shape) - 1:
                j += 1
                rem = shape[j]
    out: list[Dim] = []
    for n, d in zip(shape, dims, strict=True):
        if math.prod(s for s, _ in d) != n:
            whole |= _axes_of([tuple(d)])
            out.append(_plain(n))
        else:
            out.append(tuple(d) or _plain(n))
    if not shape:
        whole |= _axes_of([tuple(factors)])
    return _norm(out, whole)


def _attach(dims: list[Dim], i: int, factors: list[Factor], whole: set[int]) -> None:
    """Size-1 factors with intervals from a removed dimension join a neighbouring one (or are seen whole)."""
    keep = [f for f in factors if f[1] is not None]
    if not keep:
        return
    if not dims:
        whole |= {f.axis for _, f in keep if f is not None}
        return
    k = min(max(i - 1, 0), len(dims) - 1)
    dims[k] = (*dims[k], *keep)


def _squeeze(st: State, which: Sequence[int] | None) -> State:
    r = len(st.dims)
    drop = {i for i in range(r) if st.shape[i] == 1 and (which is None or i in {w % max(r, 1) for w in which})}
    dims: list[Dim] = []
    whole = set(st.whole)
    pending: list[tuple[int, list[Factor]]] = []
    for i, d in enumerate(st.dims):
        if i in drop:
            pending.append((len(dims), list(d)))
        else:
            dims.append(d)
    for pos, fs in pending:
        _attach(dims, pos if pos > 0 else 1, fs, whole)
    return _norm(dims, whole)


def _select(st: State, dim: int, index: int) -> State:
    r = len(st.dims)
    dim %= r
    d = st.dims[dim]
    whole = set(st.whole)
    n = st.shape[dim]
    one = _single(d)
    dims = [x for i, x in enumerate(st.dims) if i != dim]
    if one is None:
        whole |= _axes_of([d])
    elif one[1] is not None:
        _attach(dims, dim if dim > 0 else 1, [(1, _pick(one[1], index % n))], whole)
    return _norm(dims, whole)


def _slice(ctx: _Context, st: State, dim: int, start: int, step: int, n_out: int) -> State:
    r = len(st.dims)
    dim %= r
    d = st.dims[dim]
    n = st.shape[dim]
    dims = list(st.dims)
    whole = set(st.whole)
    if start == 0 and step == 1 and n_out == n:
        return st
    one = _single(d)
    if one is None:
        dims[dim], lost = _mixed(d)
        dims[dim] = _plain(n_out)
        whole |= lost
    elif one[1] is None:
        dims[dim] = _plain(n_out)
    else:
        dims[dim] = ((n_out, apply_map(ctx, one[1], n_out, im.window(1, step, -start), Fraction(step))),)
    return _norm(dims, whole)


def _cat(ctx: _Context, states: Sequence[State | None], shapes: list[tuple[int, ...]], dim: int) -> State:
    """Concatenation: along another axis a union; along a spatial axis the operands' intervals side by side."""
    parts = [(st, sh) for st, sh in zip(states, shapes, strict=True) if len(sh) > 1 or (sh and sh[0] > 0)]
    r = len(parts[0][1])
    dim %= r
    total = sum(sh[dim] for _, sh in parts)
    full = [st if st is not None else State(tuple(_plain(n) for n in sh), frozenset()) for st, sh in parts]
    whole: set[int] = set()
    for st in full:
        whole |= st.whole
    restacked = _restack(full, dim)
    if restacked is not None:
        return restacked
    ones = [_single(st.dims[dim]) for st in full]
    spans = [o[1] for o in ones if o is not None and o[1] is not None]
    cat_dim: Dim
    if not spans and all(o is not None for o in ones):
        cat_dim = _plain(total)
    elif (
        all(o is not None and o[1] is not None for o in ones)
        and len({f.axis for f in spans}) == 1
        and len(spans) == len(full)
    ):
        lo = np.concatenate([f.lo for f in spans])
        hi = np.concatenate([f.hi for f in spans])
        tlo = thi = None
        first = 0
        a, b = spans[0], spans[-1]
        if all(f.tlo is not None for f in spans) and a.tlo is not None and b.tlo is not None:
            mids_lo = [f.tlo[-f.first : -f.first + len(f.lo)] for f in spans[1:-1] if f.tlo is not None]
            mids_hi = [f.thi[-f.first : -f.first + len(f.lo)] for f in spans[1:-1] if f.thi is not None]
            if len(spans) == 1:
                tlo, thi = a.tlo, a.thi
            else:
                tlo = np.concatenate([a.tlo[: -a.first + len(a.lo)], *mids_lo, b.tlo[-b.first :]])
                thi = np.concatenate([a.thi[: -a.first + len(a.lo)], *mids_hi, b.thi[-b.first :]])  # type: ignore[index]
            first = a.first
        jumps = {f.jump for f in spans}
        cat_dim = ((total, Span(a.axis, lo, hi, first, tlo, thi, jumps.pop() if len(jumps) == 1 else None)),)
    else:
        cat_dim = _plain(total)
        for st in full:
            whole |= _axes_of([st.dims[dim]])
    dims: list[Dim] = []
    for i in range(r):
        if i == dim:
            dims.append(cat_dim)
            continue
        d, lost = _union_dims(parts[0][1][i], [st.dims[i] for st in full])
        whole |= lost
        dims.append(d)
    return _norm(dims, whole)


def _restack(states: Sequence[State], dim: int) -> State | None:
    """Size-1 slices put back together along a new axis (a recurrent layer run step by step: each step's output
    carries the interval of its one position as a size-1 factor): the factors become the intervals of the stacking
    axis. None when the operands are not of that form."""
    spans: list[Span] = []
    dims_out: list[list[Dim]] = []
    for st in states:
        if st.shape[dim] != 1 or _axes_of([st.dims[dim]]):
            return None
        found = [(i, j, f) for i, d in enumerate(st.dims) for j, (s, f) in enumerate(d) if f is not None and s == 1]
        if len(found) != 1 or (spans and found[0][2].axis != spans[0].axis):
            return None
        i, j, f = found[0]
        if any(f2 is not None and f2.axis == f.axis for d in st.dims for _, f2 in d if f2 is not f):
            return None
        spans.append(f)
        dims_out.append(
            [d if k != i else tuple(x for m, x in enumerate(d) if m != j) or _plain(1) for k, d in enumerate(st.dims)]
        )
    if len(spans) < 2:
        return None
    lo, hi = np.concatenate([f.lo for f in spans]), np.concatenate([f.hi for f in spans])
    whole: set[int] = set()
    dims: list[Dim] = []
    for k in range(len(states[0].dims)):
        if k == dim:
            dims.append(((len(spans), Span(spans[0].axis, lo, hi, 0, None, None, None)),))
            continue
        n = states[0].shape[k]
        d, lost = _union_dims(n, [x[k] for x in dims_out])
        whole |= lost
        dims.append(d)
    for st in states:
        whole |= st.whole
    return _norm(dims, whole)


def _scale(arg: Any, n_in: int, n_out: int, align_corners: bool) -> Fraction:
    """torch's area_pixel_compute_scale, exact: (n_in − 1)/(n_out − 1) with aligned corners, 1/scale_factor where one
    was given (the shortest decimal that reads back as the float), else n_in/n_out."""
    if align_corners:
        return Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)
    if arg is not None and float(arg) > 0:
        return 1 / Fraction(repr(float(arg)))  # the scale as written (0.6 is 3/5), not its binary approximation
    return Fraction(n_in, n_out)


_UPSAMPLE = {
    "upsample_nearest": "nearest",
    "_upsample_nearest_exact": "exact",
    "upsample_linear": "linear",
    "upsample_bilinear": "linear",
    "upsample_trilinear": "linear",
    "upsample_bicubic": "cubic",
}


def _upsample(ctx: _Context, name: str, call: Any, st: State, out_shape: tuple[int, ...]) -> State:
    base = name.rstrip("d").rstrip("123")
    kind = _UPSAMPLE[base]
    nsp = len(out_shape) - 2
    args = list(call.args[1:])
    if kind in ("linear", "cubic"):
        align = bool(args[1]) if len(args) > 1 else False
        scales = args[2:] if len(args) > 2 else []
    else:
        align = False
        scales = args[1:]
    if len(scales) == 1 and isinstance(scales[0], (list, tuple)):  # the .vec overloads
        scales = list(scales[0])
    scales = list(scales) + [None] * (nsp - len(scales))
    maps: list[tuple[im.Taps, Fraction | None]] = []
    in_shape = st.shape
    dtype = str(getattr(call.args[0], "dtype", "float32"))
    for i in range(nsp):
        n_in, n_out = in_shape[2 + i], out_shape[2 + i]
        if kind == "nearest" and nsp == 2 and n_in == n_out:  # torch's 2-D kernel copies such an axis (1-D, 3-D don't)
            maps.append((im.window(1), Fraction(1)))
        elif kind in ("nearest", "exact"):
            s = scales[i]
            given = float(s) if s is not None and float(s) > 0 else None
            maps.append((im.nearest(given, n_in, n_out, kind == "exact", dtype), _scale(s, n_in, n_out, False)))
        elif kind == "linear" and n_in == n_out:  # torch copies an axis whose size does not change
            maps.append((im.window(1), Fraction(1)))
        else:
            sc = _scale(scales[i], n_in, n_out, align)
            maps.append(((im.linear if kind == "linear" else im.cubic)(sc, align), sc))
    return _spatial(ctx, st, out_shape, maps, mix_channels=False)


class _Graph:
    """The propagation over one trace."""

    def __init__(self, trace: Any, margin: int) -> None:
        self.trace = trace
        self.ctx = _Context(margin)
        self.states: dict[int, State] = {}
        self.pools: dict[int, list[tuple[int, int, int, int]]] = {}  # indices uid -> (k, s, p, d) per spatial dim
        self.axes: list[tuple[int, int, int]] = []  # (input number, dimension, size)
        for i, ref in enumerate(trace.inputs):
            shape = tuple(ref.shape)
            spatial = range(2, len(shape)) if len(shape) >= 3 else (range(1, 2) if "int" in ref.dtype else range(0))
            dims: list[Dim] = []
            for d, n in enumerate(shape):
                if d in spatial:
                    ax = len(self.axes)
                    self.axes.append((i, d, n))
                    pos = np.arange(n, dtype=np.int64)
                    t = np.arange(-margin, n + margin, dtype=np.int64)
                    dims.append(((n, Span(ax, pos, pos.copy(), -margin, t, t.copy(), Fraction(1))),))
                else:
                    dims.append(_plain(n))
            self.states[ref.uid] = State(tuple(dims), frozenset())

    def run(self) -> None:
        base: dict[int, TensorRefLike] = {}  # a view's uid -> the tensor it is a view of (the first one)
        for call in self.trace.calls:
            refs = call.tensors()
            if call.name in _VIEWS and refs:
                for o in call.outputs:
                    base[o.uid] = base.get(refs[0].uid, refs[0])
            ins = [self.states.get(t.uid) for t in refs]
            if all(s is None for s in ins) or not call.outputs:
                continue
            try:
                outs = self.op(call)
            except (IndexError, ValueError, TypeError, KeyError, ZeroDivisionError):
                outs = None  # an unexpected argument layout: treat the operator as mixing everything
                self.ctx.note(call.name)
            if outs is None:
                known = [s for s in ins if s is not None]
                outs = [_everything(known, tuple(o.shape)) for o in call.outputs]
            for ref, st in zip(call.outputs, outs, strict=False):
                if st is not None:
                    if st.shape != tuple(ref.shape):
                        st = _everything([st], tuple(ref.shape))
                    self.states[ref.uid] = st
            written = refs[0] if call.name.endswith("_") and refs else None
            if written is not None and written.uid in base and outs and outs[0] is not None:
                # a write through a view (x[:, :, 1:] = y): the viewed tensor keeps its identity, so what it now
                # holds is taken as seeing everything both ever saw
                root = base[written.uid]
                before = [st for st in (self.states.get(root.uid), outs[0]) if st is not None]
                self.states[root.uid] = _everything(before, tuple(root.shape))
                self.ctx.note(f"{call.name} into a view")

    def st(self, ref: Any) -> State:
        """The state of a tensor argument (a constant or a parameter sees nothing)."""
        got = self.states.get(ref.uid)
        return got if got is not None else State(tuple(_plain(n) for n in ref.shape), frozenset())

    def op(self, call: Any) -> Sequence[State | None] | None:
        name = call.name
        a = call.args
        out = tuple(call.outputs[0].shape)
        if name in _CONSTANT:
            return [None] * len(call.outputs)
        if name == "convolution":
            x, w = self.st(a[0]), a[1]
            stride, pad, dil, transposed = a[3], a[4], a[5], bool(a[6])
            nsp = len(w.shape) - 2
            st, sd, pd = _ints(stride, nsp), _ints(dil, nsp), _ints(pad, nsp)
            k = w.shape[2:]
            maps = [
                (
                    (im.transposed if transposed else im.window)(k[i], st[i], pd[i], sd[i]),
                    Fraction(1, st[i]) if transposed else Fraction(st[i]),
                )
                for i in range(nsp)
            ]
            y = _spatial(self.ctx, x, out, maps, mix_channels=True)
            others = [self.st(t) for t in call.tensors()[1:] if t.uid in self.states]
            return [_broadcast(out, [y, *[_everything([o], out) for o in others]]) if others else y]
        if name.startswith(("max_pool", "avg_pool")) and not name.endswith("backward"):
            x = self.st(a[0])
            k = list(a[1]) if isinstance(a[1], (list, tuple)) else [a[1]]
            nsp = int(name[len("max_pool") if name.startswith("max") else len("avg_pool")])
            ks = _ints(k, nsp)
            ss = _ints(a[2], nsp) if len(a) > 2 and _ints(a[2], nsp) else ks
            ps = _ints(a[3], nsp) if len(a) > 3 else [0] * nsp
            ds = _ints(a[4], nsp) if len(a) > 4 and name.startswith("max") else [1] * nsp
            params = list(zip(ks, ss, ps, ds, strict=True))
            maps = [(im.window(kk, s, p, d), Fraction(s)) for kk, s, p, d in params]
            y = _spatial(self.ctx, x, out, maps, mix_channels=False)
            if len(call.outputs) > 1:
                self.pools[call.outputs[1].uid] = params
                return [y, y]
            return [y]
        if name.startswith("max_unpool"):
            x, idx = self.st(a[0]), a[1]
            found = self.pools.get(idx.uid)
            if found is None:
                self.ctx.note(name)
                return None
            maps = [(im.transposed(k, s, p, d), Fraction(1, s)) for k, s, p, d in found]
            return [_spatial(self.ctx, x, out, maps, mix_channels=False)]
        if name.startswith(("_adaptive_avg_pool", "adaptive_avg_pool", "adaptive_max_pool")):
            x = self.st(a[0])
            nsp = len(_ints(a[1], 1)) if isinstance(a[1], (list, tuple)) else 1
            nsp = max(nsp, int(name.rstrip("d")[-1]))
            r = len(x.dims)
            maps = []
            for i in range(nsp):
                n_in, n_out = x.shape[r - nsp + i], out[r - nsp + i]
                maps.append((im.adaptive(n_in, n_out), Fraction(n_in, n_out)))
            y = _spatial(self.ctx, x, out, maps, mix_channels=False)
            y = _reduce_global(y, x, r - nsp, out)
            return [y, y] if len(call.outputs) > 1 else [y]
        if name.startswith(("upsample_", "_upsample_")) and not name.endswith("backward"):
            return [_upsample(self.ctx, name.removesuffix(".vec"), call, self.st(a[0]), out)]
        if name in ("constant_pad_nd",) or name.startswith(("reflection_pad", "replication_pad")):
            x = self.st(a[0])
            pad = list(a[1])
            mode = "constant" if name == "constant_pad_nd" else "reflect" if name[0] == "r" and "lect" in name else ""
            mode = mode or "replicate"
            nsp = len(pad) // 2
            lefts = [pad[2 * (nsp - 1 - i)] for i in range(nsp)]
            maps = [(im.shift(left, mode), Fraction(1)) for left in lefts]
            return [_spatial(self.ctx, x, out, maps, mix_channels=False)]
        if name in ("pixel_shuffle", "pixel_unshuffle"):
            x, rr = self.st(a[0]), int(a[1])
            taps = im.transposed(rr, rr) if name == "pixel_shuffle" else im.window(rr, rr)
            rate = Fraction(1, rr) if name == "pixel_shuffle" else Fraction(rr)
            return [_spatial(self.ctx, x, out, [(taps, rate), (taps, rate)], mix_channels=True)]
        if name in ("view", "_unsafe_view", "reshape", "_reshape_alias", "view_copy"):
            return [_view(self.st(a[0]), out)]
        if name in ("permute", "permute_copy"):
            x = self.st(a[0])
            return [State(tuple(x.dims[i % len(x.dims)] for i in a[1]), x.whole)]
        if name in ("transpose", "t", "transpose_", "t_"):
            x = self.st(a[0])
            d0, d1 = (a[1], a[2]) if len(a) > 2 else (0, 1)
            dims = list(x.dims)
            if dims:
                d0, d1 = d0 % len(dims), d1 % len(dims)
                dims[d0], dims[d1] = dims[d1], dims[d0]
            return [State(tuple(dims), x.whole)]
        if name in ("unsqueeze", "unsqueeze_"):
            x = self.st(a[0])
            dims = list(x.dims)
            dims.insert(a[1] % (len(dims) + 1), _plain(1))
            return [State(tuple(dims), x.whole)]
        if name in ("squeeze", "squeeze_"):
            which = None if len(a) < 2 else ([a[1]] if isinstance(a[1], int) else list(a[1]))
            return [_squeeze(self.st(a[0]), which)]
        if name == "expand":
            x = self.st(a[0])
            r = len(out)
            dims = [_plain(out[i]) for i in range(r - len(x.dims))]
            for j, d in enumerate(x.dims):
                n = out[r - len(x.dims) + j]
                dims.append(d if math.prod(s for s, _ in d) == n else _expand_dim(d, n))
            return [_norm(dims, x.whole)]
        if name == "roll" and len(a) > 2 and list(a[2]):
            x = self.st(a[0])
            dims = list(x.dims)
            whole = set(x.whole)
            for shift, k in zip(_ints(a[1], len(list(a[2]))), [int(i) % len(dims) for i in a[2]], strict=True):
                one = _single(dims[k])
                if one is None:
                    dims[k], lost = _mixed(dims[k])
                    whole |= lost
                elif one[1] is not None:
                    dims[k] = ((one[0], apply_map(self.ctx, one[1], one[0], im.shift(shift, "wrap"), Fraction(1))),)
            return [_norm(dims, whole)]
        if name == "flip":
            x = self.st(a[0])
            dims = list(x.dims)
            whole = set(x.whole)
            for k in {int(i) % len(dims) for i in a[1]}:
                one = _single(dims[k])
                if one is None:
                    dims[k], lost = _mixed(dims[k])
                    whole |= lost
                elif one[1] is not None:
                    dims[k] = ((one[0], _flip(one[1])),)
            return [_norm(dims, whole)]
        if name == "select":
            return [_select(self.st(a[0]), a[1], a[2])]
        if name == "slice":
            x = self.st(a[0])
            dim = a[1] if len(a) > 1 else 0
            n = x.shape[dim % len(x.dims)]
            start = a[2] if len(a) > 2 and a[2] is not None else 0
            start = max(0, min(n, start + n if start < 0 else start))
            step = a[4] if len(a) > 4 else 1
            return [_slice(self.ctx, x, dim, start, step, out[dim % len(out)])]
        if name in ("split", "split_with_sizes", "unsafe_split", "unsafe_split_with_sizes"):
            x = self.st(a[0])
            dim = a[2] if len(a) > 2 else 0
            start, outs = 0, []
            for ref in call.outputs:
                m = ref.shape[dim % len(ref.shape)]
                outs.append(_slice(self.ctx, x, dim, start, 1, m))
                start += m
            return outs
        if name == "unbind":
            x = self.st(a[0])
            dim = a[1] if len(a) > 1 else 0
            return [_select(x, dim, i) for i in range(len(call.outputs))]
        if name == "cat":
            refs = list(a[0])
            return [_cat(self.ctx, [self.states.get(t.uid) for t in refs], [tuple(t.shape) for t in refs], a[1])]
        if name == "stack":
            refs = list(a[0])
            dim = a[1] if len(a) > 1 else 0
            r = len(refs[0].shape) + 1
            ups = [_unsq(self.st(t), dim % r) for t in refs]
            return [_cat(self.ctx, ups, [u.shape for u in ups], dim % r)]
        if name in _REDUCTIONS and not (len(a) > 1 and hasattr(a[1], "uid")):  # max(a, b) is element-wise
            x = self.st(a[0])
            pos_dim, pos_keep = _REDUCTIONS[name]
            dims_arg = a[pos_dim] if len(a) > pos_dim else call.kwargs.get("dim")
            keep = bool(a[pos_keep]) if pos_keep and len(a) > pos_keep else bool(call.kwargs.get("keepdim", False))
            red = [] if dims_arg is None else ([dims_arg] if isinstance(dims_arg, int) else list(dims_arg))
            y = _reduce(x, red, keep)
            return [y] * len(call.outputs)
        if name in ("_softmax", "_log_softmax", "softmax", "log_softmax", "cumsum", "cumprod", "logcumsumexp"):
            return [_mix(self.st(a[0]), [a[1]])]
        if name in ("native_layer_norm",):
            x = self.st(a[0])
            r = len(x.dims)
            y = _mix(x, range(r - len(a[1]), r))
            return [y, None, None][: len(call.outputs)]
        if name in ("native_group_norm",):
            x = self.st(a[0])
            y = _mix(x, range(1, len(x.dims)))
            return [y, None, None][: len(call.outputs)]
        if name in ("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training"):
            x = self.st(a[0])
            training = False if name.endswith("no_training") else bool(a[5] if len(a) == 8 else a[3])
            y = _mix(x, range(2, len(x.dims))) if training else x  # batch statistics see every position
            return [y] + [None] * (len(call.outputs) - 1)
        if name in ("mm", "addmm", "bmm", "baddbmm"):
            first = 1 if name in ("addmm", "baddbmm") else 0
            p, q = self.st(a[first]), self.st(a[first + 1])
            whole = set(p.whole | q.whole) | _axes_of([p.dims[-1], q.dims[-2]])
            batch = [] if len(p.dims) == 2 else [_union_dims(out[0], [p.dims[0], q.dims[0]])[0]]
            y = _norm([*batch, p.dims[-2], q.dims[-1]], whole)
            if first:
                y = _broadcast(out, [y, self.st(a[0])])
            return [y]
        if name.startswith("_scaled_dot_product") or name == "scaled_dot_product_attention":
            q, k, v = (self.st(t) for t in a[:3])
            whole = set(q.whole | k.whole | v.whole) | _axes_of(k.dims) | _axes_of(v.dims) | _axes_of([q.dims[-1]])
            dims = [*q.dims[:-1], _plain(out[-1])]
            y = _norm(dims, whole)
            return [y] + [None] * (len(call.outputs) - 1)
        if name == "embedding":
            idx = self.st(a[1])
            return [_norm([*idx.dims, _plain(out[-1])], idx.whole)]
        if name == "copy_":
            return [_broadcast(out, [self.st(a[1])])]
        if name in _POINTWISE or _is_pointwise(call.op):
            known = [self.st(t) for t in call.tensors()]
            y = _broadcast(out, known)
            return [y] + [None if name == "native_dropout" else y] * (len(call.outputs) - 1)
        self.ctx.note(name)
        return None


TensorRefLike = Any
_VIEWS = {
    "slice",
    "select",
    "view",
    "as_strided",
    "transpose",
    "permute",
    "unsqueeze",
    "squeeze",
    "expand",
    "alias",
    "diagonal",
    "narrow",
    "split",
    "split_with_sizes",
    "unbind",
    "t",
    "unflatten",
    "view_as",
    "chunk",
    "unfold",
}


def _unsq(st: State, dim: int) -> State:
    dims = list(st.dims)
    dims.insert(dim, _plain(1))
    return State(tuple(dims), st.whole)


def _reduce_global(y: State, x: State, start: int, out: tuple[int, ...]) -> State:
    """Adaptive pooling to one position along an axis is a reduction: every unit sees the whole axis."""
    whole = set(y.whole)
    dims = list(y.dims)
    for i in range(start, len(out)):
        if out[i] == 1 and x.shape[i] > 1:
            dims[i], lost = _mixed(dims[i])
            whole |= lost
    return _norm(dims, whole)


def _is_pointwise(op: Any) -> bool:
    import torch

    return torch.Tag.pointwise in getattr(op, "tags", ())


_CONSTANT = {
    "empty_like",
    "zeros_like",
    "ones_like",
    "full_like",
    "rand_like",
    "randn_like",
    "new_zeros",
    "new_ones",
    "new_empty",
    "new_full",
    "fill_",
    "zero_",
    "_shape_as_tensor",
    "detach_",
}
_POINTWISE = {
    "clone",
    "_to_copy",
    "detach",
    "alias",
    "lift_fresh",
    "lift_fresh_copy",
    "contiguous",
    "native_dropout",
    "hardswish_",
    "hardswish",
    "dropout",
    "_conj",
    "to",
    "type_as",
    "masked_fill_",
    "where",
}
_REDUCTIONS = {  # name -> (position of dim, position of keepdim; 0: none)
    "mean": (1, 2),
    "sum": (1, 2),
    "amax": (1, 2),
    "amin": (1, 2),
    "max": (1, 2),
    "min": (1, 2),
    "argmax": (1, 2),
    "argmin": (1, 2),
    "prod": (1, 2),
    "var": (1, 3),
    "std": (1, 3),
    "var_mean": (1, 3),
    "std_mean": (1, 3),
    "logsumexp": (1, 2),
    "linalg_vector_norm": (2, 3),
    "norm": (2, 3),
    "all": (1, 2),
    "any": (1, 2),
    "count_nonzero": (1, 0),
}


# ---- results --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorFields:
    """The receptive field of one tensor along each input axis (``axes`` names them: input number and dimension)."""

    axes: tuple[tuple[int, int, int], ...]  # (input number, dimension, size)
    fields: tuple[RF, ...]

    @property
    def whole(self) -> bool:
        return all(f.whole for f in self.fields)

    def text(self) -> str:
        return "whole input" if self.whole else " × ".join(f.text() for f in self.fields)


def summarize(st: State, axes: Sequence[tuple[int, int, int]]) -> TensorFields:
    """Per input axis: whole input, or sizes (min/max over positions), stride and what the units see of the input."""
    spans: dict[int, Span] = {f.axis: f for d in st.dims for _, f in d if f is not None}
    out: list[RF] = []
    for ax, (_, _, n) in enumerate(axes):
        f = spans.get(ax)
        if ax in st.whole or f is None:
            out.append(RF(None, None, None, covers=True, seen=(n, n)))
            continue
        real = f.lo <= f.hi
        seen = np.where(real, f.hi - f.lo + 1, 0)
        covers = bool(real.all() and (f.lo == 0).all() and (f.hi == n - 1).all())
        seen_rng = (int(seen.min()), int(seen.max())) if len(seen) else (0, 0)
        if f.tlo is not None and f.thi is not None and len(f.lo):
            t = slice(-f.first, -f.first + len(f.lo))
            tl, th = f.tlo[t], f.thi[t]
            sizes = np.where(tl <= th, th - tl + 1, 0)
            out.append(RF(int(sizes.min()), int(sizes.max()), f.jump, False, covers, seen_rng))
        else:
            out.append(RF(seen_rng[0], seen_rng[1], f.jump, True, covers, seen_rng))
    return TensorFields(tuple(axes), tuple(out))


@dataclass
class GraphFields:
    """Every tensor's intervals after one propagation: per-layer fields, the model's outputs, per-position queries."""

    states: dict[int, State]
    axes: list[tuple[int, int, int]]
    approximated: dict[str, int]  # operators with no index map (treated as mixing every position), with counts
    margin: int
    trace: Any

    def of(self, uid: int) -> TensorFields | None:
        st = self.states.get(uid)
        return None if st is None else summarize(st, self.axes)

    def outputs(self) -> list[tuple[str, TensorFields | None]]:
        return [(path, self.of(ref.uid)) for path, ref in self.trace.outputs]

    def layers(self) -> dict[str, list[tuple[str, TensorFields | None]]]:
        """Each module's outputs' fields (its first call, where it is called more than once)."""
        out: dict[str, list[tuple[str, TensorFields | None]]] = {}
        for mc in self.trace.modules:
            if mc.name not in out:
                out[mc.name] = [(path, self.of(ref.uid)) for path, ref in mc.outputs]
        return out

    def intervals(self, uid: int, axis: int, theoretical: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-position intervals of a tensor along an input axis (None: whole input or not spatial)."""
        st = self.states.get(uid)
        if st is None:
            return None
        for d in st.dims:
            for _, f in d:
                if f is not None and f.axis == axis:
                    if not theoretical:
                        return f.lo, f.hi
                    if f.tlo is None or f.thi is None:
                        return None
                    t = slice(-f.first, -f.first + len(f.lo))
                    return f.tlo[t], f.thi[t]
        return None

    def axis_dim(self, uid: int, axis: int) -> int | None:
        """The dimension of a tensor that an input axis survives in as a whole dimension (None: merged or lost)."""
        st = self.states.get(uid)
        if st is None:
            return None
        for i, d in enumerate(st.dims):
            one = _single(d)
            if one is not None and one[1] is not None and one[1].axis == axis:
                return i
        return None


def field_json(tf: TensorFields) -> dict[str, Any]:
    """A tensor's field as JSON: per input axis min and max size over positions (null: the whole input), the stride
    as a fraction string, whether every unit sees the whole real input (``covers_input``) and the sizes seen inside it.
    """
    if tf.whole:
        return {"whole_input": True}
    return {
        "whole_input": False,
        "size": [f.max for f in tf.fields],
        "min": [f.min for f in tf.fields],
        "max": [f.max for f in tf.fields],
        "stride": None
        if all(f.stride is None for f in tf.fields)
        else [None if f.stride is None else str(f.stride) for f in tf.fields],
        "lower_bound": any(f.lower_bound for f in tf.fields),
        "covers_input": [f.covers for f in tf.fields],
        "seen": [list(f.seen) if f.seen else None for f in tf.fields],
    }


def field_text(rf: dict[str, Any] | None) -> str:
    """A field as a table shows it: sizes per axis joined by × (a range where positions differ), /stride, ≥ for lower
    bounds, "covers input" where every unit sees the whole real input; several outputs as path: field."""
    if not rf:
        return ""
    if "outputs" in rf:
        return "; ".join(f"{path or 'output'}: {field_text(f)}" for path, f in rf["outputs"].items())
    if rf.get("whole_input"):
        return "whole input"
    lo, hi = rf["min"], rf["max"]

    def size(a: int | None, b: int | None) -> str:
        return "whole" if b is None else str(b) if a == b else f"{a}–{b}"

    text = "×".join(size(a, b) for a, b in zip(lo, hi, strict=True))
    if rf.get("lower_bound"):
        text = "≥ " + text
    stride = [x for x in rf.get("stride") or [] if x is not None]
    if stride:
        text += " /" + (stride[0] if len(set(stride)) == 1 else ",".join(stride))
    if all(rf.get("covers_input") or [False]):
        text += ", covers input"
    return text


def graph_fields(trace: Any, margin: int = 256, max_margin: int = 1 << 16) -> GraphFields:
    """Propagate intervals through a traced run (see the module's docstring). The margin of virtual positions around
    the input grows until every theoretical interval is known (or ``max_margin`` is reached: those fields are then
    marked as lower bounds)."""
    while True:
        g = _Graph(trace, margin)
        g.run()
        if not g.ctx.exhausted or margin >= max_margin:
            return GraphFields(g.states, g.axes, dict(g.ctx.approximated), margin, trace)
        margin *= 4


# ---- chains along one axis (the bank's networks) ------------------------------------------------------------------


@dataclass(frozen=True)
class AxisLayer:
    """One layer along one axis: kind is conv (also pooling), tconv, upsample or full (fully connected)."""

    kind: str
    k: int = 1
    s: int = 1
    p: int = 0
    d: int = 1
    scale: int = 1

    def taps(self) -> tuple[im.Taps, Fraction]:
        if self.kind == "conv":
            return im.window(self.k, self.s, self.p, self.d), Fraction(self.s)
        if self.kind == "tconv":
            return im.transposed(self.k, self.s, self.p, self.d), Fraction(1, self.s)
        if self.kind == "upsample":
            return im.transposed(self.scale, self.scale), Fraction(1, self.scale)
        raise VerifyError(f"no index map for a {self.kind} layer")

    def out_size(self, n: int) -> int:
        if self.kind == "conv":
            return (n + 2 * self.p - self.d * (self.k - 1) - 1) // self.s + 1
        if self.kind == "tconv":
            return (n - 1) * self.s - 2 * self.p + self.d * (self.k - 1) + 1
        return n * self.scale

    def sources(self, o: int) -> set[int]:
        """The input positions output position ``o`` reads (unbounded input)."""
        taps, _ = self.taps()
        pos = np.array([o], dtype=np.int64)
        return {int(v[0]) for v, valid in taps(pos, False, 1 << 30) if valid is None or bool(valid[0])}


def propagate(layers: Sequence[AxisLayer], positions: Sequence[int] | None = None) -> list[RF]:
    """Receptive field after each layer of a chain along one axis (theoretical: the input unbounded), exact at every
    position of an input long enough that every layer keeps several positions (``positions``: only those output
    positions of each layer)."""
    ctx = _Context(256)
    n = max(256, 4 * math.prod(x.s for x in layers if x.kind == "conv") + sum(x.k * x.d for x in layers))
    out: list[RF] = []
    while True:
        pos = np.arange(n, dtype=np.int64)
        t = np.arange(-ctx.margin, n + ctx.margin, dtype=np.int64)
        f: Span | None = Span(0, pos, pos.copy(), -ctx.margin, t, t.copy(), Fraction(1))
        out = []
        size = n
        for layer in layers:
            if layer.kind == "full" or f is None:
                f = None
                out.append(RF(None, None, Fraction(0)))
                continue
            taps, rate = layer.taps()
            size = layer.out_size(size)
            if size < 1:
                raise VerifyError(f"the chain shrinks a {n}-position input to nothing")
            f = apply_map(ctx, f, size, taps, rate)
            if f.tlo is None or f.thi is None:
                break
            sl = slice(-f.first, -f.first + size)
            sizes = f.thi[sl] - f.tlo[sl] + 1
            if positions is not None:
                sizes = sizes[[p for p in positions if 0 <= p < size]]
            out.append(RF(int(sizes.min()), int(sizes.max()), f.jump))
        if len(out) == len(layers) or ctx.margin >= 1 << 16:
            return out
        ctx = _Context(ctx.margin * 4)


def closed_form(layers: Sequence[AxisLayer]) -> list[int | None]:
    """The classical recursion r ← r + (k − 1)·d·j, j ← j·s for chains of convolutions and pooling (no transposed
    layers or upsampling, where the receptive field differs between positions)."""
    r, j = 1, 1
    res: list[int | None] = []
    for layer in layers:
        if layer.kind == "full":
            res.append(None)
            r = -1
            continue
        if layer.kind != "conv" or r < 0:
            raise ValueError("the closed form covers convolution and pooling chains only")
        r += (layer.k - 1) * layer.d * j
        j *= layer.s
        res.append(r)
    return res


def fields_of(model: Any, inputs: Sequence[Any]) -> GraphFields:
    """Trace ``model`` on ``inputs`` (tensors: only shapes and dtypes matter) and propagate."""
    from verify.count.trace import trace

    return graph_fields(trace(model, inputs))


def __getattr__(name: str) -> Any:
    """The gradient-support measurements live in :mod:`verify.count.support`; the old names still resolve here."""
    if name in ("measure", "measure_axes", "measure_layers", "positive_copy"):
        from verify.count import support

        return getattr(support, name)
    raise AttributeError(name)
