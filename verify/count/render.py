"""`verify count`'s output: an :class:`~verify.count.analyze.Analysis` as a rich table or a JSON document.

Facts come from :mod:`verify.count.analyze`; nothing here computes a count, only shows one.
"""

from __future__ import annotations

from typing import Any

from verify.count.analyze import Analysis
from verify.count.conventions import Convention


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def _flops(result: Analysis) -> Convention:
    c = result.convention
    return Convention("flops", c.bias, c.batchnorm, c.elementwise)


def as_json(result: Analysis, training: bool) -> dict[str, Any]:
    """The analysis as a JSON-ready document (per layer and totals)."""
    flops = _flops(result)
    layers = [
        {
            "name": x.name,
            "type": x.type,
            "output_shape": list(x.output_shape),
            "params": x.params,
            "macs": int(x.work.macs),
            "flops": int(flops.total(x.work)),
            "count": int(x.count),
            **({"backward": int(x.backward_count)} if training else {}),
            "outputs": x.outputs,
            "receptive_field": x.receptive_field,
            **({"note": x.note} if x.note else {}),
        }
        for x in result.layers
    ]
    if (result.own.macs or result.convention.total(result.own)) and not any(x.name == "" for x in result.layers):
        layers.insert(
            0,
            {
                "name": "",
                "type": "(the model's own operators)",
                "macs": int(result.own.macs),
                "flops": int(flops.total(result.own)),
                "count": int(result.convention.total(result.own)),
                **({"backward": int(result.convention.total(result.own_backward))} if training else {}),
            },
        )
    total = result.total_work()
    return {
        "model": result.model,
        "input": list(result.input_shape),
        "inputs": [{"shape": list(s), "dtype": d} for s, d in result.inputs],
        "mode": result.mode,
        "ran_on": result.device,
        "convention": result.convention.describe(),
        "layers": layers,
        "total": {
            "params": result.params,
            "trainable": result.trainable,
            "macs": int(total.macs),
            "flops": int(flops.total(total)),
            "count": result.total(),
            "backward": result.backward_total() if training else None,
            "training_step": result.total() + result.backward_total() if training else None,
            "output_shape": list(result.output_shape),
            "output_shapes": {path: list(shape) for path, shape in result.outputs},
            "outputs": result.total("outputs"),
            "connections": int(total.macs),
            "receptive_field": result.receptive_field,
        },
        "uncounted_operators": dict(sorted(result.uncounted.items())),
    }


def rf_text(rf: dict[str, Any] | None) -> str:
    """A receptive field as the table shows it (:func:`verify.count.receptive.field_text`)."""
    from verify.count.receptive import field_text

    return field_text(rf)


def print_table(result: Analysis, training: bool, console: Any) -> None:
    """The per-layer table, notes and the totals line, on a rich console."""
    from rich.table import Table

    caption = result.convention.describe() + (
        "; backward: operand gradients of convolutions, matrix products and attention, element-wise backward not "
        "counted"
        if training
        else ""
    )
    inputs = ", ".join(_shape_text(s) + ("" if d == "float32" else f" {d}") for s, d in result.inputs)
    where = "" if result.device == "meta" else f", run on real {result.device} tensors"
    table = Table(title=f"{result.model} on {inputs} ({result.mode} mode{where})", caption=caption)
    unit = result.convention.unit
    backward = f"backward {unit}"
    cols = (
        "layer",
        "type",
        "output shape",
        "params",
        unit,
        *((backward,) if training else ()),
        "outputs",
        "receptive field",
    )
    for col in cols:
        table.add_column(col, justify="right" if col in ("params", "outputs", unit, backward) else "left")
    own = int(result.convention.total(result.own))
    if own and not any(x.name == "" for x in result.layers):
        table.add_row(
            "(model)",
            "its own operators",
            "",
            "",
            f"{own:,}",
            *((f"{int(result.convention.total(result.own_backward)):,}",) if training else ()),
            "",
            "",
        )
    for x in result.layers:
        style = "" if x.leaf else "dim"
        table.add_row(
            "  " * (x.depth - 1) + (x.name or "(model)"),
            x.type + (" *" if x.note else ""),
            _shape_text(x.output_shape) if x.calls else "",
            f"{x.params:,}",
            f"{int(x.count):,}",
            *((f"{int(x.backward_count):,}",) if training else ()),
            f"{x.outputs:,}",
            rf_text(x.receptive_field),
            style=style,
        )
    console.print(table)
    for x in result.layers:
        if x.note:
            console.print(f"* {x.name}: {x.note} (that work is counted there)")
    if result.uncounted:
        names = ", ".join(f"{k} ×{v}" for k, v in sorted(result.uncounted.items()))
        console.print(f"[yellow]operators with no counting formula (not counted): {names}[/]")
    fields = [
        x.receptive_field for x in result.layers if x.receptive_field and not x.receptive_field.get("whole_input")
    ]
    if any(rf.get("lower_bound") for rf in fields):
        console.print("[yellow]≥: the field reaches past 65,536 positions of margin; its size is at least this[/]")
    total = result.total()
    work = result.total_work()
    outs = (
        "no tensor"
        if not result.outputs
        else _shape_text(result.output_shape)
        if len(result.outputs) == 1
        else ", ".join(f"{p or '·'}: {_shape_text(s)}" for p, s in result.outputs)
    )
    console.print(
        f"output {outs} · params {result.params:,} (trainable {result.trainable:,}, "
        f"frozen {result.params - result.trainable:,}) · {unit} {total:,}"
        + (f" · flops {int(_flops(result).total(work)):,}" if unit != "flops" else "")
        + (
            f" · backward {result.backward_total():,} · training step {total + result.backward_total():,}"
            if training
            else ""
        )
        + f" · outputs {result.total('outputs'):,} · connections {int(work.macs):,}"
        + (f" · receptive field of the output {rf_text(result.receptive_field)}" if result.receptive_field else "")
    )
