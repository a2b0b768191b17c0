"""Operator-level counting (verify.count.ops) against published figures, first principles and formulas written here.

Each expected value below is computed in the test from the layer's definition (shapes, kernel, heads, gates), never by
the code under test. Models run on meta tensors (free), except where a path exists only on real tensors (the fused
operators of eval-mode attention and CPU recurrent layers), which use inputs of a few hundred elements.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from verify.cli import main
from verify.count.analyze import analyze
from verify.count.conventions import Convention
from verify.count.ops import count_trace
from verify.count.trace import trace

torchvision_models = pytest.importorskip("torchvision_models")


@pytest.fixture(autouse=True)
def _float32_default():  # type: ignore[no-untyped-def]
    """The fused CPU kernels these tests reach take float32; other tests may leave float64 as torch's default."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(before)


def _macs(model: nn.Module, *shapes: tuple[int, ...], **kw: object) -> int:
    return int(analyze(model, list(shapes), **kw).total_work().macs)  # type: ignore[arg-type]


# ---- the torchvision zoo: torchvision's own figures ------------------------------------------------------------


def _zoo() -> list[str]:
    tv = torchvision_models.models()
    return sorted(tv.list_models(module=tv))


@pytest.mark.parametrize("name", _zoo())
def test_torchvision_params_and_macs_equal_published(name: str) -> None:
    """Every classification model: parameters equal the weights' ``num_params``, and MACs equal ``_ops``.

    torchvision calls ``_ops`` GFLOPS but the figures are giga multiply-accumulates (ResNet-50: 4.089), rounded to 3
    decimals: our exact count must be within 0.0005 G of it. The input is each weight's own crop size (ViT-H/14 is
    published at 518). GoogLeNet's published weights have no auxiliary heads, so it is built without them.
    """
    tv = torchvision_models.models()
    weights = next(iter(tv.get_model_weights(name)))
    size = int(weights.transforms.keywords.get("crop_size", 224))
    kwargs: dict[str, object] = {}
    if name == "googlenet":
        kwargs = {"aux_logits": False, "init_weights": False}
    if name.startswith("vit"):
        kwargs = {"image_size": size}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision_models.build(name, **kwargs)
    result = analyze(model, (1, 3, size, size))
    assert result.params == weights.meta["num_params"]
    assert abs(result.total_work().macs / 1e9 - weights.meta["_ops"]) <= 0.0005 + 1e-12
    assert result.uncounted == {}
    assert result.mode == "eval" and result.device == "meta"


def test_vit_b16_equals_first_principles() -> None:
    """ViT-B/16 at 224: patch embedding, 12 encoder blocks (QKV, the two attention products, output projection, MLP
    with ratio 4) and the head on the class token — the attention products included."""
    patches = (224 // 16) ** 2
    tokens = patches + 1  # the class token
    d, depth, mlp, classes = 768, 12, 4 * 768, 1000
    embed = patches * d * 3 * 16 * 16
    qkv = tokens * d * 3 * d
    scores = tokens * tokens * d  # summed over the 12 heads of width 64: 12 · T · T · 64
    weighted = tokens * tokens * d
    out_proj = tokens * d * d
    ffn = tokens * d * mlp * 2
    expected = embed + depth * (qkv + scores + weighted + out_proj + ffn) + d * classes
    model = torchvision_models.build("vit_b_16")
    result = analyze(model, (1, 3, 224, 224))
    assert result.total_work().macs == expected
    rows = {x.name: x for x in result.layers}
    block = rows["encoder.layers.encoder_layer_0.self_attention"]
    assert block.work.macs == qkv + scores + weighted + out_proj  # the fused-weight projections and both products
    assert rows["encoder.layers.encoder_layer_0.self_attention.out_proj"].note.startswith("weights used by")


def test_swin_t_equals_torch_flop_counter() -> None:
    """Swin-T: ours equals half of torch's flop counter, operator kind by operator kind. Both see the same aten
    contractions on meta tensors (Swin's attention calls F.linear with its own qkv weight and does its products with
    matmul); torch's counter stops there, ours also counts bias adds, normalization and element-wise work where the
    convention asks for them, which is why the totals under --bias or --count-bn differ from torch's."""
    from torch.utils.flop_counter import FlopCounterMode

    model = torchvision_models.build("swin_t").eval()
    ours = count_trace(trace(model, [torch.empty(1, 3, 224, 224)]))
    by_kind: dict[str, int] = {}
    for c in ours.counted:
        by_kind[c.call.name] = by_kind.get(c.call.name, 0) + int(c.work.macs)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, 3, 224, 224, device="meta"))
    theirs = {str(op).split(".")[1]: v for op, v in counter.get_flop_counts()["Global"].items()}
    assert theirs == {k: 2 * v for k, v in by_kind.items() if v}
    result = analyze(model, (1, 3, 224, 224))
    rows = {x.name: x for x in result.layers}
    qkv = rows["features.1.0.attn.qkv"]  # F.linear(x, self.qkv.weight): the Linear's own forward never runs
    assert qkv.calls == 0 and qkv.count == 0 and qkv.note == "weights used by features.1.0.attn"
    tokens, c = 56 * 56, 96
    assert rows["features.1.0.attn"].work.macs >= tokens * c * 3 * c + tokens * c * c  # its projections are there


def test_eval_mode_by_default_leaves_auxiliary_heads_out() -> None:
    """Inception-v3 built with its auxiliary head: eval mode (the default) runs the network torchvision publishes
    (5.713 GMACs), train mode runs the auxiliary head too; the parameters are the same either way."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision_models.build("inception_v3", init_weights=False)
    shape = (2, 3, 299, 299)
    evaluated = analyze(model, shape)
    trained = analyze(model, shape, train_mode=True)
    assert abs(evaluated.total_work().macs / 2 / 1e9 - 5.713) <= 0.0005
    rows = {x.name: x for x in trained.layers}
    assert trained.total_work().macs == evaluated.total_work().macs + rows["AuxLogits"].work.macs > 0
    assert "AuxLogits" not in {x.name for x in evaluated.layers if x.calls}
    assert model.training  # the caller's mode is left as it was
    assert evaluated.params == trained.params


def _mixed() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.LeakyReLU(),
        nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.AvgPool2d(3, 2),
        nn.ConvTranspose2d(6, 4, 3, stride=2, groups=2),
        nn.AdaptiveMaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 5),
        nn.Sigmoid(),
    )


@pytest.mark.parametrize(
    ("make", "shape"), [("zoo", (2, 3, 32, 32)), ("resnet18", (1, 3, 64, 64)), ("mixed", (2, 3, 9, 9))]
)
def test_operator_count_equals_the_per_module_formulas(make: str, shape: tuple[int, ...]) -> None:
    """The second route: every leaf layer the per-module formulas know (conventions.layer_work, from the module's type
    and its input and output shapes) has exactly the operator-level work, in every category."""
    from verify.count.conventions import Work, layer_work
    from verify.count.models import resnet18, small_zoo

    model = {"zoo": small_zoo, "resnet18": resnet18, "mixed": _mixed}[make]().eval()
    rows = {x.name: x for x in analyze(model, shape).leaves}
    expected: dict[str, Work] = {}
    for call in trace(model, [torch.empty(shape)]).modules:
        module = model.get_submodule(call.name)
        if call.name in rows:
            work = layer_work(module, call.inputs[0].shape, call.outputs[0][1].shape)
            expected[call.name] = expected.get(call.name, Work()) + work
    known = [
        name
        for name, w in expected.items()
        if w != Work() or type(model.get_submodule(name)).__name__ in ("Upsample", "Flatten")
    ]
    assert len(known) >= 8
    for name in known:
        assert rows[name].work == expected[name], name


# ---- small models, each against its formula ----------------------------------------------------------------------


def test_conv1d_conv3d_and_transposed() -> None:
    n, c_in, c_out, g = 2, 4, 6, 2
    conv1 = nn.Conv1d(c_in, c_out, 5, stride=2, padding=1, groups=g)
    length = (128 + 2 - 5) // 2 + 1
    assert _macs(conv1, (n, c_in, 128)) == n * c_out * length * (c_in // g) * 5
    conv3 = nn.Conv3d(3, 4, (3, 3, 3), padding=1)
    assert _macs(conv3, (1, 3, 8, 16, 16)) == 4 * 8 * 16 * 16 * 3 * 27
    t1 = nn.ConvTranspose1d(4, 6, 4, stride=2, groups=2)
    assert _macs(t1, (n, 4, 10)) == n * 4 * 10 * (6 // 2) * 4  # per input element
    t3 = nn.ConvTranspose3d(2, 3, 2, stride=2)
    assert _macs(t3, (1, 2, 4, 4, 4)) == 2 * 64 * 3 * 8


def test_grouped_conv1d_backward_counts_groups_once() -> None:
    """--training: a grouped layer's input and weight gradients each cost its forward MACs; the first layer has no
    input gradient."""
    model = nn.Sequential(nn.Conv1d(4, 8, 3), nn.Conv1d(8, 8, 3, groups=4))
    result = analyze(model, (2, 4, 32), Convention("macs"), training=True)
    first, second = result.leaves
    assert first.work.macs == 2 * 8 * 30 * 4 * 3 and first.backward.macs == first.work.macs
    assert second.work.macs == 2 * 8 * 28 * 2 * 3 and second.backward.macs == 2 * second.work.macs


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_recurrent_layers_equal_their_gate_formula(kind: str) -> None:
    """T·B·G·H·(I + H) per layer and direction (G gates: 4 for LSTM, 3 for GRU, 1 for RNN); a bidirectional second
    layer reads 2H features."""
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    t, b, i, h = 7, 3, 5, 6
    model = getattr(nn, kind)(i, h, num_layers=2, bidirectional=True, dtype=torch.float32)
    expected = 2 * t * b * gates * h * (i + h) + 2 * t * b * gates * h * (2 * h + h)
    assert _macs(model, (t, b, i)) == expected
    cpu = analyze(model, [(t, b, i)], device="cpu")  # the fused CPU kernel (mkldnn_rnn_layer for LSTM)
    meta = analyze(model, [(t, b, i)])
    assert cpu.total_work() == meta.total_work() and cpu.uncounted == {}


def test_a_bare_layer_is_its_own_row_and_its_recurrent_backward_follows_the_data() -> None:
    """A model with no submodules is one row. Its backward: the input projection needs only its weight gradient; the
    hidden projection of the first step too (the initial state is zeros, needing no gradient), later steps both."""
    t, b, i, h = 5, 2, 4, 8
    result = analyze(nn.LSTM(i, h), (t, b, i), training=True)
    (row,) = result.layers
    assert row.name == "" and row.outputs == t * b * h + 2 * b * h  # the output sequence, h_n and c_n
    per_step_in, per_step_hidden = b * 4 * h * i, b * 4 * h * h
    assert row.work.macs == t * (per_step_in + per_step_hidden)
    assert row.backward.macs == t * per_step_in + per_step_hidden + (t - 1) * 2 * per_step_hidden


def test_fused_lstm_is_the_operator_counted_on_cpu() -> None:
    model = nn.LSTM(4, 5, dtype=torch.float32).eval()  # the fused CPU kernel takes float32 only
    with torch.no_grad():
        names = {c.name for c in trace(model, [torch.zeros(3, 2, 4, dtype=torch.float32)], device="cpu").calls}
    assert "mkldnn_rnn_layer" in names  # so the test above exercised the fused formula


class _SelfAttention(nn.Module):
    def __init__(self, e: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(e, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x)[0]


def test_multihead_attention_train_and_eval() -> None:
    """3·B·L·E² (projections in) + 2·B·L·L·E (the two products over all heads) + B·L·E² (projection out), whether
    eval mode takes the fused native operator (real CPU tensors) or train mode the decomposed one; torch's own counter
    sees nothing of the fused operator."""
    from torch.utils.flop_counter import FlopCounterMode

    b, length, e = 2, 5, 16
    expected = 3 * b * length * e * e + 2 * b * length * length * e + b * length * e * e
    model = _SelfAttention(e, 4)
    fused = analyze(model, (b, length, e), device="cpu")
    assert fused.total_work().macs == expected
    with torch.no_grad():
        assert "_native_multi_head_attention" in {
            c.name for c in trace(model.eval(), [torch.zeros(b, length, e)], device="cpu").calls
        }
        with FlopCounterMode(display=False) as counter:
            model.eval()(torch.zeros(b, length, e))
    assert counter.get_total_flops() == 0
    decomposed = analyze(model, (b, length, e), train_mode=True)
    assert decomposed.total_work() == fused.total_work()  # bias adds, scaling, softmax, head averaging alike
    assert fused.total_work().bias_outputs == 4 * b * length * e
    out_proj = next(x for x in fused.layers if x.name == "attn.out_proj")
    assert out_proj.note == "weights used by attn" and out_proj.count == 0


def test_fused_encoder_layer_equals_the_decomposed_one() -> None:
    """nn.TransformerEncoderLayer in eval mode on real CPU tensors is one fused operator; on meta tensors it is
    decomposed. Both count 4·B·L·E² (projections) + 2·B·L²·E (attention) + 2·B·L·E·F (feed-forward) MACs, and the same
    bias adds, normalization and element-wise work."""
    b, length, e, f = 2, 5, 16, 32
    model = nn.TransformerEncoderLayer(e, 4, f, batch_first=True, dtype=torch.float32)
    every = Convention("macs", bias=True, batchnorm=True, elementwise=True)
    fused = analyze(model, (b, length, e), every, device="cpu")
    with torch.no_grad():
        ops_run = {c.name for c in trace(model.eval(), [torch.zeros(b, length, e)], device="cpu").calls}
    assert "_transformer_encoder_layer_fwd" in ops_run
    decomposed = analyze(model, (b, length, e), every)
    assert fused.total_work() == decomposed.total_work()
    assert fused.total_work().macs == 4 * b * length * e * e + 2 * b * length * length * e + 2 * b * length * e * f


@pytest.mark.parametrize("make", ["attention", "lstm", "swin_t"])
def test_training_step_equals_torch_flop_counter_through_autograd(make: str) -> None:
    """--training on networks with no grouped convolution: our forward + backward FLOPs (from the data flow: which
    operands need a gradient) equal torch's flop counter over a real autograd backward pass, on meta tensors. The
    LSTM's first hidden product has no state gradient (the initial state is zeros); Swin-T's attention uses its child's
    weights and matmuls."""
    from torch.utils.flop_counter import FlopCounterMode

    from verify.count.trace import meta_copy

    shape = {"attention": (2, 5, 16), "lstm": (5, 2, 4), "swin_t": (1, 3, 64, 64)}[make]
    model = {
        "attention": lambda: _SelfAttention(16, 4),
        "lstm": lambda: nn.LSTM(4, 8),
        "swin_t": lambda: torchvision_models.build("swin_t"),
    }[make]()
    ours = analyze(model, shape, Convention("flops"), training=True, train_mode=True)
    copy = meta_copy(model).train()
    with FlopCounterMode(display=False) as counter:
        out = copy(torch.empty(shape, device="meta"))
        (out[0] if isinstance(out, tuple) else out).sum().backward()
    assert ours.total() + ours.backward_total() == counter.get_total_flops()
    assert ours.backward_total() > 0


def test_cross_attention_counts_query_and_key_lengths() -> None:
    class Cross(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
            return self.attn(q, kv, kv, need_weights=False)[0]

    b, lq, s, e = 3, 4, 9, 8
    expected = b * lq * e * e + 2 * b * s * e * e + 2 * b * lq * s * e + b * lq * e * e
    assert _macs(Cross(), (b, lq, e), (b, s, e)) == expected


def test_functional_matmul_einsum_sdpa() -> None:
    class Functional(nn.Module):
        def forward(self, x: torch.Tensor, w: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            y = x @ w  # (2, 5, 6) @ (6, 7)
            z = torch.einsum("bij,bjk->bik", y, y.transpose(1, 2))  # (2, 5, 7) · (2, 7, 5)
            a = F.scaled_dot_product_attention(q, k, k)  # (2, 3, 4, 8) against (2, 3, 10, 8)
            return z.sum() + a.sum()

    shapes = [(2, 5, 6), (6, 7), (2, 3, 4, 8), (2, 3, 10, 8)]
    expected = 2 * 5 * 6 * 7 + 2 * 5 * 5 * 7 + 2 * 3 * 4 * 10 * (8 + 8)
    meta = analyze(Functional(), shapes)
    cpu = analyze(Functional(), shapes, device="cpu")  # SDPA through the fused CPU kernel
    assert meta.total_work().macs == cpu.total_work().macs == expected
    assert meta.total_work().elementwise == cpu.total_work().elementwise  # scaling and softmax alike


@pytest.mark.parametrize(
    ("mode", "dims", "per_output"),
    [
        ("nearest", 2, 0),
        ("linear", 1, 2 * 2 - 1),
        ("bilinear", 2, 2 * 4 - 1),
        ("bicubic", 2, 2 * 16 - 1),
        ("trilinear", 3, 2 * 8 - 1),
    ],
)
def test_interpolation_taps(mode: str, dims: int, per_output: int) -> None:
    """Each output of a d-dimensional interpolation blends taps = 2^d (4^d for bicubic) inputs: taps multiplies and
    taps − 1 additions."""

    class Up(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, scale_factor=3, mode=mode)

    shape = (1, 2, *([4] * dims))
    outs = 2 * 12**dims
    result = analyze(Up(), shape, Convention("macs", elementwise=True))
    assert result.total() == outs * per_output


def test_normalization_and_pooling_under_count_flags() -> None:
    """BatchNorm with running statistics: 2 per element; LayerNorm computes its statistics (5 per element) and has an
    affine transform (2 more); max pooling k² − 1 comparisons per output, average k²."""
    model = nn.Sequential(nn.BatchNorm2d(3), nn.MaxPool2d(2), nn.AvgPool2d(3, 1, 1))
    result = analyze(model, (2, 3, 8, 8), Convention("macs", batchnorm=True, elementwise=True))
    assert result.total() == 2 * 384 + 96 * 3 + 96 * 9
    ln = analyze(nn.LayerNorm(10), (4, 10), Convention("macs", batchnorm=True))
    assert ln.total() == 40 * 7


def test_bias_adds_of_every_operator() -> None:
    """--bias: one add per output of a convolution's bias, of addmm's added operand and of an added parameter."""

    class Pos(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 3)
            self.conv = nn.Conv1d(3, 2, 1)
            self.pos = nn.Parameter(torch.zeros(5, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv((self.lin(x) + self.pos).transpose(1, 2))

    result = analyze(Pos(), (2, 5, 4), Convention("macs", bias=True))
    assert result.total() == (2 * 5 * 3 * 4 + 2 * 5 * 2 * 3) + (2 * 5 * 3 + 2 * 5 * 3 + 2 * 2 * 5)


def _zero(call, ctx):  # type: ignore[no-untyped-def]
    from verify.count import ops

    return ops.Work(), [], None, "free"


@pytest.mark.parametrize(
    ("operator", "check"),
    [
        ("bmm", lambda: test_multihead_attention_train_and_eval()),
        ("_native_multi_head_attention", lambda: test_multihead_attention_train_and_eval()),
        ("mkldnn_rnn_layer", lambda: test_recurrent_layers_equal_their_gate_formula("LSTM")),
        ("upsample_bilinear2d", lambda: test_interpolation_taps("bilinear", 2, 7)),
        ("native_batch_norm", lambda: test_normalization_and_pooling_under_count_flags()),
        ("_scaled_dot_product_flash_attention_for_cpu", lambda: test_functional_matmul_einsum_sdpa()),
        ("_transformer_encoder_layer_fwd", lambda: test_fused_encoder_layer_equals_the_decomposed_one()),
    ],
)
def test_an_operator_taken_as_free_is_caught(monkeypatch: pytest.MonkeyPatch, operator: str, check) -> None:  # type: ignore[no-untyped-def]
    """Each formula matters: with it replaced by "no work", the test that covers it fails."""
    from verify.count import ops

    monkeypatch.setitem(ops.FORMULAS, operator, _zero)
    with pytest.raises(AssertionError):
        check()


def test_an_ungrouped_convolution_formula_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A convolution formula that forgets to divide by the groups fails the formula test."""
    from verify.count import ops

    original = ops.FORMULAS["convolution"]

    def ungrouped(call, ctx):  # type: ignore[no-untyped-def]
        work, products, bias, kind = original(call, ctx)
        return ops.Work(macs=work.macs * call.args[-1], dots=work.dots), products, bias, kind

    monkeypatch.setitem(ops.FORMULAS, "convolution", ungrouped)
    with pytest.raises(AssertionError):
        test_conv1d_conv3d_and_transposed()


# ---- the command: inputs of any rank and kind, outputs of any structure, faults -----------------------------------


_FACTORIES = """
import sys
import torch
import torch.nn as nn


def chatty():
    print("building the model")

    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 8)
            self.rnn = nn.GRU(8, 4, batch_first=True)

        def forward(self, ids):
            print("running")
            out, h = self.rnn(self.emb(ids))
            return {"logits": out, "state": (h,)}

    return Tokens()


def exits():
    sys.exit(4)


def raises():
    raise ValueError("no such layer\\nsecond line")


def two_inputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 2, 3)
            self.lin = nn.Linear(4, 2)

        def forward(self, video, vec):
            return self.conv(video).mean() + self.lin(vec).sum()

    return Two()


def dynamic():
    class Dyn(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 6)

        def forward(self, x):
            return self.lin(x) if x.sum().item() > -1e9 else x

    return Dyn()


def unpool():
    class Unpool(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.MaxPool2d(2, return_indices=True)
            self.unpool = nn.MaxUnpool2d(2)

        def forward(self, x):
            y, idx = self.pool(x)
            return self.unpool(y, idx)

    return Unpool()


def no_params():
    return nn.Sequential(nn.ReLU(), nn.MaxPool1d(2))
"""


@pytest.fixture
def factories(tmp_path):  # type: ignore[no-untyped-def]
    f = tmp_path / "nets.py"
    f.write_text(_FACTORIES)
    return f


def test_count_tokens_dict_output_and_chatty_factory_keep_json_clean(capsys, factories) -> None:  # type: ignore[no-untyped-def]
    code = main(["count", f"{factories}:chatty", "--input", "2,7", "--input-dtype", "long", "--json", "--no-rf"])
    out, err = capsys.readouterr()
    doc = json.loads(out)  # the factory's prints went to stderr
    assert code == 0 and "building the model" in err and "running" in err
    assert doc["inputs"] == [{"shape": [2, 7], "dtype": "int64"}]
    assert doc["total"]["output_shapes"] == {"logits": [2, 7, 4], "state.0": [1, 2, 4]}
    assert doc["total"]["macs"] == 2 * 7 * 3 * 4 * (8 + 4)


def test_count_several_inputs_of_rank_5_and_2(capsys, factories) -> None:  # type: ignore[no-untyped-def]
    code = main(["count", f"{factories}:two_inputs", "--input", "1,3,6,8,8", "--input", "3,4", "--json", "--no-rf"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["total"]["macs"] == 2 * 4 * 6 * 6 * 3 * 27 + 3 * 2 * 4
    assert doc["total"]["output_shape"] == []


def test_count_dynamic_control_flow_runs_on_real_tensors(capsys, factories) -> None:  # type: ignore[no-untyped-def]
    code = main(["count", f"{factories}:dynamic", "--input", "3,6", "--json", "--no-rf"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["ran_on"] == "cpu" and doc["total"]["macs"] == 3 * 36


def test_count_pooling_indices_and_unpooling(capsys, factories) -> None:  # type: ignore[no-untyped-def]
    code = main(["count", f"{factories}:unpool", "--input", "1,2,8,8", "--count-elementwise", "--json", "--no-rf"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["total"]["output_shape"] == [1, 2, 8, 8]
    assert doc["total"]["count"] == 2 * 4 * 4 * 3  # three comparisons per window of four; unpooling moves data


def test_count_model_without_parameters(capsys, factories) -> None:  # type: ignore[no-untyped-def]
    code = main(["count", f"{factories}:no_params", "--input", "1,4,128", "--count-elementwise", "--json", "--no-rf"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["total"]["params"] == 0
    assert doc["total"]["count"] == 4 * 128 + 4 * 64 * 1  # ReLU one per element; max of 2: one comparison


def test_count_eval_mode_by_default_and_train_mode_on_request(capsys) -> None:  # type: ignore[no-untyped-def]
    """In eval mode BatchNorm uses running statistics, so an 8×8 input (a 1×1 map at the end of ResNet-18) runs; in
    train mode it cannot (one value per channel), which is one line and exit 2."""
    assert main(["count", "resnet18", "--input", "1,3,8,8", "--no-rf", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "eval"
    assert main(["count", "resnet18", "--input", "1,3,8,8", "--no-rf", "--train-mode"]) == 2
    err = capsys.readouterr().err
    assert "more than 1 value per channel" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("spec", "args", "message"),
    [
        ("exits", ["--input", "1,3"], "called sys.exit(4)"),
        ("raises", ["--input", "1,3"], "failed: ValueError: no such layer"),
        ("two_inputs", ["--input", "1,3,6,8,8"], "cannot run on input"),  # one input missing
        ("two_inputs", ["--input", "1,3,8,8", "--input", "3,4"], "cannot run on input"),  # wrong rank
        ("two_inputs", ["--input", "1,3,2,2,2", "--input", "3,4"], "cannot run on input"),  # too small
        ("chatty", ["--input", "2,7", "--input-dtype", "complex"], "unknown input dtype 'complex'"),
        (
            "chatty",
            ["--input", "2,7", "--input", "2,7", "--input-dtype", "long,long,long"],
            "2 inputs but 3 --input-dtype values",
        ),
    ],
)
def test_count_bad_inputs_are_one_line(capsys, factories, spec, args, message) -> None:  # type: ignore[no-untyped-def]
    code = main(["count", f"{factories}:{spec}", *args, "--no-rf"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "internal error" not in err, err


def test_count_table_says_whose_weights(capsys) -> None:  # type: ignore[no-untyped-def]
    import verify.count.models as models

    models.register_model("test-mha", lambda: _SelfAttention(16, 4), "self-attention")
    try:
        assert main(["count", "test-mha", "--input", "2,5,16", "--no-rf"]) == 0
    finally:
        models._REGISTERED.pop("test-mha", None)
    out = capsys.readouterr().out
    assert "weights used by attn" in out
    assert f"{3 * 2 * 5 * 256 + 2 * 2 * 5 * 5 * 16 + 2 * 5 * 256:,}" in out


def test_a_formula_that_cannot_read_its_arguments_reports_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    from verify.count import ops

    def confused(call, ctx):  # type: ignore[no-untyped-def]
        raise AssertionError("unexpected arguments")

    monkeypatch.setitem(ops.FORMULAS, "mm", confused)
    result = analyze(nn.Linear(4, 3, bias=False), (2, 4))
    assert result.uncounted == {"mm": 1} and result.total_work().macs == 0


def test_a_backward_that_ignores_the_data_flow_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting every operand's gradient (the model input's too) fails the autograd comparison."""
    from verify.count import ops

    monkeypatch.setattr(ops._Ctx, "grad", lambda self, t: isinstance(t, ops.TensorRef))
    with pytest.raises(AssertionError):
        test_training_step_equals_torch_flop_counter_through_autograd("attention")
    with pytest.raises(AssertionError):
        test_training_step_equals_torch_flop_counter_through_autograd("lstm")
