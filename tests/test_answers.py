"""`verify check` and `verify grade`: verdicts on the write-ups' answers, equivalence by meaning, safety."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from verify.answers.grade import Answer, grade_isolated, grade_one, read_answers, warm_up
from verify.answers.parse import AnswerError, SymbolTable, parse_math
from verify.cli import main

FIX = Path(__file__).parent / "fixtures"
WRITEUPS = Path(__file__).parent.parent / "problems" / "writeups"  # the source write-ups' answers


@pytest.fixture(scope="module", autouse=True)
def _warm():
    warm_up()


def verdicts(bank, path):
    by = {p.id: p for p in bank.problems}
    return {(a.id, a.part): grade_one(by.get(a.id), a) for a in read_answers(path)}


# ---- the write-ups -----------------------------------------------------------------------------------------------

WRONG_CPEN = {
    ("cpen455-hw2/2.4", "H2"),  # weights + biases where the question asks for the biases
    ("cpen455-hw2/2.4", "H3"),
    ("cpen455-hw2/2.4", "H4"),
    ("cpen455-hw2/2.4", "Y"),
    ("cpen455-hw2/2.6", "Y"),
    ("cpen455-hw2/3.3b", "X_hat"),
    ("cpen455-hw2/7", "H4"),
    ("cpen455-hw2/7", "H5"),
}
WRONG_CSC413 = {
    ("csc413-a2/1.2.1", "grad_w0"),
    ("csc413-a2/1.2.1", "w1"),
    ("csc413-a2/2.1.2", "forward_memory"),
    ("csc413-a2/5.4", "k4_final_padding"),
}


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        ("cpen455-hw2.toml", WRONG_CPEN),
        ("csc413-a2.toml", WRONG_CSC413),
        ("csc420-a2.toml", set()),
        ("vu-dl-a3.toml", {("vu-dl-a3/conv", "out_size")}),
    ],
)
def test_write_up_answers_get_a_careful_graders_verdicts(bank, name, wrong):
    got = verdicts(bank, WRITEUPS / name)
    for key, v in got.items():
        expected = "incorrect" if key in wrong else "correct"
        assert v.verdict == expected, (key, v.verdict, v.parsed, v.evidence)
        assert v.method and v.evidence, key


def test_wrong_answers_carry_evidence_and_diagnosis(bank):
    got = verdicts(bank, WRITEUPS / "cpen455-hw2.toml")
    assert "fully connected unit reads 512" in got[("cpen455-hw2/2.6", "Y")].evidence
    stride = got[("cpen455-hw2/3.3b", "X_hat")]
    assert "5×5 matrix, expected 6×6" in stride.evidence and "stride" in stride.diagnosis
    assert "13–17" in got[("cpen455-hw2/7", "H4")].evidence
    rms = verdicts(bank, WRITEUPS / "csc413-a2.toml")[("csc413-a2/1.2.1", "grad_w0")]
    assert "-8" in rms.evidence or "−8" in rms.evidence


# ---- conventions a question leaves open ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pid", "part", "given", "verdict", "named"),
    [
        ("csc420-a2/q4", "flops_no_bias", 1153840, "correct", ""),
        ("csc420-a2/q4", "flops_no_bias", 1154560, "correct", "FLOPs = 2·MACs"),
        ("csc420-a2/q4", "flops_bias", 1155280, "correct", "FLOPs = 2·MACs"),
        ("csc420-a2/q4", "flops_no_bias", 578560, "incorrect", ""),  # MACs are not FLOPs
        ("cpen455-hw2/6", "ops_vanilla", "B H W N (2 C K^2 - 1)", "correct", ""),
        ("cpen455-hw2/6", "ops_vanilla", "2BHWNCK^2", "correct", "FLOPs = 2·MACs"),
        ("cpen455-hw2/6", "ops_vanilla", "BHWNCK^2", "incorrect", ""),
        ("csc413-a2/3.2", "cnn_neurons", 49344, "correct", "pooling outputs left out"),
        ("csc413-a2/3.2", "fcnn_neurons", 8064, "correct", "the input counted too"),
        ("csc413-a2/3.2", "cnn_neurons", 49345, "incorrect", ""),
    ],
)
def test_open_conventions_are_accepted_and_named(bank, pid, part, given, verdict, named):
    problem = {p.id: p for p in bank.problems}[pid]
    v = grade_one(problem, Answer(pid, part, given))
    assert v.verdict == verdict, (v.verdict, v.evidence)
    if named:
        assert f"'{named}'" in v.method and "reference" in v.evidence, v.method
    elif verdict == "correct":
        assert "convention" not in v.method


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (578560, "multiply-accumulates (MACs); bias not counted; pooling/activations/upsampling counted"),
        (1152000, "FLOPs = 2·MACs; bias not counted; pooling/activations/upsampling not counted"),
        (1151280, "exact operations: k multiplies and k−1 additions per dot product; bias not counted; pooling"),
    ],
)
def test_a_wrong_count_is_diagnosed_by_the_convention_it_matches(bank, given, named):
    """The diagnosis helper runs the part's real model under every convention and names the one the count matches."""
    problem = {p.id: p for p in bank.problems}["csc420-a2/q4"]
    v = grade_one(problem, Answer("csc420-a2/q4", "flops_no_bias", given))
    assert v.verdict == "incorrect" and named in v.diagnosis, v.diagnosis


# ---- equivalence by meaning --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pid", "part", "given", "verdict"),
    [
        ("csc413-a2/2.3.2", "lambda_tilde", r"\frac{\lambda}{2\eta}", "correct"),
        ("csc413-a2/2.3.2", "lambda_tilde", r"0.5\lambda/\eta", "correct"),
        ("csc413-a2/2.3.2", "lambda_tilde", r"\lambda\cdot(2\eta)^{-1}", "correct"),
        ("csc413-a2/2.3.2", "lambda_tilde", "λ/(2η)", "correct"),
        ("csc413-a2/2.3.2", "lambda_tilde", r"\frac{\lambda}{\eta}", "incorrect"),
        ("csc420-a2/q7", "dtanh", r"1 - \tanh^2(x)", "undecided"),  # right value, not in terms of σ(2x) as asked
        ("csc420-a2/q7", "dtanh", r"4(\sigma(2x) - \sigma(2x)^2)", "correct"),
        ("csc420-a2/q7", "dtanh", r"2(\sigma(2x) - \sigma(2x)^2)", "incorrect"),
        ("cpen455-hw2/5.2", "params", "C*K^2*N/M", "correct"),
        ("cpen455-hw2/5.2", "params", r"\frac{CK^2N}{M^2}", "incorrect"),
        ("cpen455-hw2/3.1", "H_out", "floor((H+2P-K)/S)+1", "correct"),
        ("cpen455-hw2/3.1", "H_out", "(H+2P-K)/S+1", "incorrect"),
        ("cpen455-hw2/3.2", "output_padding", "mod(H + 2P - K, S)", "correct"),
        ("csc420-a2/q6", "dsigma", "y(1-y)", "correct"),
        ("csc420-a2/q6", "dsigma", "y - y^2", "correct"),
        ("csc413-a2/1.1.1", "w_hat", r"X^\top (X X^\top)^{-1} t", "correct"),
        ("csc413-a2/1.1.1", "w_hat", r"X^T t", "incorrect"),
        ("csc413-a2/2.2.3", "eta_star", r"\frac{n \, a^T X X^T a}{2 \|X X^T a\|^2}", "correct"),
        ("csc413-a2/2.2.3", "eta_star", r"\frac{n}{2}\frac{\|X^T a\|_2^2}{\|X^T a\|_2^2}", "incorrect"),
        ("cpen455-hw2/4.1", "Y", [[0, 25, 10], [8, -10, 24], [-4, 12, -8]], "correct"),
        ("cpen455-hw2/4.1", "Y", [[0, 25, 10], [8, -10, 24], [-4, 12, -9]], "incorrect"),
        ("cpen455-hw2/1.2", "network", {"activation": "square", "W": [[1, -1]], "c": [0], "w": [1], "b": 0}, "correct"),
        (
            "cpen455-hw2/1.2",
            "network",
            {"activation": "square", "W": [[1, -1]], "c": [0], "w": [2], "b": 0},
            "incorrect",
        ),
        ("cpen455-hw2/2.5", "per_channel", ["B", "H", "W"], "correct"),
        ("cpen455-hw2/2.5", "per_channel", ["B", "C"], "incorrect"),
        ("cpen455-hw2/2.2", "H1", "(100, 128, 256, 256)", "correct"),
        ("csc413-a2/5.4", "k4_final_padding", "impossible", "correct"),
        ("csc413-a2/2.1.2", "backward_memory", r"\mathcal{O}(t)", "correct"),
        ("csc413-a2/2.1.2", "backward_memory", "O(t^2)", "incorrect"),
        ("cpen455-hw2/1.1", "separable", True, "incorrect"),
        ("csc413-a2/1.2.2", "text", "anything", "ungraded"),
        # structured answers to questions that are mostly explained in words
        ("csc420-a2/q7", "tanh_range", "(-1, 1)", "correct"),
        ("csc420-a2/q7", "tanh_range", r"\left( -1 , 1 \right)", "correct"),
        ("csc420-a2/q7", "tanh_range", "[-1, 1]", "incorrect"),
        ("csc420-a2/q7", "sigmoid_range", "(0, 1)", "correct"),
        ("csc420-a2/q7", "sigmoid_range", "(0, \\infty)", "incorrect"),
        ("csc420-a2/q7", "sigmoid_range", "0 to 1", "unparsable"),
        ("csc420-a2/q7", "sigmoid_range", "(0, __import__)", "unparsable"),
        ("csc413-a2/3.3", "factors", "filter size, stride, number of layers", "correct"),
        ("csc413-a2/3.3", "factors", ["dilation", "pooling", "kernel size", "depth"], "correct"),
        ("csc413-a2/3.3", "factors", "kernel size, stride", "incorrect"),  # the question asks for three
        ("csc413-a2/3.3", "factors", "kernel size, stride, padding", "incorrect"),  # padding leaves it unchanged
        ("csc413-a2/3.3", "factors", "kernel size, stride, learning rate", "incorrect"),
        ("csc413-a2/1.2.2", "like_rmsprop", "yes", "correct"),
        ("csc413-a2/2.3.3", "equivalent", True, "incorrect"),
        ("csc420-a2/q1", "exact_reconstruction", True, "correct"),
        ("csc420-a2/q2", "one_affine_layer", False, "incorrect"),
        ("cpen455-hw2/2.5", "affine_params", "2C", "correct"),
        ("cpen455-hw2/2.5", "affine_params", "C", "incorrect"),
        # the question as asked: 2.4 counts each layer's biases; 4.3 accepts BatchNorm-inclusive counts
        ("cpen455-hw2/2.4", "H1", 128, "correct"),
        ("cpen455-hw2/2.4", "H1", 9728, "incorrect"),
        ("cpen455-hw2/2.4", "total", 397434, "correct"),
        ("csc413-a2/4.3", "outputs", "3520 NF + 4352 NC", "correct"),
        ("csc413-a2/4.3", "outputs", "2880 NF + 3328 NC", "correct"),
        ("csc413-a2/4.3", "weights", "k^2 (NIC NF + 4 NF^2 + NF NC + NC^2) + 8 NF + 2 NC", "correct"),
        ("csc413-a2/4.3", "outputs", "3520 NF + 4353 NC", "incorrect"),
        ("cpen455-hw2/3.1", "H_oot", "1", "unknown"),
        ("no/such", "x", "1", "unknown"),
        ("cpen455-hw2/3.1", "H_out", "floor((H+2P-K)/S", "unparsable"),
        ("cpen455-hw2/3.1", "H_out", "Q + 1", "incorrect"),  # readable, but Q is no symbol of the part
        ("cpen455-hw2/3.1", "H_out", "Q + qq +", "unparsable"),
    ],
)
def test_verdicts_by_meaning(bank, pid, part, given, verdict):
    problem = {p.id: p for p in bank.problems}.get(pid)
    v = grade_one(problem, Answer(pid, part, given))
    assert v.verdict == verdict, (v.verdict, v.parsed, v.evidence)


def test_implicit_multiplication_follows_the_table():
    import sympy

    W, K, N, x = sympy.symbols("W K N x")
    table = SymbolTable({"W": W, "K": K, "N": N, "x": x}, {"sigma": lambda v: 1 / (1 + sympy.exp(-v))})
    assert parse_math("W(K^2+N)", table) == W * (K**2 + N)
    assert parse_math(r"\sigma(2x)", table) == 1 / (1 + sympy.exp(-2 * x))
    assert parse_math("KN", table) == K * N
    with pytest.raises(AnswerError, match="unknown symbol 'Z'"):
        parse_math("Z + 1", table)
    with pytest.raises(AnswerError, match="column"):
        parse_math("K + * N", table)


# ---- safety: a corpus of hostile inputs --------------------------------------------------------------------------

SENTINEL = Path("/tmp/verify_pwned")
HOSTILE = [
    '__import__("os").system("touch /tmp/verify_pwned")',
    "exec('import os')",
    "eval('1+1')",
    "lambda: 0",
    "().__class__.__bases__[0].__subclasses__()",
    "H.__class__",
    "__builtins__",
    "import os",
    "os.system('ls')",
    "open('/etc/passwd').read()",
    "sympify('H')",
    "parse_expr('H')",
    "globals()",
    "getattr(H, '__class__')",
    "H; import os",
    "H\nimport os",
    "${H}",
    "`rm -rf /`",
    "\\input{/etc/passwd}",
    "\\def\\x{H}\\x",
    "H^(9^(9^(9^9)))",
    "2^{2^{2^{2^{2^{2^{2}}}}}}",
    "H^99999999",
    "99999!",
    "(10^10)!",
    "factorial(10^6)",
    "10^10^10^10",
    "9" * 50,
    "H" * 5000,
    "(" * 10000 + "H" + ")" * 10000,
    "{" * 500 + "H" + "}" * 500,
    "\\frac{" * 300 + "H" + "}{2}" * 300,
    "a" * 1_000_000,
    "",
    "   ",
    "nan",
    "inf",
    "-inf",
    "1e999",
    "0/0",
    "H/0",
    "\\sqrt{-1}",
    "\\log(0)",
    "\\begin{bmatrix} 1 & 2 \\\\ 3 \\end{bmatrix}",
    "\\text{hello}",
    "\\unknown{H}",
    "H +",
    "* H",
    "((H)",
    "H))",
    "\\left( H",
    "\u202eH",
    "\x00H",
    "H\x7f",
    "𝐇 + 1",
    "H = K = S",
]
HOSTILE_VALUES = [
    float("nan"),
    float("inf"),
    [1, [2, [3, [4, [5]]]]],
    {"W": "x"},
    True,
    [[1, 2], [3]],
    list(range(10_000)),
]


def test_hostile_corpus_is_safe(bank):
    assert len(HOSTILE) + len(HOSTILE_VALUES) >= 50
    SENTINEL.unlink(missing_ok=True)
    problem = bank.get("cpen455-hw2/3.1")
    start = time.perf_counter()
    for text in HOSTILE:
        v = grade_isolated(problem, Answer("cpen455-hw2/3.1", "H_out", text), timeout=10)
        assert v.verdict in ("unparsable", "incorrect", "undecided"), (text[:40], v.verdict, v.evidence)
    for value in HOSTILE_VALUES:
        for pid, part in (("cpen455-hw2/2.1", "c2"), ("cpen455-hw2/4.1", "Y"), ("cpen455-hw2/1.3", "network")):
            v = grade_isolated(bank.get(pid), Answer(pid, part, value), timeout=10)
            assert v.verdict in ("unparsable", "incorrect", "undecided"), (pid, repr(value)[:40], v.verdict)
    assert not SENTINEL.exists(), "an answer executed code"
    assert time.perf_counter() - start < 240


def test_a_hanging_answer_is_killed_and_the_rest_is_graded(bank, monkeypatch, tmp_path):
    import verify.answers.grade as g

    real = g.grade_one

    def slow(problem, answer):
        if answer.part == "H_out" and answer.id == "cpen455-hw2/3.1":
            time.sleep(60)
        return real(problem, answer)

    monkeypatch.setattr(g, "grade_one", slow)
    answers = read_answers(FIX / "hostile.toml")
    start = time.perf_counter()
    out = g.grade_answers(bank, answers, timeout=2)
    assert time.perf_counter() - start < 20
    assert [v.verdict for v in out] == ["undecided", "correct"]
    assert "limit" in out[0].evidence


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00", "is not UTF-8"),
        (b"[a\nx = ", "is not valid TOML"),
        (b"x" * 1_000_001, "limit"),
    ],
)
def test_unreadable_files_exit_2(capsys, tmp_path, content, message):
    f = tmp_path / "a.toml"
    f.write_bytes(content)
    assert main(["check", str(f)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_wrong_toml_types_are_graded_not_crashed(bank, tmp_path):
    f = tmp_path / "a.toml"
    f.write_text(
        '"cpen455-hw2/2.1" = 5\n["cpen455-hw2/2.2"]\nH1 = "x"\nY = 3\n["cpen455-hw2/4.1"]\nY = [[1, 2], [3, 4]]\n'
    )
    got = {(a.id, a.part): grade_one({p.id: p for p in bank.problems}.get(a.id), a) for a in read_answers(f)}
    assert got[("cpen455-hw2/2.1", "")].verdict == "unknown"
    assert got[("cpen455-hw2/2.2", "H1")].verdict == "unparsable"
    assert got[("cpen455-hw2/2.2", "Y")].verdict == "incorrect"  # read fine: a number where a shape is asked
    assert "single number" in got[("cpen455-hw2/2.2", "Y")].evidence
    assert got[("cpen455-hw2/4.1", "Y")].verdict == "incorrect"


# ---- the commands ----------------------------------------------------------------------------------------------


def test_check_json_report_and_exit_codes(capsys, tmp_path):
    report = tmp_path / "r.md"
    assert main(["check", str(WRITEUPS / "cpen455-hw2.toml"), "--json", "--report", str(report)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["answers"][0]) == {
        "id",
        "part",
        "verdict",
        "given",
        "parsed",
        "expected",
        "method",
        "evidence",
        "diagnosis",
    }
    assert doc["summary"]["incorrect"] == len(WRONG_CPEN), [
        (a["part"], a["verdict"], a["evidence"][:90]) for a in doc["answers"] if a["verdict"] != "correct"
    ]
    text = report.read_text()
    assert "❌ incorrect" in text and "cpen455-hw2/3.3b" in text
    good = tmp_path / "good.toml"
    good.write_text('["cpen455-hw2/2.1"]\nc2 = 128\n["csc413-a2/1.2.2"]\ntext = "adaptive"\n')
    assert main(["check", str(good)]) == 0


def test_report_escapes_markdown(capsys, tmp_path):
    f = tmp_path / "a.toml"
    f.write_text('["cpen455-hw2/3.1"]\nH_out = "<script>|x"\n')
    report = tmp_path / "r.md"
    main(["check", str(f), "--report", str(report)])
    capsys.readouterr()
    text = report.read_text()
    assert "<script>" not in text and "&lt;script&gt;\\|x" in text


def test_grade_a_class(capsys, tmp_path):
    cls = tmp_path / "class"
    cls.mkdir()
    for i in range(3):
        (cls / f"s{i}.toml").write_text(
            f'["cpen455-hw2/2.1"]\nc2 = {128 if i else 129}\n["csc413-a2/2.3.2"]\nlambda_tilde = "\\\\frac{{\\\\lambda}}{{\\\\eta}}"\n'
        )
    (cls / "broken.toml").write_bytes(b"\xff")
    out = tmp_path / "out"
    assert main(["grade", str(cls), "--out", str(out), "--jobs", "2"]) == 0
    csv_text = (out / "grades.csv").read_text()
    assert csv_text.splitlines()[0].startswith("file,cpen455-hw2/2.1:c2,csc413-a2/2.3.2:lambda_tilde")
    summary = (out / "summary.md").read_text()
    assert "broken.toml" in summary and "×3" in summary and "off by a factor of 2" in summary


def test_no_eval_in_answer_code():
    src = "".join(p.read_text() for p in (Path(__file__).parents[1] / "verify" / "answers").glob("*.py"))
    for bad in ("eval(", "exec(", "sympify(", "parse_expr("):
        assert bad not in src, bad


def teardown_module():
    SENTINEL.unlink(missing_ok=True)
    os.environ.pop("VERIFY_TEST", None)


def test_structured_answers_are_read_without_evaluation():
    import sympy

    from verify.answers.parse import SymbolTable
    from verify.answers.structured import Interval, StructuredError, read_factors, read_interval

    table = SymbolTable({}, {})
    assert read_interval(r"\left[0, \infty\right)", table) == Interval(sympy.Integer(0), sympy.oo, False, True)
    assert read_interval("(-1/2, 1]", table) == Interval(sympy.Rational(-1, 2), sympy.Integer(1), True, False)
    for bad in ("(1, 2", "1, 2", "(x, 1)", "(" + "9" * 300 + ", 1)", "(exec('1'), 1)", 7):
        with pytest.raises(StructuredError):
            read_interval(bad, table)
    assert read_factors("Filter size; the stride and the number of layers") == {"kernel size", "stride", "depth"}
    assert read_factors(["dilated convolutions", "max pooling", "zero padding"]) == {"dilation", "pooling", "padding"}
    with pytest.raises(StructuredError):
        read_factors(", ,")
    with pytest.raises(StructuredError):
        read_factors([f"f{i}" for i in range(50)])
