"""Index maps along one axis: which input positions each output position of an operator reads.

A map is a function ``taps(o, bounded)`` of an array of output positions; it returns taps, pairs ``(v, valid)`` of
input positions and a mask (``None``: every tap is read). An output position reads ``v[i]`` of every tap whose mask
is set. ``bounded`` says whether the input is the real, finite one (padding reads nothing; interpolation clamps to
the border as torch does) or unbounded (the theoretical receptive field: every position exists, nothing is clamped).

:func:`gather` composes a map with the per-position intervals ``[lo, hi]`` of the map's input: the output's interval
at a position is the hull of the intervals it reads, O(positions × taps), vectorized. Intervals are hulls: the
support of a unit along an axis is summarized by its least and greatest input index (an empty support has
``lo > hi``).

Interpolation weights are exact rationals (a source coordinate that falls exactly on a pixel reads that pixel only,
since the other weight is zero); nearest-neighbour indices follow torch's arithmetic in the input's precision.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

BIG = 1 << 40  # an empty interval is (BIG, -BIG)

Tap = tuple[np.ndarray, np.ndarray | None]
Taps = Callable[[np.ndarray, bool, int], list[Tap]]  # (output positions, bounded, input length) -> taps


def window(k: int, s: int = 1, p: int = 0, d: int = 1) -> Taps:
    """Convolution and pooling: output o reads o·s − p + u·d for u < k (padding reads nothing)."""

    def taps(o: np.ndarray, bounded: bool, n: int) -> list[Tap]:
        return [(o * s - p + u * d, None) for u in range(k)]

    return taps


def transposed(k: int, s: int = 1, p: int = 0, d: int = 1) -> Taps:
    """Transposed convolution (and max-unpooling): output o receives input v where o = v·s − p + u·d for some u."""

    def taps(o: np.ndarray, bounded: bool, n: int) -> list[Tap]:
        out = []
        for u in range(k):
            num = o + p - u * d
            out.append((num // s, num % s == 0))
        return out

    return taps


def adaptive(n_in: int, n_out: int) -> Taps:
    """Adaptive pooling: output o reads [⌊o·n_in/n_out⌋, ⌈(o+1)·n_in/n_out⌉)."""
    width = -(-n_in // n_out) + 1

    def taps(o: np.ndarray, bounded: bool, n: int) -> list[Tap]:
        start = (o * n_in) // n_out
        end = -((-(o + 1) * n_in) // n_out)
        return [(start + u, start + u < end) for u in range(width)]

    return taps


def shift(left: int, mode: str = "constant") -> Taps:
    """Padding (or cropping, for negative ``left``): output o reads o − left; reflect, replicate and wrap (circular
    padding, roll) modes read a mirrored, clamped or wrapped-around position near the border of the real input."""

    def taps(o: np.ndarray, bounded: bool, n: int) -> list[Tap]:
        v = o - left
        if bounded and mode == "reflect" and n > 1:
            period = 2 * (n - 1)
            r = np.mod(v, period)
            v = np.where(r < n, r, period - r)
        elif bounded and mode == "replicate":
            v = np.clip(v, 0, n - 1)
        elif bounded and mode == "wrap":
            v = np.mod(v, n)
        return [(v, None)]

    return taps


def nearest(scale: float | None, n_in: int, n_out: int, exact: bool = False, dtype: str = "float32") -> Taps:
    """Nearest-neighbour interpolation as torch's CPU kernel computes it, in the input's arithmetic precision
    (float32, or float64 for float64 inputs): ⌊o·r⌋, or ⌊(o + ½)·r⌋ for nearest-exact, at most the last input index;
    r = 1/scale_factor when one was given, else n_in/n_out."""
    ft: Any = np.float64 if dtype == "float64" else np.float32
    r = ft(1.0 / scale) if scale is not None and scale > 0 else ft(n_in) / ft(n_out)
    half, zero = ft(0.5), ft(0)

    def taps(o: np.ndarray, bounded: bool, n: int) -> list[Tap]:
        x: Any = o.astype(ft)
        if not exact:
            v = np.floor(x * r).astype(np.int64)
        elif bounded:  # torch clamps the half-pixel source at 0 before rounding
            v = np.floor(np.maximum((x + half) * r - half, zero) + half).astype(np.int64)
        else:
            v = np.floor((x + half) * r).astype(np.int64)
        return [(np.minimum(v, n_in - 1) if bounded else v, None)]

    return taps


def _source(o: np.ndarray, scale: Fraction, align_corners: bool) -> tuple[np.ndarray, np.ndarray]:
    """The exact source coordinate of output o as numerator and denominator arrays (object arrays of Python ints when
    the scale's terms are large, so nothing overflows)."""
    a, b = scale.numerator, scale.denominator
    big = max(a, b) > (1 << 20)
    oo = o.astype(object) if big else o
    if align_corners:
        return oo * a, np.full(o.shape, b, dtype=object if big else np.int64)
    return (2 * oo + 1) * a - b, np.full(o.shape, 2 * b, dtype=object if big else np.int64)


def linear(scale: Fraction, align_corners: bool) -> Taps:
    """(Bi/tri)linear interpolation: the source coordinate x = (o + ½)·scale − ½ (or o·scale with aligned corners),
    clamped at 0 on the real input; reads ⌊x⌋ and, unless x is a whole number or ⌊x⌋ is the last pixel, ⌊x⌋ + 1."""

    def taps(o: np.ndarray, bounded: bool, n: int) -> list[Tap]:
        num, den = _source(o, scale, align_corners)
        if bounded:
            num = np.maximum(num, 0)
        i0 = (num // den).astype(np.int64)
        frac = (num % den).astype(np.int64) != 0
        if bounded:
            last = i0 >= n - 1
            i0 = np.minimum(i0, n - 1)
            frac = frac & ~last
        return [(i0, None), (i0 + 1, frac)]

    return taps


def cubic(scale: Fraction, align_corners: bool) -> Taps:
    """Bicubic interpolation: reads ⌊x⌋ − 1 … ⌊x⌋ + 2 (clamped to the real input), only ⌊x⌋ when x is a whole
    number (the cubic kernel vanishes at the other three)."""

    def taps(o: np.ndarray, bounded: bool, n: int) -> list[Tap]:
        num, den = _source(o, scale, align_corners)
        i0 = (num // den).astype(np.int64)
        frac = (num % den).astype(np.int64) != 0
        out: list[Tap] = []
        for u in (-1, 0, 1, 2):
            v = i0 + u
            out.append((np.clip(v, 0, n - 1) if bounded else v, None if u == 0 else frac))
        return out

    return taps


def gather(
    lo: np.ndarray, hi: np.ndarray, first: int, taps: list[Tap], bounded: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hull of the intervals read by each output position.

    ``lo``/``hi`` are the input's intervals at positions ``first, first + 1, …``. Returns the output's ``lo``, ``hi``
    and, for the unbounded case, whether each output position could be computed (every tap inside the known range);
    on the bounded input a tap outside it is padding and reads nothing."""
    m = len(taps[0][0]) if taps else 0
    n = len(lo)
    out_lo = np.full(m, BIG, dtype=np.int64)
    out_hi = np.full(m, -BIG, dtype=np.int64)
    ok = np.ones(m, dtype=bool)
    for v, valid in taps:
        idx = np.asarray(v, dtype=np.int64) - first
        inside = (idx >= 0) & (idx < n)
        read = inside if valid is None else inside & valid
        if not bounded:
            ok &= inside if valid is None else inside | ~valid
        idx = np.clip(idx, 0, max(n - 1, 0))
        if n == 0:
            continue
        out_lo = np.where(read, np.minimum(out_lo, lo[idx]), out_lo)
        out_hi = np.where(read, np.maximum(out_hi, hi[idx]), out_hi)
    return out_lo, out_hi, ok
