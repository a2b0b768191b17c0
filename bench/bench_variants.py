"""What a class's handout costs: per parametrized question, the time to draw, build and check one instance (what
`verify variant --count K` spends per instance before writing it), and how many draws its checks refused.

Usage: python bench/bench_variants.py [--count N] [--write]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from _record import record  # bench/ is on sys.path when a script runs from it

GOAL = 2.0  # seconds per checked instance: a class of 30 handed out in about a minute


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--write", action="store_true", help="record the table in bench/README.md")
    args = ap.parse_args()
    import sympy  # noqa: F401  - paid once per `verify variant` whatever it draws
    import torch  # noqa: F401

    from verify.registry import load_bank
    from verify.variants import emit, parametrized_ids

    bank = load_bank()
    emit(bank, "cpen455-hw2/3.3a", 10**6)  # warms torch's lazy initialisation
    rows = [
        "| question | instances | refused | checks each | median seconds per instance | goal | met |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for pid in parametrized_ids(bank):
        times, refused, checks = [], 0, 0
        for seed in range(1000, 1000 + args.count):  # one at a time, so each instance is timed on its own
            start = time.perf_counter()
            e = emit(bank, pid, seed)
            times.append(time.perf_counter() - start)
            refused += len(e.refused)
            checks = len(e.emitted[0].output.results)
        t = statistics.median(times)
        met = "yes" if t < GOAL else "**no**"
        rows.append(f"| `{pid}` | {args.count} | {refused} | {checks} | {t:.3f} | < {GOAL:g} s | {met} |")
    table = "\n".join(rows)
    where = f"{platform.python_version()}, {platform.machine()}, seeds 1000..{999 + args.count}, one process"
    print(table + "\n\n" + where)
    if args.write:
        record("bench_variants", table, where)


if __name__ == "__main__":
    main()
