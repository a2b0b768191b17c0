"""Time the light commands and `verify all` against the import floors, quiet and with the second core busy, in one run.

Usage: python bench/bench_cli.py [--repeat N] [--write]

Every command runs in a fresh process. The commands are timed in rounds (one of each per round, after a warm-up round)
and each ratio is taken within its round, against that round's reference, so that load from elsewhere, which drifts
over minutes, weighs on both sides of a ratio alike; the table gives the median over the rounds. The rounds run twice:
as the machine is found, then with a busy loop (`python -c 'while True: pass'`) pinned to the last core. The package's own
modules are compiled to bytecode first, as an installed package has them (this machine sets PYTHONDONTWRITEBYTECODE).
`verify all` writes its report into one temporary folder for all runs, so after the warm-up its figures are reused.
Finally the reports of `verify all --jobs 1` and `--jobs 2` are compared byte for byte.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _record import record  # bench/ is on sys.path when a script runs from it

ROOT = Path(__file__).resolve().parents[1]
TORCH = 'python -c "import torch"'
FLOOR = 'python -c "import torch, sympy, numpy, rich, typer"'
TORCH_SYMPY = 'python -c "import torch, sympy"'
# The conv-arithmetic and XOR families (an earlier start-up goal is stated for these, against `import torch, sympy`)
BASE_IDS = (
    "cpen455-hw2/1.1",
    "cpen455-hw2/1.2",
    "cpen455-hw2/1.3",
    "cpen455-hw2/2.1",
    "cpen455-hw2/2.2",
    "cpen455-hw2/3.1",
    "cpen455-hw2/3.2",
    "cpen455-hw2/3.3a",
    "cpen455-hw2/3.3b",
    "cpen455-hw2/4.1",
    "cpen455-hw2/4.2",
    "cpen455-hw2/4.3",
    "vu-dl-a3/q10",
    "vu-dl-a3/q11",
    "csc413-a2/5.4",
)
# command: (reference it is compared with, goal quiet, goal with the second core busy)
GOALS = {
    "verify --help": (TORCH, 0.1, None),
    "verify list": (TORCH, 0.1, None),
    "verify run (conv arithmetic + XOR)": (TORCH_SYMPY, 2.0, None),
    "verify all --jobs 1": (FLOOR, None, None),
    "verify all": (FLOOR, 2.0, 3.0),
}


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (the process and every worker it waited for) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=False)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return took, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def rounds(cmds: dict[str, list[str]], repeat: int) -> dict[str, list[float]]:
    """Per command, medians over the rounds of: wall seconds, wall ratio and CPU ratio to its reference in that round."""
    for cmd in cmds.values():  # warm-up: file cache, the cached listing, the report's figures
        timed(cmd)
    rows: dict[str, list[list[float]]] = {name: [] for name in cmds}
    for _ in range(repeat):
        took = {name: timed(cmd) for name, cmd in cmds.items()}
        for name, (wall, cpu) in took.items():
            ref = GOALS[name][0] if name in GOALS else name
            rows[name].append([wall, wall / took[ref][0], cpu / took[ref][1]])
    return {name: [statistics.median(col) for col in zip(*rows[name], strict=True)] for name in cmds}


def busy_core() -> subprocess.Popen[bytes]:
    """A busy loop pinned to the last core."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    last = max(os.sched_getaffinity(0))
    os.sched_setaffinity(proc.pid, {last})
    return proc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="record the table in bench/README.md")
    args = ap.parse_args()
    for package in ("verify", "problems"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    verify = shutil.which("verify", path=str(Path(sys.executable).parent)) or "verify"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VERIFY_CACHE"] = f"{tmp}/cache"
        cmds = {
            TORCH: [sys.executable, "-c", "import torch"],
            TORCH_SYMPY: [sys.executable, "-c", "import torch, sympy"],
            FLOOR: [sys.executable, "-c", "import torch, sympy, numpy, rich, typer"],
            "verify --help": [verify, "--help"],
            "verify list": [verify, "list"],
            "verify run (conv arithmetic + XOR)": [verify, "run", *BASE_IDS, "--report", f"{tmp}/BASE.md"],
            "verify all --jobs 1": [verify, "all", "--jobs", "1", "--report", f"{tmp}/one/REPORT.md"],
            "verify all": [verify, "all", "--report", f"{tmp}/REPORT.md"],
        }
        load_found = os.getloadavg()[0]
        quiet = rounds(cmds, args.repeat)
        loader = busy_core()
        try:
            busy = rounds(cmds, args.repeat)
        finally:
            loader.kill()
            loader.wait()
        subprocess.run([verify, "all", "--jobs", "2", "--report", f"{tmp}/two/REPORT.md"], capture_output=True)
        same = Path(f"{tmp}/one/REPORT.md").read_bytes() == Path(f"{tmp}/two/REPORT.md").read_bytes()
    rows = [
        "| command | compared with | as found: median s | ratio | CPU ratio | second core busy too: median s | ratio "
        "| CPU ratio | goal (wall ratio) | met |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name in cmds:
        ref, goal_quiet, goal_busy = GOALS.get(name, (name, None, None))
        goals, met = [], []
        if goal_quiet is not None:
            goals.append(f"≤ {goal_quiet} quiet (as found)")
            met.append("yes" if quiet[name][1] <= goal_quiet else "**no**")
        if goal_busy is not None:
            goals.append(f"≤ {goal_busy} busy")
            met.append("yes" if busy[name][1] <= goal_busy else "**no**")
        q, b = quiet[name], busy[name]
        rows.append(
            f"| `{name}` | {'' if ref == name else f'`{ref}`'} | {q[0]:.3f} | {q[1]:.3f} | {q[2]:.3f} | "
            f"{b[0]:.3f} | {b[1]:.3f} | {b[2]:.3f} | {', '.join(goals)} | {', '.join(met)} |"
        )
    table = "\n".join(rows)
    load = os.getloadavg()
    quiet_found = load_found < 0.7
    where = (
        f"{platform.python_version()}, {platform.machine()}, {len(os.sched_getaffinity(0))} cores; median of "
        f"{args.repeat} rounds after a warm-up. "
        + (
            f"Quiet when the rounds began (load average {load_found:.1f}; {load[0]:.1f} at the end, after the busy "
            "rounds). "
            if quiet_found
            else f"Not quiet: other work shared the machine, load average {load_found:.1f} when the rounds began and "
            f"{load[0]:.1f} at the end, so 'as found' is a loaded machine, and the CPU ratios (user + system seconds "
            "of the process and its workers) are the steadier measure. "
        )
        + "The busy rounds run a `while True: pass` process pinned to the last core. "
        f"`verify all` runs with --jobs {len(os.sched_getaffinity(0))} (the default). "
        f"Reports of `verify all --jobs 1` and `--jobs 2` byte-identical: {'yes' if same else '**no**'}."
    )
    print(table)
    print(where)
    if args.write:
        record("bench_cli", table, where)


if __name__ == "__main__":
    main()
