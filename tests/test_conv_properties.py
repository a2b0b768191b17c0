"""Property tests: the conv-arithmetic formulas against real torch layers over wide configuration spaces.

Each property is a plain function of (formula, config) so that the same property can be shown to catch mutant
formulas: an off-by-one, a missing floor, dilation ignored.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from strategies import any_configs, conv_configs, pool_configs, tconv_configs

from verify import VerifyError
from verify.arith import conv


def meta(*shape):
    return torch.empty(*shape, device="meta")


def prop_conv_shape(formula, c):
    layer = nn.Conv2d(c["c_in"], c["c_out"], c["k"], c["s"], c["p"], c["d"], groups=c["g"], device="meta")
    torch_h = layer(meta(1, c["c_in"], c["n"], c["n"] + 2)).shape[-2]
    assert formula(c["n"], c["k"], c["s"], c["p"], c["d"]) == torch_h


def prop_conv_params(formula, c):
    for bias in (False, True):
        layer = nn.Conv2d(c["c_in"], c["c_out"], c["k"], groups=c["g"], bias=bias, device="meta")
        assert formula(c["c_in"], c["c_out"], c["k"], groups=c["g"], bias=bias) == sum(
            p.numel() for p in layer.parameters()
        )


def _rejects(fn):
    try:
        fn()
    except VerifyError as exc:
        assert str(exc) and "\n" not in str(exc)
        return True
    return False


def prop_tconv_shape(formula, c):
    layer = nn.ConvTranspose2d(1, 1, c["k"], c["s"], c["p"], output_padding=c["op"], dilation=c["d"], bias=False)
    args = (c["n"], c["k"], c["s"], c["p"], c["op"], c["d"])
    try:
        torch_h = layer(torch.zeros(1, 1, c["n"], c["n"])).shape[-2]
    except RuntimeError:
        torch_h = 0
    if torch_h == 0:  # torch raises, or (for some sizes) returns an empty tensor: the formula must reject it
        assert _rejects(lambda: formula(*args))
    else:
        assert formula(*args) == torch_h


def prop_output_padding_inverts(formula, c):
    """conv then transposed conv with the formula's output_padding gives back the input size, in torch."""
    n, k, s, p, d = c["n"], c["k"], c["s"], c["p"], c["d"]
    y = nn.Conv2d(1, 1, k, s, p, d, bias=False, device="meta")(meta(1, 1, n, n))
    op = formula(n, k, s, p, d)
    assert 0 <= op < max(s, d)
    back = nn.ConvTranspose2d(1, 1, k, s, p, output_padding=op, dilation=d, bias=False)(torch.zeros(y.shape))
    assert back.shape[-1] == n


def prop_pool_shape(formula, c):
    cls = nn.MaxPool2d if c["max"] else nn.AvgPool2d
    torch_h = cls(c["k"], c["s"], c["p"], ceil_mode=c["ceil"])(torch.zeros(1, 1, c["n"], c["n"])).shape[-1]
    assert formula(c["n"], c["k"], c["s"], c["p"], ceil_mode=c["ceil"]) == torch_h


def prop_rejects_like_torch(formula_conv, formula_tconv, c):
    """A configuration torch rejects is rejected by the formulas with a VerifyError, and vice versa."""
    n, k, s, p, d, op = c["n"], c["k"], c["s"], c["p"], c["d"], c["op"]
    for layer_fn, formula in (
        (lambda: nn.Conv2d(1, 1, max(k, 1), s, p, d, bias=False), lambda: formula_conv(n, k, s, p, d)),
        (
            lambda: nn.ConvTranspose2d(1, 1, max(k, 1), s, p, output_padding=op, dilation=d, bias=False),
            lambda: formula_tconv(n, k, s, p, op, d),
        ),
    ):
        try:
            if k < 1:
                raise RuntimeError("kernel size should be greater than zero")
            torch_ok = layer_fn()(torch.zeros(1, 1, n, n)).numel() > 0  # an empty output counts as rejected
        except (RuntimeError, ValueError):
            torch_ok = False
        assert torch_ok == (not _rejects(formula)), c


@given(conv_configs())
def test_conv_shape(c):
    prop_conv_shape(conv.conv_out, c)


@given(conv_configs())
def test_conv_params(c):
    prop_conv_params(conv.conv_params, c)


@given(tconv_configs())
def test_tconv_shape(c):
    prop_tconv_shape(conv.conv_transpose_out, c)


@given(conv_configs())
def test_output_padding_inverts_conv(c):
    prop_output_padding_inverts(conv.output_padding, c)


@given(pool_configs())
def test_pool_shape(c):
    prop_pool_shape(conv.pool_out, c)


@given(any_configs())
def test_rejections_match_torch(c):
    prop_rejects_like_torch(conv.conv_out, conv.conv_transpose_out, c)


# ---- each property catches a mutant formula ------------------------------------------------------------------------


def _off_by_one(n, k, s=1, p=0, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s


def _no_floor(n, k, s=1, p=0, d=1):
    return (n + 2 * p - d * (k - 1) - 1) / s + 1


def _no_dilation(n, k, s=1, p=0, d=1):
    return (n + 2 * p - k) // s + 1


def _tconv_no_dilation(n, k, s=1, p=0, op=0, d=1):
    return (n - 1) * s - 2 * p + k + op


def _op_no_dilation(n, k, s=1, p=0, d=1):
    return (n + 2 * p - k) % s


def _params_groups_twice(c_in, c_out, k, groups=1, bias=False):
    return c_out * c_in * k * k // (groups * groups) + (c_out if bias else 0)


def _pool_always_floor(n, k, s=None, p=0, d=1, ceil_mode=False):
    return (n + 2 * p - k) // s + 1


def _conv_accepts_all(n, k, s=1, p=0, d=1):
    return math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1


def _fails(prop, *args, strategy):
    with pytest.raises(AssertionError):
        settings(max_examples=400, database=None, derandomize=True, report_multiple_bugs=False)(
            given(strategy)(lambda c: prop(*args, c))
        )()


@pytest.mark.parametrize("mutant", [_off_by_one, _no_floor, _no_dilation], ids=lambda f: f.__name__)
def test_conv_shape_catches(mutant):
    _fails(prop_conv_shape, mutant, strategy=conv_configs())


def test_tconv_shape_catches_dilation_ignored():
    _fails(prop_tconv_shape, _tconv_no_dilation, strategy=tconv_configs())


def test_output_padding_catches_dilation_ignored():
    _fails(prop_output_padding_inverts, _op_no_dilation, strategy=conv_configs())


def test_params_catches_groups_divided_twice():
    _fails(prop_conv_params, _params_groups_twice, strategy=conv_configs())


def test_pool_catches_ceil_mode_ignored():
    _fails(prop_pool_shape, _pool_always_floor, strategy=pool_configs())


def test_rejections_catch_a_formula_without_validation():
    _fails(prop_rejects_like_torch, _conv_accepts_all, conv.conv_transpose_out, strategy=any_configs())
