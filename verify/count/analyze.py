"""Per-layer facts about any nn.Module: output shapes, parameters, operation counts, outputs and receptive fields.

Shapes and counts come from one forward pass on meta tensors (a 100×3×512×512 input costs nothing): forward hooks on
every module record input and output shapes, and each leaf layer's work is computed from
:mod:`verify.count.conventions`. Data (:class:`LayerInfo`), totals (:class:`Analysis`) and rendering (the CLI) are kept
apart. Receptive fields are measured separately (:mod:`verify.count.receptive`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from verify.count.conventions import (
    Convention,
    Work,
    backward_work,
    conv2d_work,
    conv_transpose2d_work,
    linear_work,
    pool2d_work,
)


@dataclass
class LayerInfo:
    name: str
    type: str
    depth: int
    leaf: bool
    output_shape: tuple[int, ...] = ()
    params: int = 0
    trainable: int = 0
    work: Work = field(default_factory=Work)
    count: int = 0  # the work under the analysis's convention
    backward: Work = field(default_factory=Work)  # with ``training``: the backward pass of conv and linear layers
    backward_count: int = 0
    outputs: int = 0  # elements of the output tensor ("neurons")
    receptive_field: dict[str, Any] | None = None


@dataclass
class Analysis:
    model: str
    input_shape: tuple[int, ...]
    convention: Convention
    layers: list[LayerInfo]
    output_shape: tuple[int, ...]
    params: int
    trainable: int
    receptive_field: dict[str, Any] | None = None  # of the model's output, when measured

    @property
    def leaves(self) -> list[LayerInfo]:
        return [layer for layer in self.layers if layer.leaf]

    def total(self, attr: str = "count") -> int:
        return int(sum(getattr(layer, attr) for layer in self.leaves))

    def total_work(self) -> Work:
        return Work.total(layer.work for layer in self.leaves)

    def backward_total(self) -> int:
        return self.total("backward_count")


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape) if shape else 0


def layer_work(module: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Work:
    """The work of one leaf module for the given input and output shapes (zero for layers that only move data)."""
    import torch.nn as nn

    outs = _numel(out_shape)
    if isinstance(module, nn.Conv2d):
        n = math.prod(out_shape[:-3]) if len(out_shape) > 3 else 1
        kh, kw = module.kernel_size
        w = conv2d_work(n, module.in_channels, module.out_channels, out_shape[-2], out_shape[-1], kh, kw, module.groups)
        return w if module.bias is not None else Work(w.macs, w.dots, 0)
    if isinstance(module, nn.ConvTranspose2d):
        n = math.prod(in_shape[:-3]) if len(in_shape) > 3 else 1
        kh, kw = module.kernel_size
        w = conv_transpose2d_work(
            n, module.in_channels, module.out_channels, in_shape[-2], in_shape[-1], kh, kw, module.groups, outs
        )
        return w if module.bias is not None else Work(w.macs, w.dots, 0)
    if isinstance(module, nn.Linear):
        rows = _numel(out_shape) // module.out_features
        w = linear_work(rows, module.in_features, module.out_features)
        return w if module.bias is not None else Work(w.macs, w.dots, 0)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        return Work(batchnorm=2 * outs)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = module.kernel_size if isinstance(module.kernel_size, tuple) else (module.kernel_size,) * 2
        window = k[0] * k[1]
        return pool2d_work(outs, window, "max" if isinstance(module, nn.MaxPool2d) else "avg")
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        window = _numel(in_shape) // max(outs, 1)
        return pool2d_work(outs, window, "max" if isinstance(module, nn.AdaptiveMaxPool2d) else "avg")
    if isinstance(module, nn.Upsample):
        per = 0 if module.mode == "nearest" else 7  # bilinear: 4 multiplies and 3 additions per output
        return Work(elementwise=outs * per)
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.ELU)):
        return Work(elementwise=outs)
    return Work()


def meta_copy(model: Any) -> Any:
    """A copy of ``model`` whose parameters and buffers are meta tensors, made without copying any data."""
    import torch
    import torch.nn as nn
    from torch.nn.parameter import UninitializedParameter

    memo: dict[int, Any] = {}
    for p in model.parameters():
        if not isinstance(p, UninitializedParameter):
            memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo).to("meta")


def _shape(x: Any) -> tuple[int, ...]:
    import torch

    if isinstance(x, torch.Tensor):
        return tuple(int(s) for s in x.shape)
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        return tuple(int(s) for s in x[0].shape)
    return ()


def analyze(
    model: Any,
    input_shape: tuple[int, ...],
    convention: Convention | None = None,
    name: str = "model",
    training: bool = False,
) -> Analysis:
    """Run ``model`` on a meta tensor of ``input_shape`` and return per-layer shapes, parameters and counts.

    With ``training`` the forward pass runs with autograd on (still on meta tensors), so that each layer knows whether
    its input needs a gradient, and the backward work of convolution and linear layers is counted too (in MACs or
    FLOPs: the exact convention is not defined for the backward pass)."""
    import torch
    import torch.nn as nn

    from verify import VerifyError

    convention = convention or Convention()
    if training and convention.unit == "exact":
        raise VerifyError("the backward pass is counted in macs or flops; --convention exact is not defined for it")
    meta = meta_copy(model)
    infos: dict[str, LayerInfo] = {}
    order: list[str] = []
    hooks = []
    for mod_name, module in meta.named_modules():
        if mod_name == "":
            continue
        leaf = not any(True for _ in module.children())
        info = LayerInfo(mod_name, type(module).__name__, mod_name.count(".") + 1, leaf)
        infos[mod_name] = info
        order.append(mod_name)

        def hook(mod: Any, inp: Any, out: Any, info: LayerInfo = info) -> None:
            out_shape = _shape(out)
            in_shape = _shape(inp)
            info.output_shape = out_shape
            info.outputs += _numel(out_shape)
            if info.leaf:
                w = layer_work(mod, in_shape, out_shape)
                info.work = info.work + w
                if training and isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                    x = inp[0] if isinstance(inp, tuple) and inp else inp
                    bias = getattr(mod, "bias", None)
                    info.backward = info.backward + backward_work(
                        w,
                        input_grad=bool(getattr(x, "requires_grad", False)),
                        weight_grad=mod.weight.requires_grad,
                        bias_grad=bias is not None and bias.requires_grad,
                    )

        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.set_grad_enabled(training):
            out = meta(torch.empty(*input_shape, device="meta"))
    except Exception as exc:  # a model that cannot run on this input is the user's input error, in one line
        raise VerifyError(
            f"the model cannot run on input {tuple(input_shape)}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from exc
    finally:
        for h in hooks:
            h.remove()
    # parameters after the forward pass, so that lazy layers are materialized (on meta: no memory)
    params = sum(p.numel() for p in meta.parameters())
    trainable = sum(p.numel() for p in meta.parameters() if p.requires_grad)
    for mod_name, module in meta.named_modules():
        if mod_name in infos:
            infos[mod_name].params = sum(p.numel() for p in module.parameters())
            infos[mod_name].trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    layers = [infos[n] for n in order if infos[n].output_shape or infos[n].leaf]
    for info in layers:
        info.count = convention.total(info.work)
        info.backward_count = convention.total(info.backward)
    # containers: sums of their leaves
    for info in layers:
        if not info.leaf:
            kids = [x for x in layers if x.leaf and x.name.startswith(info.name + ".")]
            info.work = Work.total(k.work for k in kids)
            info.count = sum(k.count for k in kids)
            info.backward = Work.total(k.backward for k in kids)
            info.backward_count = sum(k.backward_count for k in kids)
    return Analysis(name, tuple(input_shape), convention, layers, _shape(out), params, trainable)


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
    ours = analyze(model, input_shape, Convention("flops"), training=training)
    rows = []
    for layer in ours.leaves:
        module = model.get_submodule(layer.name)
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            macs = int(layer.work.macs) + int(layer.backward.macs)
            rows.append((layer.name, 2 * macs, theirs.get(f"{top}.{layer.name}", 0)))
    return rows
