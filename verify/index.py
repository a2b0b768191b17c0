"""The bank's listing, cached, so that `verify list` need not import every problem file and the helpers they use.

The listing (each problem's id, title, source, topics and parts with their kinds and symbols) is stored with a digest of
the content of every file it was built from: each module of ``verify``, of ``problems`` and of the ``--bank`` folders
that loading the bank imported, and the names of the problem files in those folders. Any edit, added or removed file
rebuilds it (by loading the bank as usual); so does another version of Python or of verify. Where the cache folder
cannot be written the listing is simply built every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verify import __version__


def _roots() -> tuple[Path, Path]:
    """The verify package's folder and the built-in bank's."""
    from verify.registry import builtin_folder

    return Path(__file__).resolve().parent, builtin_folder()


def cache_folder() -> Path:
    """$VERIFY_CACHE, else $XDG_CACHE_HOME/verify, else ~/.cache/verify."""
    if os.environ.get("VERIFY_CACHE"):
        return Path(os.environ["VERIFY_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "verify"


def entry(problem: Any) -> dict[str, Any]:
    """What the listing says of one problem."""
    return {
        "id": problem.id,
        "title": problem.title,
        "source": problem.source,
        "topics": list(problem.topics),
        "parts": [{"key": x.key, "kind": str(x.kind), "symbols": list(x.symbols)} for x in problem.parts],
    }


def _digest(path: str) -> str | None:
    try:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _folders(extra: Sequence[Path]) -> dict[str, list[str]]:
    out = {}
    for folder in (_roots()[1], *extra):
        try:
            out[str(folder)] = sorted(n for n in os.listdir(folder) if n.endswith(".py"))
        except OSError:
            out[str(folder)] = []
    return out


def _sources(extra: Sequence[Path]) -> dict[str, str | None]:
    """Every problem file and every loaded module under verify/, problems/ or a bank folder, with a digest of its
    content (a bank folder's files are loaded without entering sys.modules)."""
    roots = [str(r) for r in (*_roots(), *extra)]
    files = {str(f.resolve()) for folder in (_roots()[1], *extra) for f in Path(folder).glob("*.py")}
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if name and any(str(Path(name).resolve()).startswith(r + os.sep) for r in roots):
            files.add(str(Path(name).resolve()))
    return {f: _digest(f) for f in sorted(files)}


def listing(extra: Sequence[Path] = ()) -> list[dict[str, Any]]:
    """The bank's listing, from the cache where every file it came from is unchanged, else by loading the bank."""
    from verify.registry import load_bank

    folders = [Path(f).resolve() for f in extra]
    key = hashlib.sha1(json.dumps([__version__, sys.version, *map(str, folders)]).encode()).hexdigest()[:16]
    path = cache_folder() / f"listing-{key}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        fresh = doc["folders"] == _folders(folders) and all(_digest(f) == d for f, d in doc["sources"].items())
        if fresh:
            return list(doc["problems"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    problems = [entry(p) for p in load_bank(folders).problems]  # raises VerifyError for a bank that does not load
    doc = {"folders": _folders(folders), "sources": _sources(folders), "problems": problems}
    try:
        from verify.report.markdown import write_atomic

        write_atomic(path, json.dumps(doc, ensure_ascii=False))
    except OSError:
        pass
    return problems
