"""`--jobs`: problems in worker processes, merged in bank order; crashes and hangs isolated to their check; torch's
thread discipline; the device parity table."""

from __future__ import annotations

import os
import pickle
import signal
import time
from dataclasses import dataclass

import pytest

from verify import checks, parallel
from verify.model import Check, Context, Derivation, Kind, Method, Outcome, Part, Problem, Result, Status
from verify.report.markdown import parity_table, render, write_report
from verify.report.writeups import Grading
from verify.runner import Task, run


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    """Each test its own cache folder: what a run keeps for the next (durations, steps moved to the torch stage) is
    keyed by problem ids that the tests here share."""
    monkeypatch.setenv("VERIFY_CACHE", str(tmp_path_factory.mktemp("cache")))


# A quick subset with figures (XOR training curves), values accepted under other conventions (q4), device-following
# torch checks (3.3a, 2.2.1) and symbolic matrix work (1.1.1).
SUBSET = ("cpen455-hw2/1.3", "cpen455-hw2/3.3a", "csc413-a2/1.1.1", "csc413-a2/2.2.1", "csc420-a2/q4")


def test_two_jobs_give_the_serial_report_byte_for_byte(bank, tmp_path):
    problems = bank.select(SUBSET)
    serial = write_report(problems, run(problems), tmp_path / "a" / "R.md", date="2000-01-01")
    seen: list[Result] = []
    grading = Grading()  # the write-ups graded by the workers, each answer after its problem's checks
    out = parallel.run_parallel(
        problems,
        jobs=2,
        on_result=seen.append,
        figures=tmp_path / "b" / "figures",
        tasks=grading.tasks,
        prepare=grading.prepare,
    )
    assert {key[0] for key in out.tasks} == {"cpen455-hw2", "csc413-a2", "csc420-a2"}
    par = write_report(problems, out, tmp_path / "b" / "R.md", date="2000-01-01", writeups=grading.assemble(out.tasks))
    assert serial.read_bytes() == par.read_bytes()
    assert len(seen) == len(out.results) and {r.problem for r in seen} == set(SUBSET)
    assert sorted(p.name for p in (tmp_path / "a" / "figures").iterdir()) == sorted(
        p.name for p in (tmp_path / "b" / "figures").iterdir()
    )


def _ok(claim, ctx):
    return checks.exact(claim, 4, "arithmetic")


def _kill(claim, ctx):
    os.kill(os.getpid(), signal.SIGKILL)


def _deaf(claim, ctx):  # the time limit's signal cannot reach it, as in C code that never returns to Python
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(60)


def _problem(pid, *fns, derive=lambda: Derivation(4)):
    cks = tuple(Check(f.__name__, Method.SYMBOLIC, f) for f in fns)
    return Problem(pid, "t", "t", "test", ("t",), (Part("a", Kind.INT, derive, cks), Part("b", Kind.INT, derive, cks)))


def test_a_check_that_kills_its_worker_is_an_error_and_the_rest_go_on():
    problems = [_problem("t/1", _ok), _problem("t/2", _ok, _kill, _ok), _problem("t/3", _ok)]
    out = parallel.run_parallel(problems, jobs=2)
    statuses = [(r.problem, r.part, r.check, r.status) for r in out.results]
    assert statuses == [
        ("t/1", "a", "_ok", Status.PASS),
        ("t/1", "b", "_ok", Status.PASS),
        ("t/2", "a", "_ok", Status.PASS),
        ("t/2", "a", "_kill", Status.ERROR),
        ("t/2", "a", "_ok", Status.PASS),
        ("t/2", "b", "_ok", Status.PASS),
        ("t/2", "b", "_kill", Status.ERROR),
        ("t/2", "b", "_ok", Status.PASS),
        ("t/3", "a", "_ok", Status.PASS),
        ("t/3", "b", "_ok", Status.PASS),
    ]
    died = out.results[3]
    assert died.compared == "the check crashed" and "worker process died (signal SIGKILL)" in died.evidence
    assert set(out.derivations) == {(p, k) for p in ("t/1", "t/2", "t/3") for k in "ab"}


@dataclass
class _Value:
    pid: int
    evidence: str = ""


def _task_value():
    return _Value(os.getpid())


def _task_raises():
    raise RuntimeError("boom")


def _task_kills():
    os.kill(os.getpid(), signal.SIGKILL)


def _task_hangs():  # deaf to the time limit's signal
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(60)


def _tasks(*fns):
    """Each problem's tasks: one per function, keyed (problem id, i), made with the problem's derivations."""

    def tasks(problem, derived):
        assert set(derived) == {"a", "b"}
        return [Task((problem.id, i), fn, _Value(0)) for i, fn in enumerate(fns)]

    return tasks


def _slow_derivation():
    time.sleep(0.3)
    return Derivation(4)


def test_a_first_worker_killed_with_stages_sent_ahead_loses_none_of_them():
    """The first worker holds problems sent ahead while torch is imported; it dies in one of them while this process
    lags behind its messages: every problem still gets its results, the killed check alone an error."""
    problems = [_problem("t/1", _ok, derive=_slow_derivation), _problem("t/2", _ok), _problem("t/3", _ok, _kill)]
    problems += [_problem(f"t/{i}", _ok) for i in range(4, 10)]
    out = parallel.run_parallel(problems, jobs=2, on_result=lambda r: time.sleep(0.02))
    got = [(r.problem, r.part, r.check, r.status) for r in out.results]
    assert [g[:3] for g in got] == [(p.id, k, c.name) for p in problems for k in "ab" for c in p.parts[0].checks]
    assert {g for g in got if g[3] is not Status.PASS} <= {
        ("t/3", "a", "_kill", Status.ERROR),
        ("t/3", "b", "_kill", Status.ERROR),
    }
    assert ("t/3", "a", "_kill", Status.ERROR) in got


def test_tasks_run_after_their_problems_checks_in_the_worker_that_made_its_derivations():
    problems = [_problem("t/1", _ok), _problem("t/2", _ok)]
    out = parallel.run_parallel(problems, jobs=2, tasks=_tasks(_task_value, _task_value))
    assert set(out.tasks) == {(p, i) for p in ("t/1", "t/2") for i in (0, 1)}
    assert all(v.pid != os.getpid() for v in out.tasks.values())
    assert out.tasks[("t/1", 0)].pid == out.tasks[("t/1", 1)].pid
    assert [r.status for r in out.results] == [Status.PASS] * 4
    serial = run(problems, tasks=_tasks(_task_value, _task_value))
    assert set(serial.tasks) == set(out.tasks) and {v.pid for v in serial.tasks.values()} == {os.getpid()}


@pytest.mark.parametrize(
    ("fn", "why"), [(_task_raises, "it failed: RuntimeError: boom"), (_task_kills, "worker process died")]
)
def test_a_task_that_fails_or_kills_its_worker_gets_its_stand_in_and_the_rest_go_on(fn, why):
    problems = [_problem("t/1", _ok), _problem("t/2", _ok), _problem("t/3", _ok)]
    out = parallel.run_parallel(problems, jobs=2, tasks=_tasks(_task_value, fn, _task_value))
    assert [(r.problem, r.status) for r in out.results] == [(f"t/{i}", Status.PASS) for i in (1, 1, 2, 2, 3, 3)]
    for p in ("t/1", "t/2", "t/3"):
        assert out.tasks[(p, 0)].pid > 0 and out.tasks[(p, 2)].pid > 0  # the tasks after it ran
        assert out.tasks[(p, 1)].pid == 0 and why in out.tasks[(p, 1)].evidence


def test_a_task_that_hangs_is_stopped_after_a_steps_limit(monkeypatch):
    monkeypatch.setattr(parallel, "GRACE", 0.2)
    start = time.monotonic()
    out = parallel.run_parallel([_problem("t/1", _ok)], limit=0.3, jobs=2, tasks=_tasks(_task_hangs, _task_value))
    assert time.monotonic() - start < 20
    assert "time limit" in out.tasks[("t/1", 0)].evidence and out.tasks[("t/1", 1)].pid > 0
    assert [r.status for r in out.results] == [Status.PASS] * 2


def test_a_check_deaf_to_its_time_limit_is_stopped_with_its_worker(monkeypatch):
    monkeypatch.setattr(parallel, "GRACE", 0.5)
    start = time.monotonic()
    out = parallel.run_parallel([_problem("t/1", _deaf, _ok), _problem("t/2", _ok)], limit=0.5, jobs=2)
    assert time.monotonic() - start < 20
    assert [r.status for r in out.results] == [Status.ERROR, Status.PASS, Status.ERROR, Status.PASS] + [Status.PASS] * 2
    assert "its worker was stopped" in out.results[0].evidence


def test_a_derivation_that_kills_its_worker_fails_its_part_only():
    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    p = Problem(
        "t/1",
        "t",
        "t",
        "test",
        ("t",),
        (
            Part("a", Kind.INT, die, (Check("c", Method.SYMBOLIC, _ok),)),
            Part("b", Kind.INT, lambda: Derivation(4), (Check("c", Method.SYMBOLIC, _ok),)),
        ),
    )
    out = parallel.run_parallel([p, _problem("t/2", _ok)], jobs=2)
    assert "worker process died" in out.derivation_errors[("t/1", "a")]
    assert [(r.part, r.status) for r in out.results if r.problem == "t/1"] == [("a", Status.ERROR), ("b", Status.PASS)]
    assert out.results[0].evidence.startswith("the derivation failed")


def test_an_answer_that_cannot_leave_its_worker_is_an_error_for_its_step():
    p = _problem(
        "t/1", _ok, derive=lambda: Derivation(4, figures=(), steps=(), latex="", accepted=(("lambda", lambda: 4),))
    )
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(lambda: 4)
    out = parallel.run_parallel([p, _problem("t/2", _ok)], jobs=2)
    assert "could not be sent back" in out.derivation_errors[("t/1", "a")] and not out.ok
    assert all(r.status is Status.PASS for r in out.results if r.problem == "t/2")


def test_torch_checks_run_with_one_thread_unless_they_ask_for_more():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    seen = {}

    def probe(name):
        def fn(claim, ctx):
            seen[name] = torch.get_num_threads()
            return Outcome(True, "", "")

        return fn

    cks = (Check("small", Method.TORCH, probe("small")), Check("large", Method.TORCH, probe("large"), threads=0))
    run([Problem("t/1", "t", "t", "test", ("t",), (Part("a", Kind.INT, lambda: Derivation(1), cks),))])
    assert seen["small"] == 1
    assert seen["large"] == max(1, before) or seen["large"] > 1
    assert torch.get_num_threads() == before  # restored after each check


def _device_problem():
    def values(claim, ctx):
        import torch

        x = torch.arange(3, dtype=torch.float64, device=ctx.device) / 7
        return checks.close(claim, (x * 7).tolist(), 1e-12, f"arange on {ctx.device}")

    cks = (
        Check("on the device", Method.TORCH, values, uses_device=True),
        Check("exact", Method.SYMBOLIC, lambda c, x: checks.exact(c, [0, 1, 2], "a list")),
    )
    return Problem("t/d", "t", "t", "test", ("t",), (Part("a", Kind.VECTOR, lambda: Derivation([0, 1, 2]), cks),))


def test_parity_pairs_are_merged_the_same_serially_and_in_workers():
    # a second device that every machine has: the cpu path run twice stands in for cuda
    serial = run([_device_problem()], compare_on="cpu")
    par = parallel.run_parallel([_device_problem(), _problem("t/2", _ok)], jobs=2, compare_on="cpu")
    assert len(serial.parity) == len(par.parity) == 1  # only the check that follows --device runs twice
    a, b = serial.parity[0]
    assert a.value == b.value == (0.0, 1.0, 2.0) and a.status is b.status is Status.PASS
    assert [x.value for x in par.parity[0]] == [a.value, b.value]
    text = render([_device_problem()], serial, "<!-- generated x -->", lambda f: f.name)
    assert (
        "## Device parity" in text
        and "| t/d | a | on the device | ✅ pass: 0, 1, 2 | ✅ pass: 0, 1, 2 | 0.0e+00 |" in text
    )
    assert "## Device parity" not in render([_device_problem()], run([_device_problem()]), "<!-- x -->", str)


def test_parity_table_shows_values_and_their_largest_difference():
    def result(device, value, status=Status.PASS, evidence=""):
        return Result("t/1", "a", "c", Method.TORCH, status, "", evidence, None, None, device, 0.0, value=value)

    lines = parity_table(
        [
            (result("cpu", (1.0, 2.0, 3.0, 4.0, 5.0)), result("cuda", (1.0, 2.0, 3.0, 4.0, 5.5))),
            (result("cpu", (1.0,)), result("cuda", None, Status.SKIP, "no CUDA device here")),
        ]
    )
    assert "| problem | part | check | cpu | cuda | largest difference |" in lines
    assert (
        lines[-2] == "| t/1 | a | c | ✅ pass: 1, 2, 3, 4, … (5 values) | ✅ pass: 1, 2, 3, 4, … (5 values) | 5.0e-01 |"
    )
    assert lines[-1] == "| t/1 | a | c | ✅ pass: 1 | ⏭ skip: no CUDA device here | — |"
    assert parity_table([]) == []


def test_cuda_parity_skips_cleanly_without_a_gpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():  # pragma: no cover - exercised where a GPU is lent
        out = run([_device_problem()], compare_on="cuda")
        assert out.parity[0][1].status is Status.PASS and out.parity[0][1].value == (0.0, 1.0, 2.0)
        return
    out = run([_device_problem()], Context(), compare_on="cuda")
    assert out.ok and out.parity[0][1].status is Status.SKIP


def test_cli_jobs_and_device_both(capsys, tmp_path):
    from verify.cli import main

    report = tmp_path / "R.md"
    code = main(
        [
            "run",
            "cpen455-hw2/3.3a",
            "vu-dl-a3/q11",
            "--jobs",
            "2",
            "--device",
            "both",
            "--json",
            "--report",
            str(report),
        ]
    )
    doc = __import__("json").loads(capsys.readouterr().out)
    assert code == 0 and doc["summary"]["pass"] == doc["summary"]["checks"] == 4
    text = report.read_text()
    assert "## Device parity" in text and "| cpen455-hw2/3.3a | X_hat | F.conv_transpose2d | ✅ pass: " in text
    assert main(["run", "vu-dl-a3/q11", "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err


# The first worker is forked before torch is imported and runs the symbolic stage without it: a step that reaches for
# torch there is left to a worker with torch. torch is loaded in this test process, so a module no test imports stands
# in for it.
HEAVY = "tabnanny"


def _where():
    import sys

    from verify.runner import _Without

    return "the first worker" if any(isinstance(f, _Without) for f in sys.meta_path) else "another"


def _reaches(claim, ctx):
    import importlib

    importlib.import_module(HEAVY)
    return checks.exact(claim, 4, f"arithmetic in {_where()}")


def _derive_reaching():
    import importlib

    importlib.import_module(HEAVY)
    return Derivation(4)


def _pid_check(claim, ctx):
    return checks.exact(claim, 4, f"arithmetic in {_where()}")


@pytest.fixture
def heavy(monkeypatch):
    if HEAVY in __import__("sys").modules:
        pytest.skip(f"{HEAVY} is imported in this process")
    monkeypatch.setattr(parallel, "EARLY_WITHOUT", (HEAVY,))
    yield
    __import__("sys").modules.pop(HEAVY, None)  # imported here by a serial run


def test_a_symbolic_step_that_reaches_for_torch_is_left_to_a_worker_with_it(heavy):
    problems = [_problem(f"t/{i}", _pid_check, _reaches) for i in range(4)]
    out = parallel.run_parallel(problems, jobs=2, tasks=_tasks(_task_value))
    assert [(r.problem, r.part, r.check, r.status) for r in out.results] == [
        (f"t/{i}", k, c, Status.PASS) for i in range(4) for k in "ab" for c in ("_pid_check", "_reaches")
    ]
    where = {
        c: {r.evidence.split(" in ")[1].split(" gives")[0] for r in out.results if r.check == c}
        for c in ("_pid_check", "_reaches")
    }
    assert "the first worker" in where["_pid_check"] and where["_reaches"] == {"another"}
    assert set(out.tasks) == {(f"t/{i}", 0) for i in range(4)}
    serial = run(problems, tasks=_tasks(_task_value))
    assert [(r.problem, r.part, r.check, r.status) for r in serial.results] == [
        (r.problem, r.part, r.check, r.status) for r in out.results
    ]


def test_a_derivation_that_reaches_for_torch_has_its_problem_run_whole_by_a_worker_with_it(heavy):
    problems = [_problem("t/1", _pid_check), _problem("t/2", _pid_check, derive=_derive_reaching), _problem("t/3", _ok)]
    out = parallel.run_parallel(problems, jobs=2, tasks=_tasks(_task_value))
    assert [(r.problem, r.part, r.status) for r in out.results] == [
        (p, k, Status.PASS) for p in ("t/1", "t/2", "t/3") for k in "ab"
    ]
    assert set(out.derivations) == {(p, k) for p in ("t/1", "t/2", "t/3") for k in "ab"}
    assert len(out.tasks) == 3 and not out.derivation_errors


def test_what_reached_for_torch_is_left_to_a_worker_with_it_at_once_in_the_next_runs(heavy, tmp_path, monkeypatch):
    """A check, a task or a derivation that reached for torch in the symbolic stage is not tried there again: later
    runs (the same cache folder) leave it to a worker with torch at once, with the same results."""
    monkeypatch.setenv("VERIFY_CACHE", str(tmp_path))
    tries = tmp_path / "tries"

    def tried(what):
        with tries.open("a") as f:
            f.write(f"{what}|{_where()}\n")

    def check_reaching(claim, ctx):
        tried("check t/1")
        return _reaches(claim, ctx)

    def derive_reaching():
        tried("derivation t/2")
        return _derive_reaching()

    def tasks(problem, derived):
        def run():
            tried(f"task {problem.id}")
            __import__("importlib").import_module(HEAVY)
            return _task_value()

        return [Task((problem.id, 0), run, _Value(0))]

    problems = [
        _problem("t/1", _pid_check, check_reaching),
        _problem("t/2", _pid_check, derive=derive_reaching),
        *(_problem(f"t/{i}", _pid_check) for i in range(3, 7)),
    ]
    runs, moved = [], set()
    for _ in range(4):
        tries.write_text("")
        out = parallel.run_parallel(problems, jobs=2, tasks=tasks)
        runs.append(([(r.problem, r.part, r.check, r.status) for r in out.results], sorted(out.tasks)))
        lines = [line.split("|") for line in tries.read_text().splitlines()]
        done = sorted(what for what, where in lines if where == "another")
        assert done == sorted(["check t/1"] * 2 + ["derivation t/2"] * 2 + [f"task t/{i}" for i in range(1, 7)])
        first = {what for what, where in lines if where == "the first worker"}
        assert not first & moved, f"tried in the first worker again: {first & moved}"
        moved |= first
    assert moved, "nothing was tried in the first worker: the test shows nothing"
    assert runs[0] == runs[1] == runs[2] == runs[3]
    assert all(status is Status.PASS for *_, status in runs[0][0]) and len(runs[0][1]) == 6


def test_workers_end_when_their_parent_is_killed(tmp_path):
    """However the parent ends (here SIGKILL, which runs no clean-up), a worker waiting for its next job ends at once
    and one in the middle of a check ends after it: no process is left behind."""
    import subprocess
    import sys

    script = f"""
import os, time
from verify import parallel
from verify.model import Check, Derivation, Kind, Method, Outcome, Part, Problem

def note(claim, ctx, name):
    open(os.path.join({str(tmp_path)!r}, name + "-" + str(os.getpid())), "w").close()
    if name == "slow":
        time.sleep(4)
    return Outcome(True, "noted", "noted")

def problem(pid, name):
    check = Check(name, Method.TORCH, lambda claim, ctx: note(claim, ctx, name))
    return Problem(pid, "t", "t", "test", ("t",), (Part("a", Kind.INT, lambda: Derivation(4), (check,)),))

parallel.run_parallel([problem("t/1", "slow"), problem("t/2", "quick")], jobs=2)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path)

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 60
    while not (list(tmp_path.glob("slow-*")) and list(tmp_path.glob("quick-*"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = {p.name.split("-")[0]: int(p.name.split("-")[1]) for p in tmp_path.iterdir()}
    assert set(workers) == {"slow", "quick"} and workers["slow"] != workers["quick"]
    time.sleep(0.3)  # the quick one is back waiting for a job
    parent.kill()
    parent.wait()
    quick_gone = time.monotonic() + 3
    while alive(workers["quick"]) and time.monotonic() < quick_gone:
        time.sleep(0.05)
    assert not alive(workers["quick"]), "a worker waiting for a job outlived its parent"
    slow_gone = time.monotonic() + 10
    while alive(workers["slow"]) and time.monotonic() < slow_gone:
        time.sleep(0.05)
    assert not alive(workers["slow"]), "a worker outlived its parent after its check"


def test_a_remembered_move_is_forgotten_after_runs_that_do_not_see_it(heavy, tmp_path, monkeypatch):
    """A move followed for FORGET_AFTER runs without being seen again is forgotten: the step is tried where it was
    once more (a problem changed under the same names does not keep an old move for ever)."""
    monkeypatch.setattr(parallel, "FORGET_AFTER", 1)
    tries = tmp_path / "tries"

    def check_reaching(claim, ctx):
        with tries.open("a") as f:
            f.write(_where() + "\n")
        return _reaches(claim, ctx)

    problems = [_problem("t/1", check_reaching), *(_problem(f"t/{i}", _pid_check) for i in range(2, 5))]
    first = []
    for _ in range(4):
        tries.write_text("")
        out = parallel.run_parallel(problems, jobs=2)
        assert all(r.status is Status.PASS for r in out.results)
        first.append("the first worker" in tries.read_text().splitlines())
    assert first == [True, False, False, True]


_prepared: list[int] = []


def _seen_prepared(claim, ctx):
    return checks.exact(claim, 4, f"prepared {len(_prepared)} times")


def test_what_is_prepared_is_made_once_for_the_workers_with_torch():
    """Made here once the first worker is forked (it goes without), before the workers with torch are."""
    seen = (
        Check("_seen_prepared", Method.SYMBOLIC, _seen_prepared),
        Check("_seen_prepared", Method.TORCH, _seen_prepared),
    )
    problems = [
        Problem(f"t/{i}", "t", "t", "test", ("t",), (Part("a", Kind.INT, lambda: Derivation(4), seen),))
        for i in range(4)
    ]
    try:
        out = parallel.run_parallel(problems, jobs=2, prepare=lambda: _prepared.append(os.getpid()))
        assert _prepared == [os.getpid()]  # here, once
    finally:
        _prepared.clear()
    found = {(r.method, r.evidence.split(" gives")[0]) for r in out.results}
    # the first problem's symbolic check is the first worker's; every torch check runs in a worker forked after
    assert (Method.SYMBOLIC, "prepared 0 times") in found
    assert {seen for method, seen in found if method is Method.TORCH} == {"prepared 1 times"}


def test_without_refuses_only_what_is_not_imported_yet():
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from verify.runner import NeedsTorch, without\n"
        "without(('json', 'tabnanny'))\n"
        "import json\n"  # imported already: allowed
        "try:\n"
        "    import tabnanny\n"
        "except NeedsTorch as e:\n"
        "    print('refused:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "refused: tabnanny is not imported in this process"
