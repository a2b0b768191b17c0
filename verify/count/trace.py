"""One run of a model, recorded operator by operator: the facts counting and receptive fields are built on.

:func:`trace` runs a model once under a ``TorchDispatchMode`` (the level torch's own flop counter works at: every
operator after autograd and decomposition of composite functions, e.g. ``F.linear`` arrives as ``t`` + ``addmm``) and
records each operator call with its arguments, tensors replaced by :class:`TensorRef` (shape, dtype and a data-flow
identity), and the qualified name of the innermost ``nn.Module`` whose ``forward`` was running. Global module
forward hooks keep that stack, so work a parent does with a child's weights (``nn.MultiheadAttention`` using
``out_proj.weight``, ``F.linear(x, self.qkv.weight)``) belongs to the parent: the module that ran it. Module calls
are recorded too (:class:`ModuleCall`: inputs, outputs, and the slice of ``calls`` made inside).

Identities: every operator output gets a fresh ``uid``, views and aliases included (``view``, ``t``, ``expand``,
``slice``...); an operator that mutates a tensor (``relu_``, ``add_``, ``out=``) gives it a new uid after the call,
so its old uid stays the input. A view mutated in place does not renew its base's uid.

The run is on meta tensors (a copy of the model whose parameters cost no memory); where that fails (``.item()``,
data-dependent control flow, operators without a meta kernel) it runs again on real CPU tensors of the same shapes,
seeded (normal values for floating inputs, zeros and ones for integer inputs).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from verify import VerifyError

REAL_LIMIT = 1 << 26  # input elements a run on real CPU tensors may have (256 MB of float32)


@dataclass(frozen=True)
class TensorRef:
    uid: int  # data-flow identity: fresh per operator output; a mutated tensor gets a new uid after the operator
    shape: tuple[int, ...]
    dtype: str  # "float32", "int64", ...


@dataclass(frozen=True)
class OpCall:
    op: Any  # the aten OpOverload, e.g. torch.ops.aten.convolution.default
    args: tuple[Any, ...]  # arguments, every tensor replaced by a TensorRef (lists of tensors: lists of TensorRefs)
    kwargs: dict[str, Any]  # likewise
    outputs: tuple[TensorRef, ...]  # the tensor outputs, flattened in order
    module: str  # qualified name of the innermost nn.Module running ("" = the model itself)
    grad: bool = False  # whether autograd was recording (a --training count needs it)

    @property
    def name(self) -> str:
        """The operator's name without namespace and overload: ``convolution``, ``addmm``, ``relu_``."""
        return str(self.op._schema.name).split("::")[-1]

    def tensors(self) -> list[TensorRef]:
        """The tensor arguments, in order (inside lists too)."""
        found: list[TensorRef] = []
        for a in (*self.args, *self.kwargs.values()):
            if isinstance(a, TensorRef):
                found.append(a)
            elif isinstance(a, (list, tuple)):
                found.extend(x for x in a if isinstance(x, TensorRef))
        return found


@dataclass(frozen=True)
class ModuleCall:
    name: str  # qualified name ("" = the model)
    type: str  # class name
    inputs: tuple[TensorRef, ...]  # tensor positional arguments, flattened
    outputs: tuple[tuple[str, TensorRef], ...]  # tensor outputs with their paths ("", "0", "logits", "0.1")
    start: int  # calls[start:end] ran inside this call (its submodules' included)
    end: int


@dataclass
class Trace:
    calls: list[OpCall]
    inputs: list[TensorRef]  # the model's inputs, in order
    outputs: list[tuple[str, TensorRef]]  # the model's tensor outputs with their paths
    params: dict[int, str]  # uid -> parameter or buffer name (the first name of a shared one)
    device: str  # "meta" or "cpu"
    modules: list[ModuleCall] = field(default_factory=list)  # in the order their calls ended
    trainable: frozenset[int] = frozenset()  # uids of parameters that require a gradient
    fallback_reason: str = ""  # why the meta run failed, when the run is on cpu
    model: Any = None  # the module that ran (the meta copy, or the model itself on cpu)


def meta_copy(model: Any) -> Any:
    """A copy of ``model`` whose parameters and buffers are meta tensors, made without copying any data."""
    import torch
    import torch.nn as nn
    from torch.nn.parameter import UninitializedParameter

    memo: dict[int, Any] = {}
    for p in model.parameters():
        if not isinstance(p, UninitializedParameter):
            memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo).to("meta")


def _key_text(key: Any) -> str:
    for attr in ("idx", "key", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


class _Recorder:
    """The state of one traced run: tensor identities, the module stack, the calls."""

    def __init__(self, names: dict[int, str], device: str = "meta") -> None:
        from torch.utils.weak import WeakIdKeyDictionary

        self.device = device
        self.uids: Any = WeakIdKeyDictionary()  # tensor -> TensorRef (dies with the tensor: ids are never reused)
        self.next_uid = 0
        self.names = names  # id(module) -> qualified name
        self.stack: list[tuple[str, int, tuple[TensorRef, ...]]] = []
        self.calls: list[OpCall] = []
        self.modules: list[ModuleCall] = []

    def fresh(self, t: Any) -> TensorRef:
        ref = TensorRef(self.next_uid, tuple(int(s) for s in t.shape), str(t.dtype).removeprefix("torch."))
        self.next_uid += 1
        self.uids[t] = ref
        return ref

    def ref(self, t: Any) -> TensorRef:
        known: TensorRef | None = self.uids.get(t)
        if known is not None and known.shape == tuple(t.shape) and known.dtype == str(t.dtype).removeprefix("torch."):
            return known
        return self.fresh(t)  # first seen (a constant made outside the run), or resized in place

    def replace(self, value: Any) -> Any:
        import torch
        from torch.nn.parameter import UninitializedTensorMixin  # type: ignore[attr-defined]

        if isinstance(value, UninitializedTensorMixin):  # a lazy parameter being materialized: no shape yet
            return None
        if isinstance(value, torch.Tensor):
            return self.ref(value)
        if isinstance(value, (list, tuple)):
            return (
                type(value)(self.replace(v) for v in value)
                if isinstance(value, list)
                else tuple(self.replace(v) for v in value)
            )
        return value

    def flat_outputs(self, value: Any) -> tuple[tuple[str, TensorRef], ...]:
        import torch
        from torch.utils._pytree import tree_flatten_with_path

        leaves, _ = tree_flatten_with_path(value)
        return tuple(
            (".".join(_key_text(k) for k in path), self.ref(leaf))
            for path, leaf in leaves
            if isinstance(leaf, torch.Tensor)
        )

    @property
    def module(self) -> str:
        return self.stack[-1][0] if self.stack else ""

    def pre_hook(self, module: Any, args: Any) -> None:
        name = self.names.get(id(module))
        if name is not None:
            self.stack.append((name, len(self.calls), tuple(r for _, r in self.flat_outputs(args))))

    def post_hook(self, module: Any, args: Any, output: Any) -> None:
        name = self.names.get(id(module))
        if name is None or not self.stack or self.stack[-1][0] != name:
            return
        _, start, inputs = self.stack.pop()
        self.modules.append(
            ModuleCall(name, type(module).__name__, inputs, self.flat_outputs(output), start, len(self.calls))
        )


# ---- meta kernels, remembered ------------------------------------------------------------------------------------
# An operator's output shapes, strides and dtypes on meta tensors depend only on its arguments' metadata and its
# other arguments, so a call whose key was seen before need not run its meta kernel again (several of them are Python
# decompositions costing milliseconds: batch norm, layer norm, hardtanh). Only operators whose outputs alias nothing
# are remembered; an in-place operator whose key was seen returns the tensor it mutates, as it would.
_META_CACHE: dict[Any, Any] = {}
_META_CACHE_SIZE = 1 << 16
_NOT_KEYABLE = object()


def _meta_key(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        if value.device.type != "meta":
            return _NOT_KEYABLE
        return ("T", tuple(value.shape), value.stride(), value.dtype, value.storage_offset())
    if isinstance(value, (list, tuple)):
        keys = tuple(_meta_key(v) for v in value)
        return _NOT_KEYABLE if any(k is _NOT_KEYABLE for k in keys) else (type(value).__name__, keys)
    if value is None or isinstance(value, (bool, int, float, str, torch.dtype, torch.device, torch.layout)):
        return (type(value).__name__, value)
    if isinstance(value, torch.memory_format):
        return ("memory_format", str(value))
    return _NOT_KEYABLE


def _returned_argument(func: Any) -> int | None:
    """The index of the argument an in-place operator returns (its single return aliases a written argument)."""
    returns = func._schema.returns
    if len(returns) != 1 or returns[0].alias_info is None:
        return None
    target = set(returns[0].alias_info.before_set)
    for i, a in enumerate(func._schema.arguments):
        if a.alias_info is not None and a.alias_info.is_write and set(a.alias_info.before_set) == target:
            return i if not a.kwarg_only else None
    return None


def _meta_call(func: Any, args: Any, kwargs: Any) -> Any:
    import torch
    from torch.utils._pytree import tree_flatten, tree_unflatten

    # torch's default dtype is part of the key: factories called with dtype=None consult it
    key = _meta_key((str(func), torch.get_default_dtype(), args, tuple(sorted(kwargs.items()))))
    if key is _NOT_KEYABLE:
        return func(*args, **kwargs)
    known = _META_CACHE.get(key)
    if known is not None:
        kind, value = known
        if kind == "self":
            return args[value]
        leaves, spec = value
        return tree_unflatten(
            [torch.empty_strided(x[1], x[2], dtype=x[3], device="meta") if isinstance(x, tuple) else x for x in leaves],
            spec,
        )
    out = func(*args, **kwargs)
    if len(_META_CACHE) >= _META_CACHE_SIZE:
        return out
    returned = _returned_argument(func)
    if returned is not None and returned < len(args) and out is args[returned]:
        _META_CACHE[key] = ("self", returned)
    elif all(r.alias_info is None for r in func._schema.returns):
        leaves, spec = tree_flatten(out)
        meta: list[Any] = []
        for x in leaves:
            if isinstance(x, torch.Tensor):
                if x.device.type != "meta" or x.storage_offset() != 0:
                    return out
                meta.append(("T", tuple(x.shape), x.stride(), x.dtype))
            elif x is None or isinstance(x, (bool, int, float)):
                meta.append(x)
            else:
                return out
        _META_CACHE[key] = ("new", (meta, spec))
    return out


def _make_mode(rec: _Recorder) -> Any:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            rargs = rec.replace(tuple(args))
            rkwargs = {k: rec.replace(v) for k, v in kwargs.items()}
            grad = torch.is_grad_enabled()
            out = _meta_call(func, args, kwargs) if rec.device == "meta" else func(*args, **kwargs)
            mutated: dict[int, TensorRef] = {}
            for i, a in enumerate(func._schema.arguments):
                info = a.alias_info
                if info is None or not info.is_write:
                    continue
                value = kwargs.get(a.name) if a.kwarg_only or i >= len(args) else args[i]
                for t in value if isinstance(value, (list, tuple)) else (value,):
                    if isinstance(t, torch.Tensor):
                        mutated[id(t)] = rec.fresh(t)
            outs = tuple(
                mutated[id(t)] if id(t) in mutated else rec.fresh(t)
                for t in tree_flatten(out)[0]
                if isinstance(t, torch.Tensor)
            )
            rec.calls.append(OpCall(func, rargs, rkwargs, outs, rec.module, grad))
            return out

    return Mode()


def _run(model: Any, inputs: Sequence[Any], device: str, grad: bool) -> Trace:
    import torch
    from torch.nn.modules import module as nn_module

    names: dict[int, str] = {}
    for name, mod in model.named_modules(remove_duplicate=False):
        names.setdefault(id(mod), name)
    rec = _Recorder(names, device)
    params: dict[int, str] = {}
    trainable: set[int] = set()
    from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

    lazy = (UninitializedParameter, UninitializedBuffer)
    for name, p in model.named_parameters(remove_duplicate=False):
        if not isinstance(p, lazy) and p not in rec.uids:
            ref = rec.fresh(p)
            params[ref.uid] = name
            if p.requires_grad:
                trainable.add(ref.uid)
    for name, b in model.named_buffers(remove_duplicate=False):
        if not isinstance(b, lazy) and b not in rec.uids:
            params[rec.fresh(b).uid] = name
    in_refs = [rec.fresh(x) for x in inputs]
    handles = [
        nn_module.register_module_forward_pre_hook(rec.pre_hook),
        nn_module.register_module_forward_hook(rec.post_hook),
    ]
    try:
        with torch.set_grad_enabled(grad), _make_mode(rec):
            out = model(*inputs)
    finally:
        for h in handles:
            h.remove()
    for name, p in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        seen = rec.uids.get(p)  # a lazy parameter, materialized during the run
        if seen is not None and seen.uid not in params:
            params[seen.uid] = name
            if isinstance(p, torch.nn.Parameter) and p.requires_grad:
                trainable.add(seen.uid)
    return Trace(
        calls=rec.calls,
        inputs=in_refs,
        outputs=list(rec.flat_outputs(out)),
        params=params,
        device=device,
        modules=rec.modules,
        trainable=frozenset(trainable),
        model=model,
    )


def real_inputs(inputs: Sequence[Any], seed: int = 0) -> list[Any]:
    """Real CPU tensors of the inputs' shapes and dtypes, seeded: normal values for floating point, zeros and ones
    for integers (valid indices of any embedding), False/True for booleans."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    made = []
    for x in inputs:
        if x.dtype.is_floating_point or x.dtype.is_complex:
            made.append(torch.randn(tuple(x.shape), generator=gen, dtype=x.dtype))
        else:
            made.append(torch.randint(0, 2, tuple(x.shape), generator=gen).to(x.dtype))
    return made


def trace(model: Any, inputs: Sequence[Any], grad: bool = False, device: str = "auto") -> Trace:
    """Run ``model(*inputs)`` once and record every operator (see the module's docstring).

    ``inputs`` are tensors; only their shapes and dtypes matter (values are made where needed). ``device``: "meta"
    (fail when the meta run fails), "cpu" (real tensors only) or "auto" (meta, then cpu). ``grad``: run with autograd
    recording (so that a parent's ``torch.no_grad()`` regions show in :attr:`OpCall.grad`). The model's mode
    (train/eval) is left as the caller set it. Raises :class:`VerifyError` with one line when the model cannot run.
    """
    import torch

    if device not in ("auto", "meta", "cpu"):
        raise VerifyError(f"unknown trace device '{device}' (use auto, meta or cpu)")
    reason = ""
    if device in ("auto", "meta"):
        try:
            meta_in = [torch.empty(tuple(x.shape), dtype=x.dtype, device="meta") for x in inputs]
            return _run(meta_copy(model), meta_in, "meta", grad)
        except Exception as exc:  # data-dependent control flow, .item(), missing meta kernels, or a wrong input
            reason = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
            if device == "meta":
                raise VerifyError(f"the model cannot run on meta tensors: {reason}") from exc
    elements = sum(math.prod(tuple(x.shape)) for x in inputs)
    if elements > REAL_LIMIT:
        raise VerifyError(
            f"the model cannot run on meta tensors ({reason}) and its input of {elements:,} elements is too large for "
            f"a run on real tensors (at most {REAL_LIMIT:,}): give a smaller --input"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        real = real_inputs(inputs)
        try:
            result = _run(model, real, "cpu", grad)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            shapes = ", ".join(str(tuple(x.shape)) for x in inputs)
            raise VerifyError(f"the model cannot run on input {shapes}: {type(exc).__name__}: {first}") from exc
    result.fallback_reason = reason
    return result
