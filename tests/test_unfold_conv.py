"""The unfold/fold convolution: forward equals F.conv2d, backward passes gradcheck, over a hypothesis sweep."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.unfold_conv import conv2d_unfold


@st.composite
def configs(draw):
    k = draw(st.integers(1, 3))
    p = draw(st.integers(0, 2))
    s = draw(st.integers(1, 3))
    h = draw(st.integers(max(1, k - 2 * p), 6))
    w = draw(st.integers(max(1, k - 2 * p), 6))
    return {
        "b": draw(st.integers(1, 2)),
        "c": draw(st.integers(1, 3)),
        "o": draw(st.integers(1, 3)),
        "h": h,
        "w": w,
        "k": k,
        "s": s,
        "p": p,
    }


@settings(max_examples=200, deadline=None)
@given(configs(), st.integers(0, 2**16))
def test_forward_and_backward(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg["b"], cfg["c"], cfg["h"], cfg["w"], generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(cfg["o"], cfg["c"], cfg["k"], cfg["k"], generator=g, dtype=torch.float64, requires_grad=True)
    ours = conv2d_unfold(x, w, cfg["s"], cfg["p"])
    ref = F.conv2d(x, w, stride=cfg["s"], padding=cfg["p"])
    assert torch.allclose(ours, ref, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(lambda a, b: conv2d_unfold(a, b, cfg["s"], cfg["p"]), (x, w), eps=1e-6, atol=1e-8)
    gy = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    gx, gw = torch.autograd.grad(ours, (x, w), gy)
    rx, rw = torch.autograd.grad(ref, (x, w), gy)
    assert torch.allclose(gx, rx, atol=1e-12) and torch.allclose(gw, rw, atol=1e-12)


def test_a_wrong_backward_is_caught():
    """Mutant: forgetting to fold (summing overlapping patches) breaks gradcheck."""
    from verify import unfold_conv

    class Broken(unfold_conv.Conv2dUnfold):
        @staticmethod
        def backward(ctx, grad_y):
            gx, gw, _, _ = unfold_conv.Conv2dUnfold.backward(ctx, grad_y)
            return gx * 0.5, gw, None, None

    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(
        lambda a, b: Broken.apply(a, b, 1, 1), (x, w), eps=1e-6, atol=1e-8, raise_exception=False
    )
