"""Variants of parametrized questions: every emitted key passes the question's own checks and every mutant of it fails
them, across many seeds and across the declared parameter spaces; determinism; grading a class of variants; bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
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
    "cpen455-hw2/2.6": 4,
    "cpen455-hw2/3.3a": 12,
    "cpen455-hw2/3.3b": 12,
    "cpen455-hw2/4.1": 12,
    "cpen455-hw2/1.2": 2,
    "cpen455-hw2/1.3": 4,
    "vu-dl-a3/q10": 8,
    "vu-dl-a3/q11": 12,
    "vu-dl-a3/q15": 2,
    "csc420-a2/q4": 4,
    "csc413-a2/1.2.1": 3,
    "csc413-a2/5.4": 8,
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


@pytest.mark.parametrize(
    "problem_id",
    ["cpen455-hw2/2.2", "cpen455-hw2/3.3b", "cpen455-hw2/4.1", "vu-dl-a3/q10", "csc420-a2/q4", "csc413-a2/5.4"],
)
def test_any_point_of_the_declared_space_builds_a_passing_problem(bank, problem_id):
    """Hypothesis draws from the same space function the seeds draw from: every point is a valid question."""
    from verify.variants import strategy

    base = bank.get(problem_id)

    @settings(max_examples=15)
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
    from verify.variants import _instance, variant

    first = variant("cpen455-hw2/3.3b", 7, bank)
    _instance.cache_clear()
    again = variant("cpen455-hw2/3.3b", 7, bank)
    assert first.statement == again.statement
    assert derive(first.parts[0]).answer == derive(again.parts[0]).answer
    assert variant("cpen455-hw2/3.3b", 8, bank).statement != first.statement
    # the draw is pinned: SHA-256 of the space's name, the seed and a counter, nothing machine-dependent
    assert first.params.values == {"Y": [[1, 9], [8, 7]], "W": [[-3, -1], [-2, -1]], "s": 2, "p": 1, "op": 1}
    # questions about one network share its space: the same seed gives the same network
    network = bank.get("cpen455-hw2/2.2@seed=5").params.values
    assert all(bank.get(f"cpen455-hw2/{q}@seed=5").params.values == network for q in ("2.1", "2.3", "2.6"))


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
    code = main(["grade", str(cls), "--out", str(tmp_path / "grades"), "--jobs", "1"])
    capsys.readouterr()
    assert code == 0
    rows = {r["file"]: r for r in csv.DictReader((tmp_path / "grades" / "grades.csv").open())}
    verdicts = {name: [v for k, v in row.items() if ":" in k and v] for name, row in rows.items()}
    assert verdicts == {
        "ada.toml": ["correct"],
        "bob.toml": ["correct"],
        "cy.toml": ["incorrect"],
        "dee.toml": ["unknown"],
    }, rows


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
