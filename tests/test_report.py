"""The report: deterministic apart from its header line, atomic, every part present with its evidence."""

from __future__ import annotations

import os
import time

import pytest

from verify.model import Kind
from verify.report.markdown import HEADER_PREFIX, cell, render, short, write_atomic, write_report
from verify.runner import run


def _strip_header(text):
    return "\n".join(line for line in text.splitlines() if not line.startswith(HEADER_PREFIX))


def test_two_runs_give_the_same_report(bank, tmp_path):
    problems = list(bank.problems)
    a = write_report(problems, run(problems), tmp_path / "a" / "R.md", date="2000-01-01").read_text()
    b = write_report(problems, run(problems), tmp_path / "b" / "R.md", date="2999-12-31").read_text()
    assert a != b  # the header line differs...
    assert _strip_header(a) == _strip_header(b)  # ...and nothing else
    assert sum(line.startswith(HEADER_PREFIX) for line in a.splitlines()) == 1
    figs_a = sorted(p.name for p in (tmp_path / "a" / "figures").iterdir())
    figs_b = sorted(p.name for p in (tmp_path / "b" / "figures").iterdir())
    assert figs_a == figs_b and figs_a
    for name in figs_a:
        assert (tmp_path / "a" / "figures" / name).read_bytes() == (tmp_path / "b" / "figures" / name).read_bytes()


def test_every_part_has_answer_derivation_and_both_kinds_of_check(bank, run_output):
    text = render(list(bank.problems), run_output, "<!-- generated x -->", lambda f: f"figures/{f.name}.png")
    for p in bank.problems:
        assert f"## {p.id}" in text
        section = text.split(f"## {p.id}\n", 1)[1].split("\n## ", 1)[0]
        for part in p.parts:
            assert f"### `{part.key}`" in section
        graded = [part for part in p.parts if part.kind is not Kind.TEXT]
        assert section.count("**Reference answer:** $") == len(graded)
        assert section.count("**Explained, not graded:**") == len(p.parts) - len(graded)
        assert "| symbolic |" in section and "| torch |" in section
    assert "nn.ConvTranspose2d" in text and "F.conv_transpose2d(stride=2, padding=1, output_padding=1)" in text
    assert "![" in text  # the XOR loss curves


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    target = tmp_path / "R.md"
    write_atomic(target, "old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["R.md"]


def test_cells_escape_markdown():
    assert cell("a | b\n<script>") == "a \\| b &lt;script&gt;"


def test_evidence_cells_are_short_and_notes_are_not_repeated(bank, run_output):
    text = render(list(bank.problems), run_output, "<!-- generated x -->", lambda f: f"figures/{f.name}.png")
    cells = [c for line in text.splitlines() if line.startswith("| ") for c in line.split(" | ")]
    assert max(len(c) for c in cells) < 700  # the write-up table's matrices are the widest
    for p in bank.problems:
        section = text.split(f"## {p.id}\n", 1)[1].split("\n## ", 1)[0]
        for part in p.parts:
            if part.note:
                assert section.count(f"*{part.note}*") == 1, (p.id, part.note)
    assert "r_l = r_{l-1} + (k_l - 1)" in text  # receptive fields show the recursion


def test_short_evidence_replaces_tensors_by_their_size():
    long = "F.conv2d gives [" + ", ".join(str(i) for i in range(400)) + "]; largest difference 0.0e+00"
    assert short(long) == "F.conv2d gives [400 values]; largest difference 0.0e+00"
    assert short("x" * 1000).endswith("…") and len(short("x" * 1000)) <= 280


def test_the_report_says_where_each_write_up_disagrees(bank, run_output):
    from verify.report.writeups import grade

    graded = grade(list(bank.problems))
    assert {w.name for w, _ in graded} == {"cpen455-hw2", "csc413-a2", "csc420-a2", "vu-dl-a3"}
    text = render(list(bank.problems), run_output, "<!-- generated x -->", lambda f: f"figures/{f.name}.png", graded)
    section = text.split("## Where the source write-ups disagree", 1)[1].split("\n---", 1)[0]
    for row in ("`grad_w0`", "`k4_final_padding`", "`forward_memory`", "`X_hat`", "`out_size`"):
        assert row in section, row
    assert section.count("[cpen455-hw2/7]") == 2 and section.count("[cpen455-hw2/2.6]") == 1
    assert "`H1`" not in section  # 2.4's H1 = 128 is the bias count the question asks for


def test_write_ups_use_the_runs_derivations_and_a_stuck_answer_is_undecided(bank, run_output, monkeypatch):
    """Graded with the run's derivations as references (none derived again); an answer whose grading does not end is
    undecided with the reason, and the rest are graded."""
    from verify import runner
    from verify.answers import grade as g
    from verify.report.writeups import grade

    monkeypatch.setattr(g, "_REFERENCES", {})
    derived: list[str] = []
    monkeypatch.setattr(runner, "derive", lambda part, limit=None: derived.append(part.key))
    problems = list(bank.select(["csc420-a2/q6", "csc420-a2/q7"]))
    graded = grade(problems, derived=run_output.derivations)
    assert graded and not derived
    verdicts = [v for _, vs in graded for v in vs]
    assert verdicts and all(v.verdict in ("correct", "incorrect") for v in verdicts)

    real = g.grade_one
    stuck = verdicts[0]

    def slow(problem, answer):
        if (answer.id, answer.part) == (stuck.id, stuck.part):
            while True:
                time.sleep(0.01)
        return real(problem, answer)

    monkeypatch.setattr(g, "grade_one", slow)
    again = [v for _, vs in grade(problems, derived=run_output.derivations, timeout=0.3) for v in vs]
    assert again[0].verdict == "undecided" and "limit" in again[0].evidence
    assert [v.verdict for v in again[1:]] == [v.verdict for v in verdicts[1:]]


def test_the_committed_report_is_what_the_code_writes(bank, run_output, tmp_path):
    """reports/REPORT.md, but for its header line, is byte for byte what the bank's code writes now: a change to any
    answer, step, check or piece of evidence shows up here until the report is regenerated (`verify all`)."""
    from pathlib import Path

    committed = Path(__file__).resolve().parents[1] / "reports" / "REPORT.md"
    written = write_report(list(bank.problems), run_output, tmp_path / "REPORT.md")

    import re

    # round-off figures (float64 differences of 1e-9 and below) depend on the CPU's kernels: compared as "round-off"
    roundoff = re.compile(r"\b\d(?:\.\d+)?e(?:-(?:0?9|[1-9]\d)|[+-]00)\b")

    def body(path):
        lines = path.read_text(encoding="utf-8").splitlines()
        return [roundoff.sub("round-off", line) for line in lines if not line.startswith(HEADER_PREFIX)]

    assert body(written) == body(committed), "reports/REPORT.md is stale: run `verify all` and commit it"
