"""Receptive fields by index propagation (verify/count/receptive.py) against a brute force over EVERY output unit.

The brute force is written here, apart from the library: models get positive weights and zero biases (float64), and
each input position is switched on alone (a one-hot input over all channels at that position). With positive
weights, ReLU, max pooling and monotone gates, an output unit changes exactly when some path joins it to the switched-on
position, so the set of positions that light a unit up is its support inside the real input; its least and greatest
index along each axis must equal the propagated interval at that unit's position. Max-unpooling moves a value to its
argmax, so there the brute force perturbs each position on top of each one-hot base input (pairs). Weights that
vanish exactly (bilinear interpolation at a whole-number source) are found below a tolerance of 1e-9 of the largest
response, far under any real path's weight.

The theoretical field (the input unbounded) is checked against an independent classical recursion on chains, the
published fields of torchvision classifiers, and the real-input field wherever a unit's support stays inside.
"""

from __future__ import annotations

import copy
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from verify.count import index_maps
from verify.count.receptive import AxisLayer, fields_of, propagate
from verify.count.trace import trace

# ---- the brute force ------------------------------------------------------------------------------------------------


def positive(model: nn.Module, seed: int = 0) -> nn.Module:
    """float64, eval, weights in [0.5, 1.5), biases zero: no cancellation, a unit is positive iff a path reaches it."""
    gen = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.zeros_like(p) if name.endswith("bias") else 0.5 + torch.rand(p.shape, generator=gen))
    return model


def one_hot_support(model: nn.Module, shape: tuple[int, ...], chunk: int = 256) -> list[dict[int, np.ndarray]]:
    """Per output tensor, per spatial axis of the input: (lo, hi) arrays over the output's spatial grid (−1/−2 where
    nothing reaches). One-hot inputs at every spatial position (all channels), in chunks."""
    spatial = shape[2:]
    npos = math.prod(spatial)
    coords = np.array(np.unravel_index(np.arange(npos), spatial)).T  # (npos, nsp)
    result: list[dict[int, np.ndarray]] | None = None
    with torch.no_grad():
        base = _flat_outputs(model(torch.zeros(1, *shape[1:], dtype=torch.float64)))
        for s in range(0, npos, chunk):
            idx = np.arange(s, min(npos, s + chunk))
            x = torch.zeros(len(idx), *shape[1:], dtype=torch.float64)
            flat = x.view(len(idx), shape[1], npos)
            flat[torch.arange(len(idx)), :, torch.as_tensor(idx)] = 1.0
            outs = _flat_outputs(model(x))
            if result is None:
                result = [
                    {
                        a: np.stack([np.full(o.shape[2:], 1 << 30), np.full(o.shape[2:], -(1 << 30))])
                        for a in range(len(spatial))
                    }
                    for o in outs
                ]
            for k, o in enumerate(outs):
                o = o - base[k]  # a unit depends on the position when switching it on changes the unit
                hit = (o.abs().amax(dim=1) > 1e-9 * max(float(o.abs().max()), 1e-300)).numpy()  # (chunk, *out)
                for a in range(len(spatial)):
                    c = coords[idx, a].reshape(-1, *([1] * (hit.ndim - 1)))
                    lo = np.where(hit, c, 1 << 30).min(axis=0)
                    hi = np.where(hit, c, -(1 << 30)).max(axis=0)
                    result[k][a][0] = np.minimum(result[k][a][0], lo)
                    result[k][a][1] = np.maximum(result[k][a][1], hi)
    assert result is not None
    return result


def _flat_outputs(y: object) -> list[torch.Tensor]:
    if isinstance(y, torch.Tensor):
        return [y]
    if isinstance(y, dict):
        return [t for v in y.values() for t in _flat_outputs(v)]
    return [t for v in y for t in _flat_outputs(v)]  # type: ignore[attr-defined]


def assert_exact_everywhere(model: nn.Module, shape: tuple[int, ...], chunk: int = 256) -> None:
    """The propagated interval at every output position, per axis, equals the brute-force support's."""
    model = positive(model)
    truth = one_hot_support(model, shape, chunk)
    t = trace(model, [torch.zeros(shape, dtype=torch.float64)])
    from verify.count.receptive import graph_fields

    g = graph_fields(t)
    assert len(t.outputs) == len(truth)
    for (path, ref), brute in zip(t.outputs, truth, strict=True):
        nsp = len(shape) - 2
        for a in range(nsp):
            got = g.intervals(ref.uid, a)
            assert got is not None, (path, a)
            lo, hi = got
            # the propagated interval depends on the position along the output axis the input axis survives in
            # (dimension 2 + a here); broadcast it over the other axes of the output grid
            view = [1] * nsp
            view[a] = -1
            blo, bhi = brute[a]
            empty = blo > bhi
            plo = np.broadcast_to(lo.reshape(view), blo.shape)
            phi = np.broadcast_to(hi.reshape(view), bhi.shape)
            assert np.array_equal(np.where(empty, 0, blo), np.where(empty, 0, plo)), (path, a, blo, plo)
            assert np.array_equal(np.where(empty, 0, bhi), np.where(empty, 0, phi)), (path, a, bhi, phi)
            assert (plo[empty] > phi[empty]).all(), (path, a)


# ---- decoders: periodic fields ------------------------------------------------------------------------------------


class Upsampler(nn.Module):
    def __init__(self, mode: str, scale: float, align: bool | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 1, 3, padding=1)
        self.mode, self.scale, self.align = mode, scale, align

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kw = {} if self.align is None else {"align_corners": self.align}
        return self.conv2(F.interpolate(self.conv1(x), scale_factor=self.scale, mode=self.mode, **kw))


def tconv_decoder() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1),
        nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1),
        nn.ConvTranspose2d(2, 1, 2, stride=2),
    )


def test_bilinear_x3_decoder_on_48_pixels():
    """Bilinear ×3: the field changes with the position modulo 3 (period 3 output positions, stride 1/3). 48 rows
    (8 columns keep the brute force quick; every axis is checked)."""
    model = Upsampler("bilinear", 3.0, False)
    assert_exact_everywhere(model, (1, 1, 48, 8))
    (_, f), *_ = fields_of(model, [torch.zeros(1, 1, 48, 8)]).outputs()
    assert f is not None and f.fields[0].stride == Fraction(1, 3) and f.fields[0].min != f.fields[0].max


@pytest.mark.parametrize("mode", ["bicubic", "bilinear", "nearest", "nearest-exact"])
def test_two_dimensional_interpolation_sweep(mode):
    """Scales that enlarge, shrink and keep an axis (17 rows, 4 columns: 4·1.1 keeps 4, which torch's 2-D kernels
    copy unchanged), with and without aligned corners."""
    for scale in (1.1, 0.6, 1.7, 2.5, 0.75):
        for align in (None,) if "nearest" in mode else (False, True):
            kw = {} if align is None else {"align_corners": align}
            model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Upsample(scale_factor=scale, mode=mode, **kw))
            assert_exact_everywhere(nn.Sequential(*model, nn.Conv2d(2, 1, 2)), (1, 1, 17, 4))


@pytest.mark.parametrize(
    ("mode", "scale", "align"),
    [
        ("bilinear", 1.5, False),
        ("bilinear", 2.5, True),
        ("bicubic", 3.0, False),
        ("nearest", 1.5, None),
        ("nearest-exact", 2.5, None),
    ],
)
def test_interpolation_of_any_scale(mode, scale, align):
    assert_exact_everywhere(Upsampler(mode, scale, align), (1, 1, 23, 5))


@pytest.mark.parametrize("side", [12, 13])
def test_four_stride_2_transposed_convolutions(side):
    """Stride 1/16 after four stride-2 transposed convolutions; exact at every one of the 16·side × 48 units."""
    assert_exact_everywhere(tconv_decoder(), (1, 1, side, 3))
    (_, f), *_ = fields_of(tconv_decoder(), [torch.zeros(1, 1, side, 3)]).outputs()
    assert f is not None and f.fields[0].stride == f.fields[1].stride == Fraction(1, 16)


def test_four_stride_2_transposed_convolutions_on_40_rows():
    assert_exact_everywhere(tconv_decoder(), (1, 1, 40, 3))


# ---- pooling --------------------------------------------------------------------------------------------------------


class FunctionalPool(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.conv2 = nn.Conv2d(2, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.max_pool2d(self.conv(x), 3, stride=2, padding=1, ceil_mode=True))


def test_functional_max_pool():
    assert_exact_everywhere(FunctionalPool(), (1, 1, 21, 20))
    (_, f), *_ = fields_of(FunctionalPool(), [torch.zeros(1, 1, 64, 64)]).outputs()
    assert f is not None and (f.fields[0].min, f.fields[0].max) == (9, 9)  # 3, then +2·1, then +2·2 at stride 2


def test_dilated_max_pool_then_linear():
    conv_pool = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(3, stride=2, dilation=2))
    assert_exact_everywhere(conv_pool, (1, 1, 25, 24))
    (_, f), *_ = fields_of(conv_pool, [torch.zeros(1, 1, 25, 24)]).outputs()
    assert f is not None and f.fields[0].max == 7  # 3 + (3 − 1)·2
    with_linear = nn.Sequential(*conv_pool, nn.Flatten(), nn.Linear(2 * 10 * 9, 4))
    g = fields_of(with_linear, [torch.zeros(1, 1, 25, 24)])
    (_, f), *_ = g.outputs()
    assert f is not None and f.whole and f.text() == "whole input"
    assert one_hot_support(positive(with_linear), (1, 1, 25, 24))[0][0].min() == 0  # every output sees row 0 …


class PoolUnpool(nn.Module):
    def __init__(self, k: int = 2, s: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.pool = nn.MaxPool2d(k, s, return_indices=True)
        self.unpool = nn.MaxUnpool2d(k, s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, i = self.pool(self.conv(x))
        return self.unpool(y, i, output_size=x.shape[-2:])


@pytest.mark.parametrize(("k", "s"), [(2, 2), (3, 3)])
def test_max_pool_with_indices_and_unpool(k, s):
    """An unpooled unit depends on every position of the window it lies in (whichever is the argmax decides what it
    receives): pairs of one-hot inputs find it — a base that makes the unit the argmax, then every other position
    switched on above it."""
    shape = (1, 1, 10, 11)
    model = positive(PoolUnpool(k, s))
    npos = 10 * 11
    base = torch.eye(npos, dtype=torch.float64).view(npos, 1, 10, 11)
    lo = np.full((10, 11, 2), 1 << 30)
    hi = np.full((10, 11, 2), -(1 << 30))
    with torch.no_grad():
        y0 = model(base)
        for p in range(npos):
            bumped = base.clone()
            bumped.view(npos, -1)[:, p] += 2.0
            changed = ((model(bumped) - y0).abs() > 1e-12).any(dim=0)[0].numpy()  # (10, 11)
            r, c = divmod(p, 11)
            for a, v in ((0, r), (1, c)):
                lo[..., a] = np.where(changed, np.minimum(lo[..., a], v), lo[..., a])
                hi[..., a] = np.where(changed, np.maximum(hi[..., a], v), hi[..., a])
    g = fields_of(model, [torch.zeros(shape, dtype=torch.float64)])
    (_, ref) = g.trace.outputs[0]
    for a in (0, 1):
        got = g.intervals(ref.uid, a)
        assert got is not None
        plo = np.broadcast_to(got[0].reshape((-1, 1) if a == 0 else (1, -1)), (10, 11))
        phi = np.broadcast_to(got[1].reshape((-1, 1) if a == 0 else (1, -1)), (10, 11))
        empty = lo[..., a] > hi[..., a]
        assert np.array_equal(np.where(empty, 0, lo[..., a]), np.where(empty, 0, plo))
        assert np.array_equal(np.where(empty, 0, hi[..., a]), np.where(empty, 0, phi))


def test_global_pooling_is_the_whole_input():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1))
    (_, f), *_ = fields_of(model, [torch.zeros(1, 1, 16, 16)]).outputs()
    assert f is not None and f.whole and f.text() == "whole input"
    brute = one_hot_support(positive(model), (1, 1, 16, 16))[0]
    assert brute[0][0].item() == 0 and brute[0][1].item() == 15  # the brute force agrees: every row
    adaptive = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveMaxPool2d((5, 3)))
    assert_exact_everywhere(adaptive, (1, 1, 17, 16))


# ---- several outputs, any rank -----------------------------------------------------------------------------------


class TwoHeads(nn.Module):
    def __init__(self, as_dict: bool) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, stride=2)
        self.a = nn.Conv2d(2, 1, 1)
        self.b = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.AvgPool2d(2))
        self.as_dict = as_dict

    def forward(self, x: torch.Tensor) -> object:
        s = self.stem(x)
        return {"fine": self.a(s), "coarse": self.b(s)} if self.as_dict else (self.a(s), self.b(s))


@pytest.mark.parametrize("as_dict", [True, False])
def test_a_field_per_output(as_dict):
    model = TwoHeads(as_dict)
    assert_exact_everywhere(model, (1, 1, 19, 18))
    outs = fields_of(model, [torch.zeros(1, 1, 19, 18)]).outputs()
    assert [p for p, _ in outs] == (["fine", "coarse"] if as_dict else ["0", "1"])
    assert [f.fields[0].max for _, f in outs if f is not None] == [3, 3 + 2 * 2 + 2]


class Recurrent(nn.Module):
    """A recurrent layer between convolutions: step t sees every earlier step (run step by step on meta tensors)."""

    def __init__(self, cell: type[nn.Module]) -> None:
        super().__init__()
        self.c = nn.Conv1d(2, 3, 3, padding=1)
        self.rnn = cell(3, 4, batch_first=True)
        self.out = nn.Conv1d(4, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(self.c(x).transpose(1, 2))
        return self.out(y.transpose(1, 2))


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_recurrent_layers(cell):
    assert_exact_everywhere(Recurrent(cell), (1, 2, 12))


def test_conv1d_and_conv3d_nets():
    one = nn.Sequential(
        nn.Conv1d(2, 3, 5, stride=2, padding=2), nn.ReLU(), nn.MaxPool1d(3, 2), nn.Conv1d(3, 1, 3, dilation=2)
    )
    assert_exact_everywhere(one, (1, 2, 41))
    three = nn.Sequential(
        nn.Conv3d(1, 2, 3, stride=(1, 2, 2), padding=1), nn.AvgPool3d(2), nn.ConvTranspose3d(2, 1, 2, 2)
    )
    assert_exact_everywhere(three, (1, 1, 6, 9, 8))
    (_, f), *_ = fields_of(one, [torch.zeros(1, 2, 41)]).outputs()
    assert f is not None and len(f.fields) == 1 and f.fields[0].max == 5 + 2 * 2 + 2 * 4 * 2


# ---- graphs: residual, dense, multi-branch ----------------------------------------------------------------------


class Zoo(nn.Module):
    """Residual (a downsampling shortcut), dense (concatenation of growing fields), inception-like branches with
    different kernels and an offset branch (padding 0 beside "same" padding), pad, slice and a channels-last linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.res = nn.Sequential(nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        self.short = nn.Conv2d(4, 4, 1, stride=2)
        self.d1 = nn.Conv2d(4, 2, 3, padding=1)
        self.d2 = nn.Conv2d(6, 2, 3, padding=2, dilation=2)
        self.b1 = nn.Conv2d(8, 2, 1)
        self.b2 = nn.Conv2d(8, 2, 5, padding=2)
        self.b3 = nn.Conv2d(8, 2, 3)  # no padding: the branch is offset, its output padded back
        self.mix = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = F.relu(self.res(x) + self.short(x))
        x = torch.cat([x, self.d1(x)], 1)
        x = torch.cat([x, self.d2(x)], 1)
        b3 = F.pad(self.b3(x), (2, 0, 1, 1))
        y = torch.cat([self.b1(x), self.b2(x), b3], 1)
        y = F.max_pool2d(y, 2, ceil_mode=True)[:, :, 1:]
        return self.mix(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def test_graph_zoo_exact_everywhere():
    assert_exact_everywhere(Zoo(), (1, 1, 23, 22))


class Rearrange(nn.Module):
    """Reflect and replicate padding, concatenation along a spatial axis, strided slicing, pixel shuffle, a mirror
    image (flip) added back, stack and unbind. (The branches concatenated along the height see the same columns: a
    field is kept per axis, so concatenating along one axis tensors whose fields differ along another gives that other
    axis the union — an over-approximation, the one place the fields are not exact.)"""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=(0, 1))
        self.c2 = nn.Conv2d(1, 4, 3, padding=1)
        self.out = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.pad(self.c1(x), (0, 0, 1, 2), mode="reflect")
        b = F.pad(self.c2(x), (0, 0, 1, 0), mode="replicate")
        y = torch.cat([a, b], dim=2)
        y = F.pad(F.pad(y, (2, 1, 0, 0), mode="reflect"), (1, 0, 0, 0), mode="replicate")[:, :, :, ::2]
        y = F.pixel_shuffle(y, 2)
        first, second = torch.stack([y, y.flip(3)], 1).unbind(1)
        return self.out(first + second)


def test_padding_modes_spatial_concatenation_slicing_shuffle():
    assert_exact_everywhere(Rearrange(), (1, 1, 14, 13))
    assert not fields_of(Rearrange(), [torch.zeros(1, 1, 14, 13)]).approximated


class Rolled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 2, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(self.c(x), (2, -1), (2, 3))


def test_roll_exact_and_writes_into_views_never_silent():
    """torch.roll wraps positions around (exact); a tensor filled through views (circular padding copies slices into
    an empty tensor) keeps its identity, so it is taken as seeing everything — said, not silently lost."""
    assert_exact_everywhere(Rolled(), (1, 1, 15, 12))
    g = fields_of(nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular"), [torch.zeros(1, 1, 9, 9)])
    (_, f), *_ = g.outputs()
    assert f is not None and f.whole and "copy_ into a view" in g.approximated


def test_offset_branches_hull_exceeds_max_over_paths():
    """Two branches of equal size but shifted: the hull of the union (here 4) is larger than the classical largest
    path (3)."""

    class Offset(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3, padding=1)
            self.b = nn.Conv2d(1, 1, 3, padding=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.a(x) + self.b(x)[:, :, 2:, 2:]

    (_, f), *_ = fields_of(Offset(), [torch.zeros(1, 1, 16, 16)]).outputs()
    assert f is not None and f.fields[0].max == 4
    assert_exact_everywhere(Offset(), (1, 1, 16, 16))


# ---- chains against the classical recursion ---------------------------------------------------------------------


def _classical(chain: list[tuple[int, int, int]]) -> int:
    """r ← r + (k − 1)·d·j, j ← j·s, written here for this test."""
    r, j = 1, 1
    for k, s, d in chain:
        r += (k - 1) * d * j
        j *= s
    return r


def test_chains_equal_the_classical_recursion():
    rng = np.random.default_rng(0)
    for _ in range(30):
        chain = [
            (int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 3)))
            for _ in range(int(rng.integers(1, 6)))
        ]
        layers: list[nn.Module] = []
        for i, (k, s, d) in enumerate(chain):
            layers.append(nn.Conv2d(1, 1, k, s, dilation=d) if i % 2 == 0 else nn.MaxPool2d(k, s, dilation=d))
        want = _classical(chain)
        side = max(64, 4 * want)
        (_, f), *_ = fields_of(nn.Sequential(*layers), [torch.zeros(1, 1, side, side)]).outputs()
        assert f is not None and f.fields[0].min == f.fields[0].max == want, chain
        assert f.fields[0].stride == math.prod(s for _, s, _ in chain)
        assert propagate([AxisLayer("conv", k, s, 0, d) for k, s, d in chain])[-1].max == want


def test_random_one_dimensional_chains_exact_everywhere():
    """Seeded random 1-D chains of convolution (strided, dilated, padded), transposed convolution (output padding),
    max and average pooling (ceil mode) and interpolation (nearest, linear; integer and fractional scales): the
    propagated intervals against the brute force at every output position."""
    rng = np.random.default_rng(1)
    for _ in range(40):
        layers: list[nn.Module] = []
        for _ in range(int(rng.integers(2, 5))):
            kind = rng.choice(["conv", "tconv", "max", "avg", "up"])
            k, s, d = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
            p = int(rng.integers(0, (k - 1) * d // 2 + 1))
            if kind == "conv":
                layers.append(nn.Conv1d(2, 2, k, s, p, d))
            elif kind == "tconv":
                layers.append(nn.ConvTranspose1d(2, 2, k, s, p, output_padding=int(rng.integers(0, min(s, d + 1)))))
            elif kind == "max":
                layers.append(nn.MaxPool1d(k, s, min(p, k // 2), d, ceil_mode=bool(rng.integers(0, 2))))
            elif kind == "avg":
                layers.append(nn.AvgPool1d(k, s, min(p, k // 2), ceil_mode=bool(rng.integers(0, 2))))
            else:
                scale = float(rng.choice([2.0, 3.0, 1.5, 2.5, 0.75, 1.1, 0.6, 1.7]))
                mode = str(rng.choice(["nearest", "nearest-exact", "linear"]))
                layers.append(nn.Upsample(scale_factor=scale, mode=mode))
        model = nn.Sequential(*layers)
        try:
            model(torch.zeros(1, 2, 29))
        except RuntimeError:  # a chain that shrinks the input to nothing
            continue
        assert_exact_everywhere(model, (1, 2, 29))


def test_theoretical_field_equals_the_real_one_away_from_the_border():
    model = tconv_decoder()
    g = fields_of(model, [torch.zeros(1, 1, 13, 13)])
    ref = g.trace.outputs[0][1]
    real, theo = g.intervals(ref.uid, 0), g.intervals(ref.uid, 0, theoretical=True)
    assert real is not None and theo is not None
    inside = (real[0] > 0) & (real[1] < 12)
    assert inside.sum() > 100
    assert np.array_equal(real[0][inside], theo[0][inside]) and np.array_equal(real[1][inside], theo[1][inside])
    assert not np.array_equal(real[0], theo[0])  # and the border units are cut by the input


# ---- torchvision ------------------------------------------------------------------------------------------------

TORCHVISION = {  # the classical max-over-paths fields
    "alexnet": 195,
    "vgg16": 212,
    "resnet18": 435,
    "resnet50": 427,
    "resnet101": 971,
    "inception_v3": 1311,
    "googlenet": 379,
    "mobilenet_v2": 491,
    "densenet121": 2071,
}


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_torchvision_fields(name):
    from torchvision_models import models

    kw = {"init_weights": False, "aux_logits": False} if name in ("inception_v3", "googlenet") else {}
    with torch.device("meta"):
        model = getattr(models(), name)(**kw).eval()
    side = 299 if name == "inception_v3" else 224
    g = fields_of(model, [torch.zeros(1, 3, side, side)])
    layers = g.layers()
    last_spatial = [f for _, outs in layers.items() for _, f in outs if f is not None and not f.whole]
    assert max(f.fields[0].max for f in last_spatial) == TORCHVISION[name]
    assert max(f.fields[1].max for f in last_spatial) == TORCHVISION[name]
    (_, out), *_ = g.outputs()
    assert out is not None and out.text() == "whole input" and not g.approximated


# ---- mutants: the comparison catches a wrong index map -------------------------------------------------------------


def test_wrong_maps_are_caught(monkeypatch):
    right = index_maps.transposed

    def off_by_one(k: int, s: int = 1, p: int = 0, d: int = 1) -> index_maps.Taps:
        return right(k, s, p + 1, d)

    monkeypatch.setattr(index_maps, "transposed", off_by_one)
    with pytest.raises(AssertionError):
        assert_exact_everywhere(tconv_decoder(), (1, 1, 12, 3))
    monkeypatch.setattr(index_maps, "transposed", right)
    right_linear = index_maps.linear

    def always_two(scale: Fraction, align: bool) -> index_maps.Taps:  # ignores that a weight can vanish
        inner = right_linear(scale, align)

        def taps(o: np.ndarray, bounded: bool, n: int) -> list[index_maps.Tap]:
            (v0, _), _ = inner(o, bounded, n)
            return [(v0, None), (np.minimum(v0 + 1, n - 1) if bounded else v0 + 1, None)]

        return taps

    monkeypatch.setattr(index_maps, "linear", always_two)
    with pytest.raises(AssertionError):
        assert_exact_everywhere(Upsampler("bilinear", 3.0, False), (1, 1, 12, 3))


# ---- the command ------------------------------------------------------------------------------------------------

NETS = """
import torch.nn as nn
import torch.nn.functional as F


class Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.d = nn.Conv2d(4, 4, 3, stride=2)
        self.u = nn.ConvTranspose2d(4, 2, 3, 2)

    def forward(self, x):
        y = F.max_pool2d(F.relu(self.c(x)), 3, 2, 1)
        return {"up": self.u(self.d(y)), "pool": F.adaptive_avg_pool2d(y, 1)}


def heads():
    return Heads()


def seq1d():
    return nn.Sequential(nn.Conv1d(2, 4, 5, padding=2), nn.MaxPool1d(2), nn.Conv1d(4, 4, 3))


def dilated():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(3, 2, dilation=2, ceil_mode=True), nn.Conv2d(2, 1, 3))
"""


def test_count_command_fields(tmp_path, capsys):
    import json

    from verify.cli import main

    f = tmp_path / "nets.py"
    f.write_text(NETS)
    assert main(["count", f"{f}:heads", "--input", "1,3,40,40", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    outs = doc["total"]["receptive_field"]["outputs"]
    assert outs["pool"] == {"whole_input": True}
    # 3, pool +2 (stride 2), conv +4 (stride 4), transposed 3 at stride 2: 1 or 2 inputs → 9 or 13
    assert outs["up"]["min"] == [9, 9] and outs["up"]["max"] == [13, 13] and outs["up"]["stride"] == ["2", "2"]
    assert main(["count", f"{f}:seq1d", "--input", "1,2,64", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert [x["receptive_field"]["max"] for x in layers] == [[5], [6], [10]]


def test_confirm_rf_agrees_and_catches_a_wrong_map(tmp_path, capsys, monkeypatch):
    from verify.cli import main

    f = tmp_path / "nets.py"
    f.write_text(NETS)
    assert main(["count", f"{f}:heads", "--input", "1,3,24,24", "--confirm-rf", "--json"]) == 0
    assert "3 of 3 layers agree" in capsys.readouterr().err
    assert main(["count", f"{f}:dilated", "--input", "1,1,21,20", "--confirm-rf", "--json"]) == 0
    assert "3 of 3 layers agree" in capsys.readouterr().err  # max pooling averaged over its dilated window
    right = index_maps.window
    monkeypatch.setattr(index_maps, "window", lambda k, s=1, p=0, d=1: right(k, s, p + 1, d))
    assert main(["count", f"{f}:heads", "--input", "1,3,24,24", "--confirm-rf", "--json"]) == 0
    err = capsys.readouterr().err
    assert "0 of 3 layers agree" in err and "propagated" in err


def test_confirm_rf_memory_guard(tmp_path, capsys, monkeypatch):
    from verify.cli import main
    from verify.count import support

    f = tmp_path / "nets.py"
    f.write_text(NETS)
    monkeypatch.setattr(support, "CONFIRM_LIMIT_BYTES", 1 << 20)
    assert main(["count", f"{f}:heads", "--input", "1,3,64,64", "--confirm-rf"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--confirm-rf would need about" in err[0] and "smaller --input" in err[0]
