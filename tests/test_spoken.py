"""What people write around an answer: code spellings, remarks, substitutions, hedges and unbalanced brackets."""

from __future__ import annotations

import pytest

from verify.answers.spoken import alternatives, balanced, preread


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("A.T @ B", r"A^T  \cdot  B"),
        ("np.linalg.inv(X @ X.T)", r"(X  \cdot  X^T)^{-1}"),
        ("np.array([[1, 2], [3, 4]])", "[[1, 2], [3, 4]]"),
        ("G.sum(dim=1)", r"(G \mathbf{1})"),
        ("G.sum(axis=0)", r"(\mathbf{1}^T G)"),
        (r"\operatorname{mod}(a + b, S)", r"((a + b) \bmod (S))"),
        ("1 2; 3 4", "[[1, 2], [3, 4]]"),
        ("[1 2 3; 4 5 6]", "[[1, 2, 3], [4, 5, 6]]"),
        ("(-8, -4)^T", "(-8, -4)"),
        (r"\nabla L(w) = [1, 2]", "[1, 2]"),
        ("B x 3 with B = 100", "100 x 3"),
        ("B x C where B = 2 and C = -3", "2 x (-3)"),
        ("17 (max over positions; min 13)", "17"),
        ("(1, 2) — unchanged, only depth changes", "(1, 2)"),
        ("f(x) (x)", "f(x) (x)"),  # brackets with no prose stay
        ("1 2; 3", "1 2; 3"),  # rows of different lengths are not a matrix
    ],
)
def test_preread(text, want):
    assert preread(text) == want


def test_balanced():
    assert balanced("(a, [b], {c})") and balanced(r"\{B, H\}") and balanced("[0, 1)")
    assert not balanced("(100, 32") and not balanced("{B, H, W") and not balanced("a)(")


def test_alternatives():
    assert alternatives("9600 or 9728") == (["9600", "9728"], "or")
    assert alternatives("O(t) and O(1)") == (["O(t)", "O(1)"], "and")
    assert alternatives("No, XOR is not separable") == (["No, XOR is not separable"], "")
    assert alternatives("or 3") == (["or 3"], "")


@pytest.mark.parametrize(
    ("problem", "part", "answer", "verdict", "evidence"),
    [
        ("cpen455-hw2/2.2", "H3", "(100, 32, 64, 64", "unparsable", "brackets"),
        ("cpen455-hw2/2.3", "H1", "1 or 2", "incorrect", "several values"),
        ("cpen455-hw2/5.1", "params", "Z N C K^2", "incorrect", "uses Z"),
        ("csc413-a2/2.1.2", "backward_memory", "O(m)", "incorrect", "expected O(t)"),
        ("csc413-a2/2.1.2", "backward_memory", "linear in t", "correct", ""),
        ("csc413-a2/2.1.2", "backward_memory", "constant", "incorrect", ""),
        ("cpen455-hw2/2.5", "one", "none of these", "unparsable", "words"),
    ],
)
def test_graded(bank, problem, part, answer, verdict, evidence):
    from verify.answers.grade import Answer, grade_one

    v = grade_one(
        bank.problem(problem) if hasattr(bank, "problem") else next(p for p in bank.problems if p.id == problem),
        Answer(problem, part, answer),
    )
    assert v.verdict == verdict, (v.verdict, v.evidence)
    assert evidence in v.evidence
