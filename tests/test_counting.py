"""`verify count` and the counting machinery: exact against first principles, torch's flop counter and gradient support."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from verify.cli import main
from verify.count.analyze import analyze, flop_counter_agreement
from verify.count.conventions import (
    Convention,
    Work,
    backward_work,
    conv2d_work,
    conv_transpose2d_work,
    layer_work,
    linear_work,
    pool2d_work,
)
from verify.count.diagnose import diagnose
from verify.count.instrumented import backward_multiplies, conv2d_counted, max_pool2d_counted
from verify.count.models import resnet18, small_zoo
from verify.count.receptive import AxisLayer, measure_axes, positive_copy, propagate

# ---- a brute-force count: reference implementations that count their own multiplies -----------------------------


def conv_transpose2d_counting(x, w, stride, padding, groups):
    """Scatter every input element into the output (no zeros inserted); returns (output, multiplies)."""
    n, c_in, h, wd = x.shape
    _, cg_out, kh, kw = w.shape
    full = np.zeros((n, cg_out * groups, (h - 1) * stride + kh, (wd - 1) * stride + kw))
    mults = 0
    per_group = c_in // groups
    for b in range(n):
        for c in range(c_in):
            g = c // per_group
            for i in range(h):
                for j in range(wd):
                    for o in range(cg_out):
                        for u in range(kh):
                            for v in range(kw):
                                full[b, g * cg_out + o, i * stride + u, j * stride + v] += x[b, c, i, j] * w[c, o, u, v]
                                mults += 1
    return full[:, :, padding : full.shape[2] - padding, padding : full.shape[3] - padding], mults


@given(
    n=st.integers(1, 2),
    g=st.sampled_from([1, 2]),
    cin=st.integers(1, 2),
    cout=st.integers(1, 2),
    k=st.integers(1, 3),
    s=st.integers(1, 2),
    p=st.integers(0, 1),
    d=st.integers(1, 2),
    h=st.integers(4, 6),
)
def test_conv_macs_equal_counted_multiplies(n, g, cin, cout, k, s, p, d, h):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, g * cin, h, h, generator=gen, dtype=torch.float64)
    w = torch.randn(g * cout, cin, k, k, generator=gen, dtype=torch.float64)
    b = torch.randn(g * cout, generator=gen, dtype=torch.float64)
    if d * (k - 1) + 1 > h + 2 * p:
        return
    ref, ops = conv2d_counted(x, w, b, s, p, d, g)
    torch_out = F.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    assert torch.allclose(ref, torch_out, atol=1e-12)  # the counting reference is a real convolution
    work = conv2d_work(n, g * cin, g * cout, ref.shape[2], ref.shape[3], k, k, g)
    assert work.macs == ops.multiplies
    assert Convention("exact", bias=True).total(work) == ops.multiplies + ops.additions


@given(k=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 1), h=st.integers(3, 7))
def test_max_pool_comparisons_equal_counted(k, s, p, h):
    if p > k // 2:
        return
    x = torch.randn(2, 3, h, h, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref, ops = max_pool2d_counted(x, k, s, p)
    assert torch.equal(ref, F.max_pool2d(x, k, s, p))
    module = nn.MaxPool2d(k, s, p)
    assert layer_work(module, tuple(x.shape), tuple(ref.shape)).elementwise == ops.comparisons


@given(
    n=st.integers(1, 2),
    g=st.sampled_from([1, 2]),
    cin=st.integers(1, 2),
    cout=st.integers(1, 2),
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    h=st.integers(2, 4),
)
def test_transposed_macs_equal_counted_multiplies(n, g, cin, cout, k, s, h):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, g * cin, h, h))
    w = rng.standard_normal((g * cin, cout, k, k))
    p = 0
    ref, mults = conv_transpose2d_counting(x, w, s, p, g)
    torch_out = F.conv_transpose2d(torch.tensor(x), torch.tensor(w), stride=s, padding=p, groups=g).numpy()
    assert np.allclose(ref, torch_out, atol=1e-12)
    assert conv_transpose2d_work(n, g * cin, g * cout, h, h, k, k, g).macs == mults


def test_by_output_count_would_be_caught():
    """Counting a transposed convolution by output positions (the common tools' slip) disagrees with the multiplies."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 1, 3, 3))
    w = rng.standard_normal((1, 1, 3, 3))
    _, mults = conv_transpose2d_counting(x, w, 2, 1, 1)
    out_h = (3 - 1) * 2 - 2 + 3
    assert out_h * out_h * 1 * 1 * 9 != mults


@pytest.mark.parametrize(("make", "shape"), [(small_zoo, (2, 3, 32, 32)), (resnet18, (1, 3, 64, 64))])
def test_every_layer_equals_torch_flop_counter(make, shape):
    rows = flop_counter_agreement(make(), shape)
    assert rows
    for name, ours, theirs in rows:
        assert ours == theirs, name


# ---- the backward pass (--training) ---------------------------------------------------------------------------


@given(
    g=st.sampled_from([1, 2, 4]),
    cin=st.integers(1, 2),
    cout=st.integers(1, 2),
    k=st.integers(1, 3),
    s=st.integers(1, 2),
    p=st.integers(0, 1),
    input_grad=st.booleans(),
)
def test_backward_macs_equal_counted_multiplies(g, cin, cout, k, s, p, input_grad):
    """Autograd through the counting reference multiplies exactly as often as backward_work says, grouped or not."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, g * cin, 6, 6, generator=gen, dtype=torch.float64).requires_grad_(input_grad)
    w = torch.randn(g * cout, cin, k, k, generator=gen, dtype=torch.float64).requires_grad_(True)
    y, _ = conv2d_counted(x, w, None, s, p, 1, g)
    counted = backward_multiplies(y, torch.randn(y.shape, generator=gen, dtype=torch.float64))
    forward = conv2d_work(2, g * cin, g * cout, y.shape[2], y.shape[3], k, k, g)
    assert backward_work(forward, input_grad, True, False).macs == counted


def test_torch_flop_counter_overcounts_grouped_backward():
    """torch's flop counter takes a grouped convolution's weight gradient as if it were not grouped; ours does not."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, groups=4), nn.Conv2d(8, 8, 3, groups=8))
    rows = {name: (ours, theirs) for name, ours, theirs in flop_counter_agreement(model, (2, 3, 12, 12), True)}
    assert rows["0"][0] == rows["0"][1]  # ungrouped: the same (no input gradient for the first layer)
    for name, g in (("1", 4), ("2", 8)):
        ours, theirs = rows[name]
        forward = 2 * analyze(model, (2, 3, 12, 12)).leaves[int(name)].work.macs
        assert ours == 3 * forward and theirs == ours + (g - 1) * forward


@pytest.mark.parametrize(("make", "shape"), [(small_zoo, (2, 3, 32, 32)), (resnet18, (1, 3, 64, 64))])
def test_training_totals_equal_torch_flop_counter(make, shape):
    """Forward + backward over the whole model equals torch's flop counter, once torch's over-count of grouped weight
    gradients ((g − 1) × the forward FLOPs per grouped layer) is taken out. Totals are compared: torch attributes the
    backward of a branch to the wrong module, so its per-module backward figures are not reliable."""
    from verify.count.analyze import torch_flops

    model = make()
    result = analyze(model, shape, Convention("flops"), training=True)
    ours = sum(2 * (x.work.macs + x.backward.macs) for x in result.leaves)
    overcount = sum(
        (model.get_submodule(x.name).groups - 1) * 2 * x.work.macs
        for x in result.leaves
        if isinstance(model.get_submodule(x.name), (nn.Conv2d, nn.ConvTranspose2d))
    )
    assert torch_flops(model, shape, training=True)["Global"] == ours + overcount
    assert (overcount > 0) == (make is small_zoo)


def test_training_refuses_the_exact_convention():
    from verify import VerifyError

    with pytest.raises(VerifyError, match="backward"):
        analyze(small_zoo(), (1, 3, 32, 32), Convention("exact"), training=True)


def test_params_equal_numel():
    for make, shape in ((small_zoo, (1, 3, 32, 32)), (resnet18, (1, 3, 64, 64))):
        model = make()
        result = analyze(model, shape)
        assert result.params == sum(p.numel() for p in model.parameters())
        for layer in result.leaves:
            assert layer.params == sum(p.numel() for p in model.get_submodule(layer.name).parameters())


def test_resnet18_totals():
    result = analyze(resnet18(), (1, 3, 224, 224))
    assert result.params == 11_689_512
    assert result.total_work().macs == 1_814_073_344
    assert result.output_shape == (1, 1000)


def test_rows_add_up_to_totals():
    """A container's row is its leaves' plus the operators its own forward runs: the residual block's addition (one
    per element of its 16×16×16 output, element-wise work) and nothing else."""
    result = analyze(small_zoo(), (1, 3, 32, 32), Convention("exact", bias=True, elementwise=True))
    residual_add = 16 * 16 * 16
    assert result.total() == sum(x.count for x in result.leaves) + residual_add
    for container in (x for x in result.layers if not x.leaf):
        inside = sum(x.count for x in result.leaves if x.name.startswith(container.name + "."))
        assert container.count == inside + (residual_add if container.name == "4" else 0)


# ---- receptive fields: index propagation against gradient support at every sampled position ---------------------

ZOO_AXIS = {  # the zoo along one axis; the residual block's receptive field is its body's (the body covers the identity)
    "0": AxisLayer("conv", 3, 2, 1),
    "2": AxisLayer("conv", 5, 1, 2),
    "3": AxisLayer("conv", 1),
    "4.body.0": AxisLayer("conv", 3, 1, 2, 2),
    "4.body.2": AxisLayer("conv", 3, 1, 1),
    "5": AxisLayer("conv", 2, 2),
    "6": AxisLayer("tconv", 4, 2, 1),
    "7": AxisLayer("upsample", scale=2),
    "8": AxisLayer("conv", 2, 2),
    "9": AxisLayer("conv", 3, 1, 1),
}


def test_zoo_receptive_fields_match_gradient_support():
    model = small_zoo()
    shape = (1, 3, 160, 160)
    prepared = positive_copy(model)
    names = list(ZOO_AXIS)
    exact = dict(zip(names, propagate(list(ZOO_AXIS.values())), strict=True))
    for name in names:
        rh, rw, clipped = measure_axes(model, shape, name, prepared=prepared)
        assert not clipped, name
        assert (rh.min, rh.max) == (exact[name].min, exact[name].max) == (rw.min, rw.max), name
        assert rh.stride == exact[name].stride, name


def test_resnet18_receptive_fields_through_residual_blocks():
    """Containers and branches: a residual stage's output sees the union of its branches (43 after layer1, 99 after
    layer2: the closed form 7, 11, then +8 per 3×3 convolution at stride 4 and +16, +32 at stride 8)."""
    from verify.count.receptive import measure_layers

    fields = measure_layers(resnet18(), (1, 3, 128, 128), ["0", "3", "4.0", "4", "5.0.conv1", "5", "4.0.relu"])
    sizes = {name: (rh.max, rw.max, rh.lower_bound) for name, (rh, rw, _) in fields.items()}
    assert sizes == {
        "0": (7, 7, False),
        "3": (11, 11, False),
        "4.0": (27, 27, False),
        "4": (43, 43, False),
        "5.0.conv1": (51, 51, False),
        "5": (99, 99, False),
        "4.0.relu": (19, 19, False),  # a module called twice: its first call
    }


def test_transposed_conv_receptive_field_varies_by_position():
    rf = propagate([AxisLayer("conv", 3, 1, 1), AxisLayer("tconv", 3, 2, 0)])[-1]
    assert (rf.min, rf.max) == (3, 4)


# ---- diagnosis -------------------------------------------------------------------------------------------------


def test_diagnosis_names_the_slip():
    model = nn.Sequential(nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, groups=2))
    shape = (2, 4, 5, 5)
    result = analyze(model, shape)
    macs = result.total_work().macs
    assert any("Convention" not in m.name and "multiply-accumulates" in m.name for m in diagnose(model, shape, macs))
    by_output = 2 * 4 * 9 * 9 * (4 // 2) * 9
    assert any("by output position" in m.name for m in diagnose(model, shape, by_output))
    assert any("groups twice" in m.name for m in diagnose(model, shape, macs // 2))
    assert any("one sample" in m.name for m in diagnose(model, shape, macs // 2))
    assert any("FLOPs" in m.name for m in diagnose(model, shape, 2 * macs))
    assert diagnose(model, shape, macs + 7) == []


# ---- the command ---------------------------------------------------------------------------------------------------


def test_count_json(capsys, tmp_path):
    f = tmp_path / "net.py"
    f.write_text(
        "import torch.nn as nn\ndef make():\n    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))\n"
    )
    code = main(["count", f"{f}:make", "--input", "1,3,16,16", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["total"] == {**doc["total"], "params": 224, "macs": 8 * 16 * 16 * 27, "flops": 2 * 8 * 16 * 16 * 27}
    conv = doc["layers"][0]
    assert conv["output_shape"] == [1, 8, 16, 16] and conv["receptive_field"]["size"] == [3, 3]
    assert doc["layers"][2]["receptive_field"]["max"] == [4, 4]


def test_count_training_json(capsys):
    """--training: the first convolution needs no input gradient (backward = 1× forward), the others 2× forward."""
    code = main(["count", "zoo", "--input", "1,3,32,32", "--json", "--no-rf", "--training", "--convention", "flops"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    layers = {x["name"]: x for x in doc["layers"]}
    assert layers["0"]["backward"] == layers["0"]["flops"] and layers["3"]["backward"] == 2 * layers["3"]["flops"]
    assert layers["1"]["backward"] == 0  # ReLU: element-wise backward is not counted
    assert doc["total"]["training_step"] == doc["total"]["count"] + doc["total"]["backward"]


def test_count_huge_input_costs_nothing(capsys):
    assert main(["count", "cpen455-classifier", "--input", "100,3,512,512", "--no-rf", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total"]["params"] == 397184 and doc["layers"][0]["output_shape"] == [100, 128, 256, 256]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["count", "nope", "--input", "1,3,8,8"], "unknown model 'nope'"),
        (["count", "zoo", "--input", "1,a"], "--input must be comma-separated"),
        (["count", "zoo"], "give --input"),
        (["count", "zoo", "--input", "1,3,2,2"], "the model cannot run on input (1, 3, 2, 2)"),
        (["count", "/no/file.py:make", "--input", "1,3,8,8"], "model file not found"),
        (["count", "zoo", "--input", "1,3,32,32", "--convention", "gflops"], "Invalid value for '--convention'"),
        (["count", "zoo", "--input", "1,3,32,32", "--convention", "exact", "--training"], "not defined for it"),
    ],
)
def test_count_errors(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ---- the work formulas on their own: arguments left out, symbols, and the layers no conv test reaches -------------


def linear_counted(x, w, b):
    """F.linear as a sum over input features, counting every multiply and addition (one more addition per output for a
    bias)."""
    mults = adds = 0
    acc = None
    for i in range(w.shape[1]):
        term = x[..., i : i + 1] * w[:, i]
        mults += term.numel()
        if acc is not None:
            adds += term.numel()
        acc = term if acc is None else acc + term
    out = acc + b
    return out, mults, adds + out.numel()


@pytest.mark.parametrize(("lead", "n_in", "n_out"), [((1,), 1, 1), ((3,), 4, 2), ((2, 3), 5, 3), ((4, 1, 2), 2, 6)])
def test_linear_work_equals_counted_operations(lead, n_in, n_out):
    """A real nn.Linear on inputs with any leading dimensions: the multiplies and additions of a sum over input
    features, its output equal to the layer's, are the MACs and the exact count the work formula gives."""
    torch.manual_seed(4)
    layer = nn.Linear(n_in, n_out).double()
    x = torch.randn(*lead, n_in, dtype=torch.float64)
    y, mults, adds = linear_counted(x, layer.weight, layer.bias)
    assert torch.allclose(y, layer(x), atol=1e-12)
    rows = int(np.prod(lead))
    work = linear_work(rows, n_in, n_out)
    assert (work.macs, work.dots, work.bias_outputs) == (mults, y.numel(), y.numel())
    assert Convention("exact", bias=True).total(work) == mults + adds
    assert layer_work(layer, tuple(x.shape), tuple(y.shape)) == work
    assert layer_work(nn.Linear(n_in, n_out, bias=False), tuple(x.shape), tuple(y.shape)).bias_outputs == 0


def test_transposed_work_with_groups_left_out_or_symbolic():
    """The scatter count of an ungrouped transposed convolution is the work with groups left out; with symbols for
    any of the sizes (groups included) the work, its symbols given values, is the scatter count, and has no floor;
    ints give ints."""
    import sympy

    N, CI, CO, H, W, K, G = sympy.symbols("N CI CO H W K G", integer=True, positive=True)
    rng = np.random.default_rng(5)
    for n, g, cin, cout, k, s, h in ((1, 1, 2, 3, 2, 2, 3), (2, 2, 1, 2, 3, 1, 2), (1, 3, 2, 1, 1, 2, 2)):
        x = rng.standard_normal((n, g * cin, h, h))
        w = rng.standard_normal((g * cin, cout, k, k))
        _, mults = conv_transpose2d_counting(x, w, s, 0, g)
        args = (n, g * cin, g * cout, h, h, k, k)
        work = conv_transpose2d_work(*args, g)
        assert work.macs == mults and type(work.macs) is int
        if g == 1:
            assert conv_transpose2d_work(*args).macs == mults
        values = {N: n, CI: g * cin, CO: g * cout, H: h, W: h, K: k, G: g}
        symbolic = (
            (conv_transpose2d_work(N, CI, CO, H, W, K, K, G).macs, values),
            (conv_transpose2d_work(*args, G).macs, {G: g}),
            (conv_transpose2d_work(n, g * cin, CO, h, h, k, k, g).macs, {CO: g * cout}),
        )
        for expr, at in symbolic:  # a ratio, not a floor: the groups divide the channels
            assert expr.subs(at) == mults and not expr.has(sympy.floor), expr


def avg_pool2d_counted(x, k, s):
    """F.avg_pool2d (no padding) as a running sum over the window's elements and one division per output: returns
    (output, additions, divisions)."""
    oh, ow = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
    acc, adds = None, 0
    for u in range(k):
        for v in range(k):
            window = x[:, :, u : u + s * (oh - 1) + 1 : s, v : v + s * (ow - 1) + 1 : s]
            if acc is not None:
                adds += window.numel()
            acc = window if acc is None else acc + window
    return acc / (k * k), adds, acc.numel()


@pytest.mark.parametrize(("k", "s", "h"), [(1, 1, 3), (2, 2, 6), (3, 1, 5), (3, 2, 7)])
def test_pool_work_equals_counted_operations(k, s, h):
    """A maximum of n values: n − 1 comparisons, the operation left out being a maximum; an average: n − 1 additions
    and a division, counted by running both pools element by element (their outputs equal torch's)."""
    x = torch.randn(2, 3, h, h, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    biggest, ops = max_pool2d_counted(x, k, s)
    assert torch.equal(biggest, F.max_pool2d(x, k, s))
    assert pool2d_work(biggest.numel(), k * k).elementwise == ops.comparisons
    assert pool2d_work(biggest.numel(), k * k, "max").elementwise == ops.comparisons
    mean, adds, divisions = avg_pool2d_counted(x, k, s)
    assert torch.allclose(mean, F.avg_pool2d(x, k, s), atol=1e-12)
    assert pool2d_work(mean.numel(), k * k, "avg").elementwise == adds + divisions
    assert layer_work(nn.AvgPool2d(k, s), tuple(x.shape), tuple(mean.shape)).elementwise == adds + divisions


def test_transposed_work_counts_an_addition_per_contribution_after_the_first():
    """Where every output receives a contribution (no padding, stride at most the kernel), a scatter adds each
    contribution after an output's first, and a bias once per output: the exact and bias conventions give those
    counts from the outputs the layer produced; without them the work names no dot products and no bias adds."""
    rng = np.random.default_rng(7)
    for g, cin, cout, k, s, h in ((1, 2, 3, 3, 2, 3), (2, 1, 2, 2, 1, 3), (1, 1, 1, 2, 2, 2)):
        x = rng.standard_normal((2, g * cin, h, h))
        w = rng.standard_normal((g * cin, cout, k, k))
        ref, mults = conv_transpose2d_counting(x, w, s, 0, g)
        contributions = np.zeros(ref.shape, dtype=int)
        for i in range(h):
            for j in range(h):
                contributions[:, :, i * s : i * s + k, j * s : j * s + k] += cin  # each input channel of the group
        assert contributions.min() >= 1 and contributions.sum() == mults
        adds = int((contributions - 1).sum())
        layer = nn.ConvTranspose2d(g * cin, g * cout, k, s, groups=g, bias=True)
        out_shape = tuple(layer(torch.zeros(x.shape)).shape)
        assert out_shape == ref.shape
        work = layer_work(layer, x.shape, out_shape)
        assert Convention("exact").total(work) == mults + adds
        assert Convention("exact", bias=True).total(work) == mults + adds + ref.size
        assert Convention("macs", bias=True).total(work) == mults + ref.size
        bare = conv_transpose2d_work(2, g * cin, g * cout, h, h, k, k, g)
        assert (bare.dots, bare.bias_outputs) == (0, 0)


def test_the_work_of_several_layers_adds_every_field():
    """Work.total over a real network's layers: each field is the sum of what the layers did, measured by hooks (MACs
    from the layers' shapes, normalization from BatchNorm outputs, activations from ReLU outputs), and a convention
    adds each share only when it asks for it."""
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2)
    )
    seen = []
    for m in net:
        m.register_forward_hook(lambda mod, i, o: seen.append((mod, tuple(i[0].shape), tuple(o.shape))))
    net.eval()(torch.zeros(2, 3, 9, 9))
    total = Work.total(layer_work(m, a, b) for m, a, b in seen)
    numel = {type(m): 0 for m, _, _ in seen}
    for m, _, b in seen:
        numel[type(m)] += int(np.prod(b))
    assert total.batchnorm == 2 * numel[nn.BatchNorm2d]
    assert total.elementwise == numel[nn.ReLU] + 3 * numel[nn.MaxPool2d]
    assert total.bias_outputs == total.dots == numel[nn.Conv2d]
    macs = 2 * 4 * 7 * 7 * 3 * 9 + 2 * 2 * 3 * 3 * 4
    assert total.macs == macs
    # each choice of a convention adds its own share, and only when asked
    pooled_and_activated = numel[nn.ReLU] + 3 * numel[nn.MaxPool2d]
    assert Convention("macs").total(total) == macs
    assert Convention("macs", batchnorm=True).total(total) == macs + 2 * numel[nn.BatchNorm2d]
    assert Convention("macs", elementwise=True).total(total) == macs + pooled_and_activated
    assert Convention("macs", bias=True).total(total) == macs + numel[nn.Conv2d]


def test_conv_work_with_symbolic_or_mixed_sizes():
    """The multiplies a tap-by-tap convolution counts (its output equal to F.conv2d's) are the work's MACs, an int on
    ints; with symbols for any of the sizes (groups included) the work, its symbols given values, is that count, and
    has no floor."""
    import sympy

    N, CI, CO, H, W, K, G = sympy.symbols("N CI CO H W K G", integer=True, positive=True)
    gen = torch.Generator().manual_seed(8)
    for n, g, cin, cout, k in ((1, 1, 2, 3, 3), (2, 2, 1, 2, 2), (1, 3, 2, 1, 1)):
        x = torch.randn(n, g * cin, 5, 5, generator=gen, dtype=torch.float64)
        w = torch.randn(g * cout, cin, k, k, generator=gen, dtype=torch.float64)
        y, ops = conv2d_counted(x, w, groups=g)
        assert torch.allclose(y, F.conv2d(x, w, groups=g), atol=1e-12)
        h = y.shape[-1]
        work = conv2d_work(n, g * cin, g * cout, h, h, k, k, g)
        assert work.macs == ops.multiplies and type(work.macs) is int
        values = {N: n, CI: g * cin, CO: g * cout, H: h, W: h, K: k, G: g}
        symbolic = (
            (conv2d_work(N, CI, CO, H, W, K, K, G).macs, values),
            (conv2d_work(n, g * cin, g * cout, h, h, k, k, G).macs, {G: g}),
            (conv2d_work(n, CI, g * cout, h, h, k, k, g).macs, {CI: g * cin}),
        )
        for expr, at in symbolic:  # a ratio, not a floor: the groups divide the channels
            assert expr.subs(at) == ops.multiplies and not expr.has(sympy.floor), expr


def _pool_upsample_blocks_measured(what, side, c):
    """Each block's weights, connections (torch's flop counter / 2, the block run alone) or outputs (forward hooks on
    its layers, BatchNorm left out) in a real PoolUpsampleNet on meta tensors, and last BatchNorm's share."""
    from torch.utils.flop_counter import FlopCounterMode

    from problems.csc413_a2_counts import pool_upsample_net

    net = pool_upsample_net(c["NIC"], c["NF"], c["NC"], c["k"], device="meta")
    x = torch.empty(1, c["NIC"], side, side, device="meta")
    counts = []
    for block in net:
        outs = []
        hooks = [
            m.register_forward_hook(lambda mod, i, o, outs=outs: outs.append(o.numel()))
            for m in block
            if not isinstance(m, nn.BatchNorm2d)
        ]
        with FlopCounterMode(display=False) as fc:
            x = block(x)
        for h in hooks:
            h.remove()
        weights = sum(p.numel() for p in block[0].parameters())
        counts.append({"weights": weights, "connections": fc.get_total_flops() // 2, "outputs": sum(outs)}[what])
    # BatchNorm's share: its γ and β, or its outputs (one connection each)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    if what == "weights":
        counts.append(sum(p.numel() for m in norms for p in m.parameters()))
    else:
        normalized = []
        for m in norms:
            m.register_forward_hook(lambda mod, i, o: normalized.append(o.numel()))
        net(torch.empty(1, c["NIC"], side, side, device="meta"))
        counts.append(sum(normalized))
    return counts


@pytest.mark.parametrize("key", ["weights", "connections", "outputs_2x"])
def test_pool_upsample_net_steps_show_each_block_as_the_real_network_runs_it(bank, key):
    """csc413-a2/4.3's derivation goes block by block: block i, the side its convolution sees, what follows it, and
    the block's count as a formula, then the total and BatchNorm's share, which the accepted convention adds. The sides
    are read by forward hooks on the real network, and each block's formula (and BatchNorm's share) is fitted exactly,
    over the rationals, to counts measured in real networks of many sizes: each step's LaTeX is the fitted formula's."""
    import random

    import sympy

    from problems.csc413_a2_counts import pool_upsample_net
    from verify.runner import derive

    what = key.removesuffix("_2x")
    side = 64 if key.endswith("_2x") else 32
    net = pool_upsample_net(1, 2, 3, 3, device="meta")
    seen = []
    for block in net:
        block[0].register_forward_hook(lambda mod, i, o: seen.append(i[0].shape[-1]))
    net(torch.empty(1, 1, side, side, device="meta"))
    after_conv = [type(b[1]) if len(b) > 1 else None for b in net]
    follows = [{nn.MaxPool2d: "pool", nn.Upsample: "up"}.get(t, "none") for t in after_conv]

    NIC, NF, NC, k = sympy.symbols("NIC NF NC k", integer=True, positive=True)
    channels = [NIC, NF, NC]
    monomials = [sympy.Integer(1), *channels] + [a * b for i, a in enumerate(channels) for b in channels[i:]]
    basis = [m * f for m in monomials for f in (1, k**2)]
    rng = random.Random(9)
    rows, measured = [], []
    for _ in range(2 * len(basis)):
        c = {"NIC": rng.randint(1, 5), "NF": rng.randint(1, 6), "NC": rng.randint(1, 6), "k": rng.choice([1, 3, 5, 7])}
        at = {NIC: c["NIC"], NF: c["NF"], NC: c["NC"], k: c["k"]}
        rows.append([b.subs(at) for b in basis])
        measured.append(_pool_upsample_blocks_measured(what, side, c))
    A = sympy.Matrix(rows)
    fitted = []
    for i in range(len(seen) + 1):
        coef = (A.T * A).solve(A.T * sympy.Matrix([m[i] for m in measured]))
        fit = sum(cf * b for cf, b in zip(coef, basis, strict=True))
        assert A * coef == sympy.Matrix([m[i] for m in measured])  # the block's counts are exactly this formula
        fitted.append(sympy.expand(fit))

    *blocks, norm_share = fitted
    derivation = derive(bank.get("csc413-a2/4.3").part(key))
    want = [
        (f"block {i}: conv {s}×{s}, {after}", sympy.latex(f))
        for i, (s, after, f) in enumerate(zip(seen, follows, blocks, strict=True), 1)
    ]
    want.append(("Total, BatchNorm ignored", sympy.latex(sympy.factor(sum(blocks)))))
    want.append(("BatchNorm's share (counted only under the accepted convention)", sympy.latex(norm_share)))
    assert [(step.text, step.latex) for step in derivation.steps] == want
    assert derivation.convention == "BatchNorm ignored" and derivation.answer == sympy.expand(sum(blocks))
    assert derivation.accepted == (("BatchNorm counted", sympy.expand(sum(blocks) + norm_share)),)


@pytest.mark.parametrize("shape", [(), (1,), (2, 3), (2, 0, 4)])
def test_elementwise_work_counts_what_torch_outputs(shape):
    """An activation's work is one operation per element of its output, as many as torch's numel, a 0-d tensor's
    single element included."""
    x = torch.zeros(shape)
    for module in (nn.ReLU(), nn.Sigmoid()):
        y = module(x)
        assert layer_work(module, tuple(x.shape), tuple(y.shape)).elementwise == y.numel()


def test_pool_upsample_net_is_the_handouts():
    """The network 4.3's derivation and both of its checks are built from, layer by layer as the handout states it:
    Conv(NIC→NF), MaxPool, BN, ReLU; Conv(NF→2NF), MaxPool, BN, ReLU; Conv(2NF→NF), Upsample ×2, BN, ReLU;
    Conv(NF→NC), Upsample ×2, BN, ReLU; Conv(NC→NC), each convolution k×k with size-keeping padding."""
    from problems.csc413_a2_counts import pool_upsample_net

    NIC, NF, NC, k = 2, 5, 3, 3
    stated = [(NIC, NF, nn.MaxPool2d), (NF, 2 * NF, nn.MaxPool2d), (2 * NF, NF, nn.Upsample), (NF, NC, nn.Upsample)]
    stated.append((NC, NC, None))
    net = pool_upsample_net(NIC, NF, NC, k, device="meta")
    assert len(net) == len(stated)
    for block, (c_in, c_out, after) in zip(net, stated, strict=True):
        conv = block[0]
        assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.padding) == (c_in, c_out, (k, k), (1, 1))
        kinds = [type(m) for m in block]
        assert kinds == ([nn.Conv2d, after, nn.BatchNorm2d, nn.ReLU] if after else [nn.Conv2d])
        if after is nn.Upsample:
            assert block[1].scale_factor == 2
        if after is nn.MaxPool2d:
            assert block[1].kernel_size == 2


@pytest.mark.parametrize("layer", ["c1", "c3"])
def test_lenet_filter_search_lists_what_torch_maps(bank, layer):
    """csc420-a2/q5's derivation lists the (filter size, stride) pairs, no padding, that take the side before the layer
    to the side after it: exactly those for which a real nn.Conv2d does."""
    from verify.runner import derive

    n, m = {"c1": (32, 28), "c3": (14, 10)}[layer]
    found = sorted(
        (f, s)
        for f in range(1, n + 1)
        for s in range(1, 33)
        if nn.Conv2d(1, 1, f, s, device="meta")(torch.empty(1, 1, n, n, device="meta")).shape[-1] == m
    )
    for key in (f"f_{layer}", f"s_{layer}"):
        steps = derive(bank.get("csc420-a2/q5").part(key)).steps
        assert steps[1].latex == ", ".join(f"(f, s) = ({f}, {s})" for f, s in found)
