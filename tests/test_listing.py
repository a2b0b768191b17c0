"""`verify list` and `verify --help` stay light: the cached listing, its validation against the sources, the plain
option reader, and what they import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verify.cli import _plain_args, main
from verify.index import entry, listing

ROOT = Path(__file__).resolve().parents[1]

COURSE = """
from verify import checks
from verify.model import Derivation, Kind, Part, Problem

PROBLEMS = [Problem("course/x1", "TITLE", "Two plus two.", "made up", ("demo",), (
    Part("a", Kind.INT, lambda: Derivation(4), (checks.symbolic("sum", lambda c, x: checks.exact(c, 4, "sum")),)),
))]
"""


def test_listing_is_the_bank_and_is_cached(bank, tmp_path, monkeypatch):
    monkeypatch.setenv("VERIFY_CACHE", str(tmp_path / "cache"))
    first = listing()
    assert first == [entry(p) for p in bank.problems]
    assert len(list((tmp_path / "cache").glob("listing-*.json"))) == 1
    assert listing() == first


def test_listing_follows_every_change_of_a_bank_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VERIFY_CACHE", str(tmp_path / "cache"))
    course = tmp_path / "course"
    course.mkdir()
    (course / "a.py").write_text(COURSE)
    titles = lambda: {p["id"]: p["title"] for p in listing([course]) if p["id"].startswith("course/")}  # noqa: E731
    assert titles() == {"course/x1": "TITLE"}
    (course / "a.py").write_text(COURSE.replace("TITLE", "ELTIT"))  # same size, perhaps the same mtime tick
    assert titles() == {"course/x1": "ELTIT"}
    (course / "b.py").write_text(COURSE.replace("course/x1", "course/x2"))
    assert titles() == {"course/x1": "ELTIT", "course/x2": "TITLE"}
    (course / "b.py").unlink()
    assert titles() == {"course/x1": "ELTIT"}


def test_a_cache_hit_imports_no_problem_file_and_a_broken_cache_is_rebuilt(tmp_path):
    env = {**os.environ, "VERIFY_CACHE": str(tmp_path)}
    code = (
        "import sys; from verify.cli import main; assert main(['list', '--json']) == 0; "
        "print(sorted(m for m in sys.modules if m.startswith('problems.')), file=sys.stderr)"
    )
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert cold.returncode == warm.returncode == 0
    assert "problems.cpen455_hw2_xor" in cold.stderr and warm.stderr.strip() == "[]"
    assert cold.stdout == warm.stdout
    for f in tmp_path.glob("listing-*.json"):
        f.write_text("{not json")
    broken = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert broken.stdout == cold.stdout and "problems.cpen455_hw2_xor" in broken.stderr


@pytest.mark.parametrize(
    ("argv", "read"),
    [
        (["list"], {"topic": None, "bank": None, "as_json": False}),
        (["list", "--json", "--topic", "xor"], {"topic": "xor", "bank": None, "as_json": True}),
        (
            ["list", "--topic=xor", "--bank", "a", "--bank=b"],
            {"topic": "xor", "bank": [Path("a"), Path("b")], "as_json": False},
        ),
        (["list", "--help"], None),
        (["list", "--topic"], None),
        (["list", "--topic", "--json"], None),
        (["list", "--jsn"], None),
        (["list", "--json=1"], None),
        (["list", "extra"], None),
        (["all", "--jobs", "0"], None),
        (["all", "--jobs", "2x"], None),
        (["all", "--time-limit", "nan"], None),
        (["all", "--jobs", "\u0663"], None),  # a digit, but not one typer reads
        (["all", "--time-limit", "\uff11.5"], None),
        (["all", "--device", "tpu"], None),
        (["run"], None),
        (["nosuch"], None),
        ([], None),
    ],
)
def test_the_plain_option_reader_takes_only_what_it_knows(argv, read):
    found = _plain_args(argv)
    assert (found and found[1]) == read


PLAIN_ARGV = [
    ["list"],
    ["list", "--json", "--topic", "xor", "--bank", "a", "--bank=b"],
    ["all"],
    ["all", "--jobs", "1", "--report", "x/R.md", "--time-limit=0.5", "--device", "both", "--json"],
    ["all", "--jobs=256", "--time-limit", "1e2", "--bank", "a"],
    ["run", "cpen455-hw2/1.1", "--jobs", "2", "csc413-a2/4.3", "--report", "r.md"],
    ["show", "cpen455-hw2/1.1", "--json"],
    ["check", "answers.toml", "--timeout", "0.5", "--jobs", "3", "--report", "r.md"],
    ["grade", "folder", "--out", "g", "--jobs", "64"],
    ["variant", "--list"],
    ["variant", "cpen455-hw2/2.2", "--seed", "0", "--count", "500", "--out", "v"],
    ["count", "resnet18", "--input", "1,3,32,32", "--input", "1,4", "--convention", "flops", "--no-bias", "--json"],
]


@pytest.mark.parametrize("argv", PLAIN_ARGV, ids=" ".join)
def test_the_plain_reader_reads_as_typer_does(argv, monkeypatch):
    """For every command: what the plain reader passes to the command is what typer passes."""
    import functools

    from verify.cli import app

    found = _plain_args(argv)
    assert found is not None, argv
    command = next(c for c in app.registered_commands if c.name == argv[0])
    seen: dict = {}

    @functools.wraps(command.callback)
    def record(**kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(command, "callback", record)
    app(argv, prog_name="verify", standalone_mode=False)

    def same(v):  # an option not given: None or an empty sequence
        return (list(v) or None) if isinstance(v, (list, tuple)) else v

    assert {k: same(v) for k, v in found[1].items()} == {k: same(v) for k, v in seen.items()}


def test_plain_and_typer_listing_agree(capsys):
    assert main(["list", "--topic", "xor", "--json"]) == 0
    plain = capsys.readouterr().out
    from verify.cli import app

    with pytest.raises(SystemExit) as done:
        app(["list", "--topic", "xor", "--json"], prog_name="verify")
    assert done.value.code in (0, None)
    assert capsys.readouterr().out == plain and json.loads(plain)["problems"][0]["id"] == "cpen455-hw2/1.1"
    assert main(["list", "--jsn"]) == 2 and "No such option" in capsys.readouterr().err


def test_help_and_list_import_neither_torch_sympy_nor_pydantic(tmp_path):
    code = (
        "import sys; from verify.cli import main; "
        "assert main(['--help']) == 0; assert main(['list']) == 0; assert main(['list', '--topic', 'xor']) == 0; "
        "from verify.cli import _plain_args; assert _plain_args(['all', '--jobs', '2', '--report', 'r.md']); "
        "heavy = [m for m in ('torch', 'sympy', 'matplotlib', 'pydantic') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    env = {**os.environ, "VERIFY_CACHE": str(tmp_path)}
    for _ in range(2):  # building the cached listing, then reading it
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("argv", [["list", "--json"], ["variant", "--list"]])
def test_a_reader_that_leaves_early_gets_no_error_line(argv):
    """`verify list | head -1`: the output's reader is gone before it is written; no traceback, no error line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "verify.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() in (0, 1) and err == "", err
