"""cpen455-hw2: convolution sizes, transposed and dilated convolution (questions 2.1, 2.2, 3.x, 4.x)."""

from __future__ import annotations

from typing import Any

from verify import checks
from verify.conv_parts import (
    Layer,
    build_model,
    conv_matrix_part,
    materialized,
    output_padding_part,
    shape_parts,
    size_formula_part,
    transposed_matrix_part,
)
from verify.count.models import register_model
from verify.model import Context, Derivation, Kind, Outcome, Part, Problem, Step

SEED = "004_4c45ad93401b8073.txt"

# The classifier of question 2: a batch of 100 RGB images of 512×512 pixels, ten classes.
INPUT = (100, 3, 512, 512)
NET = (
    Layer("H1", "conv", out=128, k=5, s=2, p=2),
    Layer("relu1", "relu"),
    Layer("H2", "conv", out=64, k=5, s=2, p=2),
    Layer("relu2", "relu"),
    Layer("H3", "conv", out=32, k=3, s=2, p=1),
    Layer("relu3", "relu"),
    Layer("H4", "conv", out=16, k=1, s=1, p=0),
    Layer("relu4", "relu"),
    Layer("H5", "avgpool", k=2, s=2, p=0),
    Layer("flat", "flatten"),
    Layer("Y", "linear", out=10),
)
STATEMENT_2 = (
    "A batch of 100 RGB images, 100×3×512×512, goes through four ReLU convolutions — 128 filters 5×5 (stride 2, "
    "padding 2), 64 filters 5×5 (stride 2, padding 2), 32 filters 3×3 (stride 2, padding 1), 16 filters 1×1 "
    "(stride 1, padding 0) — then 2×2 average pooling with stride 2, and a linear layer on the flattened result "
    "gives 10 logits."
)


def _depth_part(key: str, layer: str, previous: str) -> Part:
    """The channel depth of a layer's kernels: the channel count of the tensor that layer receives."""
    i = [x.name for x in NET].index(layer)
    prev = next(x for x in NET if x.name == previous)

    def derive() -> Derivation:
        return Derivation(
            prev.out,
            (
                Step(f"A kernel of {layer} spans every channel of its input, which is {previous}."),
                Step(f"{previous} has one channel per filter of its layer", f"c = {prev.out}"),
            ),
        )

    def weight_shape(claim: Any, ctx: Context) -> Outcome:
        # The weight tensor of a convolution is (filters, depth, k, k); the depth must match the input channel axis
        # of the shape the previous layer produces, read off the formula chain.
        from verify.conv_parts import chain_shapes

        chain = {layer.name: shape for layer, shape, _ in chain_shapes(NET, INPUT)}
        return checks.exact(int(claim), chain[previous][1], f"the channel axis of {previous}'s shape {chain[previous]}")

    def torch_accepts(claim: Any, ctx: Context) -> Outcome:
        from verify.layers import meta

        model = build_model(NET, INPUT[1], in_override={layer: int(claim)})
        try:
            model(meta(*INPUT))
        except RuntimeError as exc:
            return Outcome(False, "torch forward with the claimed depth", str(exc).splitlines()[0][:200])
        w = getattr(model, layer).weight
        return Outcome(
            True,
            "torch forward with the claimed depth",
            f"nn.Conv2d({int(claim)}, {NET[i].out}, {NET[i].k}) accepts {previous}; weight shape {tuple(w.shape)}",
        )

    return Part(
        key,
        Kind.INT,
        derive,
        (checks.symbolic("channel axis of the input", weight_shape), checks.torch_check("forward pass", torch_accepts)),
    )


Y_33A = [[4, 3], [2, 1]]
W_33A = [[-1, 2], [3, -4]]
Y_33B = [[9, 8, 7], [6, 5, 4], [3, 2, 1]]
W_33 = [[-1, 2, -3], [1, -2, 3], [3, 2, -1]]
X_41 = [[3, 1, 2, 6, 5], [6, 8, 1, 7, 9], [2, 7, 4, 2, 3], [8, 3, 5, 4, 1], [1, 5, 2, 7, 6]]

PROBLEMS = [
    Problem(
        id="cpen455-hw2/2.1",
        title="Kernel depth of each convolution",
        statement=STATEMENT_2 + " How many channels do the kernels of layers 2, 3 and 4 have?",
        source=f"{SEED}, question 2.1",
        topics=("conv-arithmetic", "shapes"),
        parts=(_depth_part("c2", "H2", "H1"), _depth_part("c3", "H3", "H2"), _depth_part("c4", "H4", "H3")),
    ),
    Problem(
        id="cpen455-hw2/2.2",
        title="Shapes through the classifier",
        statement=STATEMENT_2 + " Give the shape of H1, H2, H3, H4, H5 and of the logits Y.",
        source=f"{SEED}, question 2.2",
        topics=("conv-arithmetic", "shapes"),
        parts=shape_parts(NET, INPUT, ("H1", "H2", "H3", "H4", "H5", "Y"), note="Shapes in torch order (N, C, H, W)."),
    ),
    Problem(
        id="cpen455-hw2/3.1",
        title="Output size of a convolution",
        statement=(
            "A single-channel H×W image is convolved with a K×K kernel at stride S with padding P. "
            "Express the output height H' (the width follows the same rule)."
        ),
        source=f"{SEED}, question 3.1",
        topics=("conv-arithmetic",),
        parts=(size_formula_part("H_out", {"H": "H", "K": "K", "S": "S", "P": "P"}),),
    ),
    Problem(
        id="cpen455-hw2/3.2",
        title="Output padding that undoes a convolution's shape",
        statement=(
            "The output of question 3.1 goes through a transposed convolution with the same K, S and P and an output "
            "padding P'. Which P' makes the result exactly H×W again?"
        ),
        source=f"{SEED}, question 3.2",
        topics=("conv-arithmetic", "transposed-conv"),
        parts=(output_padding_part("output_padding", {"H": "H", "K": "K", "S": "S", "P": "P"}),),
    ),
    Problem(
        id="cpen455-hw2/3.3a",
        title="A transposed convolution by hand, stride 1",
        statement="Apply a transposed convolution (stride 1, no padding) with kernel W = [[-1, 2], [3, -4]] to "
        "Y = [[4, 3], [2, 1]].",
        source=f"{SEED}, question 3.3 (1)",
        topics=("conv-arithmetic", "transposed-conv"),
        parts=(transposed_matrix_part("X_hat", Y_33A, W_33A),),
    ),
    Problem(
        id="cpen455-hw2/3.3b",
        title="A transposed convolution by hand, stride 2",
        statement="Apply a transposed convolution with stride 2, padding 1 and output padding 1, kernel "
        "W = [[-1, 2, -3], [1, -2, 3], [3, 2, -1]], to Y = [[9, 8, 7], [6, 5, 4], [3, 2, 1]].",
        source=f"{SEED}, question 3.3 (2)",
        topics=("conv-arithmetic", "transposed-conv"),
        parts=(transposed_matrix_part("X_hat", Y_33B, W_33, s=2, p=1, op=1),),
    ),
    Problem(
        id="cpen455-hw2/4.1",
        title="A dilated convolution by hand",
        statement="Convolve the 5×5 input X = " + str(X_41) + " with kernel W = [[-1, 2, -3], [1, -2, 3], "
        "[3, 2, -1]] at dilation 2, stride 2 and padding 2.",
        source=f"{SEED}, question 4.1",
        topics=("conv-arithmetic", "dilated-conv"),
        parts=(conv_matrix_part("Y", X_41, W_33, s=2, p=2, d=2),),
    ),
    Problem(
        id="cpen455-hw2/4.2",
        title="Output size of a dilated convolution",
        statement="A dilated convolution (kernel K×K, dilation D, stride S, padding P) is applied to an H×W input. "
        "Express the output height H'.",
        source=f"{SEED}, question 4.2",
        topics=("conv-arithmetic", "dilated-conv"),
        parts=(size_formula_part("H_out", {"H": "H", "K": "K", "S": "S", "P": "P", "D": "D"}),),
    ),
    Problem(
        id="cpen455-hw2/4.3",
        title="Output padding after a dilated convolution",
        statement="A transposed dilated convolution with the same K, D, S and P maps the output of question 4.2 back. "
        "Which output padding P' gives an H×W result?",
        source=f"{SEED}, question 4.3",
        topics=("conv-arithmetic", "dilated-conv", "transposed-conv"),
        parts=(output_padding_part("output_padding", {"H": "H", "K": "K", "S": "S", "P": "P", "D": "D"}),),
    ),
]

register_model("cpen455-classifier", materialized(NET, 3, 512), "cpen455-hw2/2.2 classifier (100,3,512,512)")
