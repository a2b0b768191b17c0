"""Exact 2-D convolution arithmetic on nested lists of ints or fractions, written from the definitions.

These are the hand-worked routes the bank's matrix questions are derived and checked by; torch's F.conv2d and
F.conv_transpose2d are the independent routes they are compared against.

>>> correlate2d([[1, 2], [3, 4]], [[1, 0], [0, 1]])
[[5]]
>>> scatter_transpose2d([[1]], [[1, 2], [3, 4]], s=1)
[[1, 2], [3, 4]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Matrix = list[list[Any]]


def zeros(h: int, w: int) -> Matrix:
    return [[0] * w for _ in range(h)]


def pad(x: Sequence[Sequence[Any]], p: int) -> Matrix:
    w = len(x[0]) + 2 * p
    return [[0] * w for _ in range(p)] + [[0] * p + list(r) + [0] * p for r in x] + [[0] * w for _ in range(p)]


def correlate2d(x: Sequence[Sequence[Any]], k: Sequence[Sequence[Any]], s: int = 1, p: int = 0, d: int = 1) -> Matrix:
    """What torch calls conv2d: Y[i][j] = Σ_{u,v} X_pad[i·s + u·d][j·s + v·d] · K[u][v]."""
    xp = pad(x, p)
    kh, kw = len(k), len(k[0])
    oh = (len(xp) - d * (kh - 1) - 1) // s + 1
    ow = (len(xp[0]) - d * (kw - 1) - 1) // s + 1
    return [
        [sum(xp[i * s + u * d][j * s + v * d] * k[u][v] for u in range(kh) for v in range(kw)) for j in range(ow)]
        for i in range(oh)
    ]


def dilate_kernel(k: Sequence[Sequence[Any]], d: int) -> Matrix:
    """Insert d − 1 zeros between neighbouring kernel entries (a dilated kernel as an ordinary one)."""
    kh, kw = len(k), len(k[0])
    out = zeros(d * (kh - 1) + 1, d * (kw - 1) + 1)
    for u in range(kh):
        for v in range(kw):
            out[u * d][v * d] = k[u][v]
    return out


def scatter_canvas(y: Sequence[Sequence[Any]], k: Sequence[Sequence[Any]], s: int = 1) -> Matrix:
    """Each input entry stamps a weighted copy of the kernel, stride s apart; the copies are summed."""
    kh, kw = len(k), len(k[0])
    h, w = (len(y) - 1) * s + kh, (len(y[0]) - 1) * s + kw
    canvas = zeros(h, w)
    for i, row in enumerate(y):
        for j, v in enumerate(row):
            for u in range(kh):
                for q in range(kw):
                    canvas[i * s + u][j * s + q] += v * k[u][q]
    return canvas


def scatter_transpose2d(
    y: Sequence[Sequence[Any]], k: Sequence[Sequence[Any]], s: int = 1, p: int = 0, op: int = 0
) -> Matrix:
    """Transposed convolution: the scatter canvas, cropped by p at the top/left and sized
    (n − 1)s − 2p + k + op (output_padding adds rows/columns at the bottom/right)."""
    canvas = scatter_canvas(y, k, s)
    oh = (len(y) - 1) * s - 2 * p + len(k) + op
    ow = (len(y[0]) - 1) * s - 2 * p + len(k[0]) + op
    grown = [r + [0] * max(0, p + ow - len(r)) for r in canvas]
    grown += [[0] * len(grown[0]) for _ in range(max(0, p + oh - len(grown)))]
    return [row[p : p + ow] for row in grown[p : p + oh]]


def unit(h: int, w: int, i: int, j: int) -> Matrix:
    m = zeros(h, w)
    m[i][j] = 1
    return m


def inner(a: Sequence[Sequence[Any]], b: Sequence[Sequence[Any]]) -> Any:
    return sum(x * y for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True))
