"""The work of every operator of a :class:`~verify.count.trace.Trace`, as a :class:`~verify.count.conventions.Work`.

Each operator that does arithmetic has a formula on its argument and output shapes; the named conventions
(:class:`~verify.count.conventions.Convention`) then apply to every operator alike.

- **Convolution** of any dimension: N·C_out·∏out · (C_in/g)·∏k multiply-accumulates; **transposed** convolution per
  *input* element (N·C_in·∏in · (C_out/g)·∏k: the zeros a stride inserts are never multiplied); groups divided once.
- **Matrix products** (``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``addbmm``, ``mv``, ``addmv``, ``dot``):
  outputs × the contracted length. ``matmul``, ``linear`` and ``einsum`` arrive decomposed into these.
- **Attention**: the fused scaled dot-product kernels (flash, efficient, cuDNN, CPU) count both matrix products,
  L·S·E + L·S·E_v per batch and head, and the element-wise work the decomposed (math) path does: scaling q and k, and
  the softmax. ``_native_multi_head_attention`` (the fused operator of an eval-mode ``nn.MultiheadAttention``) and
  ``_transformer_encoder_layer_fwd`` add their projections (and feed-forward network) to that.
- **Recurrent cells** arrive as ``addmm`` + element-wise operators (meta tensors), or as the fused
  ``mkldnn_rnn_layer`` (LSTM on CPU), counted with the same formula: T·B·(4H·I + 4H·H) MACs per layer and direction.
- **Bias**: the added operand of ``addmm``/``baddbmm``/``addmv``, a convolution's bias and any ``add`` of a parameter
  (biases, positional embeddings) count one add per output under ``--bias``.
- **Normalization** (``--count-bn``): with running statistics 2 per element (scale and shift, the affine folded in);
  computing the statistics from the data (layer, group, instance norm; batch norm in train mode) 5 per element (mean,
  centring, square, sum, scale) plus 2 for an affine transform; RMS norm 3 per element plus 1 for a weight.
- **Element-wise** work (``--count-elementwise``): one per output element of every element-wise operator (arithmetic,
  activations, comparisons); softmax 3 per element (exponential, sum, division); a maximum over a window of n values
  n − 1 comparisons, an average n operations; a reduction of n values to one n − 1 operations (a mean n);
  interpolation 2·taps − 1 per output (nearest 0, linear 3, bilinear 7, trilinear 15, bicubic 31).

The backward pass (``--training``) is counted for the operators that contract two operands: each operand that needs a
gradient costs the forward pass's MACs once more (the input gradient is the adjoint map, the weight gradient correlates
input and output gradient: grouped or not), and a bias that needs a gradient one addition per output. Whether a tensor
needs a gradient follows the data flow from trainable parameters (model inputs need none, so the first layer has no
input gradient); operators run under ``torch.no_grad()`` start no gradient. Element-wise backward work is not counted.

Operators that move data (views, copies, concatenation, indexing, padding, embedding lookups) do no arithmetic. An
operator with no formula here (or with arguments of a form its formula does not know) is listed by
:func:`count_trace` as uncounted, never silently taken as free.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from verify.count.conventions import Work
from verify.count.trace import OpCall, TensorRef, Trace


@dataclass(frozen=True)
class Counted:
    """One operator call's work, forward and backward, and the module that ran it."""

    call: OpCall
    work: Work
    backward: Work
    kind: str  # conv, matmul, attention, rnn, norm, pool, interpolate, elementwise, free


@dataclass
class TraceCount:
    counted: list[Counted]
    uncounted: dict[str, int] = field(default_factory=dict)  # operator name -> calls with no formula
    weights_used_by: dict[str, set[str]] = field(default_factory=dict)  # module owning a parameter -> modules using it


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


class _Ctx:
    """Data-flow facts the formulas need: which tensors come from parameters, which need a gradient."""

    def __init__(self, trace: Trace) -> None:
        self.param_of: dict[int, str] = dict(trace.params)  # uid -> parameter name, through views of it
        self.needs_grad: set[int] = set(trace.trainable)

    def is_param(self, t: Any) -> bool:
        return isinstance(t, TensorRef) and t.uid in self.param_of

    def grad(self, t: Any) -> bool:
        return isinstance(t, TensorRef) and t.uid in self.needs_grad


def arg(call: OpCall, name: str, default: Any = None) -> Any:
    """An argument by its schema name, positional or keyword."""
    if name in call.kwargs:
        return call.kwargs[name]
    for i, a in enumerate(call.op._schema.arguments):
        if a.name == name:
            if i < len(call.args) and not a.kwarg_only:
                return call.args[i]
            if a.has_default_value():
                return a.default_value
            return default
    return default


def _ref(value: Any) -> TensorRef | None:
    return value if isinstance(value, TensorRef) else None


def _out(call: OpCall) -> TensorRef:
    return call.outputs[0]


# ---- formulas: each returns (forward work, [(macs, operand a, operand b)] for the backward pass, bias operand) ----

_Products = list[tuple[int, Any, Any]]
_Formula = Callable[[OpCall, _Ctx], tuple[Work, _Products, Any, str]]


def _conv(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    x, w = _ref(call.args[0]), _ref(call.args[1])
    bias = _ref(call.args[2]) if len(call.args) > 2 else None
    assert x is not None and w is not None
    transposed = bool(arg(call, "transposed", "transpose" in call.name))
    out = _out(call)
    per = _numel(w.shape[1:])  # (C_in/g)·∏k, or (C_out/g)·∏k for a transposed convolution
    macs = _numel(x.shape if transposed else out.shape) * per
    outs = _numel(out.shape)
    return Work(macs=macs, dots=outs, bias_outputs=outs if bias else 0), [(macs, x, w)], bias, "conv"


def _matmul(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    name = call.name
    added = name.startswith("add") or name == "baddbmm"
    a, b = (call.args[1], call.args[2]) if added else (call.args[0], call.args[1])
    assert isinstance(a, TensorRef) and isinstance(b, TensorRef)
    out = _out(call)
    outs = _numel(out.shape)
    k = a.shape[-1] if name not in ("addr",) else 1
    if name == "addbmm":  # a sum over the batch too
        k *= a.shape[0]
    macs = outs * k
    c = _ref(call.args[0]) if added else None
    if c is not None and arg(call, "beta", 1) == 0:
        c = None
    if c is not None and not ctx.is_param(c):  # adding an activation, not a bias: element-wise work
        return Work(macs=macs, dots=outs, elementwise=outs), [(macs, a, b)], None, "matmul"
    return Work(macs=macs, dots=outs, bias_outputs=outs if c else 0), [(macs, a, b)], c, "matmul"


def _attention_core(
    b_h: int, l_len: int, s_len: int, e: int, e_v: int, q_elems: int, k_elems: int
) -> tuple[int, int, int, int, int]:
    """(MACs of the two products, their dot products, element-wise work, scores, first product's MACs)."""
    scores = b_h * l_len * s_len
    macs = scores * e + scores * e_v
    dots = scores + b_h * l_len * e_v
    elementwise = q_elems + k_elems + 3 * scores  # q and k scaled, softmax
    return macs, dots, elementwise, scores, scores * e


def _sdpa(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    q, k, v = (_ref(call.args[i]) for i in range(3))
    assert q is not None and k is not None and v is not None
    if call.name in ("_flash_attention_forward", "_efficient_attention_forward"):  # (B, L, H, E) layout
        b_h, l_len, s_len = _numel(q.shape[:-3]) * q.shape[-2], q.shape[-3], k.shape[-3]
    else:  # (B, H, L, E); k and v may have fewer heads (grouped-query attention): every query head is counted
        b_h, l_len, s_len = _numel(q.shape[:-2]), q.shape[-2], k.shape[-2]
    macs, dots, elementwise, _, first = _attention_core(
        b_h, l_len, s_len, q.shape[-1], v.shape[-1], _numel(q.shape), _numel(k.shape)
    )
    second = macs - first
    # backward: scores = q·kᵀ (operands q, k); out = p·v (operands p, which needs a gradient when q or k does, and v)
    p = q if ctx.grad(q) else k
    return Work(macs=macs, dots=dots, elementwise=elementwise), [(first, q, k), (second, p, v)], None, "attention"


def _native_mha(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    q, k = _ref(call.args[0]), _ref(call.args[1])
    assert q is not None and k is not None
    e = int(arg(call, "embed_dim"))
    heads = int(arg(call, "num_head"))
    batch = _numel(q.shape[:-2])
    l_len, s_len = q.shape[-2], k.shape[-2]
    projected = batch * (l_len + 2 * s_len) * e  # q, k and v projections' outputs
    out_rows = batch * l_len * e
    # the fused kernel scales q once (not k) before the softmax
    macs, dots, elementwise, scores, _ = _attention_core(
        batch * heads, l_len, s_len, e // heads, e // heads, batch * l_len * e, 0
    )
    if arg(call, "need_weights", True) and arg(call, "average_attn_weights", True):
        elementwise += scores  # the heads' weights averaged
    work = Work(
        macs=projected * e + macs + out_rows * e,
        dots=projected + dots + out_rows,
        bias_outputs=projected + out_rows,
        elementwise=elementwise,
    )
    return work, [], None, "attention"


def _encoder_layer(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    src = _ref(call.args[0])
    ffn = _ref(arg(call, "ffn_weight_1"))
    assert src is not None and ffn is not None
    e = int(arg(call, "embed_dim"))
    heads = int(arg(call, "num_heads"))
    batch, l_len = _numel(src.shape[:-2]), src.shape[-2]
    rows = batch * l_len
    hidden = ffn.shape[0]
    # scaled as the decomposed layer does it (through scaled dot-product attention: q and k)
    macs, dots, elementwise, _, _ = _attention_core(
        batch * heads, l_len, l_len, e // heads, e // heads, rows * e, rows * e
    )
    linear_macs = rows * (3 * e * e + e * e + 2 * e * hidden)
    linear_outs = rows * (3 * e + e + hidden + e)
    return (
        Work(
            macs=linear_macs + macs,
            dots=linear_outs + dots,
            bias_outputs=linear_outs,
            elementwise=elementwise + rows * hidden + 2 * rows * e,  # activation, two residual adds
            batchnorm=2 * 7 * rows * e,  # two layer norms computing their statistics, with an affine transform
        ),
        [],
        None,
        "attention",
    )


def _mkldnn_rnn(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    x, w_ih, w_hh = (_ref(call.args[i]) for i in range(3))
    assert x is not None and w_ih is not None and w_hh is not None
    steps = _numel(x.shape[:-1])  # T·B
    gates = w_ih.shape[0]  # 4H
    hidden = int(arg(call, "hidden_size"))
    macs_ih, macs_hh = steps * _numel(w_ih.shape), steps * _numel(w_hh.shape)
    outs = 2 * steps * gates
    biased = bool(arg(call, "has_biases", True))
    return (
        Work(
            macs=macs_ih + macs_hh,
            dots=outs,
            bias_outputs=outs if biased else 0,
            elementwise=steps * 13 * hidden,  # gates added, 3 sigmoids, 2 tanh, 3 products, the cell sum
        ),
        [(macs_ih, x, w_ih), (macs_hh, next((t for t in (x, w_ih, w_hh) if ctx.grad(t)), None), w_hh)],
        None,
        "rnn",
    )


def _norm(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    x = _ref(call.args[0])
    assert x is not None
    n = _numel(x.shape)
    name = call.name
    if name == "_fused_rms_norm":
        return Work(batchnorm=n * (3 + int(_ref(arg(call, "weight")) is not None))), [], None, "norm"
    running = name in ("_native_batch_norm_legit_no_training", "_batch_norm_no_update") or (
        name in ("native_batch_norm", "_native_batch_norm_legit") and not arg(call, "training", False)
    )
    if running:
        return Work(batchnorm=2 * n), [], None, "norm"
    affine = _ref(arg(call, "weight")) is not None
    return Work(batchnorm=n * (5 + 2 * int(affine))), [], None, "norm"


def _pool(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    x = _ref(call.args[0])
    assert x is not None
    outs = _numel(_out(call).shape)
    name = call.name
    if "adaptive" in name:
        window = _numel(x.shape) // max(outs, 1)
    else:
        kernel = list(arg(call, "kernel_size"))
        dims = 1 if "1d" in name else 3 if "3d" in name else 2
        kernel = kernel * dims if len(kernel) == 1 else kernel
        window = _numel(tuple(int(k) for k in kernel))
    per = window - 1 if "max" in name else window
    return Work(elementwise=outs * per), [], None, "pool"


def _interpolate(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    name = call.name
    outs = _numel(_out(call).shape)
    if "nearest" in name:
        return Work(), [], None, "interpolate"
    dims = 1 if "1d" in name else 3 if "3d" in name else 2
    taps = (4 if "bicubic" in name else 2) ** dims
    return Work(elementwise=outs * (2 * taps - 1)), [], None, "interpolate"


def _pointwise(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    outs = _numel(_out(call).shape) if call.outputs else 0
    tensors = call.tensors()
    params = [t for t in tensors if ctx.is_param(t)]
    if call.name.rstrip("_") in ("add", "sub") and len(tensors) == 2 and len(params) == 1:
        return Work(bias_outputs=outs), [], params[0], "elementwise"
    return Work(elementwise=outs), [], None, "elementwise"


def _softmax(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    return Work(elementwise=3 * _numel(_out(call).shape)), [], None, "elementwise"


def _reduction(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    x = _ref(call.args[0])
    assert x is not None
    n, outs = _numel(x.shape), _numel(_out(call).shape)
    if call.name in ("mean",):
        return Work(elementwise=n), [], None, "elementwise"
    if call.name in ("var", "std", "var_mean", "std_mean", "linalg_vector_norm", "norm"):
        return Work(elementwise=2 * n), [], None, "elementwise"
    return Work(elementwise=max(n - outs, 0)), [], None, "elementwise"


def _free(call: OpCall, ctx: _Ctx) -> tuple[Work, _Products, Any, str]:
    return Work(), [], None, "free"


_CONV = (
    "convolution _convolution convolution_overrideable cudnn_convolution cudnn_convolution_transpose "
    "mkldnn_convolution _slow_conv2d_forward thnn_conv2d slow_conv3d slow_conv_dilated2d slow_conv_dilated3d "
    "slow_conv_transpose2d slow_conv_transpose3d _conv_depthwise2d conv_depthwise3d"
)
_MATMUL = "mm addmm bmm baddbmm addbmm mv addmv dot vdot addr _int_mm"
_SDPA = (
    "_scaled_dot_product_flash_attention _scaled_dot_product_flash_attention_for_cpu "
    "_scaled_dot_product_efficient_attention _scaled_dot_product_cudnn_attention "
    "_scaled_dot_product_fused_attention_overrideable _flash_attention_forward _efficient_attention_forward"
)
_NORM = (
    "native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training _batch_norm_with_update "
    "_batch_norm_no_update native_layer_norm native_group_norm _fused_rms_norm"
)
_POOL = (
    "max_pool1d max_pool2d max_pool3d max_pool1d_with_indices max_pool2d_with_indices max_pool3d_with_indices "
    "avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d "
    "_adaptive_avg_pool2d _adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d"
)
_INTERPOLATE = (
    "upsample_nearest1d upsample_nearest2d upsample_nearest3d _upsample_nearest_exact1d _upsample_nearest_exact2d "
    "_upsample_nearest_exact3d upsample_linear1d upsample_bilinear2d upsample_trilinear3d upsample_bicubic2d "
    "_upsample_bilinear2d_aa _upsample_bicubic2d_aa"
)
_POINTWISE = (
    "add sub rsub mul div neg abs exp exp2 expm1 log log1p log2 log10 sqrt rsqrt reciprocal pow square sin cos tan "
    "erf erfc erfinv sign sgn floor ceil round trunc frac fmod remainder maximum minimum fmax fmin where clamp "
    "clamp_min clamp_max relu relu6 gelu silu mish sigmoid tanh hardswish hardsigmoid hardtanh leaky_relu elu selu "
    "celu softplus softshrink hardshrink threshold logit _prelu_kernel prelu glu addcmul addcdiv lerp hypot atan2 "
    "eq ne lt le gt ge logical_and logical_or logical_not logical_xor bitwise_and bitwise_or bitwise_not "
    "bitwise_xor masked_fill native_dropout isnan isinf nan_to_num heaviside xlogy copysign"
)
_SOFTMAX = "_softmax softmax _safe_softmax _log_softmax log_softmax"
_REDUCTION = (
    "sum mean amax amin max min prod argmax argmin var std var_mean std_mean linalg_vector_norm norm logsumexp "
    "cumsum cumprod any all"
)
_FREE = (
    "view _unsafe_view reshape _reshape_alias t transpose permute expand expand_as squeeze unsqueeze slice select "
    "as_strided alias detach clone copy copy_ _to_copy contiguous cat stack split split_with_sizes unsafe_split "
    "unsafe_split_with_sizes chunk unbind narrow flatten unflatten index index_select gather scatter embedding "
    "zeros ones empty empty_like zeros_like ones_like full full_like fill zero new_zeros new_empty new_ones new_full "
    "new_empty_strided empty_strided lift_fresh constant_pad_nd pad reflection_pad1d reflection_pad2d "
    "reflection_pad3d replication_pad1d replication_pad2d replication_pad3d roll flip repeat tile pixel_shuffle "
    "pixel_unshuffle channel_shuffle native_channel_shuffle diagonal tril triu index_put _unsafe_index "
    "masked_select nonzero _local_scalar_dense scalar_tensor arange linspace rand randn rand_like randn_like "
    "randint bernoulli normal uniform _assert_async _assert_tensor_metadata sym_size sym_stride sym_numel "
    "resize set _has_compatible_shallow_copy_type movedim moveaxis swapaxes im2col col2im unfold split_copy "
    "lift_fresh_copy _nested_tensor_from_mask _nested_tensor_from_mask_left_aligned max_unpool2d max_unpool3d "
    "one_hot topk sort argsort dropout _unsafe_view_copy view_copy expand_copy permute_copy t_copy "
    "unsqueeze_copy squeeze_copy transpose_copy select_copy slice_copy alias_copy as_strided_copy"
)

FORMULAS: dict[str, _Formula] = {}
for _names, _fn in (
    (_CONV, _conv),
    (_MATMUL, _matmul),
    (_SDPA, _sdpa),
    ("_native_multi_head_attention", _native_mha),
    ("_transformer_encoder_layer_fwd", _encoder_layer),
    ("mkldnn_rnn_layer", _mkldnn_rnn),
    (_NORM, _norm),
    (_POOL, _pool),
    (_INTERPOLATE, _interpolate),
    (_POINTWISE, _pointwise),
    (_SOFTMAX, _softmax),
    (_REDUCTION, _reduction),
    (_FREE, _free),
):
    for _name in _names.split():
        FORMULAS[_name] = _fn

_VIEWS = set(
    [
        "view",
        "_unsafe_view",
        "reshape",
        "_reshape_alias",
        "t",
        "transpose",
        "permute",
        "expand",
        "squeeze",
        "unsqueeze",
        "slice",
        "select",
        "as_strided",
        "alias",
        "detach",
        "clone",
        "_to_copy",
        "contiguous",
        "unbind",
        "split",
        "chunk",
        "unsafe_split",
    ]
)
_NO_GRAD = set(
    [
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "argmax",
        "argmin",
        "logical_and",
        "logical_or",
        "logical_not",
        "isnan",
        "isinf",
        "sign",
    ]
)


def formula_for(name: str) -> _Formula | None:
    """The formula of an operator by name; in-place variants (``relu_``) share their operator's."""
    if name in FORMULAS:
        return FORMULAS[name]
    if name.endswith("_") and name.rstrip("_") in FORMULAS:
        return FORMULAS[name.rstrip("_")]
    return None


def count_trace(trace: Trace) -> TraceCount:
    """Every operator call's work (forward, and the backward of contractions where operands need a gradient)."""
    ctx = _Ctx(trace)
    result = TraceCount([])
    owners = {name: name.rsplit(".", 1)[0] if "." in name else "" for name in trace.params.values()}
    for call in trace.calls:
        name = call.name
        formula = formula_for(name)
        products: _Products = []
        work, bias, kind = Work(), None, "uncounted"
        if formula is not None:
            try:
                work, products, bias, kind = formula(call, ctx)
            except (AssertionError, IndexError, TypeError, ValueError):  # arguments of a form the formula never met
                formula = None
        if formula is None:
            result.uncounted[name] = result.uncounted.get(name, 0) + 1
        backward = Work()
        if call.grad:
            macs = sum(m * (int(ctx.grad(a)) + int(ctx.grad(b))) for m, a, b in products)
            bias_grad = work.bias_outputs if bias is not None and ctx.grad(bias) else 0
            backward = Work(macs=macs, bias_outputs=bias_grad)
        result.counted.append(Counted(call, work, backward, kind))
        # data flow: parameters through views, gradients through differentiable operators
        tensors = call.tensors()
        if name.rstrip("_") in _VIEWS and tensors and ctx.is_param(tensors[0]):
            for o in call.outputs:
                ctx.param_of[o.uid] = ctx.param_of[tensors[0].uid]
        if call.grad and name not in _NO_GRAD and any(ctx.grad(t) for t in tensors):
            ctx.needs_grad.update(o.uid for o in call.outputs if o.dtype.startswith(("float", "complex", "bfloat")))
        for t in tensors:
            pname = ctx.param_of.get(t.uid)
            if pname is not None and owners.get(pname, "") != call.module and kind != "free":
                result.weights_used_by.setdefault(owners[pname], set()).add(call.module)
    return result
