"""Recording a benchmark's table in bench/README.md, between the markers named after the benchmark."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def record(name: str, table: str, where: str) -> None:
    """Replace what stands between <!-- NAME:start --> and <!-- NAME:end --> with the table and where it was measured."""
    text = README.read_text(encoding="utf-8")
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{table}\n\n{where}\n{end}{tail}", encoding="utf-8")
