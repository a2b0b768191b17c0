"""The notation corpus: answers typed the way students and instructors type them, each with a careful grader's verdict.

Every case in tests/fixtures/notation/*.toml, tests/fixtures/notation_extra.toml and
tests/fixtures/notation_heldout/*.toml is a ``[[case]]`` table with the
keys problem, part, answer, verdict (correct, incorrect, unparsable or undecided) and why. The whole corpus is graded
once, through the same worker pool as ``verify check``, and each case is compared with its verdict. Every reference
answer the report prints is graded as well: it must read back and be correct.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from verify.answers.grade import Answer, warm_up

FIX = Path(__file__).parent / "fixtures"
FILES = [
    *sorted((FIX / "notation").glob("*.toml")),
    FIX / "notation_extra.toml",
    *sorted((FIX / "notation_heldout").glob("*.toml")),  # written without sight of the reader
]
VERDICTS = {"correct", "incorrect", "unparsable", "undecided"}
# Parts whose meaning is defined elsewhere and is not graded as part of this corpus.
EXCLUDED = {("cpen455-hw2/2.4", "total"), ("csc413-a2/4.3", None)}
# Cases that still disagree with the careful grader: (file name, case number) → why.
XFAIL: dict[tuple[str, int], str] = {
    ("cpen455-hw2.toml", 18): "a kernel size 5x5x128 for a channel count is read as the product 3200: incorrect",
    ("cpen455-hw2.toml", 118): "'the whole 512x512 image' for a receptive field: prose the reader does not map",
    ("cpen455-hw2.toml", 137): "a formula in H', which the part knows, is graded by value, not by the form asked",
    ("cpen455-hw2.toml", 247): "W and W' for H and H': two unknown names, so no reading is tried",
    ("cpen455-hw2.toml", 289): "C_{in} is read as the part's C",
    ("csc413-a2.toml", 8): "X^+ with a bare + is not read as the pseudo-inverse",
    ("csc413-a2.toml", 92): "number words ('two') and 'over' are not read",
    ("csc413-a2.toml", 201): "an unknown subscripted name (x_1) is unparsable, not undecided",
    ("csc413-a2.toml", 207): "a remark opened in \\text{(} and closed outside it is not recognised as prose",
    ("csc413-a2.toml", 228): "\\nabla L inside a formula is not read",
    ("csc420-a2.toml", 36): "n x n for a size n is undecided (size or product) by the rule the first corpus sets",
    ("csc420-a2.toml", 39): "a leading label word ('stride 1') is not dropped",
    ("csc420-a2.toml", 79): "n \\times n for a size n is undecided (size or product) by the rule the first corpus sets",
    ("vu-dl-a3.toml", 51): "a batch axis of 1 on an unbatched shape is undecided by the rule the first corpus sets",
    ("vu-dl-a3.toml", 80): "a shape without its channel axis is graded incorrect (2 axes, 3 asked)",
    ("vu-dl-a3.toml", 117): "a row vector where a column is asked is graded incorrect, not undecided",
}


def _excluded(problem: str, part: str) -> bool:
    return (problem, part) in EXCLUDED or (problem, None) in EXCLUDED or problem == "cpen455-hw2/2.4"


def load_cases() -> list[tuple[str, int, dict[str, Any]]]:
    cases = []
    for path in FILES:
        if not path.exists():
            continue
        doc = tomllib.loads(path.read_text())
        for i, case in enumerate(doc.get("case", [])):
            cases.append((path.name, i, case))
    return cases


CASES = load_cases()


@pytest.fixture(scope="module")
def graded(bank):
    """Every case's verdict, from one pool run over the whole corpus (each distinct answer graded once)."""
    from verify.answers.pool import grade_many

    warm_up()
    todo = [(name, i, c) for name, i, c in CASES if not _excluded(c["problem"], c["part"])]
    answers = [Answer(c["problem"], c["part"], c["answer"]) for _, _, c in todo]
    verdicts = grade_many({p.id: p for p in bank.problems}, answers, timeout=20, jobs=2)
    return {(name, i): v for (name, i, _), v in zip(todo, verdicts, strict=True)}


def test_the_corpus_is_large_and_well_formed():
    assert len(CASES) >= 300
    for name, i, case in CASES:
        assert {"problem", "part", "answer", "verdict", "why"} <= set(case), (name, i)
        assert case["verdict"] in VERDICTS, (name, i, case["verdict"])


@pytest.mark.parametrize(
    ("name", "index"),
    [
        pytest.param(name, i, marks=pytest.mark.xfail(reason=XFAIL[(name, i)], strict=True))
        if (name, i) in XFAIL
        else (name, i)
        for name, i, _ in CASES
    ],
    ids=[f"{name}:{i}" for name, i, _ in CASES],
)
def test_a_careful_graders_verdict(graded, name, index):
    case = next(c for n, i, c in CASES if (n, i) == (name, index))
    if _excluded(case["problem"], case["part"]):
        pytest.skip("this part's semantics are defined elsewhere")
    v = graded[(name, index)]
    assert v.verdict == case["verdict"], (case["answer"], case["why"], v.verdict, v.parsed, v.evidence)
    assert "the grader could not decide" not in v.evidence, v.evidence  # a grader exception is a bug
    if v.verdict in ("incorrect", "undecided"):
        assert v.evidence, "a verdict other than correct carries its reason"


def test_every_reference_the_report_prints_reads_back_and_is_correct(bank):
    """The reference LaTeX of every part (as the report prints it) graded as an answer to its own part."""
    from verify.answers.grade import grade_one
    from verify.model import Kind
    from verify.report.markdown import _answer_latex
    from verify.runner import derive

    checked = 0
    for problem in bank.problems:
        for part in problem.parts:
            if part.kind is Kind.TEXT:
                continue
            derivation = derive(part)
            for text in [_answer_latex(derivation)] + [
                _answer_latex(type(derivation)(v)) for _, v in derivation.accepted
            ]:
                v = grade_one(problem, Answer(problem.id, part.key, text))
                assert v.verdict == "correct", (problem.id, part.key, text, v.verdict, v.evidence)
                checked += 1
    assert checked >= 100
