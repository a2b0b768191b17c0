"""`verify count` against the counting tools people use, on ResNet-18 built from torch.nn (nothing downloaded).

Install the peers first (they are not dependencies of the project):
    pip install torchinfo fvcore ptflops thop torchscan

Usage: python bench/bench_count_peers.py [--repeat N] [--write]

Each tool counts the same model on a 1×3×224×224 input; the table gives its parameter and MAC totals (as the tool
reports them, converted to MACs where it reports FLOPs), the difference from verify's exact count, and the median wall
time over N runs relative to `verify count`'s (shapes and counts only, no receptive fields: the peers compute none).
Tools that are not installed are listed as such.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from _record import record  # bench/ is on sys.path when a script runs from it

SHAPE = (1, 3, 224, 224)


def _verify(model: Any) -> tuple[int, int]:
    from verify.count.analyze import analyze

    r = analyze(model, SHAPE)
    return r.params, int(r.total_work().macs)


def _torchinfo(model: Any) -> tuple[int, int]:
    import torchinfo

    s = torchinfo.summary(model, input_size=SHAPE, verbose=0)
    return int(s.total_params), int(s.total_mult_adds)


def _fvcore(model: Any) -> tuple[int, int]:
    import torch
    from fvcore.nn import FlopCountAnalysis, parameter_count

    a = FlopCountAnalysis(model, torch.zeros(SHAPE))
    a.unsupported_ops_warnings(False)
    a.uncalled_modules_warnings(False)
    return int(parameter_count(model)[""]), int(a.total())  # fvcore's "flops" are MACs


def _ptflops(model: Any) -> tuple[int, int]:
    from ptflops import get_model_complexity_info

    macs, params = get_model_complexity_info(
        model, SHAPE[1:], as_strings=False, print_per_layer_stat=False, verbose=False
    )
    return int(params), int(macs)


def _thop(model: Any) -> tuple[int, int]:
    import torch
    from thop import profile

    macs, params = profile(model, inputs=(torch.zeros(SHAPE),), verbose=False)
    return int(params), int(macs)


def _torchscan(model: Any) -> tuple[int, int]:
    from torchscan import crawl_module

    totals = crawl_module(model, SHAPE[1:])["totals"]
    return int(totals["parameters"]["value"]), int(totals["macs"]["value"])


TOOLS: dict[str, Callable[[Any], tuple[int, int]]] = {
    "verify count": _verify,
    "torchinfo": _torchinfo,
    "fvcore": _fvcore,
    "ptflops": _ptflops,
    "thop": _thop,
    "torchscan": _torchscan,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    import torch

    from verify.count.models import resnet18

    torch.manual_seed(0)
    results: dict[str, Any] = {}
    for name, fn in TOOLS.items():
        times = []
        try:
            for _ in range(args.repeat + 1):
                model = resnet18().eval()
                start = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    params, macs = fn(model)
                times.append(time.perf_counter() - start)
            results[name] = (params, macs, statistics.median(times[1:]))
        except ImportError:
            results[name] = None
        except Exception as exc:  # a peer that crashes on this model is reported, not fatal
            results[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    _, m0, t0 = results["verify count"]
    rows = [
        "| tool | parameters | MACs as reported | minus conv + linear MACs | median seconds | time / verify |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if r is None:
            rows.append(f"| {name} | not installed | | | | |")
        elif isinstance(r, str):
            rows.append(f"| {name} | failed: {r} | | | | |")
        else:
            params, macs, t = r
            rows.append(f"| {name} | {params:,} | {macs:,} | {macs - m0:+,} | {t:.3f} | {t / t0:.2f} |")
    table = "\n".join(rows)
    where = f"ResNet-18 (torch.nn) on {SHAPE}; {platform.python_version()}, {platform.machine()}, median of {args.repeat} after a warm-up"
    print(table)
    print(where)
    if args.write:
        record("bench_count_peers", table, where)


if __name__ == "__main__":
    main()
