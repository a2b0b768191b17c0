"""The command line: a thin Typer shell over plain functions. Only this module and verify.report touch rich.

Nothing here imports torch or sympy at module level, so `verify --help` and `verify list` stay fast.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from verify import VerifyError, __version__
from verify.model import Kind, Problem, Result, Status
from verify.registry import Bank, load_bank

app = typer.Typer(
    name="verify",
    help="Check every answer of a deep-learning course two ways: a sympy derivation and real torch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


BankOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--bank", help="A folder of a course's own problem files, added to the bank (repeatable).", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines instead of tables.")]
DeviceOpt = Annotated[
    Device, typer.Option("--device", help="Where torch checks run; cuda checks skip where there is no GPU.")
]
LimitOpt = Annotated[
    float, typer.Option("--time-limit", min=0.1, help="Seconds one check may run before it counts as an error.")
]


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _bank(bank: list[Path] | None) -> Bank:
    return load_bank(bank or [])


def _version(value: bool) -> None:
    if value:
        print(f"verify {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Check every answer of a deep-learning course two ways: a sympy derivation and real torch."""


@app.command("list")
def list_cmd(
    topic: Annotated[str | None, typer.Option("--topic", help="Only problems with this topic tag.")] = None,
    bank: BankOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the bank: ids, parts with their answer kinds, and topics."""
    b = _bank(bank)
    if topic and topic not in b.topics():
        raise VerifyError(f"no topic '{topic}' (topics: {', '.join(b.topics())})")
    problems = b.select(topic=topic)
    if as_json:
        print(json.dumps({"problems": [_problem_json(p) for p in problems]}, indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table(title=f"{len(problems)} problems, {sum(len(p.parts) for p in problems)} parts")
    table.add_column("id", style="bold")
    table.add_column("parts (kind)")
    table.add_column("topics")
    table.add_column("title")
    for p in problems:
        table.add_row(p.id, ", ".join(f"{x.key} ({x.kind})" for x in p.parts), ", ".join(p.topics), p.title)
    _console().print(table)


def _problem_json(p: Problem) -> dict[str, Any]:
    return {
        "id": p.id,
        "title": p.title,
        "source": p.source,
        "topics": list(p.topics),
        "parts": [{"key": x.key, "kind": str(x.kind), "symbols": list(x.symbols)} for x in p.parts],
    }


@app.command("show")
def show_cmd(
    problem_id: Annotated[str, typer.Argument(metavar="ID", help="A problem id, e.g. cpen455-hw2/3.2.")],
    bank: BankOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one problem: statement, reference answers, derivation steps and the checks that verify them."""
    from verify.runner import derive
    from verify.symbolic import latex

    p = _bank(bank).get(problem_id)
    parts = []
    for part in p.parts:
        d = derive(part)
        parts.append(
            {
                "key": part.key,
                "kind": str(part.kind),
                "answer": _plain(d.answer),
                "latex": d.latex or latex(d.answer),
                "note": part.note,
                "graded": part.kind is not Kind.TEXT,  # an explanation is shown, never graded
                "stated": d.stated,
                "convention": d.convention,
                "accepted": [{"convention": c, "answer": _plain(v)} for c, v in d.accepted],
                "steps": [{"text": s.text, "latex": s.latex} for s in d.steps],
                "checks": [{"name": c.name, "method": str(c.method)} for c in part.checks],
            }
        )
    if as_json:
        print(json.dumps({**_problem_json(p), "statement": p.statement, "parts": parts}, indent=2, ensure_ascii=False))
        return
    from rich.markup import escape
    from rich.panel import Panel

    con = _console()
    con.print(Panel(escape(p.statement), title=f"[bold]{p.id}[/] — {escape(p.title)}", subtitle=escape(p.source)))
    for doc in parts:
        if not doc["graded"]:
            con.print(f"\n[bold]{doc['key']}[/] (explained, not graded): {escape(str(doc['answer']))}")
            continue
        con.print(f"\n[bold]{doc['key']}[/] ({doc['kind']}) = [green]{escape(str(doc['answer']))}[/]")
        con.print(f"  LaTeX: {escape(doc['latex'])}")
        if doc["stated"]:
            con.print("  [dim]stated by the bank, confirmed by the checks below[/]")
        if doc["convention"]:
            con.print(f"  under the convention '{escape(doc['convention'])}'")
        if doc["note"]:
            con.print(f"  [dim]{escape(doc['note'])}[/]")
        for alt in doc["accepted"]:
            con.print(f"  also accepted under '{escape(alt['convention'])}': [green]{escape(str(alt['answer']))}[/]")
        for i, s in enumerate(doc["steps"], 1):
            con.print(f"  {i}. {escape(s['text'])}" + (f"\n     {escape(s['latex'])}" if s["latex"] else ""))
        con.print("  checks: " + "; ".join(f"{c['name']} ({c['method']})" for c in doc["checks"]))


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a reference answer."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=str)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if getattr(value, "is_Integer", False):
        return int(value)
    return str(value)


def _execute(problems: list[Problem], device: Device, limit: float, as_json: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from verify.model import Context
    from verify.runner import run

    total = sum(len(part.checks) for p in problems for part in p.parts)
    with Progress(
        TextColumn("[bold]checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=_console(stderr=True),
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task("", total=total)

        def tick(r: Result) -> None:
            progress.update(task, advance=1, description=f"{r.problem} {r.part}")

        return run(problems, Context(device=device.value), limit=limit, on_result=tick)


def _finish(problems: list[Problem], out: Any, as_json: bool, report: Path | None) -> None:
    if report is not None:
        from verify.report.markdown import write_report

        write_report(problems, out, report)
    if as_json:
        doc = {
            "results": [r.to_json() for r in out.results],
            "summary": {**out.counts(), "problems": len(problems), "checks": len(out.results)},
            "report": str(report) if report else None,
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        _print_summary(problems, out, report)
    raise typer.Exit(0 if out.ok else 1)


def _print_summary(problems: list[Problem], out: Any, report: Path | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    style = {Status.PASS: "green", Status.FAIL: "red", Status.ERROR: "magenta", Status.SKIP: "yellow"}
    table = Table(title="verify: results")
    for col in ("problem", "parts", "pass", "fail", "error", "skip", "seconds"):
        table.add_column(col, justify="left" if col == "problem" else "right")
    for p in problems:
        rs = [r for r in out.results if r.problem == p.id]
        n = {s: sum(r.status is s for r in rs) for s in Status}
        table.add_row(
            p.id,
            str(len(p.parts)),
            f"[green]{n[Status.PASS]}[/]",
            f"[red]{n[Status.FAIL] or ''}[/]",
            f"[magenta]{n[Status.ERROR] or ''}[/]",
            f"[yellow]{n[Status.SKIP] or ''}[/]",
            f"{sum(r.seconds for r in rs):.2f}",
        )
    con = _console()
    con.print(table)
    for r in out.results:
        if r.status in (Status.FAIL, Status.ERROR):
            con.print(
                f"[{style[r.status]}]{r.status}[/] {r.problem} {r.part} · {escape(r.label)}: {escape(r.evidence)}"
            )
    c = out.counts()
    con.print(
        f"{len(out.results)} checks: [green]{c['pass']} passed[/], [red]{c['fail']} failed[/], "
        f"[magenta]{c['error']} errors[/], [yellow]{c['skip']} skipped[/]"
        + (f" · report written to {report}" if report else "")
    )


@app.command("all")
def all_cmd(
    report: Annotated[Path, typer.Option("--report", help="Where the markdown report goes.")] = Path(
        "reports/REPORT.md"
    ),
    device: DeviceOpt = Device.cpu,
    bank: BankOpt = None,
    as_json: JsonOpt = False,
    time_limit: LimitOpt = 60.0,
) -> None:
    """Check every question in the bank and write the markdown report. Exit 0 only if every check passed."""
    problems = list(_bank(bank).problems)
    _finish(problems, _execute(problems, device, time_limit, as_json), as_json, report)


@app.command("run")
def run_cmd(
    ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Problem ids to check.")],
    device: DeviceOpt = Device.cpu,
    bank: BankOpt = None,
    as_json: JsonOpt = False,
    report: Annotated[Path | None, typer.Option("--report", help="Also write a markdown report of these.")] = None,
    time_limit: LimitOpt = 60.0,
) -> None:
    """Check a subset of the bank by id."""
    problems = _bank(bank).select(ids)
    _finish(problems, _execute(problems, device, time_limit, as_json), as_json, report)


@app.command("check")
def check_cmd(
    answers: Annotated[Path, typer.Argument(help="A TOML answer file: one table per problem id, one key per part.")],
    bank: BankOpt = None,
    as_json: JsonOpt = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write a markdown report of the verdicts.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.5, help="Seconds one answer may take before it is undecided.")
    ] = 20.0,
) -> None:
    """Grade a person's answers against the verified bank: a verdict, the answer as read, the method and evidence for
    each. Exit 0 when every graded answer is correct, 1 otherwise, 2 for a file that cannot be read."""
    from verify.answers.grade import grade_answers, read_answers, summary, warm_up

    b = _bank(bank)
    items = read_answers(answers)
    warm_up()
    verdicts = grade_answers(b, items, timeout)
    if report is not None:
        from verify.answers.report import check_markdown
        from verify.report.markdown import write_atomic

        write_atomic(report, check_markdown(answers.name, verdicts))
    s = summary(verdicts)
    if as_json:
        print(json.dumps({"answers": [v.to_json() for v in verdicts], "summary": s}, indent=2, ensure_ascii=False))
    else:
        _print_verdicts(verdicts, s)
    bad = s["incorrect"] + s["unparsable"] + s["unknown"] + s["undecided"]
    raise typer.Exit(0 if bad == 0 else 1)


def _print_verdicts(verdicts: list[Any], s: dict[str, int]) -> None:
    from rich.markup import escape
    from rich.table import Table

    style = {
        "correct": "green",
        "incorrect": "red",
        "unparsable": "magenta",
        "unknown": "yellow",
        "ungraded": "dim",
        "undecided": "yellow",
    }
    table = Table(title="verify check", show_lines=False)
    for col in ("id", "part", "verdict", "given", "read as", "expected", "evidence"):
        table.add_column(col, overflow="fold")
    for v in verdicts:
        ev = v.evidence + (f" — {v.diagnosis}" if v.diagnosis else "")
        table.add_row(
            escape(v.id),
            escape(v.part),
            f"[{style[v.verdict]}]{v.verdict}[/]",
            escape(v.given[:60]),
            escape(v.parsed[:60]),
            escape(v.expected[:60]),
            escape(ev[:200]),
        )
    con = _console()
    con.print(table)
    con.print(
        ", ".join(f"{s[k]} {k}" for k in ("correct", "incorrect", "unparsable", "unknown", "ungraded", "undecided"))
    )


@app.command("grade")
def grade_cmd(
    folder: Annotated[Path, typer.Argument(help="A folder of TOML answer files, one per person.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for grades.csv and summary.md.")] = Path("grades"),
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=64, help="Answer files graded at once.")] = 2,
    bank: BankOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.5, help="Seconds one answer may take.")] = 20.0,
) -> None:
    """Grade a class: every answer file in a folder, in parallel; writes a CSV (a row per file, a column per part) and
    a markdown summary with the most common wrong answers and their diagnosis."""
    from concurrent.futures import ThreadPoolExecutor

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from verify.answers.grade import grade_answers, read_answers, warm_up
    from verify.answers.report import class_csv, class_markdown
    from verify.report.markdown import write_atomic

    if not folder.is_dir():
        raise VerifyError(f"{folder} is not a folder")
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise VerifyError(f"no answer files (*.toml) in {folder}")
    b = _bank(bank)
    warm_up()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def one(path: Path) -> None:
        try:
            results[path.name] = grade_answers(b, read_answers(path), timeout)
        except VerifyError as exc:
            errors[path.name] = str(exc)

    with Progress(
        TextColumn("[bold]grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(files))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for _ in pool.map(one, files):
                progress.advance(task)
    write_atomic(out / "grades.csv", class_csv(results))
    write_atomic(out / "summary.md", class_markdown(results, errors))
    n = sum(len(v) for v in results.values())
    _console().print(
        f"{len(results)} files, {n} answers graded; {len(errors)} unreadable · {out / 'grades.csv'}, {out / 'summary.md'}"
    )


class Unit(StrEnum):
    macs = "macs"
    flops = "flops"
    exact = "exact"


def parse_shape(text: str) -> tuple[int, ...]:
    """'1,3,224,224' → (1, 3, 224, 224), with a one-line error for anything else."""
    try:
        shape = tuple(int(x) for x in text.replace("x", ",").split(",") if x.strip())
    except ValueError:
        raise VerifyError(
            f"--input must be comma-separated positive integers, e.g. 1,3,224,224 (got '{text}')"
        ) from None
    if not shape or any(x < 1 for x in shape) or len(shape) > 6:
        raise VerifyError(f"--input must be 1 to 6 positive integers, e.g. 1,3,224,224 (got '{text}')")
    return shape


@app.command("count")
def count_cmd(
    model: Annotated[str, typer.Argument(help="path/to/file.py:factory, or a named model (see --list-models).")] = "",
    input_shape: Annotated[str, typer.Option("--input", help="Input shape, e.g. 1,3,224,224.")] = "",
    unit: Annotated[
        Unit, typer.Option("--convention", help="macs, flops (2·MACs) or exact (k mults + k−1 adds).")
    ] = Unit.macs,
    bias: Annotated[bool, typer.Option("--bias/--no-bias", help="Count one add per output for a bias.")] = False,
    batchnorm: Annotated[
        bool, typer.Option("--count-bn", help="Count BatchNorm (2 per element) instead of folding it.")
    ] = False,
    elementwise: Annotated[
        bool, typer.Option("--count-elementwise", help="Count pooling, activations, upsampling.")
    ] = False,
    training: Annotated[
        bool,
        typer.Option(
            "--training",
            help="Also count the backward pass of conv/linear layers: input and weight gradients (grouped divided once; "
            "no input gradient for the first layer), bias-gradient sums with --bias. macs or flops only.",
        ),
    ] = False,
    rf: Annotated[
        bool, typer.Option("--rf/--no-rf", help="Measure receptive fields by gradient support (CPU).")
    ] = True,
    list_models: Annotated[bool, typer.Option("--list-models", help="List the named models and exit.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Count any network: per-layer output shape, parameters, MACs/FLOPs under a named convention, outputs, and
    receptive fields (min, max and stride over output positions)."""
    from verify.count.models import load_model, named_models

    load_bank()  # the bank registers the networks its questions are about
    if list_models:
        for name, (_, what) in named_models().items():
            print(f"{name:20s} {what}")
        return
    if not model:
        raise VerifyError("give a model: path/to/file.py:factory or a named model (--list-models)")
    if not input_shape:
        raise VerifyError("give --input, e.g. --input 1,3,224,224")
    from verify.count.analyze import analyze
    from verify.count.conventions import Convention

    shape = parse_shape(input_shape)
    module, name = load_model(model)
    conv = Convention(unit.value, bias=bias, batchnorm=batchnorm, elementwise=elementwise)
    result = analyze(module, shape, conv, name=name, training=training)
    if rf:
        _receptive_fields(module, shape, result)
    flops = Convention("flops", bias=bias, batchnorm=batchnorm, elementwise=elementwise)
    if as_json:
        doc = {
            "model": name,
            "input": list(shape),
            "convention": conv.describe(),
            "layers": [
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
                }
                for x in result.layers
            ],
            "total": {
                "params": result.params,
                "trainable": result.trainable,
                "macs": int(result.total_work().macs),
                "flops": int(flops.total(result.total_work())),
                "count": result.total(),
                "backward": result.backward_total() if training else None,
                "training_step": result.total() + result.backward_total() if training else None,
                "output_shape": list(result.output_shape),
                "outputs": result.total("outputs"),
                "connections": int(result.total_work().macs),
                "receptive_field": result.receptive_field,
            },
        }
        print(json.dumps(doc, indent=2))
        return
    _print_count(result, training)


def _receptive_fields(module: Any, shape: tuple[int, ...], result: Any) -> None:
    """Measure every layer's receptive field (containers too: a residual block's output sees the union of its
    branches) and the model output's, by gradient support, from one forward pass."""
    from verify.count.receptive import measure_layers

    if len(shape) != 4:
        return
    names = [x.name for x in result.layers if len(x.output_shape) >= 2]
    fields = measure_layers(module, shape, [*names, ""] if len(result.output_shape) >= 2 else names)

    def as_json(name: str) -> dict[str, Any]:
        rh, rw, _ = fields[name]
        if rh.max is None or rw.max is None:
            return {"whole_input": True}
        return {
            "size": [rh.max, rw.max],
            "min": [rh.min, rw.min],
            "max": [rh.max, rw.max],
            "stride": None if rh.stride is None or rw.stride is None else [str(rh.stride), str(rw.stride)],
            "lower_bound": rh.lower_bound or rw.lower_bound,
        }

    for layer in result.layers:
        if layer.name in fields:
            layer.receptive_field = as_json(layer.name)
    if "" in fields:
        result.receptive_field = as_json("")


def _print_count(result: Any, training: bool) -> None:
    from rich.table import Table

    from verify.count.conventions import Convention

    caption = result.convention.describe() + (
        "; backward: input and weight gradients of conv/linear layers, element-wise backward not counted"
        if training
        else ""
    )
    table = Table(title=f"{result.model} on {tuple(result.input_shape)}", caption=caption)
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
    for x in result.layers:
        style = "" if x.leaf else "dim"
        table.add_row(
            "  " * (x.depth - 1) + x.name,
            x.type,
            "×".join(map(str, x.output_shape)),
            f"{x.params:,}",
            f"{int(x.count):,}",
            *((f"{int(x.backward_count):,}",) if training else ()),
            f"{x.outputs:,}",
            _rf_text(x.receptive_field),
            style=style,
        )
    con = _console()
    con.print(table)
    fields = [
        x.receptive_field for x in result.layers if x.receptive_field and not x.receptive_field.get("whole_input")
    ]
    if any(rf["lower_bound"] for rf in fields):
        con.print(
            "[yellow]≥: every sampled unit of that layer reached the input's border, so its receptive field is at "
            "least this; give a larger --input for the exact value[/]"
        )
    if any(rf["stride"] is None and not rf["lower_bound"] for rf in fields):
        con.print(
            "[yellow]a receptive field without /stride: some sampled units reached the input's border, so sizes come "
            "from the others and the stride is not given; a larger --input gives it[/]"
        )
    total = result.total()
    flops = Convention("flops", result.convention.bias, result.convention.batchnorm, result.convention.elementwise)
    work = result.total_work()
    con.print(
        f"output {tuple(result.output_shape)} · params {result.params:,} (trainable {result.trainable:,}, "
        f"frozen {result.params - result.trainable:,}) · {unit} {total:,}"
        + (f" · flops {int(flops.total(work)):,}" if unit != "flops" else "")
        + (
            f" · backward {result.backward_total():,} · training step {total + result.backward_total():,}"
            if training
            else ""
        )
        + f" · outputs {result.total('outputs'):,} · connections {int(work.macs):,}"
        + (f" · receptive field of the output {_rf_text(result.receptive_field)}" if result.receptive_field else "")
    )


def _rf_text(rf: dict[str, Any] | None) -> str:
    """A receptive field as the table shows it: h×w (a range where positions differ), /stride, ≥ for lower bounds."""
    if not rf:
        return ""
    if rf.get("whole_input"):
        return "whole input"
    lo, hi = rf["min"], rf["max"]
    if rf["lower_bound"]:
        return f"≥ {hi[0]}×{hi[1]}"
    text = f"{hi[0]}×{hi[1]}" if lo == hi else f"{lo[0]}×{lo[1]} – {hi[0]}×{hi[1]}"
    if rf["stride"]:
        text += f" /{rf['stride'][0]}" + ("" if rf["stride"][0] == rf["stride"][1] else f",{rf['stride'][1]}")
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point: usage errors and VerifyError become one line on stderr and exit 2, never a traceback."""
    try:
        code = app(args=argv, standalone_mode=False, prog_name="verify")
    except typer.Abort:
        print("verify: interrupted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (VerifyError, typer.TyperException) as exc:
        msg = exc.format_message() if isinstance(exc, typer.TyperException) else str(exc)
        if msg.strip():  # bare `verify` has already printed its help
            print(f"verify: {' '.join(msg.split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("verify: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a fault of ours still ends in one line, never a traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"verify: internal error: {type(exc).__name__}: {first[:300]}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
