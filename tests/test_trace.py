"""The operator trace both counting and receptive fields are built on: identities, module attribution, fallback."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from verify import VerifyError
from verify.count.trace import trace


class _Parent(nn.Module):
    """Uses its child's weight directly (the child's forward never runs), then an in-place ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.child = nn.Linear(4, 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        y = torch.nn.functional.linear(x, self.child.weight)
        z = self.act(y)
        return {"logits": z, "pair": (y, z.sum())}


def test_attribution_identities_and_output_paths() -> None:
    t = trace(_Parent(), [torch.zeros(2, 4)])
    assert t.device == "meta"
    mm = next(c for c in t.calls if c.name == "mm")
    assert mm.module == ""  # the parent ran it, with the child's weight
    weight_uid = next(u for u, n in t.params.items() if n == "child.weight")
    transposed = next(c for c in t.calls if c.name == "t")
    assert transposed.tensors()[0].uid == weight_uid
    relu = next(c for c in t.calls if c.name == "relu_")
    assert relu.module == "act"
    assert relu.tensors()[0].uid == mm.outputs[0].uid
    assert relu.outputs[0].uid != mm.outputs[0].uid  # in place: a new identity after the operator
    paths = dict(t.outputs)
    assert set(paths) == {"logits", "pair.0", "pair.1"}
    assert paths["logits"].uid == relu.outputs[0].uid
    assert paths["pair.1"].shape == ()
    uids = [o.uid for c in t.calls for o in c.outputs]
    assert len(uids) == len(set(uids))  # every output is a fresh identity
    assert [m.name for m in t.modules] == ["act", ""]


def test_meta_failure_falls_back_to_real_tensors() -> None:
    class Dynamic(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 if x.sum().item() > -1e9 else x

    t = trace(Dynamic(), [torch.zeros(3, 5)])
    assert t.device == "cpu" and t.fallback_reason  # .item() has no value on meta tensors
    assert any(c.name == "mul" for c in t.calls)
    with pytest.raises(VerifyError):
        trace(Dynamic(), [torch.zeros(3, 5)], device="meta")


def test_a_model_that_cannot_run_is_one_verify_error() -> None:
    with pytest.raises(VerifyError, match="cannot run on input"):
        trace(nn.Linear(4, 3), [torch.zeros(2, 5)])


def test_no_real_run_on_a_huge_input() -> None:
    class Dynamic(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 if x.sum().item() else x

    with pytest.raises(VerifyError, match="too large"):
        trace(Dynamic(), [torch.empty(100, 3, 512, 512, device="meta")])


def test_remembered_meta_kernels_give_the_same_trace() -> None:
    """A second run answers repeated operators from remembered meta kernels: the same operators, shapes and strides,
    and an in-place operator still returns the tensor it mutates."""
    from verify.count import trace as trace_module

    def model() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Flatten(), nn.LazyLinear(2)
        )

    trace_module._META_CACHE.clear()
    first = trace(model(), [torch.zeros(2, 3, 9, 9)])
    assert trace_module._META_CACHE  # remembered
    second = trace(model(), [torch.zeros(2, 3, 9, 9)])
    assert [(c.name, [o.shape for o in c.outputs]) for c in first.calls] == [
        (c.name, [o.shape for o in c.outputs]) for c in second.calls
    ]
    relu = next(c for c in second.calls if c.name == "relu_")
    flatten_input = next(c for c in second.calls if c.name == "view").tensors()[0]
    assert flatten_input.uid == relu.outputs[0].uid  # the mutated tensor flowed on


def test_remembered_meta_kernels_follow_the_default_dtype() -> None:
    class Made(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.zeros(3, device=x.device)

    before = torch.get_default_dtype()
    try:
        dtypes = []
        for dtype in (torch.float32, torch.float64):
            torch.set_default_dtype(dtype)
            made = next(c for c in trace(Made(), [torch.zeros(2, 3)]).calls if c.name == "zeros")
            dtypes.append(made.outputs[0].dtype)
    finally:
        torch.set_default_dtype(before)
    assert dtypes == ["float32", "float64"]
