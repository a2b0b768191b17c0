"""Where the source write-ups disagree with the bank: their answers (problems/writeups/*.toml) graded like any answer
file, for the report's write-up sections.

Each write-up file names its seed document in a first comment line, ``# source: <file>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verify.model import Problem


@dataclass(frozen=True)
class WriteUp:
    name: str  # the file's stem: the course the write-up answers
    source: str  # the seed document it transcribes
    path: Path


def folder() -> Path:
    """problems/writeups/, found without importing the bank (only the registry imports problems/)."""
    import importlib.util

    spec = importlib.util.find_spec("problems")
    if spec is None or not spec.submodule_search_locations:
        return Path("problems") / "writeups"
    return Path(next(iter(spec.submodule_search_locations))) / "writeups"


def find(where: Path | None = None) -> list[WriteUp]:
    out = []
    for path in sorted((where or folder()).glob("*.toml")):
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        source = first[0].removeprefix("# source:").strip() if first and first[0].startswith("# source:") else ""
        out.append(WriteUp(path.stem, source, path))
    return out


@dataclass(frozen=True)
class _Bank:
    problems: Sequence[Problem]

    def find(self, problem_id: str) -> Problem | None:
        return next((p for p in self.problems if p.id == problem_id), None)


def grade(problems: Sequence[Problem], where: Path | None = None) -> list[tuple[WriteUp, list[Any]]]:
    """Each write-up's verdicts, for the answers whose problem is among ``problems`` (write-ups with none left out)."""
    from verify.answers.grade import grade_answers, read_answers, warm_up

    ids = {p.id for p in problems}
    out = []
    for w in find(where):
        answers = [a for a in read_answers(w.path) if a.id in ids]
        if answers:
            warm_up()
            out.append((w, grade_answers(_Bank(problems), answers)))
    return out
