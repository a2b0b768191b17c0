"""Output sizes, paddings and parameter counts of convolution, transposed convolution and pooling.

One definition per formula serves both uses: called on Python ints it returns an int and rejects, with a clear
:class:`~verify.VerifyError`, every configuration that torch rejects; called with sympy symbols it returns the sympy
expression, which the bank prints as the derived answer.

>>> conv_out(512, 5, s=2, p=2)
256
>>> conv_transpose_out(3, 3, s=2, p=1, op=1)
6
>>> output_padding(32, 4, s=2, p=1)
0
>>> import sympy
>>> H, K, S, P = sympy.symbols("H K S P", integer=True, positive=True)
>>> conv_out(H, K, s=S, p=P)
floor((H - K + 2*P)/S) + 1
"""

from __future__ import annotations

from typing import Any

from verify import VerifyError

Num = Any  # an int, or a sympy expression


def _concrete(*xs: Num) -> bool:
    return all(isinstance(x, int) and not isinstance(x, bool) for x in xs)


def _floor_div(a: Num, b: Num) -> Num:
    if _concrete(a, b):
        return a // b
    import sympy

    return sympy.floor(sympy.Integer(1) * a / b)


def _ceil_div(a: Num, b: Num) -> Num:
    if _concrete(a, b):
        return -((-a) // b)
    import sympy

    return sympy.ceiling(sympy.Integer(1) * a / b)


def _mod(a: Num, b: Num) -> Num:
    if _concrete(a, b):
        return a % b
    import sympy

    return sympy.Mod(a, b)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise VerifyError(message)


def _check_common(n: Num, k: Num, s: Num, p: Num, d: Num) -> None:
    if not _concrete(n, k, s, p, d):
        return
    _require(n >= 1, f"input size must be >= 1 (got {n})")
    _require(k >= 1, f"kernel_size must be >= 1 (got {k})")
    _require(s >= 1, f"stride must be >= 1 (got {s})")
    _require(p >= 0, f"padding must be >= 0 (got {p})")
    _require(d >= 1, f"dilation must be >= 1 (got {d})")


def effective_kernel(k: Num, d: Num = 1) -> Num:
    """The span of a dilated kernel: ``d·(k − 1) + 1``."""
    return d * (k - 1) + 1


def conv_out(n: Num, k: Num, s: Num = 1, p: Num = 0, d: Num = 1) -> Num:
    """Output size of a convolution along one axis: ``⌊(n + 2p − d(k − 1) − 1) / s⌋ + 1``.

    >>> conv_out(5, 3, s=2, p=2, d=2)
    3
    """
    _check_common(n, k, s, p, d)
    span = n + 2 * p - effective_kernel(k, d)
    if _concrete(span):
        _require(
            span >= 0,
            f"kernel span {effective_kernel(k, d)} is larger than the padded input {n + 2 * p}",
        )
    return _floor_div(span, s) + 1


def conv_transpose_out(n: Num, k: Num, s: Num = 1, p: Num = 0, op: Num = 0, d: Num = 1) -> Num:
    """Output size of a transposed convolution along one axis: ``(n − 1)s − 2p + d(k − 1) + op + 1``.

    >>> conv_transpose_out(2, 2)
    3
    """
    _check_common(n, k, s, p, d)
    if _concrete(op, s, d):
        _require(op >= 0, f"output_padding must be >= 0 (got {op})")
        _require(
            op < max(s, d),
            f"output_padding must be smaller than stride or dilation (got {op}, stride {s}, dilation {d})",
        )
    out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
    if _concrete(out):
        _require(out >= 1, f"transposed convolution output size would be {out} (must be >= 1)")
    return out


def output_padding(n: Num, k: Num, s: Num = 1, p: Num = 0, d: Num = 1) -> Num:
    """The output_padding that makes a transposed convolution restore the input size ``n`` of a convolution.

    Solving ``conv_transpose_out(conv_out(n, k, s, p, d), k, s, p, op, d) = n`` for ``op`` gives
    ``(n + 2p − d(k − 1) − 1) mod s``: the rows the convolution's floor dropped.

    >>> output_padding(5, 3, s=2, p=1)
    0
    >>> output_padding(6, 3, s=2, p=1)
    1
    """
    conv_out(n, k, s, p, d)  # validates
    return _mod(n + 2 * p - effective_kernel(k, d), s)


def pool_out(n: Num, k: Num, s: Num | None = None, p: Num = 0, d: Num = 1, ceil_mode: bool = False) -> Num:
    """Output size of max or average pooling (stride defaults to the kernel size, as in torch).

    With ``ceil_mode`` the last window may hang over the border, but must start inside the input or left padding (so a
    window wider than the padded input still gives one output when it overhangs by less than the stride).

    >>> pool_out(64, 2, s=2)
    32
    >>> pool_out(6, 3, s=2, p=1, ceil_mode=True)
    4
    """
    s = k if s is None else s
    _check_common(n, k, s, p, d)
    span = n + 2 * p - effective_kernel(k, d)
    if _concrete(p, k):
        # torch's rule, dilated or not: the padding at most half the kernel size (not of its dilated span)
        _require(2 * p <= k, f"pooling padding must be at most half the kernel size (got padding {p}, kernel {k})")
    too_large = f"pooling window {effective_kernel(k, d)} is larger than the padded input {n + 2 * p}"
    if not ceil_mode:
        if _concrete(span):
            _require(span >= 0, too_large)
        return _floor_div(span, s) + 1
    out = _ceil_div(span, s) + 1  # a window wider than the padded input still fits once when it overhangs by < s
    if _concrete(out, n, p, s):
        out = out - 1 if (out - 1) * s >= n + p else out
        _require(out >= 1, too_large)
        return out
    import sympy

    return sympy.Piecewise((out - 1, (out - 1) * s >= n + p), (out, True))


def conv_params(c_in: Num, c_out: Num, kh: Num, kw: Num | None = None, groups: Num = 1, bias: bool = False) -> Num:
    """Learnable parameters of a (possibly grouped) convolution: ``c_out · (c_in/g) · kh · kw`` (+ c_out bias).

    Transposed convolution has the same count (its weight is ``c_in × c_out/g × kh × kw``).

    >>> conv_params(3, 128, 5)
    9600
    >>> conv_params(32, 32, 5, groups=32)
    800
    """
    kw = kh if kw is None else kw
    if _concrete(c_in, c_out, groups):
        _require(groups >= 1, f"groups must be >= 1 (got {groups})")
        _require(c_in % groups == 0, f"in_channels {c_in} must be divisible by groups {groups}")
        _require(c_out % groups == 0, f"out_channels {c_out} must be divisible by groups {groups}")
    weights = c_out * (c_in / groups if not _concrete(c_in, groups) else c_in // groups) * kh * kw
    return weights + (c_out if bias else 0)


def linear_params(n_in: Num, n_out: Num, bias: bool = False) -> Num:
    """Learnable parameters of a fully connected layer.

    >>> linear_params(16384, 10, bias=True)
    163850
    """
    return n_in * n_out + (n_out if bias else 0)


def window_property(m: Num, n: Num, k: Num, s: Num = 1, p: Num = 0, d: Num = 1) -> bool:
    """Whether ``m`` is the number of windows a convolution fits: the m-th window ends inside the padded input and an
    (m+1)-th would not. This characterizes the output size without a floor, so it checks a claimed size independently.

    >>> window_property(256, 512, 5, s=2, p=2), window_property(257, 512, 5, s=2, p=2)
    (True, False)
    """
    span = effective_kernel(k, d)
    return bool((m - 1) * s + span <= n + 2 * p < m * s + span)
