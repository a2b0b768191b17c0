"""The bank: problem files discovered in the ``problems`` package and in any folder given with ``--bank``.

A problem file is a Python module with a module-level list ``PROBLEMS``. Ids are unique across the whole bank; a
duplicate is refused with both places named. Loading the bank imports neither sympy nor torch.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from verify import VerifyError
from verify.model import Kind, Problem

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9._-]+$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def natural_key(text: str) -> tuple:
    """Sort key that orders ``2.10`` after ``2.9`` and ``q10`` after ``q9``."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t)


@dataclass(frozen=True)
class Bank:
    problems: tuple[Problem, ...]

    def ids(self) -> list[str]:
        return [p.id for p in self.problems]

    def get(self, problem_id: str) -> Problem:
        from verify.variants import instance, split_id

        base, seed = split_id(problem_id)
        if seed is not None:  # a variant, ID@seed=N: drawn and built by its problem's constructor
            return instance(self.get(base), seed)
        for p in self.problems:
            if p.id == problem_id:
                return p
        close = [i for i in self.ids() if problem_id.split("/")[-1] in i][:3]
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see `verify list`)"
        raise VerifyError(f"no problem '{problem_id}' in the bank{hint}")

    def find(self, problem_id: str) -> Problem | None:
        """Like :meth:`get`, but None for an id that names no problem of the bank (``no/such``, ``no/such@seed=3``).
        A variant id that cannot name an instance raises VerifyError with the reason: malformed (not ID@seed=N), a
        seed out of range, a problem without parameters, an instance its constructor cannot build."""
        from verify.variants import split_id

        base, _ = split_id(problem_id)
        if base not in self.ids():
            return None
        return self.get(problem_id)

    def select(self, ids: Sequence[str] = (), topic: str | None = None) -> list[Problem]:
        chosen = [self.get(i) for i in ids] if ids else list(self.problems)
        if topic:
            chosen = [p for p in chosen if topic in p.topics]
        return chosen

    def topics(self) -> list[str]:
        return sorted({t for p in self.problems for t in p.topics})


def _validate(problem: Problem, origin: str) -> None:
    if not _ID.match(problem.id):
        raise VerifyError(f"{origin}: problem id '{problem.id}' must look like 'course/question'")
    seen: set[str] = set()
    for part in problem.parts:
        if not _KEY.match(part.key):
            raise VerifyError(f"{origin}: {problem.id} part key '{part.key}' must be an identifier")
        if part.key in seen:
            raise VerifyError(f"{origin}: {problem.id} has part '{part.key}' twice")
        seen.add(part.key)
        if not part.checks and part.kind is not Kind.TEXT:  # an explanation may stand beside graded parts
            raise VerifyError(f"{origin}: {problem.id}/{part.key} has no checks")
    if not problem.parts:
        raise VerifyError(f"{origin}: {problem.id} has no parts")


def _problems_of(module: ModuleType, origin: str) -> list[Problem]:
    found = getattr(module, "PROBLEMS", None)
    if found is None:
        return []
    if not isinstance(found, (list, tuple)) or not all(isinstance(p, Problem) for p in found):
        raise VerifyError(f"{origin}: PROBLEMS must be a list of verify.model.Problem")
    return [replace(p, origin=origin) for p in found]


def _load_file(path: Path) -> ModuleType:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"verify_bank_{digest}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise VerifyError(f"cannot load problem file {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except VerifyError:
        raise
    except Exception as exc:  # a broken course file must give one clear line, not a traceback
        raise VerifyError(f"cannot load problem file {path}: {type(exc).__name__}: {exc}") from exc
    return module


def builtin_folder() -> Path:
    """The folder of the built-in bank (the ``problems`` package)."""
    import problems

    return Path(next(iter(problems.__path__))).resolve()


def _builtin_modules() -> Iterable[tuple[ModuleType, str]]:
    import problems

    for info in sorted(pkgutil.iter_modules(problems.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        yield importlib.import_module(f"problems.{info.name}"), f"problems/{info.name}.py"


def load_bank(extra: Sequence[str | Path] = (), builtin: bool = True) -> Bank:
    """Load the built-in bank and every ``*.py`` file in the ``extra`` folders."""
    sources: list[tuple[ModuleType, str]] = list(_builtin_modules()) if builtin else []
    for folder in extra:
        folder = Path(folder)
        if not folder.is_dir():
            raise VerifyError(f"--bank {folder}: not a folder")
        files = sorted(f for f in folder.glob("*.py") if not f.name.startswith("_"))
        if not files:
            raise VerifyError(f"--bank {folder}: no problem files (*.py) in it")
        sources.extend((_load_file(f), str(f)) for f in files)
    by_id: dict[str, Problem] = {}
    for module, origin in sources:
        for problem in _problems_of(module, origin):
            _validate(problem, origin)
            if problem.id in by_id:
                raise VerifyError(f"duplicate problem id '{problem.id}' in {by_id[problem.id].origin} and {origin}")
            by_id[problem.id] = problem
    return Bank(tuple(sorted(by_id.values(), key=lambda p: natural_key(p.id))))
