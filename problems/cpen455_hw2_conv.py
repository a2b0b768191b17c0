"""cpen455-hw2: convolution sizes, transposed and dilated convolution (questions 2.1, 2.2, 3.x, 4.x)."""

from __future__ import annotations

from collections.abc import Mapping
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
from verify.variants import Drawer, matrix, parametrized

SEED = "004_4c45ad93401b8073.txt"

# The classifier of question 2: a batch of images through four ReLU convolutions (three of stride 2, a last one of
# stride 1 that keeps the size), an average pooling of stride 2 and a linear layer; its data are parameters.
CLASSIFIER = {
    "batch": 100,
    "channels": 3,
    "side": 512,
    "convs": [[128, 5, 2, 2], [64, 5, 2, 2], [32, 3, 2, 1], [16, 1, 1, 0]],  # filters, kernel, stride, padding
    "pool": 2,
    "classes": 10,
}
FILTERS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256)


RF_SIDE = 192  # the side of the input on which 2.6's torch check measures gradient support


def _side_after(side: int, convs: list[list[int]]) -> int:
    for _, k, s, p in convs:
        side = (side + 2 * p - k) // s + 1
    return side


def classifier_space(d: Drawer) -> dict[str, Any]:
    """Three stride-2 convolutions (kernel 3, 5 or 7, padding 1 up to half the kernel), a 1×1 or 3×3 convolution that
    keeps the size, a 2×2 or 3×3 pooling of stride 2, on a side of 64 to 512: every map stays at least 3 wide, and
    every input pixel reaches the logits (2.6's Y sees the whole input), at the drawn side and at the side 2.6's
    gradient check measures on. A stride of 2 with a padding of at least 1 drops at most a padded column; the pooling
    window has the parity of its input, so it drops nothing; the side is drawn among those whose chain has the parity
    the measured side's has."""
    convs = [[d.choice(FILTERS), k, 2, d.integer(1, k // 2)] for k in (d.choice((3, 5, 7)) for _ in range(3))]
    k4 = d.choice((1, 3))
    convs.append([d.choice(FILTERS), k4, 1, k4 // 2])
    parity = _side_after(RF_SIDE, convs) % 2
    return {
        "batch": d.integer(1, 256),
        "channels": d.choice((1, 3)),
        "side": d.choice([n for n in range(64, 513) if _side_after(n, convs) % 2 == parity]),
        "convs": convs,
        "pool": 3 if parity else 2,
        "classes": d.integer(2, 100),
    }


def classifier(q: Mapping[str, Any]) -> tuple[tuple[Layer, ...], tuple[int, ...], str]:
    """The network, its input shape and the statement that describes them."""
    convs = [tuple(c) for c in q["convs"]]
    net: list[Layer] = []
    for i, (f, k, s, p) in enumerate(convs, 1):
        net += [Layer(f"H{i}", "conv", out=f, k=k, s=s, p=p), Layer(f"relu{i}", "relu")]
    net += [
        Layer("H5", "avgpool", k=q["pool"], s=2, p=0),
        Layer("flat", "flatten"),
        Layer("Y", "linear", out=q["classes"]),
    ]
    n, c, side = q["batch"], q["channels"], q["side"]
    images = {1: "greyscale", 3: "RGB"}.get(c, f"{c}-channel")
    layers = ", ".join(f"{f} filters {k}×{k} (stride {s}, padding {p})" for f, k, s, p in convs)
    statement = (
        f"A batch of {n} {images} images, {n}×{c}×{side}×{side}, goes through four ReLU convolutions — {layers} — "
        f"then {q['pool']}×{q['pool']} average pooling with stride 2, and a linear layer on the flattened result "
        f"gives {q['classes']} logits."
    )
    return tuple(net), (n, c, side, side), statement


NET, INPUT, STATEMENT_2 = classifier(CLASSIFIER)


def _depth_part(key: str, layer: str, previous: str, net: tuple[Layer, ...], input_shape: tuple[int, ...]) -> Part:
    """The channel depth of a layer's kernels: the channel count of the tensor that layer receives."""
    i = [x.name for x in net].index(layer)
    prev = next(x for x in net if x.name == previous)

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

        chain = {layer.name: shape for layer, shape, _ in chain_shapes(net, input_shape)}
        return checks.exact(int(claim), chain[previous][1], f"the channel axis of {previous}'s shape {chain[previous]}")

    def torch_accepts(claim: Any, ctx: Context) -> Outcome:
        from verify.layers import meta

        model = build_model(net, input_shape[1], in_override={layer: int(claim)})
        try:
            model(meta(*input_shape))
        except RuntimeError as exc:
            return Outcome(False, "torch forward with the claimed depth", str(exc).splitlines()[0][:200])
        w = getattr(model, layer).weight
        return Outcome(
            True,
            "torch forward with the claimed depth",
            f"nn.Conv2d({int(claim)}, {net[i].out}, {net[i].k}) accepts {previous}; weight shape {tuple(w.shape)}",
        )

    return Part(
        key,
        Kind.INT,
        derive,
        (checks.symbolic("channel axis of the input", weight_shape), checks.torch_check("forward pass", torch_accepts)),
    )


def classifier_question(
    question: str,
    title: str,
    ask: str,
    parts: Any,
    topics: tuple[str, ...] = ("conv-arithmetic", "shapes"),
) -> Problem:
    """A question about the classifier, built from one parameter dict: the bank's at the original parameters."""

    def build(q: Mapping[str, Any]) -> Problem:
        net, shape, statement = classifier(q)
        return Problem(
            id=f"cpen455-hw2/{question}",
            title=title,
            statement=statement + " " + ask,
            source=f"{SEED}, question {question}",
            topics=topics,
            parts=parts(net, shape),
        )

    return parametrized("cpen455-hw2/classifier", classifier_space, build, CLASSIFIER)


def _scatter_space(stride: int) -> Any:
    """3.3 with stride 1 (no padding), or with a stride of 2 or 3 where every feature of the question stays: the
    kernel larger than the stride (neighbouring copies of the kernel overlap and add up), an output padding of 1 or
    more that is at most the padding (the rows and columns it adds are ones of the full result that the padding cut
    off, not zeros) and less than padding + stride (so the added corner is a single term Y·W ≠ 0: Y is positive and W
    has no zero), and an output of at least 2×2."""

    def space(d: Drawer) -> dict[str, Any]:
        if stride == 1:
            n, k = d.integer(2, 3), d.integer(2, 3)
            return {"Y": matrix(d, n, n, 1, 9), "W": matrix(d, k, k, -5, 5)}
        s = d.choice((2, 3))
        n, k = d.integer(2, 3), d.integer(s + 1, 4)
        op = d.integer(1, s - 1)
        hi = min(k - 1, op + s - 1, ((n - 1) * s + k + op - 2) // 2)  # the last: an output of at least 2
        return {"Y": matrix(d, n, n, 1, 9), "W": matrix(d, k, k, -5, 5), "s": s, "p": d.integer(op, hi), "op": op}

    return space


def _transposed(q: Mapping[str, Any]) -> Problem:
    y, w = q["Y"], q["W"]
    if "s" not in q:
        return Problem(
            id="cpen455-hw2/3.3a",
            title="A transposed convolution by hand, stride 1",
            statement=f"Apply a transposed convolution (stride 1, no padding) with kernel W = {w} to Y = {y}.",
            source=f"{SEED}, question 3.3 (1)",
            topics=("conv-arithmetic", "transposed-conv"),
            parts=(transposed_matrix_part("X_hat", y, w),),
        )
    s, p, op = q["s"], q["p"], q["op"]
    return Problem(
        id="cpen455-hw2/3.3b",
        title=f"A transposed convolution by hand, stride {s}",
        statement=f"Apply a transposed convolution with stride {s}, padding {p} and output padding {op}, kernel "
        f"W = {w}, to Y = {y}.",
        source=f"{SEED}, question 3.3 (2)",
        topics=("conv-arithmetic", "transposed-conv"),
        parts=(transposed_matrix_part("X_hat", y, w, s=s, p=p, op=op),),
    )


def _dilated_space(d: Drawer) -> dict[str, Any]:
    """4.1 with a dilation of 2 or 3 and a stride of 2 or 3 that matters: the padding at most half the dilated
    window's span and at least what gives an output of 2×2 or more (n + 2p − span ≥ s)."""
    n, k, dil, s = d.integer(5, 7), d.integer(2, 3), d.choice((2, 3)), d.choice((2, 3))
    span = dil * (k - 1) + 1
    p = d.integer(max(0, -(-(span + s - n) // 2)), (span - 1) // 2)
    return {"X": matrix(d, n, n, 1, 9), "W": matrix(d, k, k, -3, 3), "s": s, "p": p, "d": dil}


def _dilated(q: Mapping[str, Any]) -> Problem:
    x, w, s, p, dil = q["X"], q["W"], q["s"], q["p"], q["d"]
    return Problem(
        id="cpen455-hw2/4.1",
        title="A dilated convolution by hand",
        statement=f"Convolve the {len(x)}×{len(x)} input X = {x} with kernel W = {w} at dilation {dil}, stride {s} "
        f"and padding {p}.",
        source=f"{SEED}, question 4.1",
        topics=("conv-arithmetic", "dilated-conv"),
        parts=(conv_matrix_part("Y", x, w, s=s, p=p, d=dil),),
    )


W_33 = [[-1, 2, -3], [1, -2, 3], [3, 2, -1]]
X_41 = [[3, 1, 2, 6, 5], [6, 8, 1, 7, 9], [2, 7, 4, 2, 3], [8, 3, 5, 4, 1], [1, 5, 2, 7, 6]]
Q_33A = {"Y": [[4, 3], [2, 1]], "W": [[-1, 2], [3, -4]]}
Q_33B = {"Y": [[9, 8, 7], [6, 5, 4], [3, 2, 1]], "W": W_33, "s": 2, "p": 1, "op": 1}
Q_41 = {"X": X_41, "W": W_33, "s": 2, "p": 2, "d": 2}

PROBLEMS = [
    classifier_question(
        "2.1",
        "Kernel depth of each convolution",
        "How many channels do the kernels of layers 2, 3 and 4 have?",
        lambda net, shape: tuple(
            _depth_part(k, layer, prev, net, shape)
            for k, layer, prev in (("c2", "H2", "H1"), ("c3", "H3", "H2"), ("c4", "H4", "H3"))
        ),
    ),
    classifier_question(
        "2.2",
        "Shapes through the classifier",
        "Give the shape of H1, H2, H3, H4, H5 and of the logits Y.",
        lambda net, shape: shape_parts(
            net, shape, ("H1", "H2", "H3", "H4", "H5", "Y"), note="Shapes in torch order (N, C, H, W)."
        ),
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
    parametrized("cpen455-hw2/3.3a", _scatter_space(1), _transposed, Q_33A),
    parametrized("cpen455-hw2/3.3b", _scatter_space(2), _transposed, Q_33B),
    parametrized("cpen455-hw2/4.1", _dilated_space, _dilated, Q_41),
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
