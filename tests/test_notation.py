"""Reading notation, feedback a student can act on, and the worker pool that grades a class."""

from __future__ import annotations

import time

import pytest

from verify.answers.grade import Answer, grade_one, warm_up
from verify.answers.normalize import normalize


@pytest.fixture(scope="module", autouse=True)
def _warm():
    warm_up()


def grade(bank, pid, part, given):
    return grade_one(bank.get(pid), Answer(pid, part, given))


@pytest.mark.parametrize(
    ("text", "commas", "spelled"),
    [
        (r"397\,184", False, "397184"),
        ("397 184", False, "397184"),
        ("1,153,840", True, "1153840"),
        ("1,153,840", False, "1,153,840"),  # commas separate items outside numeric parts
        ("1.6385e5", False, "(1.6385 * 10^{5})"),
        (r"(H+2P-K) \pmod{S}", False, r"(H+2P-K) \bmod {S}"),
        ("(H+2P-K) % S", False, r"(H+2P-K) \bmod S"),
        ("X^Ta", False, r"X^{\top} a"),
        (r"X^\intercal a", False, r"X^{\top} a"),
        ("w₀ − X⁻¹", False, "w_{0} - X^{-1}"),
        (r"\mathbf{G}\mathbf{X}", False, "GX"),
        (r"\mathbb{1}", False, r"\ones"),
        (r"\tilde\lambda", False, r"\tilde{ lambda}"),
        (r"\lambda\eta", False, "lambda eta"),
        (r"\mathrm{e}^{x}", False, "e ^{x}"),
        (r"\operatorname{sech}^2(x)", False, r"\sech ^2(x)"),
        (r"C_{\text{out}}", False, "C_{out}"),
        (r"\frac{dF}{dx}", False, r"\ddx{x}{F}"),
        ("5x5", True, "5 * 5"),
    ],
)
def test_normalization_spells_each_notation_one_way(text, commas, spelled):
    assert normalize(text, commas=commas) == spelled


def test_factors_are_simplified_and_diagnoses_fit_the_part(bank):
    v = grade(bank, "csc413-a2/2.3.2", "lambda_tilde", r"\frac{\lambda}{4\eta}")
    assert v.verdict == "incorrect" and v.diagnosis == "off by a factor of 1/2"
    field = grade(bank, "cpen455-hw2/7", "H2", 14)  # a receptive field: no counting slips offered
    assert field.verdict == "incorrect" and "bias" not in field.diagnosis and "FLOP" not in field.diagnosis
    size = grade(bank, "cpen455-hw2/3.1", "H_out", "floor((H+2P-K)/S)")
    assert size.diagnosis == "1 less than the answer"
    count = grade(bank, "csc413-a2/3.2", "cnn_params", 21024 + 64)  # a parameter count: biases are a fair guess
    assert count.verdict == "incorrect"


def test_counterexamples_stay_in_the_statements_domain_and_in_real_numbers(bank):
    wrong = r"[\frac{8\eta}{8\sqrt{1+\beta}+\epsilon}, \frac{4\eta}{4\sqrt{1-\beta}+\epsilon}]"
    v = grade(bank, "csc413-a2/1.2.1", "w1", wrong)
    assert v.verdict == "incorrect"
    beta = v.evidence.split("beta=")[1].split(",")[0]
    num, _, den = beta.partition("/")
    assert 0 <= int(num) / int(den or 1) < 1, v.evidence
    complex_answer = r"[\frac{8\eta}{8\sqrt{\beta-1}+\epsilon}, \frac{4\eta}{4\sqrt{1-\beta}+\epsilon}]"
    v = grade(bank, "csc413-a2/1.2.1", "w1", complex_answer)
    assert v.verdict == "incorrect" and "not a real number" in v.evidence and "I" not in v.evidence.split(":")[-1]


@pytest.mark.parametrize(
    ("pid", "part", "given", "verdict", "words"),
    [
        ("cpen455-hw2/2.3", "total", "3.97e5", "incorrect", "rounded"),
        ("cpen455-hw2/2.3", "total", "1.5", "incorrect", "not a whole number"),
        ("cpen455-hw2/7", "H1", r"5 \times 5", "undecided", "a size"),
        ("vu-dl-a3/p1.3", "grad_W", "G^T X", "incorrect", "do not conform"),
        ("csc413-a2/2.3.2", "lambda_tilde", r"\lambda / 2\eta", "undecided", "reads two ways"),
        ("cpen455-hw2/3.2", "output_padding", r"H + 2P - K \bmod S", "undecided", "reads two ways"),
        ("csc420-a2/q7", "dtanh", r"1 - \tanh^2(x)", "undecided", "in terms of sigma"),
        ("csc413-a2/2.1.2", "backward_memory", r"O(\log t)", "incorrect", "O("),
        ("vu-dl-a3/p1.2", "grad_X", "g F(x)", "incorrect", "unknown function"),
        ("cpen455-hw2/2.2", "H1", "[1, 100, 128, 256, 256]", "incorrect", "5 axes"),
    ],
)
def test_verdicts_carry_their_reason(bank, pid, part, given, verdict, words):
    v = grade(bank, pid, part, given)
    assert v.verdict == verdict and words in v.evidence + " " + v.diagnosis, (v.verdict, v.evidence, v.diagnosis)


def test_the_corpus_checks_can_fail(bank, monkeypatch):
    """A mutant normalizer without digit groups turns right answers into wrong verdicts: the corpus would catch it."""
    from verify.answers import normalize as nm

    assert grade(bank, "cpen455-hw2/2.3", "total", r"397\,184").verdict == "correct"
    monkeypatch.setattr(nm, "_groups", lambda text, commas: text)
    assert grade(bank, "cpen455-hw2/2.3", "total", r"397\,184").verdict != "correct"
    assert grade(bank, "csc420-a2/q4", "flops_no_bias", "1,153,840").verdict != "correct"


# ---- the pool -------------------------------------------------------------------------------------------------------


def test_each_distinct_answer_is_graded_once(bank, monkeypatch):
    from verify.answers import pool

    seen: list[int] = []
    real_run = pool.Pool.run

    def counting(self, tasks, on_done):
        seen.append(len(tasks))
        return real_run(self, tasks, on_done)

    monkeypatch.setattr(pool.Pool, "run", counting)
    spellings = [r"397\,184", "397 184", "397184", " 397184"]
    answers = [Answer("cpen455-hw2/2.3", "total", s) for s in spellings * 5]
    out = pool.grade_many({p.id: p for p in bank.problems}, answers, timeout=20, jobs=2)
    assert [v.verdict for v in out] == ["correct"] * 20
    assert [v.given for v in out] == spellings * 5  # each answer keeps its own text
    assert seen == [1]  # every spelling normalizes to 397184: graded once


def test_a_killed_worker_is_replaced_and_the_rest_is_graded(bank, monkeypatch):
    import verify.answers.grade as g
    from verify.answers.pool import grade_many

    real = g.grade_one

    def hang_or_grade(problem, answer):
        if answer.value == "hang":
            time.sleep(60)
        if answer.value == "hog":
            bytearray(16 << 30)  # past the memory cap
        return real(problem, answer)

    monkeypatch.setattr(g, "grade_one", hang_or_grade)
    answers = [Answer("cpen455-hw2/2.1", "c2", v) for v in ("128", "hang", "128 ", "hog", "2^7", "129")]
    start = time.perf_counter()
    out = grade_many({p.id: p for p in bank.problems}, answers, timeout=2, jobs=1)
    assert time.perf_counter() - start < 30
    assert [v.verdict for v in out] == ["correct", "undecided", "correct", "undecided", "correct", "incorrect"]
    assert "limit" in out[1].evidence and ("memory" in out[3].evidence or "MemoryError" in out[3].evidence)
