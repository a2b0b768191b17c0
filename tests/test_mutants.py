"""Every check of every part fails on a wrong claim, and passes on the reference (which `verify all` shows)."""

from __future__ import annotations

import pytest
from mutants import mutants

from verify.model import Context, Status
from verify.runner import run_check


def _cases():
    from verify.registry import load_bank

    for problem in load_bank().problems:
        for part in problem.parts:
            yield pytest.param(problem.id, part.key, id=f"{problem.id}:{part.key}")


@pytest.mark.parametrize(("problem_id", "key"), list(_cases()))
def test_every_check_fails_on_every_mutant(bank, run_output, problem_id, key):
    part = bank.get(problem_id).part(key)
    reference = run_output.derivations[(problem_id, key)].answer
    for name, wrong in mutants(part.kind, reference):
        for check in part.checks:
            result = run_check(check, wrong, Context())
            assert result.status is Status.FAIL, (
                f"{problem_id}/{key} check '{check.name}' gave {result.status} on mutant '{name}' ({wrong}): "
                f"{result.evidence}"
            )


def test_every_reference_passes(run_output):
    bad = [r for r in run_output.results if r.status is not Status.PASS]
    assert not bad, [(r.problem, r.part, r.check, r.evidence) for r in bad]


@pytest.mark.parametrize(
    ("problem_id", "key", "wrong", "why"),
    [
        ("cpen455-hw2/4.2", "H_out", "floor((H + 2*P - K)/S) + 1", "dilation ignored"),
        ("cpen455-hw2/3.1", "H_out", "floor((H + 2*P - K)/S)", "the +1 forgotten"),
        ("cpen455-hw2/3.2", "output_padding", "H - (S*(floor((H + 2*P - K)/S) + 1) - 2*P + K)", "H' used for H' - 1"),
        ("cpen455-hw2/4.3", "output_padding", "Mod(H + 2*P - K, S)", "dilation ignored"),
        ("vu-dl-a3/conv", "params", "C_in*C_out*K_h*K_w + C_out", "bias counted"),
    ],
)
def test_named_slips_fail(bank, problem_id, key, wrong, why):
    import sympy

    part = bank.get(problem_id).part(key)
    names = {n: sympy.Symbol(n, integer=True, positive=True) for n in part.symbols}
    claim = sympy.sympify(wrong, locals=names)  # test-authored text, never an answer file
    for check in part.checks:
        assert run_check(check, claim, Context()).status is Status.FAIL, (why, check.name)


def test_student_33b_answer_fails(bank):
    """The write-up worked 3.3(2) at stride 1 and got a 5×5 matrix; both checks must reject it."""
    student = [[-9, 10, -18, -10, -21], [3, -3, 6, 3, 9], [30, 39, 34, 9, 2], [21, 23, 22, 7, -1], [9, 12, 4, 0, -1]]
    part = bank.get("cpen455-hw2/3.3b").part("X_hat")
    for check in part.checks:
        assert run_check(check, student, Context()).status is Status.FAIL


def test_equivalent_form_passes(bank):
    """The write-up's form P' = H − (S(H' − 1) − 2P + K), with H' substituted, is the same answer."""
    import sympy

    part = bank.get("cpen455-hw2/3.2").part("output_padding")
    H, K, S, P = sympy.symbols("H K S P", integer=True, positive=True)
    h_out = sympy.floor((H + 2 * P - K) / S) + 1
    for check in part.checks:
        assert run_check(check, H - (S * (h_out - 1) - 2 * P + K), Context()).status is Status.PASS
