"""Operation counts of layers under named conventions, as formulas on ints or sympy symbols.

A layer's work is described by a :class:`Work`: multiply-accumulates (``macs``), the number of outputs that receive a
bias, and element-wise operations (pooling, activations, normalization, interpolation). A :class:`Convention` turns
that into one number:

- ``macs``: multiply-accumulates (bias adds and element-wise work added only when the convention says so);
- ``flops``: 2 · MACs (a multiply and an add each), plus one add per output for a bias;
- ``exact``: k multiplies and k − 1 additions per dot product of length k, plus one add per output for a bias.

Transposed convolution is counted per *input* element (C_in/g · C_out · k² per input position): the zeros a stride
inserts are never multiplied. Grouped and depthwise convolution divide by the groups once.

>>> conv2d_work(1, 3, 128, 256, 256, 5, 5).macs
629145600
>>> conv_transpose2d_work(1, 1, 1, 3, 3, 3, 3).macs
81
>>> Convention("exact").total(Work(macs=12, dots=4))
20
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Num = Any


@dataclass(frozen=True)
class Work:
    macs: Num = 0
    dots: Num = 0  # dot products (outputs that are sums of products)
    bias_outputs: Num = 0  # outputs that receive a bias add
    elementwise: Num = 0  # pooling, activation, normalization and interpolation operations
    batchnorm: Num = 0  # element-wise scale-and-shift operations of a normalization layer

    def __add__(self, other: Work) -> Work:
        return Work(
            self.macs + other.macs,
            self.dots + other.dots,
            self.bias_outputs + other.bias_outputs,
            self.elementwise + other.elementwise,
            self.batchnorm + other.batchnorm,
        )

    @staticmethod
    def total(works: Iterable[Work]) -> Work:
        """The sum of several layers' work."""
        return sum(works, Work())


@dataclass(frozen=True)
class Convention:
    unit: str = "macs"  # macs | flops | exact
    bias: bool = False
    batchnorm: bool = False  # count BatchNorm (2 operations per element) instead of folding it into the conv
    elementwise: bool = False  # count pooling, activations and interpolation

    def __post_init__(self) -> None:
        if self.unit not in ("macs", "flops", "exact"):
            from verify import VerifyError

            raise VerifyError(f"unknown counting unit '{self.unit}' (use macs, flops or exact)")

    def total(self, w: Work) -> Num:
        if self.unit == "macs":
            core = w.macs
        elif self.unit == "flops":
            core = 2 * w.macs
        else:
            core = 2 * w.macs - w.dots
        extra = (w.bias_outputs if self.bias else 0) + (w.elementwise if self.elementwise else 0)
        return core + extra + (w.batchnorm if self.batchnorm else 0)

    def describe(self, work: Work | None = None) -> str:
        """The convention in words; given a ``work``, only the choices that change its count are named."""
        unit = {
            "macs": "multiply-accumulates (MACs)",
            "flops": "FLOPs = 2·MACs",
            "exact": "exact operations: k multiplies and k−1 additions per dot product",
        }[self.unit]
        parts = [unit]
        if work is None or work.bias_outputs:
            parts.append("bias adds counted" if self.bias else "bias not counted")
        if work is None or work.batchnorm:
            parts.append(
                "normalization counted (2 per element with running statistics)"
                if self.batchnorm
                else "normalization not counted (folded)"
            )
        if work is None or work.elementwise:
            parts.append(
                "pooling/activations/upsampling counted"
                if self.elementwise
                else "pooling/activations/upsampling not counted"
            )
        return "; ".join(parts)


def conv2d_work(n: Num, c_in: Num, c_out: Num, h_out: Num, w_out: Num, kh: Num, kw: Num, groups: Num = 1) -> Work:
    """N · C_out · H_out · W_out dot products, each of length (C_in/g) · kh · kw."""
    outs = n * c_out * h_out * w_out
    k = (c_in // groups if isinstance(c_in, int) and isinstance(groups, int) else c_in / groups) * kh * kw
    return Work(macs=outs * k, dots=outs, bias_outputs=outs)


def conv_transpose2d_work(
    n: Num, c_in: Num, c_out: Num, h_in: Num, w_in: Num, kh: Num, kw: Num, groups: Num = 1, outputs: Num = None
) -> Work:
    """Every input element is multiplied by its group's C_out/g · kh · kw weights: N · C_in · H_in · W_in · (C_out/g) · kh · kw.

    ``outputs`` (N · C_out · H_out · W_out) sets the bias adds and the dot products the exact convention subtracts.
    """
    per = (c_out // groups if isinstance(c_out, int) and isinstance(groups, int) else c_out / groups) * kh * kw
    macs = n * c_in * h_in * w_in * per
    outs = outputs if outputs is not None else 0
    return Work(macs=macs, dots=outs, bias_outputs=outs)


def linear_work(rows: Num, n_in: Num, n_out: Num) -> Work:
    outs = rows * n_out
    return Work(macs=outs * n_in, dots=outs, bias_outputs=outs)


def pool2d_work(outputs: Num, window: Num, op: str = "max") -> Work:
    """A maximum over n values takes n − 1 comparisons; an average n − 1 additions and one division (n operations)."""
    return Work(elementwise=outputs * (window - 1 if op == "max" else window))


def backward_work(forward: Work, input_grad: bool, weight_grad: bool, bias_grad: bool) -> Work:
    """The backward pass of a convolution, transposed convolution or linear layer.

    The gradient with respect to the input is the adjoint map (a transposed convolution for a convolution, and the
    other way round) and the gradient with respect to the weights correlates the input with the output gradient: each
    takes exactly the forward pass's multiply-accumulates, grouped or not (each group's weights meet only that group's
    channels). A bias gradient sums the output gradient: one addition per output. The first layer needs no input
    gradient.

    >>> backward_work(Work(macs=100, dots=10, bias_outputs=10), True, True, True).macs
    200
    """
    per = int(input_grad) + int(weight_grad)
    return Work(macs=forward.macs * per, bias_outputs=forward.bias_outputs if bias_grad else 0)


def _numel(shape: tuple[int, ...]) -> int:
    """torch's numel of a tensor of that shape: 1 for a 0-d tensor (the empty product)."""
    return math.prod(shape)


def layer_work(module: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Work:
    """The work of one leaf module (Conv2d, ConvTranspose2d, Linear, BatchNorm, 2-d pooling, Upsample, activations)
    from its input and output shapes: the per-module route, kept independent of the operator-level count
    (:mod:`verify.count.ops`) so that each checks the other; zero for module types it does not know."""
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
