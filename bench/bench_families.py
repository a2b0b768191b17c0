"""What each family of the bank adds to `verify all`: check time per problem file, in one process, after torch and
sympy are imported (their import is paid once by `verify all` whatever the bank holds).

Usage: python bench/bench_families.py [--repeat N] [--write]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections import defaultdict

from _record import record  # bench/ is on sys.path when a script runs from it

GOALS = {"problems/csc413_a2_optim.py": 3.0}


def _clear_caches() -> None:
    import sys

    for name, module in list(sys.modules.items()):
        if name.startswith("problems."):
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="record the table in bench/README.md")
    args = ap.parse_args()
    import sympy  # noqa: F401  - paid once by every `verify all`
    import torch  # noqa: F401

    from verify.registry import load_bank
    from verify.runner import run

    bank = load_bank()
    families: dict[str, list] = defaultdict(list)
    for p in bank.problems:
        families[p.origin].append(p)
    samples: dict[str, list[float]] = defaultdict(list)
    for i in range(args.repeat + 1):  # the first round warms torch's lazy initialisation and is discarded
        for origin, problems in sorted(families.items()):
            _clear_caches()  # a real `verify all` computes every cached run once
            start = time.perf_counter()
            run(problems)
            if i:
                samples[origin].append(time.perf_counter() - start)
    rows = ["| problem file | problems | checks | median seconds | goal | met |", "|---|---:|---:|---:|---:|---|"]
    for origin, problems in sorted(families.items()):
        t = statistics.median(samples[origin])
        n_checks = sum(len(part.checks) for p in problems for part in p.parts)
        goal = GOALS.get(origin)
        met = "" if goal is None else ("yes" if t < goal else "**no**")
        rows.append(
            f"| `{origin}` | {len(problems)} | {n_checks} | {t:.2f} | {'' if goal is None else f'< {goal:g} s'} | {met} |"
        )
    table = "\n".join(rows)
    where = f"{platform.python_version()}, {platform.machine()}, median of {args.repeat} runs after a warm-up round"
    print(table)
    print(where)
    if args.write:
        record("bench_families", table, where)


if __name__ == "__main__":
    main()
