"""Models `verify count` knows by name, built from torch.nn alone (nothing is downloaded), and loading of a user's
``path/to/file.py:factory``."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from verify import VerifyError


def resnet18(num_classes: int = 1000) -> Any:
    """ResNet-18 (basic blocks 2-2-2-2) written with torch.nn, the same layers and shapes as the usual one."""
    import torch.nn as nn

    class Basic(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else None
            )

        def forward(self, x: Any) -> Any:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    def stage(cin: int, cout: int, stride: int) -> Any:
        return nn.Sequential(Basic(cin, cout, stride), Basic(cout, cout, 1))

    return nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
        stage(64, 64, 1),
        stage(64, 128, 2),
        stage(128, 256, 2),
        stage(256, 512, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(512, num_classes),
    )


def small_zoo() -> Any:
    """A helper model with every layer kind the counters handle: depthwise, grouped, dilated and transposed
    convolutions, pooling, upsampling and a residual block."""
    import torch.nn as nn

    class Residual(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(c, c, 3, padding=2, dilation=2), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1, groups=2)
            )

        def forward(self, x: Any) -> Any:
            return x + self.body(x)

    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 5, padding=2, groups=8),
        nn.Conv2d(8, 16, 1),
        Residual(16),
        nn.MaxPool2d(2),
        nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, groups=2),
        nn.Upsample(scale_factor=2),
        nn.AvgPool2d(2),
        nn.Conv2d(8, 4, 3, padding=1),
    )


BUILTIN: dict[str, tuple[Callable[[], Any], str]] = {
    "resnet18": (resnet18, "ResNet-18 built from torch.nn (input 1,3,224,224)"),
    "zoo": (small_zoo, "depthwise, grouped, dilated, transposed conv, pooling, upsampling, residual (1,3,32,32)"),
}

_REGISTERED: dict[str, tuple[Callable[[], Any], str]] = {}


def register_model(name: str, factory: Callable[[], Any], description: str) -> None:
    """Make a network known to ``verify count`` by name. The bank's problem modules register the networks their
    questions are about; the library itself never imports the bank."""
    known = _REGISTERED.get(name) or BUILTIN.get(name)
    if known is not None and (known[0].__module__, known[1]) != (factory.__module__, description):
        raise VerifyError(f"model name '{name}' is registered twice")  # a module imported again may re-register
    _REGISTERED[name] = (factory, description)


def named_models() -> dict[str, tuple[Callable[[], Any], str]]:
    """Every model known by name: the built-in ones and those registered (by the bank, once it is loaded)."""
    return {**BUILTIN, **_REGISTERED}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def load_model(spec: str) -> tuple[Any, str]:
    """A model from a bank name or from ``path/to/file.py:factory`` (a function returning an nn.Module)."""
    import torch.nn as nn

    named = named_models()
    if spec in named:
        return named[spec][0](), spec
    if ":" not in spec:
        raise VerifyError(f"unknown model '{spec}': give path/to/file.py:factory or one of {', '.join(named)}")
    path_text, factory = spec.rsplit(":", 1)
    path = Path(path_text)
    if not path.is_file():
        raise VerifyError(f"model file not found: {path}")
    module_spec = importlib.util.spec_from_file_location(f"verify_user_model_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise VerifyError(f"cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except SystemExit as exc:
        raise VerifyError(f"cannot load {path}: it called sys.exit({exc.code})") from None
    except Exception as exc:  # the user's file: one clear line
        raise VerifyError(f"cannot load {path}: {type(exc).__name__}: {_first_line(exc)}") from exc
    fn = getattr(module, factory, None)
    if not callable(fn):
        raise VerifyError(f"{path} has no function '{factory}'")
    try:
        model = fn()
    except SystemExit as exc:
        raise VerifyError(f"{spec}() called sys.exit({exc.code})") from None
    except Exception as exc:
        raise VerifyError(f"{spec}() failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    if not isinstance(model, nn.Module):
        raise VerifyError(f"{spec}() returned {type(model).__name__}, not an nn.Module")
    return model, spec
