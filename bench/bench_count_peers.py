"""`verify count` against the counting tools people use, on the same models (nothing downloaded).

Install the peers first (they are not dependencies of the project):
    pip install torchinfo fvcore ptflops thop torchscan

Usage: python bench/bench_count_peers.py [--repeat N] [--write]

Models: ResNet-18 built from torch.nn; torchvision's MobileNet-V2, ViT-B/16 and Swin-T (definitions only, random
weights); a 2-layer LSTM over 32 steps; a self-attention block (nn.MultiheadAttention, eval mode). Each tool counts
each model on the same input; the table gives its parameter and MAC totals (as the tool reports them, converted to
MACs where it reports FLOPs: torch's flop counter), the difference from `verify count`'s, and the median wall time
over N runs. Tools that are not installed, or fail on a model, are listed as such.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _record import record  # bench/ is on sys.path when a script runs from it

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # torchvision without its compiled ops


def _verify(model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    from verify.count.analyze import analyze

    r = analyze(model, shape)
    return r.params, int(r.total_work().macs)


def _torchinfo(model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    import torchinfo

    s = torchinfo.summary(model, input_size=shape, verbose=0)
    return int(s.total_params), int(s.total_mult_adds)


def _fvcore(model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    import torch
    from fvcore.nn import FlopCountAnalysis, parameter_count

    a = FlopCountAnalysis(model, torch.zeros(shape))
    a.unsupported_ops_warnings(False)
    a.uncalled_modules_warnings(False)
    return int(parameter_count(model)[""]), int(a.total())  # fvcore's "flops" are MACs


def _ptflops(model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    import torch
    from ptflops import get_model_complexity_info

    macs, params = get_model_complexity_info(
        model,
        shape,
        input_constructor=lambda _: torch.zeros(shape),
        as_strings=False,
        print_per_layer_stat=False,
        verbose=False,
    )
    return int(params), int(macs)


def _thop(model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    import torch
    from thop import profile

    macs, params = profile(model, inputs=(torch.zeros(shape),), verbose=False)
    return int(params), int(macs)


def _torchscan(model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    from torchscan import crawl_module

    totals = crawl_module(model, shape[1:])["totals"]
    return int(totals["parameters"]["value"]), int(totals["macs"]["value"])


def _torch_flop_counter(model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(shape))
    return sum(p.numel() for p in model.parameters()), int(counter.get_total_flops()) // 2


TOOLS: dict[str, Callable[[Any], tuple[int, int]]] = {
    "verify count": _verify,
    "torchinfo": _torchinfo,
    "fvcore": _fvcore,
    "ptflops": _ptflops,
    "thop": _thop,
    "torchscan": _torchscan,
    "torch flop counter": _torch_flop_counter,
}


def _models() -> dict[str, tuple[Callable[[], Any], tuple[int, ...]]]:
    import torch.nn as nn

    from verify.count.models import resnet18

    def tv(name: str) -> Callable[[], Any]:
        def make() -> Any:
            from torchvision_models import models

            return models().get_model(name)

        return make

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(256, 8, batch_first=True)

        def forward(self, x: Any) -> Any:
            return self.attn(x, x, x)[0]

    class Lstm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(64, 128, num_layers=2, batch_first=True)

        def forward(self, x: Any) -> Any:
            return self.lstm(x)[0]

    return {
        "ResNet-18": (resnet18, (1, 3, 224, 224)),
        "MobileNet-V2": (tv("mobilenet_v2"), (1, 3, 224, 224)),
        "ViT-B/16": (tv("vit_b_16"), (1, 3, 224, 224)),
        "Swin-T": (tv("swin_t"), (1, 3, 224, 224)),
        "LSTM 2×128": (Lstm, (1, 32, 64)),
        "self-attention 256/8": (Attention, (1, 64, 256)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    import torch
    from torchvision_models import models

    models()  # before any peer imports torchvision (ptflops does): its compiled operators do not load here
    torch.manual_seed(0)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    rows = [
        "| model | tool | parameters | MACs as reported | minus verify's | median seconds | time / verify |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, (make, shape) in _models().items():
        model = make().eval()
        results: dict[str, Any] = {}
        for name, fn in TOOLS.items():
            times = []
            try:
                for _ in range(args.repeat + 1):
                    start = time.perf_counter()
                    with (
                        torch.no_grad(),
                        contextlib.redirect_stdout(io.StringIO()),
                        contextlib.redirect_stderr(io.StringIO()),
                    ):
                        params, macs = fn(model, shape)
                    times.append(time.perf_counter() - start)
                results[name] = (params, macs, statistics.median(times[1:]))
            except ImportError:
                results[name] = None
            except Exception as exc:  # a peer that crashes on this model is reported, not fatal
                results[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
        _, m0, t0 = results["verify count"]
        for name, r in results.items():
            if r is None:
                rows.append(f"| {label} | {name} | not installed | | | | |")
            elif isinstance(r, str):
                rows.append(f"| {label} | {name} | failed: {r} | | | | |")
            else:
                params, macs, t = r
                rows.append(f"| {label} | {name} | {params:,} | {macs:,} | {macs - m0:+,} | {t:.3f} | {t / t0:.2f} |")
    table = "\n".join(rows)
    where = (
        f"inputs of batch 1 (images 224×224); eval mode, no_grad, one thread; {platform.python_version()}, "
        f"{platform.machine()}, median of {args.repeat} after a warm-up"
    )
    print(table)
    print(where)
    if args.write:
        record("bench_count_peers", table, where)


if __name__ == "__main__":
    main()
