"""Where the source write-ups disagree with the bank: their answers (problems/writeups/*.toml) graded like any answer
file, for the report's write-up sections.

Each write-up file names its seed document in a first comment line, ``# source: <file>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
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


class Grading:
    """The source write-ups' answers as tasks of a run (:class:`verify.runner.Task`): each answer is graded after its
    problem's checks, by the process that made its derivations, with them as references (none derived again).

    Graded in that process under the grader's time limit (``timeout`` seconds per answer; its default when None): the
    files are the bank's own (answers from outside go through the grading pool, which also caps memory)."""

    def __init__(self, where: Path | None = None, timeout: float | None = None) -> None:
        from verify.answers.grade import DEFAULT_TIMEOUT, read_answers

        self.found = [(w, read_answers(w.path)) for w in find(where)]
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout

    def prepare(self) -> None:
        """Build the answer grammar here, once, for the processes forked from this one (each would build it again)."""
        from verify.answers import parse

        if self.found:
            parse._parser()

    def tasks(self, problem: Problem, derived: Mapping[str, Derivation]) -> list[Any]:
        """Grading each write-up answer to ``problem``; ``derived``: its derivations by part key."""
        from verify.answers.grade import Verdict
        from verify.runner import Task

        out = []
        for w, answers in self.found:
            for i, a in enumerate(answers):
                if a.id == problem.id:
                    stand_in = Verdict(a.id, a.part, "undecided", a.given())
                    out.append(Task((w.name, i), partial(self._grade, problem, a, derived.get(a.part)), stand_in))
        return out

    def _grade(self, problem: Problem, answer: Any, made: Derivation | None) -> Any:
        from verify.answers.grade import grade_here, reference_for

        part = next((p for p in problem.parts if p.key == answer.part), None)
        if part is not None and made is not None:
            reference_for(problem, part, made)
        return grade_here(problem, answer, self.timeout)

    def assemble(self, graded: Mapping[Any, Any]) -> list[tuple[WriteUp, list[Any]]]:
        """Each write-up's verdicts in the file's order, from the tasks' values by key (write-ups with none left out)."""
        out = []
        for w, answers in self.found:
            verdicts = [graded[(w.name, i)] for i in range(len(answers)) if (w.name, i) in graded]
            if verdicts:
                out.append((w, verdicts))
        return out


def grade(
    problems: Sequence[Problem],
    where: Path | None = None,
    derived: Mapping[tuple[str, str], Derivation] | None = None,
    timeout: float | None = None,
) -> list[tuple[WriteUp, list[Any]]]:
    """Each write-up's verdicts, for the answers whose problem is among ``problems``, graded in this process
    (:class:`Grading`). ``derived``: derivations a run of the bank already made, by (problem id, part key), used as
    the references instead of deriving them again."""
    from verify.runner import run_task

    grading = Grading(where, timeout)
    graded = {}
    for problem in problems:
        made = {k: d for (pid, k), d in (derived or {}).items() if pid == problem.id}
        for task in grading.tasks(problem, made):
            graded[task.key] = run_task(task)
    return grading.assemble(graded)
