"""The markdown report: a pure function of the bank and the run's results, plus an atomic writer.

Deterministic: apart from the single header line (date and versions) two runs give the same text. Seconds are never
written; figures are named by a digest of their data.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from verify.model import Derivation, Figure, Kind, Part, Problem, Result, Status
from verify.runner import RunOutput

HEADER_PREFIX = "<!-- generated"
ICON = {Status.PASS: "✅ pass", Status.FAIL: "❌ fail", Status.ERROR: "💥 error", Status.SKIP: "⏭ skip"}


def cell(text: str) -> str:
    """Text made safe for one markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


EVIDENCE_CHARS = 280  # a longer evidence cell is cut; `--json` keeps every value
LIST_CHARS = 48  # a bracketed list longer than this becomes a count of its entries


def short(evidence: str) -> str:
    """Evidence for one table cell: long lists (whole tensors) replaced by their size, the text cut to a few lines."""
    out, i = [], 0
    while i < len(evidence):
        if evidence[i] == "[":
            depth, j = 0, i
            while j < len(evidence):
                depth += {"[": 1, "]": -1}.get(evidence[j], 0)
                if depth == 0:
                    break
                j += 1
            group = evidence[i : j + 1]
            if len(group) > LIST_CHARS and depth == 0:
                out.append(f"[{group.count(',') + 1} values]")
                i = j + 1
                continue
        out.append(evidence[i])
        i += 1
    text = re.sub(r"\s+", " ", "".join(out)).strip()
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 1].rstrip() + "…"


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
    return [*lines, "", *_reference_origins(problems, out)]


def _reference_origins(problems: Sequence[Problem], out: RunOutput) -> list[str]:
    """How many graded references the bank's code derives and which ones it states instead."""
    graded = [(p, part) for p in problems for part in p.parts if part.kind is not Kind.TEXT]
    derived = [(p, part) for p, part in graded if (d := out.derivations.get((p.id, part.key))) and not d.stated]
    stated = [(p, part) for p, part in graded if (d := out.derivations.get((p.id, part.key))) and d.stated]
    names = ", ".join(f"[{p.id} `{part.key}`](#{p.id.replace('/', '').replace('.', '')})" for p, part in stated)
    return [
        f"**References:** {len(derived)} of {len(graded)} graded answers are computed by the bank's code from the "
        f"question's data; {len(stated)} are stated (a construction, a decision, a set of named things, or a closed "
        "form argued by hand in its steps), each marked in its part with the checks that confirm it"
        + (f": {names}." if stated else ".")
    ]


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
            f"| {cell(r.label)} | {r.method} | {ICON[r.status]} | {cell(r.compared)} | {cell(short(r.evidence))} "
            f"| {err} |"
        )
        for fig in r.figures:
            figures.append(f"![{cell(fig.caption)}]({figure_link(fig)})  \n*{cell(fig.caption)}*")
    return lines + (["", *figures] if figures else [])


def _writeup_sections(graded: Sequence[tuple[Any, Sequence[Any]]]) -> list[str]:
    """A section per source write-up: each answer the bank disagrees with, the bank's answer and one line of evidence."""
    if not graded:
        return []
    lines = [
        "## Where the source write-ups disagree",
        "",
        "Each write-up's answers (`problems/writeups/`) graded like any answer file with `verify check`; the rows are "
        "the answers the bank's checks reject. Explanations are not graded.",
        "",
    ]
    for w, verdicts in graded:
        bad = [v for v in verdicts if v.verdict not in ("correct", "ungraded")]
        agree = sum(v.verdict == "correct" for v in verdicts)
        lines += [
            f"### {w.name} ({w.source})",
            "",
            f"{agree} of {len(verdicts)} answers agree with the bank"
            + (f"; {len(bad)} {'does' if len(bad) == 1 else 'do'} not:" if bad else "; none disagrees."),
            "",
        ]
        if bad:
            lines += ["| question | part | write-up | bank | evidence |", "|---|---|---|---|---|"]
            for v in bad:
                anchor = v.id.replace("/", "").replace(".", "")
                evidence = short(
                    v.evidence + (f"; {v.diagnosis}" if v.diagnosis and v.parsed.isdigit() is False else "")
                )
                lines.append(
                    f"| [{v.id}](#{anchor}) | `{v.part}` | {cell(short(v.given))} | ${v.expected}$ | {cell(evidence)} |"
                )
            lines.append("")
    return lines


def _stated_line(part: Part, results: Sequence[Result]) -> str:
    """The line under a stated reference: the part's checks that passed on it (each also fails on the mutants
    tests/test_mutants.py makes of it), named from the results, and any that did not."""
    passed = [
        c.name
        for c in part.checks
        if any(r.check == c.name and r.status is Status.PASS and not r.convention for r in results)
    ]
    missing = [c.name for c in part.checks if c.name not in passed]
    text = f"*Stated, confirmed by {_quoted(passed) or 'no check (none passed)'}"
    return text + (f"; not confirmed by {_quoted(missing)}.*" if missing else ".*")


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"“{cell(n)}”" for n in names)


def _convention_line(problem: Problem, part_key: str, out: RunOutput) -> list[str]:
    from verify.confirm import conventions

    rows = [r for r in conventions([problem], out) if r.part == part_key]
    if not rows:
        return []
    text = "; ".join(
        f"{'reference' if r.reference else 'accepted'} under '{r.convention}': "
        + (r.detail if r.confirmed else f"NOT confirmed ({r.detail})")
        for r in rows
    )
    return [f"**Conventions:** {cell(text)}", ""]


def render(
    problems: Sequence[Problem],
    out: RunOutput,
    header: str,
    figure_link: Callable[[Figure], str],
    writeups: Sequence[tuple[Any, Sequence[Any]]] = (),
) -> str:
    """The whole report as text; ``figure_link`` turns a figure into the relative path the report links to;
    ``writeups`` are the source write-ups' graded answers (verify.report.writeups.grade)."""
    lines = [
        "# Verified answers",
        header,
        "",
        "Every reference answer below is derived by the bank's own code (or stated, where it says so) and confirmed "
        "by independent checks: a symbolic route and real torch computations (float64, seeded). Explanations are "
        "shown, not graded. Regenerate with `verify all`; `--json` gives every check's full evidence.",
        "",
        *_summary(problems, out),
        "",
        *_writeup_sections(writeups),
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
        last_note = ""
        for part in p.parts:
            key = (p.id, part.key)
            lines.append(f"### `{part.key}` ({part.kind})")
            lines.append("")
            derivation = out.derivations.get(key)
            results = [r for r in out.results if (r.problem, r.part) == key]
            if derivation is None:
                lines += [f"**The derivation failed:** {cell(out.derivation_errors.get(key, 'not run'))}", ""]
            elif part.kind is Kind.TEXT:
                lines += [f"**Explained, not graded:** {cell(str(derivation.answer))}", ""]
            else:
                lines += [f"**Reference answer:** ${_answer_latex(derivation)}$", ""]
                if derivation.stated:
                    lines += [_stated_line(part, results), ""]
            if derivation is not None:
                if part.note and part.note != last_note:
                    lines += [f"*{part.note}*", ""]
                last_note = part.note or last_note
                lines += _convention_line(p, part.key, out)
                if derivation.accepted:
                    lines += ["**Also accepted** (the question leaves the convention open; each is checked below):", ""]
                    lines += [f"- {cell(c)}: ${_answer_latex(Derivation(v))}$" for c, v in derivation.accepted]
                    lines.append("")
                if derivation.steps and part.kind is not Kind.TEXT:
                    lines += ["**Derivation**", ""]
                    for i, step in enumerate(derivation.steps, 1):
                        lines.append(f"{i}. {step.text}")
                        if step.latex:
                            lines += ["", f"   $${step.latex}$$", ""]
                    lines.append("")
                for fig in derivation.figures:
                    lines += [f"![{cell(fig.caption)}]({figure_link(fig)})", ""]
            if results:
                title = "**Checks**" if part.kind is not Kind.TEXT else "**Checks of the facts the explanation states**"
                lines += [title, ""]
                lines += _checks_table(results, figure_link)
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


def write_report(
    problems: Sequence[Problem],
    out: RunOutput,
    path: Path,
    date: str | None = None,
    writeups: Sequence[tuple[Any, Sequence[Any]]] | None = None,
) -> Path:
    """Draw the figures the results carry (only those whose data changed) and write the report atomically; the
    source write-ups are graded here unless their verdicts are given."""
    import datetime

    from verify.report.plots import ensure
    from verify.report.writeups import grade

    if writeups is None:
        writeups = grade(problems, derived=out.derivations)

    folder = figure_folder(path)
    date = date or datetime.date.today().isoformat()

    def link(fig: Figure) -> str:
        return f"figures/{ensure(fig, folder)}"

    text = render(problems, out, header_line(versions(), date), link, writeups)
    write_atomic(path, text)
    return path
