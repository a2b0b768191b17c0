"""Where the source write-ups disagree with the bank: their answers (problems/writeups/*.toml) graded like any answer
file, for the report's write-up sections.

Each write-up file names its seed document in a first comment line, ``# source: <file>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verify.model import Derivation, Problem


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


def grade(
    problems: Sequence[Problem],
    where: Path | None = None,
    derived: Mapping[tuple[str, str], Derivation] | None = None,
    timeout: float | None = None,
) -> list[tuple[WriteUp, list[Any]]]:
    """Each write-up's verdicts, for the answers whose problem is among ``problems`` (write-ups with none left out).

    Graded in this process, each answer under the grader's time limit: the files are the bank's own (answers from
    outside go through the worker pool, which also caps memory). ``derived``: derivations a run of the bank already
    made, by (problem id, part key), used as the references instead of deriving them again. ``timeout``: seconds per
    answer (the grader's default when None)."""
    from verify.answers.grade import DEFAULT_TIMEOUT, grade_here, read_answers, reference_for

    by_id = {p.id: p for p in problems}
    out = []
    for w in find(where):
        answers = [a for a in read_answers(w.path) if a.id in by_id]
        if not answers:
            continue
        verdicts = []
        for a in answers:
            problem = by_id[a.id]
            part = next((p for p in problem.parts if p.key == a.part), None)
            made = (derived or {}).get((a.id, a.part))
            if part is not None and made is not None:
                reference_for(problem, part, made)
            verdicts.append(grade_here(problem, a, DEFAULT_TIMEOUT if timeout is None else timeout))
        out.append((w, verdicts))
    return out
