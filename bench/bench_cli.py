"""Time `verify --help`, `verify list` and `verify all` against `python -c "import torch, sympy"` in one run.

Usage: python bench/bench_cli.py [--repeat N] [--write]

Each command runs N times (after one warm-up) in a fresh process; the median wall time is compared with the median
import time. `verify all` writes its report into one temporary folder for all runs, so after the warm-up its figures
are reused (steady state: a figure is redrawn only when its data changes, which costs a matplotlib import, ~0.8 s). With --write the table replaces the one between the markers in bench/README.md.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _record import record  # bench/ is on sys.path when a script runs from it

GOALS = {"verify --help": 0.1, "verify list": 0.1, "verify run (conv arithmetic + XOR)": 2.0}
# The conv-arithmetic and XOR families (the start-up goal is stated for these)
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


def timed(cmd: list[str], repeat: int) -> float:
    subprocess.run(cmd, capture_output=True, check=False)  # warm the file cache
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, check=False)
        samples.append(time.perf_counter() - start)
        if proc.returncode not in (0,):
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="record the table in bench/README.md")
    args = ap.parse_args()
    verify = shutil.which("verify", path=str(Path(sys.executable).parent)) or "verify"
    base_ids = list(BASE_IDS)
    with tempfile.TemporaryDirectory() as tmp:
        cmds = {
            'python -c "import torch, sympy"': [sys.executable, "-c", "import torch, sympy"],
            "verify --help": [verify, "--help"],
            "verify list": [verify, "list"],
            "verify run (conv arithmetic + XOR)": [verify, "run", *base_ids, "--report", f"{tmp}/BASE.md"],
            "verify all": [verify, "all", "--report", f"{tmp}/REPORT.md"],
        }
        times = {name: timed(cmd, args.repeat) for name, cmd in cmds.items()}
    base = times['python -c "import torch, sympy"']
    rows = ["| command | median seconds | ratio to import | goal | met |", "|---|---:|---:|---:|---|"]
    for name, t in times.items():
        goal = GOALS.get(name)
        met = "" if goal is None else ("yes" if t / base < goal else "**no**")
        rows.append(f"| `{name}` | {t:.3f} | {t / base:.3f} | {'' if goal is None else f'< {goal}'} | {met} |")
    table = "\n".join(rows)
    where = f"{platform.python_version()}, {platform.machine()}, median of {args.repeat} runs after a warm-up"
    print(table)
    print(where)
    if args.write:
        record("bench_cli", table, where)


if __name__ == "__main__":
    main()
