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
from hypothesis import strategies as st
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


# ---- what the formulas take when an argument is left out, what they return, and what they say when they reject -----


def _torch_side(cls, n, *args, device="meta", **kwargs):
    """The output side a layer ``cls(1, 1, *args, **kwargs)`` gives an n×n input, or None where torch rejects the layer
    or the input, or gives an empty output. The meta device checks sizes but not every argument (a negative padding
    passes there): arguments outside their range need the cpu."""
    try:
        side = cls(1, 1, *args, bias=False, device=device, **kwargs)(torch.zeros(1, 1, n, n, device=device)).shape[-1]
    except (RuntimeError, ValueError):
        return None
    return side or None


def _formula_side(formula, *args, **kwargs):
    try:
        return formula(*args, **kwargs)
    except VerifyError:
        return None


@pytest.mark.parametrize("n", range(1, 9))
@pytest.mark.parametrize("k", range(1, 5))
def test_left_out_arguments_take_torchs_defaults(n, k):
    """Stride 1, padding 0, dilation 1 and output_padding 0 where an argument is left out, as torch's layers take
    them: each argument given alone, the others left to their defaults on both sides."""
    for name, torch_name, values in (
        ("s", "stride", (1, 2, 3)),
        ("p", "padding", (0, 1, 2)),
        ("d", "dilation", (1, 2, 3)),
    ):
        for v in values:
            given_alone = {name: v}
            conv_side = _torch_side(nn.Conv2d, n, k, **{torch_name: v})
            assert _formula_side(conv.conv_out, n, k, **given_alone) == conv_side, (name, v)
            want = _torch_side(nn.ConvTranspose2d, n, k, **{torch_name: v})
            assert _formula_side(conv.conv_transpose_out, n, k, **given_alone) == want, (name, v)
            op = _formula_side(conv.output_padding, n, k, **given_alone)
            if conv_side is None:
                assert op is None, (name, v)
            else:
                back = _torch_side(nn.ConvTranspose2d, conv_side, k, output_padding=op, **{torch_name: v})
                assert back == n, (name, v, op)
    for s in (1, 2, 3):  # output_padding alone needs a stride above it
        want = _torch_side(nn.ConvTranspose2d, n, k, s, output_padding=s - 1)
        assert _formula_side(conv.conv_transpose_out, n, k, s=s, op=s - 1) == want, s
    assert _formula_side(conv.conv_transpose_out, n, k) == _torch_side(nn.ConvTranspose2d, n, k)


@given(conv_configs())
def test_int_arguments_give_ints(c):
    """Called on Python ints the formulas return Python ints (not sympy numbers of the same value)."""
    n, k, s, p, d = c["n"], c["k"], c["s"], c["p"], c["d"]
    values = [conv.conv_out(n, k, s, p, d), conv.output_padding(n, k, s, p, d)]
    values.append(conv.conv_transpose_out(values[0], k, s, p, values[1], d))
    if 2 * p <= k:
        values += [conv.pool_out(n + k, k, s, p, ceil_mode=ceil) for ceil in (False, True)]
    assert all(type(v) is int for v in values), values


@given(any_configs())
def test_output_padding_rejects_what_the_convolution_rejects(c):
    """output_padding is defined for the convolutions torch accepts, and rejects the others with a VerifyError."""
    n, k, s, p, d = c["n"], c["k"], c["s"], c["p"], c["d"]
    torch_side = None if k < 1 else _torch_side(nn.Conv2d, n, k, s, p, d, device="cpu")
    op = _formula_side(conv.output_padding, n, k, s, p, d)
    assert (op is None) == (torch_side is None), (c, op, torch_side)


@pytest.mark.parametrize("which", ["n", "k", "s", "p", "d", "op"])
def test_one_symbolic_argument_gives_the_formula(which):
    """Any one argument may be a symbol (with no sign assumed) while the others are ints: the validation that needs
    ints is skipped, and each formula, the symbol then given values, is what torch's layers give."""
    import sympy

    x = sympy.Symbol("x", integer=True)
    base = {"n": 5, "k": 3, "s": 2, "p": 1, "d": 2, "op": 1}
    values = {"n": range(5, 9), "k": range(1, 4), "s": range(2, 4), "p": range(3), "d": range(2, 4), "op": range(2)}
    args = {**base, which: x}
    conv_args = {name: v for name, v in args.items() if name != "op"}
    exprs = (conv.conv_out(**conv_args), conv.output_padding(**conv_args), conv.conv_transpose_out(**args))
    for v in values[which]:
        a = {**base, which: v}
        at = [e.subs(x, v) if isinstance(e, sympy.Basic) else e for e in exprs]
        y = nn.Conv2d(1, 1, a["k"], a["s"], a["p"], a["d"], bias=False, device="meta")(meta(1, 1, a["n"], a["n"]))
        assert at[0] == y.shape[-1], (which, v)
        if which != "op":
            op = int(at[1])
            back = nn.ConvTranspose2d(1, 1, a["k"], a["s"], a["p"], op, dilation=a["d"], bias=False, device="meta")
            assert back(meta(*y.shape)).shape[-1] == a["n"], (which, v, op)
        layer = nn.ConvTranspose2d(1, 1, a["k"], a["s"], a["p"], a["op"], dilation=a["d"], bias=False, device="meta")
        assert at[2] == layer(meta(1, 1, a["n"], a["n"])).shape[-1], (which, v)


def _verify_message(formula):
    with pytest.raises(VerifyError) as info:
        formula()
    return str(info.value)


def _torch_message(layer, n):
    with pytest.raises(RuntimeError) as info:
        layer(torch.zeros(1, 1, n, n))
    return str(info.value)


@pytest.mark.parametrize(("n", "k", "p", "d"), [(3, 5, 0, 1), (4, 3, 0, 2), (2, 3, 1, 3), (1, 4, 1, 1)])
def test_a_kernel_too_large_is_reported_with_torchs_sizes(n, k, p, d):
    """The dilated kernel and the padded input named in the rejection are the sizes torch's own error names."""
    import re

    said = _torch_message(nn.Conv2d(1, 1, k, 1, p, d, bias=False), n)
    padded, kernel = re.search(
        r"padded input size per channel: \((\d+) x \d+\)\. Kernel size: \((\d+) x", said
    ).groups()
    ours = _verify_message(lambda: conv.conv_out(n, k, 1, p, d))
    assert ours == f"kernel span {kernel} is larger than the padded input {padded}", (ours, said)
    assert conv.effective_kernel(k, d) == int(kernel)
    if d == 1:  # dilation left out is 1
        assert conv.effective_kernel(k) == int(kernel)


@pytest.mark.parametrize(
    ("n", "k", "s", "p", "op", "d"), [(3, 3, 2, 0, 2, 1), (3, 3, 1, 0, 2, 2), (2, 2, 3, 0, 3, 2), (3, 3, 2, 0, -1, 1)]
)
def test_a_bad_output_padding_is_reported_with_torchs_numbers(n, k, s, p, op, d):
    """output_padding at or above both stride and dilation, or below zero: the rejection names torch's numbers."""
    import re

    said = _torch_message(nn.ConvTranspose2d(1, 1, k, s, p, output_padding=op, dilation=d, bias=False), n)
    ours = _verify_message(lambda: conv.conv_transpose_out(n, k, s, p, op, d))
    if op < 0:
        assert "negative output_padding" in said and ours == f"output_padding must be >= 0 (got {op})"
        return
    got = re.search(r"output_padding_height: (\d+) .*stride_height: (\d+) .*dilation_height: (\d+)", said).groups()
    want = f"output_padding must be smaller than stride or dilation (got {got[0]}, stride {got[1]}, dilation {got[2]})"
    assert ours == want, (ours, said)


@pytest.mark.parametrize(("n", "k", "s", "p"), [(1, 1, 1, 3), (2, 1, 1, 2), (1, 2, 1, 3)])
def test_a_transposed_output_too_small_is_reported_with_torchs_size(n, k, s, p):
    import re

    said = _torch_message(nn.ConvTranspose2d(1, 1, k, s, p, bias=False), n)
    size = re.search(r"Calculated output size per channel: \((-?\d+) x", said).group(1)
    ours = _verify_message(lambda: conv.conv_transpose_out(n, k, s, p))
    assert ours == f"transposed convolution output size would be {size} (must be >= 1)", (ours, said)


@pytest.mark.parametrize("ceil", [False, True])
def test_symbolic_pool_out_is_torchs_size(ceil):
    """pool_out on symbols, or with only the input size or the stride symbolic (floor, or ceiling with the last-window rule as a
    Piecewise), its symbols then given values, is the output side of torch's MaxPool2d."""
    import sympy

    N, K, S = sympy.symbols("N K S", integer=True, positive=True)
    P = sympy.Symbol("P", integer=True, nonnegative=True)
    expr = conv.pool_out(N, K, S, P, ceil_mode=ceil)
    assert expr.has(sympy.ceiling) == ceil and expr.has(sympy.floor) != ceil  # written as the rule it applies
    for k in (1, 2, 3, 4):
        for s in (1, 2, 3):
            for p in range(k // 2 + 1):
                for n in range(max(1, k - 2 * p), 9):
                    want = nn.MaxPool2d(k, s, p, ceil_mode=ceil)(meta(1, 1, n, n)).shape[-1]
                    assert expr.subs({N: n, K: k, S: s, P: p}) == want, (n, k, s, p)
    # only the input size, or only the stride, a symbol: the same rule, written the same way
    for k, s, p in ((3, 2, 1), (2, 3, 0)):
        by_size, by_stride = conv.pool_out(N, k, s, p, ceil_mode=ceil), conv.pool_out(7, k, S, p, ceil_mode=ceil)
        for expr in (by_size, by_stride):
            assert expr.has(sympy.ceiling) == ceil and expr.has(sympy.floor) != ceil, expr
        for n in range(max(1, k - 2 * p), 9):
            assert by_size.subs(N, n) == nn.MaxPool2d(k, s, p, ceil_mode=ceil)(meta(1, 1, n, n)).shape[-1], (n, k, s, p)
        for stride in (1, 2, 3, 4):
            want = nn.MaxPool2d(k, stride, p, ceil_mode=ceil)(meta(1, 1, 7, 7)).shape[-1]
            assert by_stride.subs(S, stride) == want, (k, stride, p)


@pytest.mark.parametrize(
    ("arg", "value", "torch_says"),
    [
        ("n", 0, r"padded input size per channel: \(0 x"),
        ("k", 0, r"kernel size should be greater than zero, but got kernel_height: 0"),
        ("s", 0, r"non-positive stride"),
        ("s", -2, r"non-positive stride"),
        ("p", -1, r"negative padding"),
        ("d", 0, r"dilation should be greater than zero, but got \[0, 0\]"),
    ],
)
def test_an_argument_out_of_range_is_named_with_its_value(arg, value, torch_says):
    """torch rejects the argument (its message names it); the formulas reject it with its name, bound and value."""
    import re

    a = {"n": 5, "k": 3, "s": 1, "p": 0, "d": 1, arg: value}
    with pytest.raises(RuntimeError) as info:
        x, w = torch.zeros(1, 1, a["n"], 5), torch.zeros(1, 1, a["k"], a["k"])
        torch.nn.functional.conv2d(x, w, stride=a["s"], padding=a["p"], dilation=a["d"])
    assert re.search(torch_says, str(info.value)), str(info.value)
    name, bound = {"n": ("input size", 1), "k": ("kernel_size", 1), "s": ("stride", 1), "p": ("padding", 0)}.get(
        arg, ("dilation", 1)
    )
    want = f"{name} must be >= {bound} (got {value})"
    for formula in (conv.conv_out, conv.output_padding, conv.pool_out):
        assert _verify_message(lambda f=formula: f(a["n"], a["k"], a["s"], a["p"], a["d"])) == want, formula
    assert _verify_message(lambda: conv.conv_transpose_out(a["n"], a["k"], a["s"], a["p"], 0, a["d"])) == want


# ---- the exact (list-of-lists) convolution arithmetic against torch's layers ---------------------------------------


@st.composite
def exact_configs(draw):
    """A rectangular integer input and kernel (rows and columns differ, so a slip between them shows), a stride, a
    padding and a dilation for which the kernel's span fits the padded input."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s, p, d = draw(st.integers(1, 3)), draw(st.integers(0, 2)), draw(st.integers(1, 3))
    h = draw(st.integers(max(1, d * (kh - 1) + 1 - 2 * p), 7))
    w = draw(st.integers(max(1, d * (kw - 1) + 1 - 2 * p), 7))
    cell = st.integers(-9, 9)
    x = draw(st.lists(st.lists(cell, min_size=w, max_size=w), min_size=h, max_size=h))
    k = draw(st.lists(st.lists(cell, min_size=kw, max_size=kw), min_size=kh, max_size=kh))
    return x, k, s, p, d


def _t(m):
    return torch.tensor(m, dtype=torch.float64).view(1, 1, len(m), len(m[0]))


def _ints(t):
    return [[int(v) for v in row] for row in t.view(t.shape[-2], t.shape[-1]).tolist()]


@given(exact_configs())
def test_exact_correlation_is_torchs_conv2d(cfg):
    from verify.arith import exact

    x, k, s, p, d = cfg
    want = _ints(torch.nn.functional.conv2d(_t(x), _t(k), stride=s, padding=p, dilation=d))
    assert exact.correlate2d(x, k, s, p, d) == want
    assert exact.correlate2d(exact.pad(x, p), exact.dilate_kernel(k, d), s) == want  # padding and dilation unrolled
    if len(k) <= len(x) and len(k[0]) <= len(x[0]):  # stride 1, no padding, no dilation when left out
        assert exact.correlate2d(x, k) == _ints(torch.nn.functional.conv2d(_t(x), _t(k)))
    assert exact.pad(x, p) == _ints(torch.nn.functional.pad(_t(x), (p, p, p, p)))


@given(exact_configs(), st.integers(0, 2))
def test_exact_scatter_is_torchs_conv_transpose2d(cfg, op):
    from verify.arith import exact

    y, k, s, _, _ = cfg
    op = min(op, s - 1)
    p = min(cfg[3], (min(len(k), len(k[0])) - 1) // 2)  # torch needs the cropped output to stay non-empty
    want = _ints(torch.nn.functional.conv_transpose2d(_t(y), _t(k), stride=s, padding=p, output_padding=op))
    assert exact.scatter_transpose2d(y, k, s, p, op) == want
    assert exact.scatter_canvas(y, k, s) == _ints(torch.nn.functional.conv_transpose2d(_t(y), _t(k), stride=s))
    assert exact.scatter_canvas(y, k) == _ints(torch.nn.functional.conv_transpose2d(_t(y), _t(k)))  # stride 1
    assert exact.scatter_transpose2d(y, k) == _ints(torch.nn.functional.conv_transpose2d(_t(y), _t(k)))
    assert exact.scatter_transpose2d(y, k, s) == _ints(torch.nn.functional.conv_transpose2d(_t(y), _t(k), stride=s))


@given(exact_configs())
def test_exact_unit_and_inner_are_torchs_one_hot_and_dot(cfg):
    from verify.arith import exact

    x, k, _, _, _ = cfg
    h, w = len(x), len(x[0])
    for i in range(h):
        for j in range(w):
            hot = torch.zeros(h, w, dtype=torch.int64)
            hot[i, j] = 1
            assert exact.unit(h, w, i, j) == hot.tolist()
            assert exact.inner(exact.unit(h, w, i, j), x) == x[i][j]
    assert exact.inner(x, x) == int((_t(x) * _t(x)).sum())
    # matrices of different shapes (a column or a row more) are an error, never a sum over the overlap
    for other in ([[*row, 1] for row in x], [*x, [1] * w]):
        with pytest.raises(ValueError):
            exact.inner(x, other)
    assert exact.zeros(len(k), w) == torch.zeros(len(k), w, dtype=torch.int64).tolist()


@pytest.mark.parametrize("n", range(1, 9))
@pytest.mark.parametrize("k", range(1, 5))
def test_pool_and_window_defaults_are_torchs(n, k):
    """pool_out with the stride, padding and ceil_mode left out is torch's MaxPool2d with its defaults (stride the
    kernel, no padding, floor); window_property with the stride and padding left out holds for exactly the output size
    of torch's Conv2d with its defaults."""
    try:
        pooled = nn.MaxPool2d(k)(meta(1, 1, n, n)).shape[-1] or None
    except RuntimeError:
        pooled = None
    assert _formula_side(conv.pool_out, n, k) == pooled
    for s in (1, 2, 3):
        try:
            want = nn.MaxPool2d(k, s)(meta(1, 1, n, n)).shape[-1] or None
        except RuntimeError:
            want = None
        assert _formula_side(conv.pool_out, n, k, s) == want, s
    side = _torch_side(nn.Conv2d, n, k)
    if side is not None:
        assert conv.window_property(side, n, k) and not conv.window_property(side + 1, n, k)
        assert side == 1 or not conv.window_property(side - 1, n, k)


@given(conv_configs())
def test_conv_params_on_ints_symbols_and_mixed(c):
    """conv_params is the numel of a real Conv2d's weights (and bias): an int on ints; with a symbol for the input
    channels, output channels or groups, a formula without a floor whose value is that numel."""
    import sympy

    x = sympy.Symbol("x", integer=True, positive=True)
    c_in, c_out, k, g = c["c_in"], c["c_out"], c["k"], c["g"]
    for bias in (False, True):
        want = sum(p.numel() for p in nn.Conv2d(c_in, c_out, k, groups=g, bias=bias, device="meta").parameters())
        got = conv.conv_params(c_in, c_out, k, groups=g, bias=bias)
        assert got == want and type(got) is int
        for which, value in (("c_in", c_in), ("c_out", c_out), ("groups", g)):
            args = {"c_in": c_in, "c_out": c_out, "groups": g, which: x}
            expr = conv.conv_params(args["c_in"], args["c_out"], k, groups=args["groups"], bias=bias)
            assert not expr.has(sympy.floor) and expr.subs(x, value) == want, (which, expr)


@pytest.mark.parametrize(
    ("c_in", "c_out", "groups", "torch_says", "ours"),
    [
        (3, 4, 2, "in_channels must be divisible by groups", "in_channels 3 must be divisible by groups 2"),
        (4, 3, 2, "out_channels must be divisible by groups", "out_channels 3 must be divisible by groups 2"),
        (4, 4, 0, "groups must be a positive integer", "groups must be >= 1 (got 0)"),
    ],
)
def test_conv_params_rejects_what_torch_rejects(c_in, c_out, groups, torch_says, ours):
    with pytest.raises(ValueError, match=torch_says):
        nn.Conv2d(c_in, c_out, 3, groups=groups, device="meta")
    assert _verify_message(lambda: conv.conv_params(c_in, c_out, 3, groups=groups)) == ours


def _torch_pool_side(n, k, s, p, d, ceil):
    """MaxPool2d's output side on an n×n cpu input, or None where torch rejects it or gives an empty output."""
    try:
        return nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil)(torch.zeros(1, 1, n, n)).shape[-1] or None
    except RuntimeError:
        return None


@given(st.integers(1, 9), st.integers(1, 4), st.integers(1, 3), st.integers(0, 3), st.integers(1, 3), st.booleans())
def test_dilated_pooling_and_its_rejections_are_torchs(n, k, s, p, d, ceil):
    """pool_out with dilation, and any padding: torch's MaxPool2d size where torch accepts, a VerifyError where it
    rejects."""
    assert _formula_side(conv.pool_out, n, k, s, p, d, ceil) == _torch_pool_side(n, k, s, p, d, ceil)


@pytest.mark.parametrize("which", ["n", "k", "s", "p", "d"])
@pytest.mark.parametrize("ceil", [False, True])
def test_pool_out_with_one_symbolic_argument_gives_the_formula(which, ceil):
    import sympy

    x = sympy.Symbol("x", integer=True)
    base = {"n": 7, "k": 3, "s": 2, "p": 1, "d": 1}
    values = {"n": range(3, 9), "k": range(2, 5), "s": range(1, 4), "p": range(2), "d": range(1, 3)}
    a = {**base, which: x}
    expr = conv.pool_out(a["n"], a["k"], a["s"], a["p"], a["d"], ceil)
    for v in values[which]:
        b = {**base, which: v}
        want = _torch_pool_side(b["n"], b["k"], b["s"], b["p"], b["d"], ceil)
        assert expr.subs(x, v) == want, (which, v)


@pytest.mark.parametrize(("n", "k", "p", "d"), [(1, 3, 1, 2), (2, 4, 0, 1), (1, 2, 1, 3)])
def test_a_pooling_window_too_large_is_reported_with_torchs_sizes(n, k, p, d):
    """torch rejects the pool, with or without ceil_mode; the window span and padded input named are those torch's
    convolution error names for the same geometry."""
    import re

    said = _torch_message(nn.Conv2d(1, 1, k, 1, p, d, bias=False), n)
    padded, kernel = re.search(
        r"padded input size per channel: \((\d+) x \d+\)\. Kernel size: \((\d+) x", said
    ).groups()
    for ceil in (False, True):
        assert _torch_pool_side(n, k, 1, p, d, ceil) is None
        ours = _verify_message(lambda ceil=ceil: conv.pool_out(n, k, 1, p, d, ceil))
        assert ours == f"pooling window {kernel} is larger than the padded input {padded}", (ceil, ours, said)


@pytest.mark.parametrize(("k", "p", "d"), [(3, 2, 1), (2, 2, 1), (1, 1, 2)])
def test_pooling_padding_above_half_the_kernel_is_reported_with_torchs_numbers(k, p, d):
    import re

    with pytest.raises(RuntimeError) as info:
        nn.MaxPool2d(k, 1, p, dilation=d)(torch.zeros(1, 1, 9, 9))
    got = re.search(r"pad=(\d+), kernel_size=(\d+)", str(info.value)).groups()
    ours = _verify_message(lambda: conv.pool_out(9, k, 1, p, d))
    assert ours == f"pooling padding must be at most half the kernel size (got padding {got[0]}, kernel {got[1]})"
