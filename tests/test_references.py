"""A reference is computed by the bank's code, or marked stated and confirmed by named checks.

The source scan finds every ``Derivation(...)`` whose answer (or an accepted value) is built from constants alone: a
number, a string, a tuple or set of constants, a name bound to one. Such a derivation must say ``stated=True`` (the
report then names the checks that confirm it) or be listed below with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

from mutants import mutants

from verify.model import Kind, Status

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    *sorted((ROOT / "problems").glob("*.py")),
    ROOT / "verify" / "conv_parts.py",
    ROOT / "verify" / "count" / "parts.py",
]

# (file, enclosing function, how the answer starts) → why its constant answer is neither computed nor stated.
ALLOWED = {
    ("cpen455_hw2_bn.py", "_derive_affine", "'Y[b,c,h,w]"): "2.5's explanation (Kind.TEXT): shown, never graded",
    ("csc413_a2_counts.py", "<lambda>", "'Kernel size"): "3.3's explanation (Kind.TEXT): shown, never graded",
    ("csc420_a2_misc.py", "<lambda>", "'L_k = G_k"): "q1's explanation (Kind.TEXT): shown, never graded",
    ("csc420_a2_misc.py", "<lambda>", "'W* = W_n"): "q2's explanation (Kind.TEXT): shown, never graded",
    ("vu_dl_a3_conv.py", "<lambda>", "'Forward: U"): "the unfold/fold explanation (Kind.TEXT): shown, never graded",
}


CONTAINERS = {"frozenset", "set", "tuple", "list", "int", "bool", "str", "float"}


def _constant(node: ast.AST, names: dict[str, ast.AST], seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``node`` evaluates to the same value whatever the question's data: constants only."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(v, ast.Constant) for v in node.values)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_constant(e, names, seen) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(_constant(e, names, seen) for e in [*node.keys, *node.values] if e is not None)
    if isinstance(node, ast.UnaryOp):
        return _constant(node.operand, names, seen)
    if isinstance(node, ast.BinOp):
        return _constant(node.left, names, seen) and _constant(node.right, names, seen)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CONTAINERS:
        return not node.keywords and all(_constant(a, names, seen) for a in node.args)
    if isinstance(node, ast.Name) and node.id in names and node.id not in seen:
        return _constant(names[node.id], names, seen | {node.id})
    return False


def _bindings(body: list[ast.stmt]) -> dict[str, ast.AST]:
    """Names bound by a plain assignment in these statements (not in nested functions); a name bound twice is left
    out (its value depends on the path taken)."""
    found: dict[str, list[ast.AST]] = {}
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found.setdefault(node.targets[0].id, []).append(node.value)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            found.setdefault(node.target.id, []).append(node.value)  # rebound: its value is computed
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            found.setdefault(node.target.id, []).append(node.value)
        stack.extend(ast.iter_child_nodes(node))
    return {k: v[0] for k, v in found.items() if len(v) == 1}


def _literal_derivations(path: Path) -> list[tuple[str, int, str]]:
    """(enclosing function, line, what) for each Derivation call of this file with a constant answer or accepted
    value and no stated=True."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_names = _bindings(tree.body)
    out: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, func: str, names: dict[str, ast.AST]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            func, names = node.name, {**names, **_bindings(node.body)}
        elif isinstance(node, ast.Lambda):
            func = "<lambda>"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Derivation":
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            stated = isinstance(kw.get("stated"), ast.Constant) and kw["stated"].value is True
            answer = node.args[0] if node.args else kw.get("answer")
            if not stated and answer is not None and _constant(answer, names):
                out.append((func, node.lineno, f"answer {ast.unparse(answer)[:60]}"))
            accepted = kw.get("accepted")
            if isinstance(accepted, ast.Tuple):
                for item in accepted.elts:
                    if isinstance(item, ast.Tuple) and len(item.elts) == 2 and _constant(item.elts[1], names):
                        out.append((func, node.lineno, f"accepted value {ast.unparse(item.elts[1])[:60]}"))
        for child in ast.iter_child_nodes(node):
            visit(child, func, names)

    visit(tree, "<module>", module_names)
    return out


def test_a_constant_reference_is_marked_stated():
    """Every Derivation whose answer or accepted value is a constant says stated=True, or is listed with a reason."""
    found = [(p.name, func, line, what) for p in SOURCES for func, line, what in _literal_derivations(p)]

    def allowed(name: str, func: str, what: str) -> tuple[str, str, str] | None:
        return next((k for k in ALLOWED if k[:2] == (name, func) and what.startswith(f"answer {k[2]}")), None)

    unexplained = [f for f in found if allowed(f[0], f[1], f[3]) is None]
    assert not unexplained, f"constant references neither computed nor marked stated=True: {unexplained}"
    stale = set(ALLOWED) - {allowed(name, func, what) for name, func, _, what in found}
    assert not stale, f"allowed exceptions that no longer occur: {stale}"
    assert all(reason.strip() for reason in ALLOWED.values())


def test_the_scan_finds_a_constant_answer(tmp_path):
    """The scan itself: a bare literal, a constant bound to a name and a constant set are found; a computed answer, a
    stated one and a name bound twice are not."""
    src = tmp_path / "bank.py"
    src.write_text(
        "FACTORS = ('a', 'b')\n"
        "def literal():\n    return Derivation(False, ())\n"
        "def named():\n    x = frozenset({1, 2})\n    return Derivation(x)\n"
        "def module_level():\n    return Derivation(frozenset(FACTORS))\n"
        "def accepted(n):\n    return Derivation(n + 1, accepted=(('other', 7),))\n"
        "def computed(n):\n    return Derivation(n * 2)\n"
        "def stated():\n    return Derivation(True, stated=True)\n"
        "def branches(k):\n    x = 1\n    if k:\n        x = k\n    return Derivation(x)\n",
        encoding="utf-8",
    )
    found = {(func, what.split()[0]) for func, _, what in _literal_derivations(src)}
    assert found == {("literal", "answer"), ("named", "answer"), ("module_level", "answer"), ("accepted", "accepted")}


def test_every_stated_reference_is_confirmed_by_named_checks(bank, run_output):
    """A stated graded reference passes every check of its part, and each of those checks fails on every mutant of
    it (tests/test_mutants.py): the report's line under it names all of them."""
    from verify.report.markdown import cell, render

    text = render(bank.problems, run_output, "", lambda fig: fig.name)
    stated = [
        (p, part)
        for p in bank.problems
        for part in p.parts
        if part.kind is not Kind.TEXT and run_output.derivations[(p.id, part.key)].stated
    ]
    assert stated, "no stated reference: the report's stated lines are untested"
    for p, part in stated:
        section = text.split(f"\n## {p.id}\n", 1)[1].split("\n## ", 1)[0]
        block = section.split(f"### `{part.key}` ({part.kind})", 1)[1].split("\n### ", 1)[0]
        names = [c.name for c in part.checks]
        assert names, (p.id, part.key)
        line = "*Stated, confirmed by " + ", ".join(f"“{cell(n)}”" for n in names) + ".*"
        assert line in block, (p.id, part.key, line)
        results = [r for r in run_output.results if (r.problem, r.part) == (p.id, part.key) and not r.convention]
        assert {r.check for r in results if r.status is Status.PASS} == set(names), (p.id, part.key)
        # test_mutants.py runs every check on each of these and requires a failure: there must be some to run.
        assert mutants(part.kind, run_output.derivations[(p.id, part.key)].answer), (p.id, part.key)


def test_the_summary_counts_derived_and_stated_references(bank, run_output):
    from verify.report.markdown import render

    text = render(bank.problems, run_output, "", lambda fig: fig.name)
    graded = [(p, part) for p in bank.problems for part in p.parts if part.kind is not Kind.TEXT]
    stated = [(p, part) for p, part in graded if run_output.derivations[(p.id, part.key)].stated]
    assert (
        f"**References:** {len(graded) - len(stated)} of {len(graded)} graded answers are computed by the bank's code"
        in text
    )
    for p, part in stated:
        assert f"{p.id} `{part.key}`" in text.split("**References:**", 1)[1].split("\n", 1)[0]


def test_the_readme_counts_match_the_bank(bank):
    """The README's figures for computed and stated references are the bank's."""
    from verify.runner import derive

    graded = [part for p in bank.problems for part in p.parts if part.kind is not Kind.TEXT]
    stated = sum(derive(part).stated for part in graded)
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"Of the {len(graded)} graded references, {len(graded) - stated} are computed" in readme
    assert f" {stated} are stated:" in readme
