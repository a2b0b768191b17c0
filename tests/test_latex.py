"""Every math span of the report is valid LaTeX: each is parsed by KaTeX (pinned in tests/katex/package.json, run by
node) with errors on anything it cannot typeset. The test installs KaTeX with `npm ci` the first time; it skips, saying
why, only where node or npm is missing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from verify.report.markdown import render

KATEX = Path(__file__).parent / "katex"


def math_spans(text: str) -> list[tuple[str, bool]]:
    """($...$ spans, display?) of a markdown text: display spans first, then inline ones line by line."""
    spans: list[tuple[str, bool]] = []
    rest = re.sub(r"\$\$(.+?)\$\$", lambda m: spans.append((m.group(1), True)) or " ", text, flags=re.S)
    for line in rest.splitlines():
        spans += [(m.group(1), False) for m in re.finditer(r"(?<!\\)\$(.+?)(?<!\\)\$", line)]
    return spans


def katex_errors(spans: list[tuple[str, bool]]) -> list[tuple[str, str]]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed to run KaTeX (tests/katex); install Node.js to run this test")
    if not (KATEX / "node_modules" / "katex").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=KATEX, check=True, capture_output=True, timeout=300)
    done = subprocess.run(
        [node, str(KATEX / "check.js")],
        input=json.dumps(spans),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [(spans[i][0], msg) for i, msg in json.loads(done.stdout)]


def test_every_math_span_of_the_report_parses(bank, run_output):
    from verify.report.writeups import grade

    text = render(
        list(bank.problems),
        run_output,
        "<!-- generated x -->",
        lambda f: f"figures/{f.name}.png",
        grade(list(bank.problems)),
    )
    spans = math_spans(text)
    assert len(spans) > 300, "too few math spans found"
    assert not any(ord(c) < 32 and c not in "\n\t" for s, _ in spans for c in s), "a control character in a span"
    bad = katex_errors(spans)
    assert not bad, bad[:10]


def test_a_broken_span_is_caught():
    bad = katex_errors([(r"\frac{a}{b}", False), ("\x07pprox 1", False), (r"\left( x", True), (r"\undefined x", False)])
    assert [s for s, _ in bad] == ["\x07pprox 1", r"\left( x", r"\undefined x"]
