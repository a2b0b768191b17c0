"""Time and memory of receptive fields by index propagation: every layer's field of torchvision networks.

Usage: python bench/bench_receptive.py [--repeat N] [--write]

For each network and input: (1) the receptive-field pass alone — :func:`verify.count.receptive.graph_fields` on a
traced run plus every layer's and output's summary — in a fresh process, its wall time (median of N) and the peak of
the memory it allocates (tracemalloc, numpy included), beside the process's peak RSS; (2) the whole command
`verify count FACTORY --input ... --json` in a fresh process, with and without `--no-rf`, wall time and peak RSS. The
networks are built on the meta device (their weights play no part). With --write the table replaces the one between
the markers in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _record import record  # bench/ is on sys.path when a script runs from it

ROOT = Path(__file__).resolve().parent.parent
CASES = [("resnet50", 224), ("vgg16", 1024), ("densenet121", 224), ("resnet101", 224), ("inception_v3", 299)]
GOAL_S, GOAL_MB = 3.0, 500

FACTORY = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
import torch
from torchvision_models import models

def build(name):
    kw = {{"init_weights": False, "aux_logits": False}} if name in ("inception_v3", "googlenet") else {{}}
    with torch.device("meta"):
        return getattr(models(), name)(**kw).eval()

""" + "\n".join(f"def {n}():\n    return build({n!r})\n" for n, _ in CASES)


def one(name: str, side: int, repeat: int) -> dict[str, float]:
    """In this process: trace once, then time the propagation and summaries; peak allocation of one pass."""
    import tracemalloc

    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from torchvision_models import models

    from verify.count.receptive import graph_fields
    from verify.count.trace import trace

    kw = {"init_weights": False, "aux_logits": False} if name in ("inception_v3", "googlenet") else {}
    with torch.device("meta"):
        model = getattr(models(), name)(**kw).eval()
    start = time.perf_counter()
    tr = trace(model, [torch.empty(1, 3, side, side, device="meta")])
    trace_s = time.perf_counter() - start

    def rf_pass() -> int:
        g = graph_fields(tr)
        layers = g.layers()
        g.outputs()
        return max((f.fields[0].max or 0) for outs in layers.values() for _, f in outs if f is not None and not f.whole)

    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        field = rf_pass()
        samples.append(time.perf_counter() - start)
    tracemalloc.start()
    rf_pass()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "trace_s": trace_s,
        "rf_s": statistics.median(samples),
        "rf_peak_mb": peak / 2**20,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "field": field,
        "ops": len(tr.calls),
    }


def whole(factory: Path, name: str, side: int, rf: bool) -> tuple[float, float]:
    """Wall time and peak RSS of one `verify count` run in a fresh process (measured by a wrapper process)."""
    cmd = [str(Path(sys.executable).parent / "verify"), "count", f"{factory}:{name}", "--input", f"1,3,{side},{side}"]
    cmd += ["--json"] + ([] if rf else ["--no-rf"])
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], capture_output=True); "
        "print(r.returncode, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True).stdout
    code, secs, rss = out.split()
    if code != "0":
        raise SystemExit(f"{' '.join(cmd)} failed")
    return float(secs), int(rss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("NAME", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.repeat)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        factory = Path(tmp) / "tv.py"
        factory.write_text(FACTORY, encoding="utf-8")
        for name, side in CASES:
            res = json.loads(
                subprocess.run(
                    [sys.executable, __file__, "--one", name, str(side), "--repeat", str(args.repeat)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            with_rf = whole(factory, name, side, True)
            without = whole(factory, name, side, False)
            ok = res["rf_s"] < GOAL_S and res["rf_peak_mb"] < GOAL_MB
            rows.append(
                f"| {name} | {side}×{side} | {res['ops']} | {res['field']} | {res['trace_s']:.2f} | "
                f"{res['rf_s']:.2f} | {res['rf_peak_mb']:.0f} | {res['rss_mb']:.0f} | "
                f"{with_rf[0]:.1f} / {with_rf[1]:.0f} | {without[0]:.1f} / {without[1]:.0f} | {'yes' if ok else 'no'} |"
            )
            print(rows[-1], flush=True)
    table = "\n".join(
        [
            "| network | input | operators | largest field | trace s | RF pass s | RF pass peak MB | process peak RSS MB "
            "| `verify count` s / MB | with `--no-rf` s / MB | goal (< 3 s, < 500 MB) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
            *rows,
        ]
    )
    load = os.getloadavg()[0]
    where = (
        f"{platform.python_version()}, {platform.machine()}, load average {load:.1f} on {os.cpu_count()} cores; RF pass: median of {args.repeat}, peak of what it "
        "allocates (tracemalloc) and the process's peak RSS (torch imported, the model traced on meta tensors); "
        "`verify count`: one fresh process each, the whole command"
    )
    print(table)
    if args.write:
        record("bench_receptive", table, where)


if __name__ == "__main__":
    main()
