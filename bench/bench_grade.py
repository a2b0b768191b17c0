"""Grading throughput: a synthetic class graded with `verify grade`, in answers per second, and the cost of a hostile
file.

Usage: python bench/bench_grade.py [--files 300] [--answers 40] [--jobs 2] [--write]

Each synthetic file holds `--answers` answers drawn (seeded) from a pool of right and wrong answers to the bank's
parts, in the forms people write (LaTeX, plain math, numbers, lists, networks). The hostile file holds the same number
of hostile strings (code injection, power towers, huge factorials, deep nesting, megabyte strings).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _record import record  # bench/ is on sys.path when a script runs from it

POOL = [
    ("cpen455-hw2/2.1", "c2", "128"),
    ("cpen455-hw2/2.1", "c2", "129"),
    ("cpen455-hw2/2.2", "H1", "[100, 128, 256, 256]"),
    ("cpen455-hw2/2.2", "H2", "[100, 64, 127, 127]"),
    ("cpen455-hw2/2.3", "total", "397184"),
    ("cpen455-hw2/2.4", "total", "397434"),
    ("cpen455-hw2/2.6", "Y", "29"),
    ("cpen455-hw2/2.6", "H3", "21"),
    ("cpen455-hw2/3.1", "H_out", "'\\left\\lfloor \\frac{H + 2P - K}{S} \\right\\rfloor + 1'"),
    ("cpen455-hw2/3.1", "H_out", "'(H + 2P - K)/S + 1'"),
    ("cpen455-hw2/3.2", "output_padding", "'mod(H + 2P - K, S)'"),
    ("cpen455-hw2/4.2", "H_out", "'floor((H + 2P - D(K-1) - 1)/S) + 1'"),
    ("cpen455-hw2/5.1", "params", "'C K^2 N'"),
    ("cpen455-hw2/5.2", "params", "'\\frac{CK^2N}{M^2}'"),
    ("cpen455-hw2/3.3a", "X_hat", "[[-4, 5, 6], [10, -4, -10], [6, -5, -4]]"),
    ("cpen455-hw2/4.1", "Y", "[[0, 25, 10], [8, -10, 24], [-4, 12, -8]]"),
    ("cpen455-hw2/1.1", "separable", "false"),
    ("cpen455-hw2/1.3", "network", '{ activation = "relu", W = [[1, 1], [1, 1]], c = [0, -1], w = [1, -2], b = 0 }'),
    ("csc413-a2/2.3.2", "lambda_tilde", "'\\frac{\\lambda}{2\\eta}'"),
    ("csc413-a2/2.3.2", "lambda_tilde", "'\\lambda/\\eta'"),
    ("csc413-a2/2.2.1", "w1", "'w_0 - \\frac{2\\eta}{n} X^T a'"),
    ("csc413-a2/2.1.2", "backward_memory", "'O(t)'"),
    ("csc413-a2/2.1.2", "forward_memory", "'O(t)'"),
    ("csc413-a2/5.4", "k4_final_padding", "'impossible'"),
    ("csc413-a2/5.4", "k5_tconv", "[2, 1]"),
    ("csc413-a2/3.2", "cnn_params", "21024"),
    ("csc420-a2/q5", "total", "61706"),
    ("csc420-a2/q6", "dsigma", "'y(1-y)'"),
    ("csc420-a2/q7", "dtanh", "'1 - \\tanh^2(x)'"),
    ("vu-dl-a3/q10", "out_768x1024", "[16, 383, 511]"),
    ("vu-dl-a3/q15", "best_N", "81"),
    ("cpen455-hw2/2.5", "per_channel", '["B", "H", "W"]'),
    ("vu-dl-a3/p1.1", "grad_Y", "'-g x / y^2'"),
]
HOSTILE = [
    '\'__import__("os").system("true")\'',
    "'H^(9^(9^(9^9)))'",
    "'99999!'",
    "'" + "(" * 5000 + "H" + ")" * 5000 + "'",
    "'" + "a" * 500_000 + "'",
    "'2^{2^{2^{2^{2^{2^{2}}}}}}'",
    "'\\frac{'",
    "nan",
    "inf",
    "'exec(\"1\")'",
]


TARGETS = [
    ("cpen455-hw2/3.1", "H_out"),
    ("cpen455-hw2/4.2", "H_out"),
    ("cpen455-hw2/3.2", "output_padding"),
    ("cpen455-hw2/4.3", "output_padding"),
    ("cpen455-hw2/5.1", "params"),
    ("cpen455-hw2/5.2", "params"),
    ("csc413-a2/2.3.2", "lambda_tilde"),
    ("csc420-a2/q6", "dsigma"),
    ("csc420-a2/q7", "dtanh"),
    ("vu-dl-a3/conv", "out_size"),
]


def answer_file(values: list[str]) -> str:
    """One answer per target part, the i-th value to the i-th part."""
    return "".join(f'["{pid}"]\n{part} = {v}\n' for (pid, part), v in zip(TARGETS, values, strict=False))


def write_class(folder: Path, files: int, per_file: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    for i in range(files):
        chosen: dict[str, dict[str, str]] = {}
        while sum(len(v) for v in chosen.values()) < per_file:
            pid, part, value = rng.choice(POOL)
            chosen.setdefault(pid, {})[part] = value
            if len({(p, k) for p, v in chosen.items() for k in v}) >= len({(p, k) for p, k, _ in POOL}):
                break
        text = "".join(
            f'["{pid}"]\n' + "".join(f"{k} = {v}\n" for k, v in parts.items()) for pid, parts in chosen.items()
        )
        (folder / f"student{i:04d}.toml").write_text(text)


def forty_answers(count: int = 40, seed: int = 0) -> str:
    """An answer file of ``count`` answers to as many different parts, drawn (seeded) from the notation corpus: the
    right and wrong answers people write, in their notations."""
    import tomllib

    fixtures = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
    files = [*sorted((fixtures / "notation").glob("*.toml")), fixtures / "notation_extra.toml"]
    by_part: dict[tuple[str, str], list[object]] = {}
    for f in files:
        for case in tomllib.loads(f.read_text()).get("case", []):
            by_part.setdefault((case["problem"], case["part"]), []).append(case["answer"])
    rng = random.Random(seed)
    keys = sorted(k for k in by_part if k[0] not in ("cpen455-hw2/2.4", "csc413-a2/4.3"))
    chosen = sorted(rng.sample(keys, min(count, len(keys))))
    tables: dict[str, list[str]] = {}
    for pid, part in chosen:
        value = rng.choice(by_part[(pid, part)])
        tables.setdefault(pid, []).append(f"{part} = {toml_value(value)}")
    return "".join(f'["{pid}"]\n' + "\n".join(lines) + "\n" for pid, lines in tables.items())


def toml_value(value: object) -> str:
    if isinstance(value, str):
        if "'" not in value and "\n" not in value:
            return f"'{value}'"
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def median_time(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--answers", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    verify = shutil.which("verify", path=str(Path(sys.executable).parent)) or "verify"
    with tempfile.TemporaryDirectory() as tmp:
        cls = Path(tmp) / "class"
        cls.mkdir()
        write_class(cls, args.files, args.answers)
        n_answers = sum(len([ln for ln in f.read_text().splitlines() if "=" in ln]) for f in cls.glob("*.toml"))
        distinct = len({ln for f in cls.glob("*.toml") for ln in f.read_text().splitlines()})
        start = time.perf_counter()
        subprocess.run(
            [verify, "grade", str(cls), "--out", f"{tmp}/out", "--jobs", str(args.jobs)],
            check=True,
            capture_output=True,
        )
        elapsed = time.perf_counter() - start
        hostile = Path(tmp) / "hostile.toml"
        hostile.write_text(answer_file(HOSTILE))
        forty = Path(tmp) / "forty.toml"
        forty.write_text(forty_answers())
        n_forty = len([ln for ln in forty.read_text().splitlines() if "=" in ln and not ln.startswith("[")])
        one = Path(tmp) / "one.toml"
        one.write_text('["cpen455-hw2/2.1"]\nc2 = 128\n')
        floor_cmd = [sys.executable, "-c", "import torch, sympy"]
        times = {
            "floor": median_time(floor_cmd, args.repeat),
            "one": median_time([verify, "check", str(one), "--json"], args.repeat),
            "forty": median_time([verify, "check", str(forty), "--json", "--jobs", str(args.jobs)], args.repeat),
            "hostile": median_time([verify, "check", str(hostile), "--json"], args.repeat),
        }
    ratio = times["forty"] / times["one"]
    rows = [
        "| measure | value | goal | met |",
        "|---|---:|---:|---|",
        f"| class: files, answers | {args.files} files, {n_answers} answers, {distinct} distinct lines |  |  |",
        f"| `verify grade --jobs {args.jobs}` wall time | {elapsed:.1f} s |  |  |",
        f"| throughput | {n_answers / elapsed:.0f} answers/s | ≥ 300 | {'yes' if n_answers / elapsed >= 300 else '**no**'} |",
        f'| `python -c "import torch, sympy"` | {times["floor"]:.2f} s |  |  |',
        f"| start-up floor: `verify check` on a file of 1 answer | {times['one']:.2f} s "
        f"({times['one'] / times['floor']:.2f}× the imports) |  |  |",
        f"| `verify check` on a file of {n_forty} answers (notation corpus, {n_forty} parts) | {times['forty']:.2f} s "
        f"({ratio:.2f}× floor, {times['forty'] / times['floor']:.2f}× the imports) | ≤ 2× floor | "
        f"{'yes' if ratio <= 2 else '**no**'} |",
        f"| `verify check` on a file of {len(TARGETS)} hostile answers | {times['hostile']:.2f} s "
        f"({times['hostile'] / times['one']:.2f}× floor) |  |  |",
    ]
    table = "\n".join(rows)
    where = (
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores; median of {args.repeat} runs for "
        f"the `verify check` rows; a pool of {args.jobs} forked workers, each distinct (part, normalized answer) graded "
        "once; the machine was shared with other work, so the ratios to the floor (taken in the same run) are the "
        "figures to compare"
    )
    print(table)
    print(where)
    if args.write:
        record("bench_grade", table, where)


if __name__ == "__main__":
    main()
