"""Per-layer facts about any nn.Module: output shapes, parameters, operation counts and outputs.

One run of the model (:func:`verify.count.trace.trace`: meta tensors, a 100×3×512×512 input costs nothing; real CPU
tensors where meta fails) records every operator with the innermost module that ran it; :mod:`verify.count.ops`
gives each operator's work. A layer's work is that of the operators it ran itself and of its submodules' (a
container's row includes its own residual additions); work a parent does with a child's weights belongs to the parent
and the child's row says so. Data (:class:`LayerInfo`, :class:`Analysis`) is kept apart from rendering
(:mod:`verify.count.render`); receptive fields are measured separately (:mod:`verify.count.receptive`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from verify.count.conventions import Convention, Work
from verify.count.trace import meta_copy

__all__ = ["Analysis", "LayerInfo", "analyze", "flop_counter_agreement", "meta_copy", "torch_flops"]

DTYPES = {
    "float32": "float32",
    "float": "float32",
    "float64": "float64",
    "double": "float64",
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "long": "int64",
    "int64": "int64",
    "int": "int32",
    "int32": "int32",
    "bool": "bool",
}


@dataclass
class LayerInfo:
    name: str
    type: str
    depth: int
    leaf: bool
    output_shape: tuple[int, ...] = ()
    params: int = 0
    trainable: int = 0
    work: Work = field(default_factory=Work)  # its own operators' and its submodules'
    count: int = 0  # the work under the analysis's convention
    backward: Work = field(default_factory=Work)  # with ``training``: the backward pass of contractions
    backward_count: int = 0
    outputs: int = 0  # elements of the output tensors ("neurons"), summed over calls
    receptive_field: dict[str, Any] | None = None
    note: str = ""  # e.g. "weights used by attn": the module's parameters are used by another module's operators
    calls: int = 0  # how many times its forward ran


@dataclass
class Analysis:
    model: str
    input_shape: tuple[int, ...]  # the first input's shape
    convention: Convention
    layers: list[LayerInfo]
    output_shape: tuple[int, ...]  # the first output's shape
    params: int
    trainable: int
    receptive_field: dict[str, Any] | None = None  # of the model's output, when measured
    inputs: list[tuple[tuple[int, ...], str]] = field(default_factory=list)  # (shape, dtype) of every input
    outputs: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # (path, shape) of every tensor output
    own: Work = field(default_factory=Work)  # operators the model's own forward ran (outside every submodule)
    own_backward: Work = field(default_factory=Work)
    all_work: Work = field(default_factory=Work)  # every operator's
    all_backward: Work = field(default_factory=Work)
    uncounted: dict[str, int] = field(default_factory=dict)  # operators with no formula -> calls
    device: str = "meta"  # where the model ran: meta, or cpu (real tensors) where meta failed
    mode: str = "eval"
    own_params: int = 0  # parameters the model holds itself, in no submodule (a class token, a position table)
    confirm_rf: list[str] | None = None  # --confirm-rf's findings, when asked for
    trace: Any = field(default=None, repr=False, compare=False)  # the traced run behind every figure (receptive fields)

    @property
    def leaves(self) -> list[LayerInfo]:
        return [layer for layer in self.layers if layer.leaf]

    def total_work(self) -> Work:
        return self.all_work

    def total_backward(self) -> Work:
        return self.all_backward

    def total(self, attr: str = "count") -> int:
        """The model's count under its convention (``count``), its backward count (``backward_count``), or the sum of
        a per-layer attribute over the leaves (``outputs``)."""
        if attr == "count":
            return int(self.convention.total(self.total_work()))
        if attr == "backward_count":
            return int(self.convention.total(self.total_backward()))
        if attr == "outputs":  # the innermost modules that ran (a leaf whose parent used its weights did not)
            ran = [x.name for x in self.layers if x.calls]
            inner = [x for x in self.layers if x.calls and not any(n.startswith(x.name + ".") for n in ran)]
            return int(sum(x.outputs for x in inner))
        return int(sum(getattr(layer, attr) for layer in self.leaves))

    def backward_total(self) -> int:
        return self.total("backward_count")


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def input_dtypes(names: Sequence[str] | None, inputs: int) -> list[str]:
    """The dtype name of each of ``inputs`` inputs: none given means float32, one is used for all; raises a one-line
    :class:`VerifyError` for an unknown name or a count that does not match."""
    from verify import VerifyError

    kinds = list(names or ["float32"])
    if len(kinds) == 1:
        kinds *= inputs
    if len(kinds) != inputs:
        raise VerifyError(f"{inputs} inputs but {len(kinds)} --input-dtype values")
    unknown = [k for k in kinds if k not in DTYPES]
    if unknown:
        raise VerifyError(f"unknown input dtype '{unknown[0]}' (use one of {', '.join(sorted(DTYPES))})")
    return kinds


def analyze(
    model: Any,
    input_shape: tuple[int, ...] | Sequence[tuple[int, ...]],
    convention: Convention | None = None,
    name: str = "model",
    training: bool = False,
    *,
    dtypes: Sequence[str] | None = None,
    train_mode: bool = False,
    device: str = "auto",
) -> Analysis:
    """Run ``model`` once on inputs of ``input_shape`` (one shape, or a list of shapes for several inputs, with
    ``dtypes`` such as "long" for token inputs) and return per-layer shapes, parameters and counts.

    The model runs in eval mode unless ``train_mode`` (BatchNorm with batch statistics, dropout, auxiliary heads); its
    own mode is restored afterwards. With ``training`` autograd records during the run, so that each operator knows
    which operands need a gradient, and the backward work of contractions is counted too (in MACs or FLOPs: the exact
    convention is not defined for the backward pass)."""
    import torch

    from verify import VerifyError
    from verify.count.ops import count_trace
    from verify.count.support import example_inputs
    from verify.count.trace import trace

    convention = convention or Convention()
    if training and convention.unit == "exact":
        raise VerifyError("the backward pass is counted in macs or flops; --convention exact is not defined for it")
    given: list[Any] = [input_shape] if input_shape and isinstance(input_shape[0], int) else list(input_shape)
    shapes: list[tuple[int, ...]] = [tuple(int(s) for s in shape) for shape in given]
    if not dtypes:  # floating inputs of the model's own precision (or torch's default dtype)
        floats = [p.dtype for p in model.parameters() if p.dtype.is_floating_point]
        dtypes = [str(floats[0] if floats else torch.get_default_dtype()).removeprefix("torch.")]
    kinds = input_dtypes(dtypes, len(shapes))
    inputs = example_inputs(shapes, kinds) if shapes else []
    modes = [(m, m.training) for m in model.modules()]
    model.train(train_mode)
    try:
        tr = trace(model, inputs, grad=training, device=device)
    except SystemExit as exc:
        raise VerifyError(f"the model called sys.exit({exc.code}) while running") from None
    finally:
        for m, was in modes:
            m.training = was
    counted = count_trace(tr)
    ran = tr.model if tr.model is not None else model

    infos: dict[str, LayerInfo] = {}
    order: list[str] = []
    for mod_name, module in ran.named_modules():
        if mod_name == "":
            continue
        leaf = not any(True for _ in module.children())
        infos[mod_name] = LayerInfo(mod_name, type(module).__name__, mod_name.count(".") + 1, leaf)
        order.append(mod_name)
        infos[mod_name].params = sum(p.numel() for p in module.parameters())
        infos[mod_name].trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    if not infos:  # a model with no submodules is its own only row
        infos[""] = LayerInfo("", type(ran).__name__, 1, True)
        order.append("")
        infos[""].params = sum(p.numel() for p in ran.parameters())
        infos[""].trainable = sum(p.numel() for p in ran.parameters() if p.requires_grad)
    for mc in tr.modules:
        info = infos.get(mc.name)
        if info is None:
            continue
        info.calls += 1
        if mc.outputs:
            info.output_shape = mc.outputs[0][1].shape
        info.outputs += sum(_numel(ref.shape) for _, ref in mc.outputs)
    own: dict[str, tuple[Work, Work]] = {}
    for c in counted.counted:
        w, b = own.get(c.call.module, (Work(), Work()))
        own[c.call.module] = (w + c.work, b + c.backward)
    for mod_name, (w, b) in own.items():  # each module's work goes to it and to every enclosing module
        while True:
            if mod_name in infos:
                infos[mod_name].work = infos[mod_name].work + w
                infos[mod_name].backward = infos[mod_name].backward + b
            if not mod_name:
                break
            mod_name = mod_name.rsplit(".", 1)[0] if "." in mod_name else ""
    for info in infos.values():
        info.count = convention.total(info.work)
        info.backward_count = convention.total(info.backward)
    for owner, users in counted.weights_used_by.items():
        if owner in infos:
            who = ", ".join(sorted(u or "the model" for u in users))
            infos[owner].note = f"weights used by {who}"
    present = {n for n in infos if infos[n].calls or infos[n].leaf}
    for n in [n for n in present if infos[n].calls]:  # a parent may call a grandchild directly
        while "." in n:
            n = n.rsplit(".", 1)[0]
            present.add(n)
    layers = [infos[n] for n in order if n in present]
    params = sum(p.numel() for p in ran.parameters())
    trainable = sum(p.numel() for p in ran.parameters() if p.requires_grad)
    outs = [(path, ref.shape) for path, ref in tr.outputs]
    root_work, root_backward = own.get("", (Work(), Work()))
    return Analysis(
        name,
        shapes[0] if shapes else (),
        convention,
        layers,
        outs[0][1] if outs else (),
        params,
        trainable,
        inputs=[(s, DTYPES[k]) for s, k in zip(shapes, kinds, strict=True)],
        outputs=outs,
        own=root_work,
        own_backward=root_backward,
        all_work=Work.total(c.work for c in counted.counted),
        all_backward=Work.total(c.backward for c in counted.counted),
        uncounted=counted.uncounted,
        device=tr.device,
        mode="train" if train_mode else "eval",
        own_params=sum(p.numel() for p in ran.parameters(recurse=False)) if "" not in infos else 0,
        trace=tr,
    )


def torch_flops(model: Any, input_shape: tuple[int, ...], training: bool = False) -> dict[str, int]:
    """torch.utils.flop_counter's FLOPs per module (2 per multiply-accumulate for convolutions and matmuls); with
    ``training`` the backward pass of ``output.sum()`` is included."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    meta = meta_copy(model)
    with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(training):
        out = meta(torch.empty(*input_shape, device="meta"))
        if training:
            out.sum().backward()
    result: dict[str, int] = {}
    for key, ops in counter.get_flop_counts().items():
        result[key] = int(sum(ops.values()))
    return result


def flop_counter_agreement(
    model: Any, input_shape: tuple[int, ...], training: bool = False
) -> list[tuple[str, int, int]]:
    """(layer, our 2·MACs, torch's FLOPs) for every convolution, transposed convolution and linear layer; with
    ``training``, forward and backward together."""
    import torch.nn as nn

    theirs = torch_flops(model, input_shape, training)
    top = type(model).__name__
    ours = analyze(model, input_shape, Convention("flops"), training=training, train_mode=model.training)
    rows = []
    for layer in ours.leaves:
        module = model.get_submodule(layer.name)
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            macs = int(layer.work.macs) + int(layer.backward.macs)
            rows.append((layer.name, 2 * macs, theirs.get(f"{top}.{layer.name}", 0)))
    return rows
