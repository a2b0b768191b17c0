"""torchvision's model definitions for the tests, without its compiled operators.

The torchvision wheel that matches torch 2.13 on the package index is a CUDA build whose compiled library does not load
against the CPU build of torch. Its model definitions are pure Python and never call those operators, but importing
torchvision registers fake (meta) kernels for two of them (``nms``, ``qnms``), which fails when their schemas were
never defined. :func:`models` defines those two schemas (no kernel: calling them raises) when, and only when, the
compiled library is missing, and then imports torchvision. Detection models that do call them are not used.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_LIB: list[object] = []  # the schema library must stay alive while torchvision is in use


def models() -> ModuleType:
    """``torchvision.models``; raises ImportError where torchvision is not installed."""
    try:
        return importlib.import_module("torchvision.models")
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SCHEMAS:
        lib.define(schema)
    _LIB.append(lib)
    return importlib.import_module("torchvision.models")


def build(name: str, **kwargs: object) -> object:
    """A torchvision model by name, its parameters and buffers created on the meta device (no memory, no
    initialization cost); everything else its constructor computes runs as usual."""
    import contextlib

    import torch
    import torch.nn as nn

    tv = models()
    register_parameter = nn.Module.register_parameter
    register_buffer = nn.Module.register_buffer

    def parameter(self: nn.Module, pname: str, param: object) -> None:
        if isinstance(param, nn.Parameter) and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, pname, param)  # type: ignore[arg-type]

    def buffer(self: nn.Module, bname: str, tensor: object, persistent: bool = True) -> None:
        if isinstance(tensor, torch.Tensor):
            tensor = tensor.to("meta")
        register_buffer(self, bname, tensor, persistent)  # type: ignore[arg-type]

    with contextlib.ExitStack() as stack:
        stack.callback(setattr, nn.Module, "register_parameter", register_parameter)
        stack.callback(setattr, nn.Module, "register_buffer", register_buffer)
        nn.Module.register_parameter = parameter  # type: ignore[method-assign]
        nn.Module.register_buffer = buffer  # type: ignore[method-assign]
        return tv.get_model(name, **kwargs)
