"""The CLI end to end: exit codes, one-line errors, JSON, the report, and light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from verify.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "no/such"], "verify: no problem 'no/such' in the bank"),
        (["list", "--topic", "nope"], "verify: no topic 'nope'"),
        (["run"], "verify: Missing argument"),
        (["all", "--device", "gpu"], "verify: Invalid value for '--device'"),
        (["frobnicate"], "verify: No such command"),
        (["list", "--bank", "/no/such/folder"], "verify: --bank /no/such/folder: not a folder"),
    ],
)
def test_usage_errors_are_one_line_exit_2(capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err
    assert "Traceback" not in out + err


def test_an_internal_fault_is_one_line_exit_1(capsys, monkeypatch):
    import verify.index

    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke\nsecond line")

    monkeypatch.setattr(verify.index, "listing", broken)
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert err == "verify: internal error: RuntimeError: something inside broke\n"


def test_list_json(capsys, bank):
    code, out, _ = run_cli(capsys, "list", "--json")
    assert code == 0
    ids = [p["id"] for p in json.loads(out)["problems"]]
    assert ids == bank.ids()


def test_list_piped_is_one_tab_separated_line_per_problem(capsys, bank, monkeypatch):
    code, out, _ = run_cli(capsys, "list", "--topic", "xor")  # captured output is not a terminal
    rows = [line.split("\t") for line in out.splitlines() if not line.startswith("#")]
    assert code == 0 and out.startswith("# 3 problems, 3 parts\n")
    assert [r[0] for r in rows] == ["cpen455-hw2/1.1", "cpen455-hw2/1.2", "cpen455-hw2/1.3"]
    assert all(len(r) == 4 and r[2] == "xor" for r in rows) and rows[0][1] == "separable (bool)"
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)  # on a terminal: the table
    code, out, _ = run_cli(capsys, "list", "--topic", "xor")
    assert code == 0 and "3 problems, 3 parts" in out and "\t" not in out and "separable" in out


def test_list_topic_filter(capsys):
    code, out, _ = run_cli(capsys, "list", "--topic", "xor", "--json")
    assert code == 0
    assert {p["id"] for p in json.loads(out)["problems"]} == {"cpen455-hw2/1.1", "cpen455-hw2/1.2", "cpen455-hw2/1.3"}


def test_show_json(capsys):
    code, out, _ = run_cli(capsys, "show", "cpen455-hw2/3.3b", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["parts"][0]["answer"][0] == [-18, 35, -16, 31, -14, 21]
    assert {c["method"] for c in doc["parts"][0]["checks"]} == {"symbolic", "torch"}


def test_run_subset_json_and_exit_code(capsys):
    code, out, _ = run_cli(capsys, "run", "cpen455-hw2/3.1", "vu-dl-a3/q11", "--json")
    doc = json.loads(out)
    assert code == 0
    assert {r["problem"] for r in doc["results"]} == {"cpen455-hw2/3.1", "vu-dl-a3/q11"}
    assert doc["summary"]["pass"] == doc["summary"]["checks"] == 4


def test_cuda_request_skips_cleanly_without_gpu(capsys):
    import torch

    if torch.cuda.is_available():  # pragma: no cover
        pytest.skip("a GPU is present")
    code, out, _ = run_cli(capsys, "run", "cpen455-hw2/3.3a", "--device", "cuda", "--json")
    statuses = {r["check"]: r["status"] for r in json.loads(out)["results"]}
    assert code == 0 and statuses == {"adjoint of the exact convolution": "pass", "F.conv_transpose2d": "skip"}


FAILING_BANK = """
from verify import checks
from verify.model import Derivation, Kind, Part, Problem

def boom(claim, ctx):
    raise RuntimeError("kaboom")

PROBLEMS = [Problem("course/x1", "A failing problem", "Two plus two.", "made up", ("demo",), (
    Part("a", Kind.INT, lambda: Derivation(4), (
        checks.symbolic("wrong truth", lambda c, x: checks.exact(c, 5, "a wrong oracle")),
        checks.symbolic("crash", boom),
        checks.torch_check("right", lambda c, x: checks.exact(c, 4, "arithmetic")),
    )),
))]
"""


def test_failing_and_crashing_checks_are_reported_and_exit_1(capsys, tmp_path):
    (tmp_path / "course.py").write_text(FAILING_BANK)
    report = tmp_path / "out" / "R.md"
    code, out, _ = run_cli(capsys, "run", "course/x1", "--bank", str(tmp_path), "--report", str(report))
    assert code == 1
    assert "fail course/x1 a · wrong truth" in out and "error course/x1 a · crash: RuntimeError: kaboom" in out
    text = report.read_text()
    assert "❌ fail" in text and "💥 error" in text and "✅ pass" in text


def test_help_and_list_do_not_import_torch_or_sympy():
    code = (
        "import sys; from verify.cli import main; "
        "assert main(['--help']) == 0; assert main(['list']) == 0; "
        "heavy = [m for m in ('torch', 'sympy', 'matplotlib') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
