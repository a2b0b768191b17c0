"""Reference implementations that count their own scalar operations: the brute-force side of every operation count.

Each computes a layer's output the slow, explicit way (one kernel tap or one window element at a time, vectorized only
over output positions) and tallies every scalar multiply, addition and comparison it performs. Its output is compared
with the real torch layer's, so the tally is the work of a correct implementation, not of a formula.

>>> import torch
>>> import torch.nn.functional as F
>>> x, w = torch.randn(1, 2, 5, 5, dtype=torch.float64), torch.randn(3, 2, 3, 3, dtype=torch.float64)
>>> y, ops = conv2d_counted(x, w, stride=2, padding=1)
>>> bool(torch.allclose(y, F.conv2d(x, w, stride=2, padding=1))), ops.multiplies, ops.additions
(True, 486, 459)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Ops:
    multiplies: int = 0
    additions: int = 0
    comparisons: int = 0

    @property
    def total(self) -> int:
        return self.multiplies + self.additions + self.comparisons


def _positions(size: int, span: int, stride: int) -> int:
    """How many windows of ``span`` fit in ``size`` when they start every ``stride`` (counted, not a formula)."""
    return len(range(0, size - span + 1, stride))


def conv2d_counted(
    x: Any, w: Any, bias: Any = None, stride: int = 1, padding: int = 0, dilation: int = 1, groups: int = 1
) -> tuple[Any, Ops]:
    """F.conv2d as a sum over kernel taps: every tap multiplies each output's input value by one weight (padded zeros
    included), and every tap after the first adds into the output; a bias is one more addition per output."""
    import torch
    import torch.nn.functional as F

    n, _, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    oh = _positions(h + 2 * padding, dilation * (kh - 1) + 1, stride)
    ow = _positions(wd + 2 * padding, dilation * (kw - 1) + 1, stride)
    group_of = torch.arange(c_out) // (c_out // groups)
    ops = Ops()
    acc = None
    for c in range(cg):
        channel = group_of * cg + c  # the input channel each filter reads at its c-th position
        for u in range(kh):
            rows = slice(u * dilation, u * dilation + stride * (oh - 1) + 1, stride)
            for v in range(kw):
                cols = slice(v * dilation, v * dilation + stride * (ow - 1) + 1, stride)
                term = xp[:, channel, rows, cols] * w[:, c, u, v].view(1, c_out, 1, 1)
                ops.multiplies += term.numel()
                if acc is None:
                    acc = term
                else:
                    acc = acc + term
                    ops.additions += term.numel()
    assert acc is not None
    if bias is not None:
        acc = acc + bias.view(1, c_out, 1, 1)
        ops.additions += acc.numel()
    return acc.reshape(n, c_out, oh, ow), ops


def max_pool2d_counted(x: Any, kernel: int, stride: int | None = None, padding: int = 0) -> tuple[Any, Ops]:
    """F.max_pool2d as a running maximum over the window's elements: one comparison per element after the first."""
    import torch
    import torch.nn.functional as F

    stride = kernel if stride is None else stride
    _, _, h, wd = x.shape
    xp = F.pad(x, (padding, padding, padding, padding), value=float("-inf"))
    oh = _positions(h + 2 * padding, kernel, stride)
    ow = _positions(wd + 2 * padding, kernel, stride)
    ops = Ops()
    best = None
    for u in range(kernel):
        for v in range(kernel):
            window = xp[:, :, u : u + stride * (oh - 1) + 1 : stride, v : v + stride * (ow - 1) + 1 : stride]
            if best is None:
                best = window
            else:
                best = torch.maximum(best, window)
                ops.comparisons += window.numel()
    assert best is not None
    return best, ops


def backward_multiplies(output: Any, grad_output: Any) -> int:
    """Run ``output.backward(grad_output)`` and count the scalar multiplies autograd performs (elements of every
    ``aten.mul`` result). On the graph of :func:`conv2d_counted` this is the true multiply count of a convolution's backward pass:
    the gradient of each tap's product is one multiply per term for the input and one for the weight."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        multiplies = 0

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            if func.overloadpacket is torch.ops.aten.mul and isinstance(out, torch.Tensor):
                Count.multiplies += out.numel()
            return out

    with Count():
        output.backward(grad_output)
    return Count.multiplies
