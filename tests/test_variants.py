"""Variants of parametrized questions: every emitted key passes the question's own checks and every mutant of it fails
them, across many seeds and across the declared parameter spaces; determinism; grading a class of variants; bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutants import mutants

from verify import VerifyError
from verify.cli import main
from verify.model import Context, Kind, Status
from verify.runner import run, run_check

ROOT = Path(__file__).resolve().parents[1]

# seeds drawn per question: the cheap ones get many, the training-run ones a few
SEEDS = {
    "cpen455-hw2/2.1": 4,
    "cpen455-hw2/2.2": 12,
    "cpen455-hw2/2.3": 6,
    "cpen455-hw2/2.4": 6,
    "cpen455-hw2/2.6": 4,
    "cpen455-hw2/7": 4,
    "cpen455-hw2/3.3a": 12,
    "cpen455-hw2/3.3b": 12,
    "cpen455-hw2/4.1": 12,
    "cpen455-hw2/1.3": 6,
    "vu-dl-a3/q10": 8,
    "vu-dl-a3/q11": 12,
    "vu-dl-a3/q15": 2,
    "csc420-a2/q4": 4,
    "csc413-a2/1.2.1": 3,
    "csc413-a2/5.4": 8,
}


PINNED_33B_7 = {
    "Y": [[8, 7, 7], [9, 8, 2], [9, 5, 2]],
    "W": [[5, -3, -1], [-2, -1, 2], [3, -5, 5]],
    "s": 2,
    "p": 2,
    "op": 1,
}


def test_the_parametrized_questions(bank):
    from verify.variants import parametrized_ids

    assert set(parametrized_ids(bank)) == set(SEEDS)


@pytest.mark.parametrize("problem_id", sorted(SEEDS))
def test_every_emitted_key_passes_and_every_mutant_fails(bank, problem_id):
    from verify.variants import emit

    count = SEEDS[problem_id]
    emission = emit(bank, problem_id, 100, count)
    assert len(emission.emitted) == count and not emission.refused, emission.refused  # the spaces draw no dead ends
    distinct = {json.dumps(item.problem.params.values, sort_keys=True) for item in emission.emitted}
    assert len(distinct) > count // 2, "the seeds should give different instances"
    for item in emission.emitted:
        problem = item.problem
        assert problem.id == f"{problem_id}@seed={item.seed}"
        assert all(r.status is Status.PASS for r in item.output.results)
        for part in problem.parts:
            derivation = item.output.derivations[(problem.id, part.key)]
            accepted = [value for _, value in derivation.accepted]
            for name, wrong in mutants(part.kind, derivation.answer):
                if wrong == derivation.answer or any(wrong == value for value in accepted):
                    continue
                for check in part.checks:
                    result = run_check(check, wrong, Context())
                    assert result.status is Status.FAIL, (
                        f"{problem.id}/{part.key} check '{check.name}' gave {result.status} on mutant '{name}' "
                        f"({wrong}): {result.evidence}"
                    )


# the training-run questions cost seconds an instance: fewer hypothesis examples
EXAMPLES = {"cpen455-hw2/1.3": 2, "csc413-a2/1.2.1": 3, "vu-dl-a3/q15": 3}


@pytest.mark.parametrize("problem_id", sorted(SEEDS))
def test_any_point_of_the_declared_space_builds_a_passing_problem(bank, problem_id):
    """Hypothesis draws from the same space function the seeds draw from: every point is a valid question."""
    from verify.variants import strategy

    base = bank.get(problem_id)

    @settings(max_examples=EXAMPLES.get(problem_id, 8))
    @given(strategy(base))
    def check(values):
        problem = base.params.build(values)
        out = run([problem])
        assert out.ok, [(r.part, r.check, r.evidence) for r in out.results if r.status is not Status.PASS]

    check()


def test_the_original_is_the_constructor_at_the_original_parameters(bank):
    """One constructor: rebuilding the bank's problem from its own parameters gives the same statement and keys."""
    from verify.runner import derive

    for problem in bank.problems:
        if problem.params is None:
            continue
        again = problem.params.build(problem.params.values)
        assert again.statement == problem.statement and [p.key for p in again.parts] == [p.key for p in problem.parts]
        for a, b in zip(problem.parts, again.parts, strict=True):
            assert derive(a).answer == derive(b).answer


def test_same_id_and_seed_give_the_same_instance(bank):
    from verify.runner import derive
    from verify.variants import _instance

    first = bank.get("cpen455-hw2/3.3b@seed=7")
    _instance.cache_clear()
    again = bank.get("cpen455-hw2/3.3b@seed=7")
    assert first.statement == again.statement
    assert derive(first.parts[0]).answer == derive(again.parts[0]).answer
    assert bank.get("cpen455-hw2/3.3b@seed=8").statement != first.statement
    # the draw is pinned: SHA-256 of the space's name, the seed and a counter, nothing machine-dependent
    assert first.params.values == PINNED_33B_7, first.params.values
    # questions about one network share its space: the same seed gives the same network
    network = bank.get("cpen455-hw2/2.2@seed=5").params.values
    assert all(bank.get(f"cpen455-hw2/{q}@seed=5").params.values == network for q in ("2.1", "2.3", "2.4", "2.6"))


def test_a_fresh_process_draws_the_same_instance(bank):
    from verify.variants import instance_json

    code = (
        "import json; from verify.registry import load_bank; from verify.variants import emit, instance_json; "
        "e = emit(load_bank(), 'csc420-a2/q4', 11); print(json.dumps(instance_json(e.emitted[0])))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    from verify.variants import emit

    here = instance_json(emit(bank, "csc420-a2/q4", 11).emitted[0])
    assert json.loads(out.stdout) == json.loads(json.dumps(here))


def test_variant_command_writes_statement_key_and_blank_answers(tmp_path, capsys):
    code = main(["variant", "cpen455-hw2/2.2", "--seed", "3", "--count", "2", "--out", str(tmp_path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and [i["id"] for i in doc["instances"]] == ["cpen455-hw2/2.2@seed=3", "cpen455-hw2/2.2@seed=4"]
    folder = tmp_path / "cpen455-hw2_2.2@seed=3"
    statement = (folder / "statement.md").read_text()
    side = doc["instances"][0]["parameters"]["side"]
    assert f"×{side}×{side}" in statement and "`H1`" in statement
    assert '["cpen455-hw2/2.2@seed=3"]' in (folder / "answers.toml").read_text()
    assert "H1 = ''" in (folder / "answers.toml").read_text()
    assert "## cpen455-hw2/2.2@seed=3" in (folder / "key.md").read_text()
    # the key is an answer file that grades correct
    code = main(["check", str(folder / "key.toml"), "--json"])
    graded = json.loads(capsys.readouterr().out)
    assert code == 0 and graded["summary"]["correct"] == 6, graded


def test_grade_gives_each_file_the_verdicts_of_its_own_instance(tmp_path, capsys, bank):
    """A class of variants: each student's file names its instance; a key copied from a neighbour's instance fails."""
    import csv

    from verify.variants import emit, key_toml

    items = emit(bank, "cpen455-hw2/3.3b", 20, 2).emitted
    keys = [key_toml(i.problem, i.output.derivations) for i in items]
    assert items[0].output.derivations != items[1].output.derivations
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "ada.toml").write_text(keys[0])  # her own instance's key
    (cls / "bob.toml").write_text(keys[1])  # his own
    table = f'["{items[1].problem.id}"]'
    (cls / "cy.toml").write_text(keys[0].replace(f'["{items[0].problem.id}"]', table))  # ada's numbers, bob's instance
    (cls / "dee.toml").write_text('["cpen455-hw2/3.1@seed=3"]\nH_out = 1\n')  # not a parametrized question
    # bob's own instance, its seed written with leading zeros: the same instance and the same column
    (cls / "eve.toml").write_text(keys[1].replace(f'["{items[1].problem.id}"]', table.replace("=", "=000")))
    code = main(["grade", str(cls), "--out", str(tmp_path / "grades"), "--jobs", "1"])
    capsys.readouterr()
    assert code == 0
    rows = {r["file"]: r for r in csv.DictReader((tmp_path / "grades" / "grades.csv").open())}
    verdicts = {name: [v for k, v in row.items() if ":" in k and v] for name, row in rows.items()}
    assert verdicts == {
        "ada.toml": ["correct"],
        "bob.toml": ["correct"],
        "cy.toml": ["incorrect"],
        "eve.toml": ["correct"],
    }, rows
    columns = [k for k in rows["ada.toml"] if ":" in k]
    assert sorted(columns) == sorted(f"{i.problem.id}:X_hat" for i in items), columns  # no '@seed=0002' column
    # the file naming a question without parameters is set aside with the reason, the others graded
    summary = (tmp_path / "grades" / "summary.md").read_text()
    assert "dee.toml" in summary and "cpen455-hw2/3.1 has no parameters to draw" in summary


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["variant", "no/such", "--seed", "1"], "verify: no problem 'no/such' in the bank"),
        (["variant", "cpen455-hw2/3.1", "--seed", "1"], "verify: cpen455-hw2/3.1 has no parameters to draw"),
        (["variant", "cpen455-hw2/2.2", "--seed", "-1"], "verify: Invalid value for '--seed'"),
        (["variant", "cpen455-hw2/2.2", "--seed", "x"], "verify: Invalid value for '--seed'"),
        (["variant", "cpen455-hw2/2.2"], "verify: give a problem id and --seed N"),
        (["variant", "cpen455-hw2/2.2@seed=1", "--seed", "1"], "verify: give the bank id"),
        (["show", "cpen455-hw2/2.2@seed=x"], "verify: 'cpen455-hw2/2.2@seed=x' is not a variant id"),
        (["show", "cpen455-hw2/3.1@seed=4"], "verify: cpen455-hw2/3.1 has no parameters to draw"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, args, message):
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert "Traceback" not in out + err


def test_variant_list_names_the_parametrized_questions(capsys):
    assert main(["variant", "--list"]) == 0
    assert set(capsys.readouterr().out.split()) == set(SEEDS)


def test_keys_of_every_kind_round_trip_through_the_answer_format():
    from verify.variants import toml_value

    assert toml_value(Kind.SET, frozenset()) == "'impossible'"
    assert toml_value(Kind.SET, frozenset({(1, 0), (2, 1)})) == "[[1, 0], [2, 1]]"
    assert toml_value(Kind.SHAPE, (2, 3)) == "[2, 3]"
    assert toml_value(Kind.BOOL, False) == "false"
    assert toml_value(Kind.TEXT, "why") is None


def test_network_weights_are_written_exactly_or_refused():
    """An answer's network holds numbers; the grader reads a decimal back as the rational it spells. A weight with
    an exact decimal is written so; one without (4/3) is refused rather than rounded to a float that would grade
    wrong against the exact check."""
    import tomllib

    import sympy

    from verify.variants import toml_value

    net = {"activation": "leaky_relu", "W": [[1, -1], [-1, 1]], "c": [0, 0], "w": [sympy.Rational(5, 4)] * 2, "b": 0}
    written = toml_value(Kind.NETWORK, net)
    read = tomllib.loads(f"n = {written}")["n"]
    assert [sympy.Rational(repr(v)) for v in read["w"]] == net["w"] and read["W"] == net["W"]
    assert tomllib.loads(f"n = {toml_value(Kind.NETWORK, {**net, 'b': sympy.Rational(1, 10)})}")["n"]["b"] == 0.1
    with pytest.raises(VerifyError, match="4/3 has no exact decimal"):
        toml_value(Kind.NETWORK, {**net, "w": [sympy.Rational(4, 3), 1]})


def test_the_blank_answer_file_says_blank_parts_are_graded_unparsable(bank):
    from verify.variants import blank_toml

    text = blank_toml(bank.get("cpen455-hw2/2.2@seed=3"))
    assert "left blank ('') is graded \"unparsable\"" in text and "H1 = ''" in text


BROKEN = """
from verify import checks
from verify.model import Derivation, Kind, Outcome, Part, Problem
from verify.variants import parametrized


def build(q):
    n = q["n"]

    def count(claim, ctx):  # an independent route that, like a real bug, breaks on multiples of 3
        return Outcome(int(claim) == 2 * n and n % 3 != 0, "claim vs 2n", f"n = {n}")

    def torch_route(claim, ctx):
        import torch

        return checks.exact(int(claim), int(torch.tensor(n) * 2), "torch")

    part = Part("double", Kind.INT, lambda: Derivation(2 * n), (checks.symbolic("count", count),
                checks.torch_check("torch", torch_route)))
    return Problem("my-course/double", "Double", f"Double {n}.", "sheet 1", ("counting",), (part,))


PROBLEMS = [parametrized("my-course/double", lambda d: {"n": d.integer(0, 20)}, build, {"n": 4})]
"""


def test_an_instance_whose_checks_fail_is_refused_and_the_next_seed_drawn(tmp_path, capsys):
    from verify.registry import load_bank
    from verify.variants import emit

    (tmp_path / "double.py").write_text(BROKEN)
    bank = load_bank([tmp_path], builtin=False)
    emission = emit(bank, "my-course/double", 0, 8)
    assert len(emission.emitted) == 8 and emission.refused  # 21 values, 7 of them multiples of 3
    assert all(item.problem.params.values["n"] % 3 for item in emission.emitted)
    refused = {seed for seed, _ in emission.refused}
    assert all(bank.get(f"my-course/double@seed={s}").params.values["n"] % 3 == 0 for s in refused)
    assert "count fail" in emission.refused[0][1]
    seeds = sorted([item.seed for item in emission.emitted] + sorted(refused))
    assert seeds == list(range(seeds[-1] + 1))  # consecutive: each refusal drew the next seed
    s = min(refused)
    code = main(
        ["variant", "my-course/double", "--seed", str(s), "--bank", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.startswith(f"seed {s} refused") and f"@seed={s}" not in out.split("\n", 1)[1]
    assert not (tmp_path / "o" / f"my-course_double@seed={s}").exists()
    with pytest.raises(VerifyError, match="refused"):
        emit(bank, "my-course/double", s, 1, max_refused=0)


# ---- ids that cannot name an instance: the reason, one line, non-zero exit ----------------------------------------

CANNOT_BUILD = """
from verify import checks
from verify.model import Derivation, Kind, Outcome, Part, Problem
from verify.variants import parametrized


def build(q):
    if q["n"] > 3:
        raise ZeroDivisionError("n too large for this constructor")
    part = Part("x", Kind.INT, lambda: Derivation(q["n"]), (checks.symbolic("same", lambda c, ctx: Outcome(True, "", "")),))
    return Problem("my-course/frail", "Frail", "n", "sheet", ("counting",), (part,))


PROBLEMS = [parametrized("my-course/frail", lambda d: {"n": 4 + d.integer(0, 3)}, build, {"n": 1})]
"""


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("cpen455-hw2/2.2@seed=x", "'cpen455-hw2/2.2@seed=x' is not a variant id: write it as ID@seed=N"),
        (
            "cpen455-hw2/2.2@seed=1000000000000",
            "'cpen455-hw2/2.2@seed=1000000000000': seed out of range 0..999999999999",
        ),
        (
            "cpen455-hw2/2.2@seed=00099999999999999999999",
            "'cpen455-hw2/2.2@seed=99999999999999999999': seed out of range",
        ),
        ("cpen455-hw2/3.1@seed=3", "cpen455-hw2/3.1 has no parameters to draw"),
        ("my-course/frail@seed=2", "my-course/frail@seed=2 cannot be built: ZeroDivisionError: n too large"),
    ],
)
def test_check_refuses_an_id_that_cannot_name_an_instance_with_the_reason(tmp_path, capsys, table, message):
    (tmp_path / "bank").mkdir()
    (tmp_path / "bank" / "frail.py").write_text(CANNOT_BUILD)
    answers = tmp_path / "a.toml"
    answers.write_text(f'["{table}"]\nH1 = [1, 2, 3, 4]\n')
    code = main(["check", str(answers), "--bank", str(tmp_path / "bank")])
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith(f"verify: {message}") and err.count("\n") == 1, err
    assert "in the bank" not in err and "Traceback" not in out + err


def test_an_id_of_no_question_stays_an_unknown_verdict(bank, tmp_path, capsys):
    assert bank.find("no/such") is None and bank.find("no/such@seed=3") is None
    answers = tmp_path / "a.toml"
    answers.write_text('["no/such@seed=3"]\nx = 1\n')
    code = main(["check", str(answers), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and [a["verdict"] for a in doc["answers"]] == ["unknown"]


def test_ids_are_read_in_one_spelling(bank, tmp_path):
    from verify.answers.grade import read_answers
    from verify.variants import canonical_id

    assert canonical_id("cpen455-hw2/2.2@seed=000") == "cpen455-hw2/2.2@seed=0"
    assert canonical_id("cpen455-hw2/2.2@seed=0070") == "cpen455-hw2/2.2@seed=70"
    assert canonical_id("cpen455-hw2/2.2") == "cpen455-hw2/2.2"
    assert canonical_id("cpen455-hw2/2.2@seed=x") == "cpen455-hw2/2.2@seed=x"  # refused where it is resolved
    assert bank.get("cpen455-hw2/2.2@seed=007").id == "cpen455-hw2/2.2@seed=7"
    path = tmp_path / "a.toml"
    path.write_text('["cpen455-hw2/3.3b@seed=000"]\nX_hat = 1\n')
    assert [a.id for a in read_answers(path)] == ["cpen455-hw2/3.3b@seed=0"]


# ---- the spaces keep each question what it is ----------------------------------------------------------------------


def _key(problem):
    from verify.runner import derive

    return json.dumps([(part.key, str(derive(part).answer)) for part in problem.parts])


@pytest.mark.parametrize("problem_id", sorted(SEEDS))
def test_keys_differ_across_seeds_and_from_the_original(bank, problem_id):
    """Not only the parameters: the answer keys themselves differ between seeds and from the bank's question."""
    base = bank.get(problem_id)
    keys = [_key(bank.get(f"{problem_id}@seed={s}")) for s in range(10)]
    assert _key(base) not in keys, "a seed reproduces the original"
    assert len(set(keys)) >= (5 if problem_id == "cpen455-hw2/1.3" else 9), keys  # 1.3: six slopes in all


@settings(max_examples=200)
@given(st.data())
def test_transposed_3_3b_draws_overlap_real_output_padding_and_an_output_above_1x1(bank, data):
    """Over many draws, measured on torch's own transposed convolution (not on the space's formulas)."""
    import torch
    import torch.nn.functional as F

    from verify.variants import strategy

    q = data.draw(strategy(bank.get("cpen455-hw2/3.3b")))
    s, p, op = q["s"], q["p"], q["op"]
    y = torch.tensor(q["Y"], dtype=torch.float64)[None, None]
    w = torch.tensor(q["W"], dtype=torch.float64)[None, None]
    k = w.shape[-1]
    assert s >= 2 and k > s  # a stride that matters; neighbouring kernel copies overlap
    out = F.conv_transpose2d(y, w, stride=s, padding=p, output_padding=op)[0, 0]
    assert out.shape[0] >= 2 and out.shape[1] >= 2
    full = F.conv_transpose2d(y, w, stride=s)[0, 0]  # no padding: everything the kernel copies cover
    n = out.shape[0]
    # the output padding adds rows and columns of the full result that the padding cut off, not zeros
    assert p + n <= full.shape[0]
    assert torch.equal(out, full[p : p + n, p : p + n])
    assert bool(out[-op:, :].ne(0).any()) and bool(out[:, -op:].ne(0).any()) and float(out[-1, -1]) != 0


@settings(max_examples=200)
@given(st.data())
def test_dilated_4_1_draws_a_stride_that_matters(bank, data):
    import torch
    import torch.nn.functional as F

    from verify.variants import strategy

    q = data.draw(strategy(bank.get("cpen455-hw2/4.1")))
    x = torch.tensor(q["X"], dtype=torch.float64)[None, None]
    w = torch.tensor(q["W"], dtype=torch.float64)[None, None]
    out = F.conv2d(x, w, stride=q["s"], padding=q["p"], dilation=q["d"])
    dense = F.conv2d(x, w, stride=1, padding=q["p"], dilation=q["d"])
    assert q["s"] >= 2 and q["d"] >= 2
    assert out.shape[-1] >= 2 and out.shape[-2] >= 2  # at least two windows per axis: the stride decides where
    assert torch.equal(out, dense[..., :: q["s"], :: q["s"]]) and out.shape[-1] < dense.shape[-1]


@settings(max_examples=100)
@given(st.data())
def test_csc413_5_4_sizes_make_the_floor_matter_and_every_answer_exist(bank, data):
    import torch
    import torch.nn as nn

    from verify.variants import strategy

    base = bank.get("csc413-a2/5.4")
    q = data.draw(strategy(base))
    s, r = q["s"], q["r"]
    n2 = q["bottleneck"]
    n1, n0 = s * n2 + r, s * (s * n2 + r) + r
    assert abs(r) < s and s >= 2
    if r:
        assert n0 % s and n1 % s  # the conv sizes are floors (r > 0) or ceilings (r < 0) of n/s
    problem = base.params.build(q)
    assert f"{n0} → {n1} → {n2}" in problem.statement
    for k in q["kernels"]:  # an even and an odd kernel: each has a conv padding and a transposed (padding, o_p)
        conv_ok = [p for p in range(12) if nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, n0, n0)).shape[-1] == n1]
        assert conv_ok, (q, k)
    assert sorted(k % 2 for k in q["kernels"]) == [0, 1] and min(q["kernels"]) > 3


@settings(max_examples=25)
@given(st.data())
def test_every_input_pixel_of_question_7_reaches_the_logits(bank, data):
    """Y's field is the whole input at the drawn side: the logits' gradient is non-zero on every input pixel of the
    real network (positive weights, so nothing cancels)."""
    import torch

    from problems.cpen455_hw2_counts import _net_7
    from verify.conv_parts import build_model
    from verify.variants import strategy

    q = data.draw(strategy(bank.get("cpen455-hw2/7")))
    thin = {**q, "conv": [2, *q["conv"][1:]], "pointwise": 2, "tconv": [2, *q["tconv"][1:]], "classes": 1}
    model = build_model(_net_7(thin), 1, device="cpu").double()
    x = torch.ones(1, 1, q["side"], q["side"], dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        model(x)  # the linear layer learns its input size
        for weight in model.parameters():
            weight.fill_(1.0)
    model(x).sum().backward()
    assert bool((x.grad != 0).all())


def test_leaky_slopes_never_reproduce_relu(bank):
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    from verify.variants import strategy

    with pytest.raises(NoSuchExample):
        find(strategy(bank.get("cpen455-hw2/1.3")), lambda q: q["alpha"] == "0")
