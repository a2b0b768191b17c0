"""Rendering grading results: a markdown report for one file, and a CSV plus a markdown summary for a class."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Sequence

from verify.answers.grade import VERDICTS, Verdict, summary
from verify.report.markdown import cell

ICON = {"correct": "✅", "incorrect": "❌", "unparsable": "⚠️", "unknown": "❓", "ungraded": "📝", "undecided": "⏳"}


def check_markdown(name: str, verdicts: Sequence[Verdict]) -> str:
    s = summary(list(verdicts))
    lines = [
        f"# Answers in {cell(name)}",
        "",
        "| " + " | ".join(VERDICTS) + " | total |",
        "|" + "---:|" * (len(VERDICTS) + 1),
        "| " + " | ".join(str(s[k]) for k in VERDICTS) + f" | {s['total']} |",
        "",
        "| id | part | verdict | given | read as | expected | method | evidence | diagnosis |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        parsed = f"${cell(v.parsed)}$" if v.parsed else ""
        expected = f"${cell(v.expected)}$" if v.expected else ""
        lines.append(
            f"| {cell(v.id)} | {cell(v.part)} | {ICON[v.verdict]} {v.verdict} | `{cell(v.given).replace('`', '')}` | {parsed} | "
            f"{expected} | {cell(v.method)} | {cell(v.evidence)} | {cell(v.diagnosis)} |"
        )
    return "\n".join(lines) + "\n"


def class_csv(results: dict[str, list[Verdict]]) -> str:
    columns = sorted({f"{v.id}:{v.part}" for vs in results.values() for v in vs})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", *columns, "correct", "graded"])
    for name in sorted(results):
        row = {f"{v.id}:{v.part}": v.verdict for v in results[name]}
        correct = sum(v.verdict == "correct" for v in results[name])
        graded = sum(v.verdict in ("correct", "incorrect") for v in results[name])
        writer.writerow([name, *(row.get(c, "") for c in columns), correct, graded])
    return out.getvalue()


def class_markdown(results: dict[str, list[Verdict]], errors: dict[str, str]) -> str:
    per_part: dict[str, list[Verdict]] = defaultdict(list)
    for vs in results.values():
        for v in vs:
            per_part[f"{v.id}:{v.part}"].append(v)
    lines = [
        f"# Class summary: {len(results)} answer files" + (f", {len(errors)} unreadable" if errors else ""),
        "",
        "| part | answers | correct | incorrect | unparsable | undecided | most common wrong answers (count: diagnosis) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for key in sorted(per_part):
        vs = per_part[key]
        c = Counter(v.verdict for v in vs)
        wrong = Counter((v.given, v.diagnosis) for v in vs if v.verdict == "incorrect").most_common(3)
        notes = "; ".join(f"`{cell(g)}` ×{n}" + (f": {cell(d)}" if d else "") for (g, d), n in wrong)
        lines.append(
            f"| {cell(key)} | {len(vs)} | {c['correct']} | {c['incorrect']} | {c['unparsable']} | {c['undecided']} | {notes} |"
        )
    if errors:
        lines += ["", "## Files that could not be read", ""]
        lines += [f"- {cell(name)}: {cell(msg)}" for name, msg in sorted(errors.items())]
    return "\n".join(lines) + "\n"
