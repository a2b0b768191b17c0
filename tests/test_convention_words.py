"""What `verify count` and the counting derivations say their numbers are: each convention's description and each
step of the separable-convolution derivation, word for word (a mutation run found these texts unchecked)."""

from __future__ import annotations

import pytest

from verify.count.conventions import Convention, Work


@pytest.mark.parametrize(
    ("convention", "text"),
    [
        (
            Convention("macs"),
            "multiply-accumulates (MACs); bias not counted; normalization not counted (folded); "
            "pooling/activations/upsampling not counted",
        ),
        (
            Convention("flops", bias=True, batchnorm=True, elementwise=True),
            "FLOPs = 2·MACs; bias adds counted; normalization counted (2 per element with running statistics); "
            "pooling/activations/upsampling counted",
        ),
        (
            Convention("exact"),
            "exact operations: k multiplies and k−1 additions per dot product; bias not counted; normalization not counted (folded); "
            "pooling/activations/upsampling not counted",
        ),
    ],
)
def test_each_convention_says_what_it_counts(convention, text):
    assert convention.describe() == text


def test_only_the_choices_that_change_a_count_are_named():
    conv = Convention("flops", bias=True)
    assert conv.describe(Work(macs=10, dots=5)) == "FLOPs = 2·MACs"
    assert conv.describe(Work(macs=10, dots=5, bias_outputs=5)) == "FLOPs = 2·MACs; bias adds counted"
    assert conv.describe(Work(batchnorm=4)) == "FLOPs = 2·MACs; normalization not counted (folded)"
    assert conv.describe(Work(elementwise=3)) == "FLOPs = 2·MACs; pooling/activations/upsampling not counted"


def test_the_bias_gradient_adds_one_per_output_only_when_asked():
    """Summing the output gradient into a bias gradient: one addition per output of a biased layer (a mutation run
    found this unchecked); counted against the outputs of a real layer."""
    import torch

    from verify.count.conventions import backward_work, conv2d_work

    layer = torch.nn.Conv2d(3, 4, 3, bias=True)
    outputs = layer(torch.zeros(2, 3, 8, 8)).numel()
    forward = conv2d_work(2, 3, 4, 6, 6, 3, 3)
    forward = Work(macs=forward.macs, dots=forward.dots, bias_outputs=outputs)
    with_bias = backward_work(forward, input_grad=True, weight_grad=True, bias_grad=True)
    without = backward_work(forward, input_grad=True, weight_grad=True, bias_grad=False)
    assert with_bias.bias_outputs == outputs and without.bias_outputs == 0
    assert Convention("macs", bias=True).total(with_bias) == 2 * forward.macs + outputs
    assert Convention("macs", bias=True).total(without) == 2 * forward.macs


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("params_vanilla", "N filters of size K×K×C"),
        (
            "params_separable",
            "a depthwise K×K filter per channel (C·K²) and a pointwise 1×1×C filter per output (C·N)",
        ),
        ("ops_vanilla", "B·N·H·W outputs, each a dot product of length C·K²: C·K² multiplies and C·K² − 1 additions"),
        ("ops_separable", "depthwise: B·C·H·W dot products of length K²; pointwise: B·N·H·W dot products of length C"),
    ],
)
def test_the_separable_convolution_derivation_says_what_it_counts(bank, key, text):
    """cpen455-hw2/6: the derivation's one step, word for word, and under it the formula the part's checks confirm; the
    convention it names (a mutation run found these unchecked)."""
    import sympy

    from verify.runner import derive

    derivation = derive(bank.get("cpen455-hw2/6").part(key))
    steps = [(s.text, s.latex) for s in derivation.steps]
    weights = "C*K**2*N" if key.endswith("vanilla") else "C*K**2, C*N"
    assert steps[0] == (f"Weights per layer from the parameter formula: {weights}", "")
    assert steps[-1] == (text, sympy.latex(derivation.answer))
    if key.startswith("ops"):  # the multiply-accumulates in between: every weight at each of the B·H·W positions
        _, flops = derivation.accepted[0]
        B, C, H, K, N, W = sorted(flops.free_symbols, key=lambda x: x.name)
        macs = (C * K**2 * N if key.endswith("vanilla") else C * K**2 + C * N) * B * H * W
        assert len(steps) == 3 and steps[1] == (
            "Each weight meets B·H·W positions (half padding keeps H×W): multiply-accumulates",
            sympy.latex(macs if key.endswith("vanilla") else B * C * H * K**2 * W + B * C * H * N * W),
        )
        assert sympy.expand(flops - 2 * macs) == 0
    else:
        assert len(steps) == 2
    # the sizes are positive integers, so a written form such as sqrt(C**2) for C reads as the same answer
    assert all(x.is_integer and x.is_positive for x in derivation.answer.free_symbols)
    assert sympy.sqrt(derivation.answer**2) == derivation.answer
    # operations leave the convention open (exact, or FLOPs accepted and named); parameters do not
    ops = key.startswith("ops")
    assert derivation.convention == ("exact operations" if ops else "")
    assert [name for name, _ in derivation.accepted] == (["FLOPs = 2·MACs"] if ops else [])


def test_an_unknown_unit_is_refused_by_name():
    from verify import VerifyError

    for unit in ("gflops", "MACs", ""):
        with pytest.raises(VerifyError) as info:
            Convention(unit)
        assert str(info.value) == f"unknown counting unit '{unit}' (use macs, flops or exact)"
