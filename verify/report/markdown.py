"""The markdown report: a pure function of the bank and the run's results, plus an atomic writer.

Deterministic: apart from the single header line (date and versions) two runs give the same text. Seconds are never
written; figures are named by a digest of their data.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from verify.model import Derivation, Figure, Problem, Result, Status
from verify.runner import RunOutput

HEADER_PREFIX = "<!-- generated"
ICON = {Status.PASS: "✅ pass", Status.FAIL: "❌ fail", Status.ERROR: "💥 error", Status.SKIP: "⏭ skip"}


def cell(text: str) -> str:
    """Text made safe for one markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def header_line(versions: dict[str, str], date: str) -> str:
    parts = " · ".join(f"{k} {v}" for k, v in versions.items())
    return f"{HEADER_PREFIX} {date} · {parts} -->"


def _answer_latex(derivation: Derivation) -> str:
    from verify.symbolic import latex

    return derivation.latex or latex(derivation.answer)


def _summary(problems: Sequence[Problem], out: RunOutput) -> list[str]:
    counts = out.counts()
    n_parts = sum(len(p.parts) for p in problems)
    lines = [
        "## Summary",
        "",
        "| problems | parts | checks | passed | failed | errors | skipped |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(problems)} | {n_parts} | {len(out.results)} | {counts['pass']} | {counts['fail']} | "
        f"{counts['error']} | {counts['skip']} |",
        "",
        "| problem | title | parts | checks passed | verdict |",
        "|---|---|---:|---:|---|",
    ]
    for p in problems:
        rs = [r for r in out.results if r.problem == p.id]
        passed = sum(r.status is Status.PASS for r in rs)
        bad = [r for r in rs if r.status in (Status.FAIL, Status.ERROR)]
        verdict = ICON[Status.PASS] if not bad else ICON[bad[0].status]
        anchor = p.id.replace("/", "").replace(".", "")
        lines.append(f"| [{p.id}](#{anchor}) | {cell(p.title)} | {len(p.parts)} | {passed}/{len(rs)} | {verdict} |")
    return lines


def _checks_table(results: Sequence[Result], figure_link: Callable[[Figure], str]) -> list[str]:
    lines = [
        "| check | method | status | compared | evidence | max error / tolerance |",
        "|---|---|---|---|---|---|",
    ]
    figures: list[str] = []
    for r in results:
        err = ""
        if r.max_error is not None and r.tolerance is not None:
            err = f"{r.max_error:.1e} / {r.tolerance:.0e}"
        lines.append(
            f"| {cell(r.label)} | {r.method} | {ICON[r.status]} | {cell(r.compared)} | {cell(r.evidence)} | {err} |"
        )
        for fig in r.figures:
            figures.append(f"![{cell(fig.caption)}]({figure_link(fig)})  \n*{cell(fig.caption)}*")
    return lines + (["", *figures] if figures else [])


def render(
    problems: Sequence[Problem],
    out: RunOutput,
    header: str,
    figure_link: Callable[[Figure], str],
) -> str:
    """The whole report as text; ``figure_link`` turns a figure into the relative path the report links to."""
    lines = [
        "# Verified answers",
        header,
        "",
        "Every reference answer below is derived with sympy and confirmed by independent checks: a symbolic route and "
        "real torch computations (float64, seeded). Regenerate with `verify all`.",
        "",
        *_summary(problems, out),
        "",
    ]
    for p in problems:
        lines += [
            "---",
            "",
            f"## {p.id}",
            "",
            f"**{cell(p.title)}** · source: {p.source} · topics: {', '.join(p.topics)}",
            "",
        ]
        lines += [f"> {p.statement}", ""]
        for part in p.parts:
            key = (p.id, part.key)
            lines.append(f"### `{part.key}` ({part.kind})")
            lines.append("")
            derivation = out.derivations.get(key)
            if derivation is None:
                lines += [f"**The derivation failed:** {cell(out.derivation_errors.get(key, 'not run'))}", ""]
            else:
                lines += [f"**Reference answer:** ${_answer_latex(derivation)}$", ""]
                if part.note:
                    lines += [f"*{part.note}*", ""]
                if derivation.accepted:
                    lines += ["**Also accepted** (the question leaves the convention open; each is checked below):", ""]
                    lines += [f"- {cell(c)}: ${_answer_latex(Derivation(v))}$" for c, v in derivation.accepted]
                    lines.append("")
                if derivation.steps:
                    lines += ["**Derivation**", ""]
                    for i, step in enumerate(derivation.steps, 1):
                        lines.append(f"{i}. {step.text}")
                        if step.latex:
                            lines += ["", f"   $${step.latex}$$", ""]
                    lines.append("")
                for fig in derivation.figures:
                    lines += [f"![{cell(fig.caption)}]({figure_link(fig)})", ""]
            lines += ["**Checks**", ""]
            lines += _checks_table([r for r in out.results if (r.problem, r.part) == key], figure_link)
            lines.append("")
    lines += parity_table(out.parity)
    return "\n".join(lines).rstrip() + "\n"


def parity_table(pairs: Sequence[tuple[Result, Result]]) -> list[str]:
    """The checks that follow --device, run on two devices: what each computed and their largest difference."""
    if not pairs:
        return []
    first, second = pairs[0][0].device, pairs[0][1].device
    lines = [
        "---",
        "",
        "## Device parity",
        "",
        f"The checks whose torch work follows `--device`, run on {first} and again on {second} (float64, the same seed "
        "and tolerances): the values each computed and the largest difference between them.",
        "",
        f"| problem | part | check | {first} | {second} | largest difference |",
        "|---|---|---|---|---|---:|",
    ]

    def shown(r: Result) -> str:
        if r.status is Status.SKIP or r.value is None:
            return f"{ICON[r.status]}: {cell(r.evidence)[:80]}" if r.status is not Status.PASS else ICON[r.status]
        head = ", ".join(f"{v:.6g}" for v in r.value[:4])
        more = f", … ({len(r.value)} values)" if len(r.value) > 4 else ""
        return f"{ICON[r.status]}: {head}{more}"

    for a, b in pairs:
        if a.value is not None and b.value is not None and len(a.value) == len(b.value):
            diff = f"{max((abs(x - y) for x, y in zip(a.value, b.value, strict=True)), default=0.0):.1e}"
        else:
            diff = "—"
        lines.append(f"| {a.problem} | {a.part} | {cell(a.label)} | {shown(a)} | {shown(b)} | {diff} |")
    return lines


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def versions() -> dict[str, str]:
    import platform

    import sympy
    import torch

    from verify import __version__

    return {
        "verify": __version__,
        "torch": torch.__version__,
        "sympy": sympy.__version__,
        "python": platform.python_version(),
    }


def figure_folder(report: Path) -> Path:
    """Where a report's figures go."""
    return report.parent / "figures"


def write_report(problems: Sequence[Problem], out: RunOutput, path: Path, date: str | None = None) -> Path:
    """Draw the figures the results carry (only those whose data changed) and write the report atomically."""
    import datetime

    from verify.report.plots import ensure

    folder = figure_folder(path)
    date = date or datetime.date.today().isoformat()

    def link(fig: Figure) -> str:
        return f"figures/{ensure(fig, folder)}"

    text = render(problems, out, header_line(versions(), date), link)
    write_atomic(path, text)
    return path
