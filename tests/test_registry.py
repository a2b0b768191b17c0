"""The bank's ids and part keys are the catalog's public contract."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from verify import VerifyError
from verify.model import Kind
from verify.registry import load_bank, natural_key

ROOT = Path(__file__).resolve().parents[1]
CATALOG = Path(os.environ.get("VERIFY_CATALOG", ROOT.parent / "shared" / "catalog.md"))


def parse_catalog(text: str) -> dict[str, set[str]]:
    """Problem id → part keys, from the catalog's tables (templates `k{k}` and ranges `H1`..`H5` expanded)."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^\| ([a-z0-9-]+/[\w.]+) \| (.*?) \| .* \|$", line)
        if not m:
            continue
        keys_text = re.sub(r"\([^()]*\)", "", m.group(2))  # drop parentheticals: kinds and remarks
        keys_text = re.sub(r"\bor `[^`]+`", "", keys_text)  # "`impossible`" is an answer, not a key
        keys: set[str] = set()
        for name, lo, hi in re.findall(r"`([A-Za-z_]+)(\d+)`\.\.`[A-Za-z_]+(\d+)`", keys_text):
            keys |= {f"{name}{i}" for i in range(int(lo), int(hi) + 1)}
        keys_text = re.sub(r"`[A-Za-z_]+\d+`\.\.`[A-Za-z_]+\d+`", "", keys_text)
        ks = re.search(r"for k in ([\d, ]+):", keys_text)
        for token in re.findall(r"`([^`]+)`", keys_text):
            if "{k}" in token and ks:
                keys |= {token.replace("{k}", k.strip()) for k in ks.group(1).split(",") if k.strip()}
            else:
                keys.add(token)
        out[m.group(1)] = keys
    return out


# Parts the bank adds where a question has more than the catalog names (the catalog allows adding, never renaming).
# Structured, graded parts stand beside explanations (`text`) that are shown but never graded.
EXTRA_PARTS = {
    "vu-dl-a3/conv": {"unfold_conv"},
    "cpen455-hw2/2.5": {"affine_params"},
    "csc413-a2/1.2.2": {"like_rmsprop"},
    "csc413-a2/2.3.3": {"equivalent"},
    "csc413-a2/3.3": {"factors"},
    "csc420-a2/q1": {"exact_reconstruction"},
    "csc420-a2/q2": {"one_affine_layer"},
}


@pytest.mark.skipif(not CATALOG.exists(), reason=f"catalog not found at {CATALOG} (set VERIFY_CATALOG)")
def test_registry_matches_catalog(bank):
    catalog = parse_catalog(CATALOG.read_text(encoding="utf-8"))
    assert len(catalog) > 40, "the catalog parser found too few rows"
    for problem in bank.problems:
        assert problem.id in catalog, f"{problem.id} is not in the catalog"
        keys = {p.key for p in problem.parts}
        assert keys == catalog[problem.id] | EXTRA_PARTS.get(problem.id, set()), problem.id
    missing = sorted(set(catalog) - {p.id for p in bank.problems})
    assert not missing, f"catalog ids not in the bank: {missing}"


def test_catalog_parser_expands_templates():
    text = (
        "| cpen455-hw2/2.6 | `H1`..`H3`, `Y` (int: side) | x |\n"
        "| csc413-a2/5.4 | for k in 4, 5: `k{k}_pad` (set of int), `k{k}_t` (set); an answer is one member, or "
        "`impossible` where empty | x |\n"
        "| csc413-a2/1.2.2 | `text` | x |\n"
    )
    assert parse_catalog(text) == {
        "cpen455-hw2/2.6": {"H1", "H2", "H3", "Y"},
        "csc413-a2/5.4": {"k4_pad", "k5_pad", "k4_t", "k5_t"},
        "csc413-a2/1.2.2": {"text"},
    }


def test_ids_unique_and_sorted(bank):
    ids = bank.ids()
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids, key=natural_key)


def test_every_part_has_a_symbolic_and_a_torch_check(bank):
    for problem in bank.problems:
        for part in problem.parts:
            if part.kind is Kind.TEXT and not part.checks:
                assert any(p.kind is not Kind.TEXT for p in problem.parts), f"{problem.id} has nothing graded"
                continue  # an explanation beside graded parts
            methods = {c.method.value for c in part.checks}
            assert {"symbolic", "torch"} <= methods, f"{problem.id}/{part.key}: {methods}"


def test_a_torch_check_that_follows_the_device_says_so(bank, run_output):
    """A torch check not marked ``uses_device`` runs on the CPU whatever --device says: asked for cuda where there is
    none, it still passes (one that read ``ctx.device`` would fail there, and be neither skipped nor compared)."""
    from verify.model import Context, Method
    from verify.runner import cuda_available, run_check

    if cuda_available():
        pytest.skip("CUDA is here: a check that follows the device would pass on it too")
    wrong = []
    for problem in bank.problems:
        for part in problem.parts:
            derivation = run_output.derivations.get((problem.id, part.key))
            for check in part.checks:
                if derivation is None or check.method is not Method.TORCH or check.uses_device:
                    continue
                result = run_check(check, derivation.answer, Context(device="cuda"))
                if result.status.value != "pass":
                    wrong.append(f"{problem.id}/{part.key} {check.name}: {result.evidence}")
    assert not wrong, wrong


def test_duplicate_ids_are_refused(tmp_path):
    src = (ROOT / "problems" / "cpen455_hw2_conv.py").read_text()
    (tmp_path / "copy.py").write_text(src)
    with pytest.raises(VerifyError, match=r"duplicate problem id 'cpen455-hw2/2\.1'"):
        load_bank([tmp_path])


def test_broken_bank_file_is_one_clear_error(tmp_path):
    (tmp_path / "bad.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(VerifyError, match=r"cannot load problem file .*bad.py: RuntimeError: boom"):
        load_bank([tmp_path])


def test_missing_bank_folder(tmp_path):
    with pytest.raises(VerifyError, match="not a folder"):
        load_bank([tmp_path / "nope"])


def test_natural_order():
    assert sorted(["q10", "q2", "2.10", "2.9"], key=natural_key) == ["2.9", "2.10", "q2", "q10"]


def test_library_never_imports_the_bank() -> None:
    """The bank registers what it needs (networks by name) with the library; only the registry discovers problems/."""
    import re
    from pathlib import Path

    root = Path(__file__).parents[1] / "verify"
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.name != "registry.py" and re.search(r"^\s*(from|import)\s+problems\b", p.read_text(), re.M)
    ]
    assert offenders == []
