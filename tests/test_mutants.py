"""Every check of every part fails on a wrong claim, and passes on the reference (which `verify all` shows)."""

from __future__ import annotations

import pytest
from mutants import mutants

from verify.model import Context, Kind, Status
from verify.runner import run_check


def _cases():
    from verify.registry import load_bank

    for problem in load_bank().problems:
        for part in problem.parts:
            yield pytest.param(problem.id, part.key, id=f"{problem.id}:{part.key}")


@pytest.mark.parametrize(("problem_id", "key"), list(_cases()))
def test_every_check_fails_on_every_mutant(bank, problem_id, key):
    """Self-contained per part (a mutation-testing run selects these by the code they reach): the reference passes
    every check, under the convention its derivation names where the part accepts others, and each value accepted
    under another convention passes under that one's name; every mutant fails."""
    from verify.runner import derive

    part = bank.get(problem_id).part(key)
    if part.kind is Kind.TEXT:
        pytest.skip("text parts are explanations, never graded")
    derivation = derive(part)
    reference = derivation.answer
    for check in part.checks:
        result = run_check(check, reference, Context())
        assert result.status is Status.PASS, (problem_id, key, check.name, result.evidence)
        if derivation.accepted:
            assert result.evidence.startswith(f"under '{derivation.convention}':"), (check.name, result.evidence)
    for convention, value in derivation.accepted:  # each value another convention gives passes under that name
        for check in part.checks:
            result = run_check(check, value, Context())
            assert result.status is Status.PASS, (problem_id, key, convention, check.name, result.evidence)
            assert result.evidence.startswith(f"under '{convention}':"), (check.name, result.evidence)
    accepted = [value for _, value in derivation.accepted]
    for name, wrong in mutants(part.kind, reference):
        if any(wrong == value for value in accepted):
            continue  # a value the question's open convention allows is not a slip
        for check in part.checks:
            result = run_check(check, wrong, Context())
            assert result.status is Status.FAIL, (
                f"{problem_id}/{key} check '{check.name}' gave {result.status} on mutant '{name}' ({wrong}): "
                f"{result.evidence}"
            )


def test_every_accepted_convention_passes_under_its_name(run_output):
    """A value accepted under another convention passes every check, and the evidence names that convention."""
    rows = [r for r in run_output.results if r.convention]
    assert rows, "no part accepts another convention"
    for r in rows:
        assert r.status is Status.PASS and f"under '{r.convention}'" in r.evidence, (r.problem, r.part, r.evidence)


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
        ("csc413-a2/2.2.1", "w1", "w0 - eta*X.T*a", "the gradient without its 2/n"),
        ("csc413-a2/2.2.1", "w1", "w0 + 2*eta/n*X.T*a", "the sign of the step"),
        ("csc413-a2/2.2.3", "eta_star", "n*(a.T*X*X.T*a)*(a.T*X*X.T*X*X.T*a).I", "a factor 2 lost"),
        ("csc413-a2/2.3.2", "lambda_tilde", "lam/eta", "λ̃ = λ/η"),
        (
            "csc413-a2/2.3.1",
            "w1_l2",
            "(1 - eta*lambda_tilde)*w0 - 2*eta/n*X.T*(X*w0 - t)",
            "the L2 gradient without its 2",
        ),
        ("csc413-a2/1.1.1", "w_hat", "X.T*t", "no inverse"),
    ],
)
def test_named_slips_fail(bank, problem_id, key, wrong, why):
    import sympy

    from problems.csc413_a2_optim import _sym

    part = bank.get(problem_id).part(key)
    names = {n: sympy.Symbol(n, integer=True, positive=True) for n in part.symbols}
    names.update(_sym())
    names["lam"] = names["lambda"]  # `lambda` is a Python keyword
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


def test_student_rmsprop_step_fails(bank):
    """The write-up took the gradient at w₀ as [−2, −1] (the factor 2·2 lost) and built w₁ on it; both parts fail."""
    import sympy

    eta, beta, eps = sympy.symbols("eta beta epsilon", positive=True)
    grad = bank.get("csc413-a2/1.2.1").part("grad_w0")
    w1 = bank.get("csc413-a2/1.2.1").part("w1")
    student_w1 = [2 * eta / (2 * sympy.sqrt(1 - beta) + eps), eta / (sympy.sqrt(1 - beta) + eps)]
    for check in grad.checks:
        assert run_check(check, [-2, -1], Context()).status is Status.FAIL
    for check in w1.checks:
        assert run_check(check, student_w1, Context()).status is Status.FAIL


def test_student_forward_memory_fails(bank):
    """The write-up gives O(t) for the forward pass; without a graph it is O(1)."""
    import sympy

    t = sympy.Symbol("t", positive=True)
    part = bank.get("csc413-a2/2.1.2").part("forward_memory")
    for check in part.checks:
        assert run_check(check, sympy.Order(t, (t, sympy.oo)), Context()).status is Status.FAIL


def test_backward_and_normalization_slips_fail(bank):
    """A dropped transpose, a missing minus sign, the wrong reduction axes, σ′ in x instead of y."""
    import sympy

    g, x, y = sympy.symbols("g x y")
    m, n, f = sympy.symbols("m n f", integer=True, positive=True)
    G, X = sympy.MatrixSymbol("G", m, n), sympy.MatrixSymbol("X", n, f)
    slips = [
        ("vu-dl-a3/p1.1", "grad_Y", g * x / y**2),  # the minus sign lost
        ("vu-dl-a3/p1.1", "grad_X", g * x / y),
        ("vu-dl-a3/p1.3", "grad_W", X.T * G.T),  # (G X)ᵀ: the transpose of the answer
        ("cpen455-hw2/2.5", "per_channel", frozenset({"B", "C"})),  # the wrong reduction axes
        ("cpen455-hw2/2.5", "per_location", frozenset({"H", "W"})),  # statistics without the batch
        ("cpen455-hw2/2.5", "conv_choice", frozenset({"B", "C"})),
        ("csc420-a2/q6", "dsigma", sympy.Symbol("y") * (1 + sympy.Symbol("y"))),
    ]
    for problem_id, key, wrong in slips:
        part = bank.get(problem_id).part(key)
        for check in part.checks:
            result = run_check(check, wrong, Context())
            assert result.status is Status.FAIL, (problem_id, key, check.name, result.status, result.evidence)


@pytest.mark.parametrize(
    ("problem_id", "key", "wrong", "why"),
    [
        ("csc420-a2/q4", "flops_no_bias", 1151280, "the pooling's comparisons left out"),
        ("csc420-a2/q4", "flops_no_bias", 578560, "MACs given as FLOPs"),
        ("csc420-a2/q4", "flops_no_bias", 20 * 11 * 11 * 1599 + 8 * 81 * 20, "the stride ignored"),
        ("csc420-a2/q4", "flops_no_bias", 20 * 6 * 6 * 1599 + 9 * 16 * 20, "n comparisons for a maximum of n"),
        ("csc420-a2/q4", "flops_bias", 1153840, "the bias left out"),
        ("csc413-a2/3.2", "cnn_neurons", 61632 + 3072 - 8192, "input counted, one pooling layer forgotten"),
    ],
)
def test_named_count_slips_fail(bank, problem_id, key, wrong, why):
    part = bank.get(problem_id).part(key)
    for check in part.checks:
        assert run_check(check, wrong, Context()).status is Status.FAIL, (why, check.name)


def test_every_convention_is_confirmed_under_its_own_name(bank, run_output):
    """The reference of an open-convention part passes every check under the convention its derivation names, and
    each accepted value under its own: a reference that is another convention's value is caught."""
    from verify.confirm import conventions

    rows = conventions(list(bank.problems), run_output)
    assert {r.problem for r in rows} >= {"cpen455-hw2/6", "csc413-a2/3.2", "csc420-a2/q4", "csc413-a2/4.3"}
    bad = [(r.problem, r.part, r.convention, r.detail) for r in rows if not r.confirmed]
    assert not bad, bad


@pytest.mark.parametrize(
    ("problem_id", "key", "swap"),
    [
        ("cpen455-hw2/6", "ops_vanilla", "FLOPs = 2·MACs"),
        ("cpen455-hw2/6", "ops_separable", "FLOPs = 2·MACs"),
        ("csc420-a2/q4", "flops_no_bias", "FLOPs = 2·MACs"),
        ("csc413-a2/3.2", "cnn_neurons", "pooling outputs left out"),
        ("csc413-a2/3.2", "fcnn_neurons", "pooling outputs left out"),
    ],
)
def test_a_reference_under_another_convention_is_not_confirmed(bank, problem_id, key, swap):
    """The bank mutated so that the reference is another convention's value (the note unchanged): not confirmed."""
    from dataclasses import replace

    from verify.confirm import conventions
    from verify.runner import run

    problem = bank.get(problem_id)
    part = problem.part(key)
    good = part.derive()
    value = dict(good.accepted)[swap]
    mutated = replace(part, derive=lambda: replace(good, answer=value))
    p2 = replace(problem, parts=(mutated,))
    rows = conventions([p2], run([p2]))
    ref = next(r for r in rows if r.reference)
    assert not ref.confirmed, ref


@pytest.mark.parametrize(
    ("target", "parts"),
    [
        (
            "verify.count.receptive.propagate",
            [("cpen455-hw2/2.6", k) for k in ("H1", "H5", "Y")] + [("cpen455-hw2/7", k) for k in ("H4", "Y")],
        ),
        ("verify.arith.exact.correlate2d", [("cpen455-hw2/4.1", "Y")]),
        (
            "verify.conv_parts.chain_shapes",
            [("cpen455-hw2/2.2", "H5"), ("cpen455-hw2/2.3", "Y"), ("vu-dl-a3/q10", "out_8ch")],
        ),
        ("sympy.diff", [("csc413-a2/1.2.1", "grad_w0")]),
    ],
)
def test_checks_do_not_call_the_code_that_derived_the_reference(bank, monkeypatch, target, parts):
    """The derivation's helper is broken after the reference is derived: every check still reaches its verdict on
    the reference and on a wrong value, so none of them calls it."""
    import importlib

    from verify.runner import derive

    refs = {(pid, key): derive(bank.get(pid).part(key)).answer for pid, key in parts}
    module, name = target.rsplit(".", 1)

    def broken(*args, **kwargs):
        raise RuntimeError(f"{target} called by a check")

    monkeypatch.setattr(importlib.import_module(module), name, broken)
    for (pid, key), ref in refs.items():
        part = bank.get(pid).part(key)
        for check in part.checks:
            result = run_check(check, ref, Context())
            assert result.status is Status.PASS, (pid, key, check.name, result.evidence)
            wrong = mutants(part.kind, ref)[0][1]
            assert run_check(check, wrong, Context()).status is Status.FAIL, (pid, key, check.name)


@pytest.mark.parametrize("problem_id", ["cpen455-hw2/2.6", "cpen455-hw2/7"])
@pytest.mark.parametrize("wrong", [511, 513, 29])
def test_a_fully_connected_units_field_is_measured_not_stated(bank, problem_id, wrong):
    part = bank.get(problem_id).part("Y")
    for check in part.checks:
        result = run_check(check, wrong, Context())
        assert result.status is Status.FAIL and "512" in result.evidence, (check.name, result.evidence)


@pytest.mark.parametrize(("symbol", "top"), [("NIC", 4), ("NF", 6), ("NC", 6)])
def test_4_3s_real_network_sweep_reaches_the_lowest_sizes(bank, symbol, top):
    """An answer wrong only where a size is 1 (right for 2..top, the rest of the range the sweep draws from) fails the
    real-network check of every 4.3 part: the sweep's configurations reach the bottom of each range."""
    import sympy

    from verify.runner import derive

    s = sympy.Symbol(symbol, integer=True, positive=True)
    off = sympy.Mul(*[(s - v) for v in range(2, top + 1)])  # 0 for 2..top, not at 1
    for part in bank.get("csc413-a2/4.3").parts:
        real = next(c for c in part.checks if c.name == "real PoolUpsampleNet")
        result = run_check(real, derive(part).answer + off, Context())
        assert result.status is Status.FAIL and f"{symbol}=1" in result.evidence, (part.key, result.evidence)
