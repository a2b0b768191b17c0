"""A 2-D convolution written with F.unfold and a matrix product, with its backward pass written by hand (F.fold),
as a torch.autograd.Function. Checked against F.conv2d (forward) and torch.autograd.gradcheck (backward).

With U = unfold(X) of shape (B, C·kh·kw, P) and the kernel flattened to W of shape (C_out, C·kh·kw):

- forward:  Y = W U, reshaped to (B, C_out, H_out, W_out);
- backward: ∇W = Σ_b ∇Y_b U_bᵀ, and ∇U = Wᵀ ∇Y folded back onto the input (overlapping patches add up), which is ∇X.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class Conv2dUnfold(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, stride: int = 1, padding: int = 0) -> Any:
        b, _, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        u = F.unfold(x, (kh, kw), stride=stride, padding=padding)  # (B, C·kh·kw, P)
        h_out = (h + 2 * padding - kh) // stride + 1
        w_out = (w + 2 * padding - kw) // stride + 1
        y = weight.reshape(c_out, -1) @ u  # (B, C_out, P)
        ctx.save_for_backward(u, weight)
        ctx.conf = (h, w, stride, padding)
        return y.reshape(b, c_out, h_out, w_out)

    @staticmethod
    def backward(ctx: Any, grad_y: Any) -> Any:
        u, weight = ctx.saved_tensors
        h, w, stride, padding = ctx.conf
        c_out, _, kh, kw = weight.shape
        g = grad_y.reshape(grad_y.shape[0], c_out, -1)  # (B, C_out, P)
        grad_w = (g @ u.transpose(1, 2)).sum(0).reshape(weight.shape)
        grad_u = weight.reshape(c_out, -1).t() @ g  # (B, C·kh·kw, P)
        grad_x = F.fold(grad_u, (h, w), (kh, kw), stride=stride, padding=padding)
        return grad_x, grad_w, None, None


def conv2d_unfold(x: Any, weight: Any, stride: int = 1, padding: int = 0) -> Any:
    """Y = conv2d(x, weight) through unfold and a matmul; differentiable by the hand-written backward."""
    return Conv2dUnfold.apply(x, weight, stride, padding)
