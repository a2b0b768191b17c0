"""The command line: a thin Typer shell over plain functions. Only this module and verify.report touch rich.

Nothing here imports torch or sympy at module level, so `verify --help` and `verify list` stay fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import types
from collections.abc import Callable
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
    rich_markup_mode=None,  # plain help: rendering it with rich costs more than the rest of `verify --help`
)


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"
    both = "both"  # cpu, and the checks that follow --device again on cuda: a parity table in the report


BankOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--bank", help="A folder of a course's own problem files, added to the bank (repeatable).", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines instead of tables.")]
DeviceOpt = Annotated[
    Device,
    typer.Option(
        "--device",
        help="Where torch checks run; cuda checks skip where there is no GPU. both: cpu, and the checks that follow "
        "the device again on cuda, compared in a parity table.",
    ),
]
JobsOpt = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        min=1,
        max=256,
        help="Worker processes for the problems (default: the machine's cores; 1 runs them in this process).",
        show_default=False,
    ),
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
    list_bank(topic, bank, as_json)


def list_bank(topic: str | None, bank: list[Path] | None, as_json: bool) -> None:
    from verify.index import listing

    problems = listing(bank or [])
    topics = sorted({t for p in problems for t in p["topics"]})
    if topic and topic not in topics:
        raise VerifyError(f"no topic '{topic}' (topics: {', '.join(topics)})")
    problems = [p for p in problems if not topic or topic in p["topics"]]
    if as_json:
        print(json.dumps({"problems": problems}, indent=2, ensure_ascii=False))
        return
    title = f"{len(problems)} problems, {sum(len(p['parts']) for p in problems)} parts"
    if not sys.stdout.isatty():  # piped: one tab-separated line per problem, for cut, grep and sort (no table to draw)
        lines = [f"# {title}", "# id\tparts (kind)\ttopics\ttitle"]
        for p in problems:
            parts = ", ".join(f"{x['key']} ({x['kind']})" for x in p["parts"])
            lines.append("\t".join((p["id"], parts, ", ".join(p["topics"]), p["title"])))
        print("\n".join(lines))
        return
    from rich.table import Table

    table = Table(title=title)
    table.add_column("id", style="bold")
    table.add_column("parts (kind)")
    table.add_column("topics")
    table.add_column("title")
    for p in problems:
        parts = ", ".join(f"{x['key']} ({x['kind']})" for x in p["parts"])
        table.add_row(p["id"], parts, ", ".join(p["topics"]), p["title"])
    _console().print(table)


def _plain_args(argv: list[str]) -> tuple[Callable[..., None], dict[str, Any]] | None:
    """A command and its arguments read here, from the command's own declaration, when every value is plain: a flag, a
    word, a path, a number within its bounds, one of a choice. typer reads option values through pydantic, whose import
    and type adapters cost more than `verify list` takes, and a tenth of a second before `verify all` can begin. Any
    thing else (help, an unknown or misspelt option, a value out of bounds, a type or feature not read here) returns
    None and goes to typer, which reads it or says what is wrong."""
    from typer.models import ArgumentInfo, OptionInfo
    from typer.utils import get_params_from_function

    command = next((c.callback for c in app.registered_commands if argv and c.name == argv[0]), None)
    if command is None:
        return None
    found: dict[str, Any] = {}
    flags: dict[str, tuple[str, Any]] = {}  # an option's name → (parameter, the value it sets; None: the next word)
    kinds: dict[str, Any] = {}
    positional: list[str] = []
    for name, meta in get_params_from_function(command).items():
        info = meta.default
        kind, listed = _plain_kind(meta.annotation)
        if kind is None or not _plain_info(info):
            return None
        kinds[name] = (kind, listed, info)
        if isinstance(info, ArgumentInfo):
            positional.append(name)
        elif isinstance(info, OptionInfo):
            decls = info.param_decls or (f"--{name.replace('_', '-')}",)
            for decl in decls:
                on, _, off = decl.partition("/")
                flags[on.strip()] = (name, True if kind is bool else None)
                if off:
                    flags[off.strip()] = (name, False)
        else:  # pragma: no cover - every parameter of a command is declared as an option or an argument
            return None
    rest = argv[1:]
    words: list[str] = []
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("-"):
            words.append(arg)
            continue
        flag, eq, text = arg.partition("=")
        if flag not in flags:
            return None
        name, sets = flags[flag]
        kind, listed, info = kinds[name]
        if sets is not None:
            if eq:
                return None
            found[name] = sets
            continue
        if not eq:
            if not rest or rest[0].startswith("-"):
                return None
            text = rest.pop(0)
        value = _plain_value(kind, text, info)
        if value is None:
            return None
        if listed:
            found.setdefault(name, []).append(value)
        else:
            found[name] = value
    for name in positional:
        kind, listed, info = kinds[name]
        taken, words = (words, []) if listed else (words[:1], words[1:])
        values = [_plain_value(kind, w, info) for w in taken]
        if any(v is None for v in values):
            return None
        if values:
            found[name] = values if listed else values[0]
    if words:
        return None  # a word too many: typer says which
    for name, (_, _, info) in kinds.items():
        if name not in found:
            if info.default is Ellipsis:
                return None  # a required value missing: typer says which
            found[name] = info.default
    return command, found


_PLAIN_INFO = ("default", "param_decls", "help", "metavar", "min", "max", "show_default", "hidden", "rich_help_panel")


def _plain_info(info: Any) -> bool:
    """Whether a parameter's declaration asks only for what :func:`_plain_args` does (no callback, environment variable,
    prompt, path test, custom parser, clamping, counting...)."""
    blank = type(info)()
    return all(k in _PLAIN_INFO or v == getattr(blank, k) for k, v in vars(info).items())


def _plain_kind(annotation: Any) -> tuple[Any, bool]:
    """(the type of one value, whether a list of them is given), or (None, False) for a type not read here."""
    import typing
    from enum import Enum

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    listed = typing.get_origin(annotation) is list
    if listed:
        annotation = typing.get_args(annotation)[0]
    plain = annotation in (bool, str, int, float, Path) or (
        isinstance(annotation, type) and issubclass(annotation, Enum)
    )
    if not plain or (listed and annotation is bool):
        return None, False
    return annotation, listed


_INT = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT = re.compile(r"[+-]?([0-9]{1,18}(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


def _plain_value(kind: Any, text: str, info: Any) -> Any:
    """``text`` as a value of ``kind`` within the declaration's bounds, or None when it is not plainly one."""
    if kind is bool or (text.startswith("-") and kind not in (int, float)):
        return None
    if kind is str:
        return text
    if kind is Path:
        return Path(text) if text else None
    if kind in (int, float):
        if not (_INT if kind is int else _FLOAT).fullmatch(text):
            return None
        value = kind(text)
        low, high = info.min, info.max
        return None if (low is not None and value < low) or (high is not None and value > high) else value
    values = {m.value: m for m in kind}
    return values.get(text)


@app.command("show")
def show_cmd(
    problem_id: Annotated[str, typer.Argument(metavar="ID", help="A problem id, e.g. cpen455-hw2/3.2.")],
    bank: BankOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one problem: statement, reference answers, derivation steps and the checks that verify them."""
    from verify.index import entry
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
        doc = {**entry(p), "statement": p.statement, "parts": parts}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
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


def _execute(
    problems: list[Problem], device: Device, limit: float, as_json: bool, jobs: int | None, report: Path | None
) -> tuple[Any, Any]:
    """The run's output, and the source write-ups' verdicts for the report (None when no report is written): each
    answer is graded after its problem's checks, with its derivations, by the process that made them."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from verify.answers.grade import DEFAULT_TIMEOUT
    from verify.model import Context
    from verify.parallel import default_jobs, run_parallel
    from verify.report.markdown import figure_folder
    from verify.report.writeups import Grading
    from verify.runner import run

    ctx = Context(device="cpu" if device is Device.both else device.value)
    compare_on = "cuda" if device is Device.both else None
    workers = min(jobs or default_jobs(), len(problems))
    total = sum(len(part.checks) for p in problems for part in p.parts)
    with Progress(
        TextColumn("[bold]checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=_console(stderr=True),
        transient=True,
        disable=as_json or not sys.stderr.isatty(),
        auto_refresh=False,  # no drawing thread: workers are forked from this process, and must not inherit its locks
    ) as progress:
        task = progress.add_task("", total=total)

        def tick(r: Result) -> None:
            progress.update(task, advance=1, description=f"{r.problem} {r.part}", refresh=True)

        grading = Grading(timeout=min(DEFAULT_TIMEOUT, limit)) if report is not None else None
        tasks = grading.tasks if grading is not None else None
        if workers > 1:
            folder = figure_folder(report) if report is not None else None
            prepare = grading.prepare if grading is not None else None
            out = run_parallel(problems, ctx, limit, workers, tick, compare_on, folder, tasks, prepare)
        else:
            out = run(problems, ctx, limit=limit, on_result=tick, compare_on=compare_on, tasks=tasks)
        return out, grading.assemble(out.tasks) if grading is not None else None


def _finish(problems: list[Problem], out: Any, writeups: Any, as_json: bool, report: Path | None) -> None:
    if report is not None:
        from verify.report.markdown import write_report

        write_report(problems, out, report, writeups=writeups)
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
    for r in [*out.results, *(other for _, other in out.parity)]:
        if r.status in (Status.FAIL, Status.ERROR):
            con.print(
                f"[{style[r.status]}]{r.status}[/] {r.problem} {r.part} · {escape(r.label)}"
                + (f" on {r.device}" if r.device not in ("-", "cpu") else "")
                + f": {escape(r.evidence)}"
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
    jobs: JobsOpt = None,
) -> None:
    """Check every question in the bank and write the markdown report. Exit 0 only if every check passed."""
    problems = list(_bank(bank).problems)
    _finish(problems, *_execute(problems, device, time_limit, as_json, jobs, report), as_json, report)


@app.command("run")
def run_cmd(
    ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Problem ids to check.")],
    device: DeviceOpt = Device.cpu,
    bank: BankOpt = None,
    as_json: JsonOpt = False,
    report: Annotated[Path | None, typer.Option("--report", help="Also write a markdown report of these.")] = None,
    time_limit: LimitOpt = 60.0,
    jobs: JobsOpt = None,
) -> None:
    """Check a subset of the bank by id."""
    problems = _bank(bank).select(ids)
    _finish(problems, *_execute(problems, device, time_limit, as_json, jobs, report), as_json, report)


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
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=64, help="Answers graded at once.")] = 2,
) -> None:
    """Grade a person's answers against the verified bank: a verdict, the answer as read, the method and evidence for
    each. Exit 0 when every graded answer is correct, 1 otherwise, 2 for a file that cannot be read."""
    from verify.answers.grade import check_ids, grade_answers, read_answers, summary, warm_up

    b = _bank(bank)
    items = read_answers(answers)
    check_ids(b, items)
    warm_up()
    verdicts = grade_answers(b, items, timeout, jobs)
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
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=64, help="Grading workers (answers graded at once).")] = 2,
    bank: BankOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.5, help="Seconds one answer may take.")] = 20.0,
) -> None:
    """Grade a class: every answer file in a folder, in parallel; writes a CSV (a row per file, a column per part) and
    a markdown summary with the most common wrong answers and their diagnosis."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from verify.answers.grade import check_ids, grade_answers, read_answers, warm_up
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
    owners: list[str] = []
    items: list[Any] = []
    for path in files:
        try:
            got = read_answers(path)
            check_ids(b, got)  # an id that cannot name an instance (ID@seed=N) sets the file aside, with the reason
        except VerifyError as exc:
            errors[path.name] = str(exc)
            continue
        results[path.name] = []
        owners += [path.name] * len(got)
        items += got
    with Progress(
        TextColumn("[bold]grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(items))
        verdicts = grade_answers(b, items, timeout, jobs, lambda n: progress.update(task, completed=n))
    for name, verdict in zip(owners, verdicts, strict=True):
        results[name].append(verdict)
    write_atomic(out / "grades.csv", class_csv(results))
    write_atomic(out / "summary.md", class_markdown(results, errors))
    n = sum(len(v) for v in results.values())
    _console().print(
        f"{len(results)} files, {n} answers graded; {len(errors)} unreadable · {out / 'grades.csv'}, {out / 'summary.md'}"
    )


@app.command("variant")
def variant_cmd(
    problem_id: Annotated[
        str | None, typer.Argument(metavar="ID", help="A parametrized problem id, e.g. cpen455-hw2/2.2.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, max=10**12 - 1, help="The instance's seed.")] = None,
    count: Annotated[int, typer.Option("--count", min=1, max=500, help="Instances, from --seed on.")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Folder for one sub-folder per instance.")] = Path("variants"),
    list_ids: Annotated[bool, typer.Option("--list", help="List the parametrized problems and exit.")] = False,
    bank: BankOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """New instances of a parametrized question: per instance a folder with the statement (drawn numbers), the answer
    key derived and passed through the question's own checks, and an empty answer file. An instance whose checks do
    not all pass is never written; the next seed is drawn instead and the refusal reported."""
    from verify import variants

    b = _bank(bank)
    if list_ids:
        for pid in variants.parametrized_ids(b):
            print(pid)
        return
    if problem_id is None or seed is None:
        raise VerifyError("give a problem id and --seed N (or --list)")
    result = variants.emit(b, problem_id, seed, count)
    folders = [variants.write_instance(item, out) for item in result.emitted]
    if as_json:
        doc = {
            "instances": [
                {**variants.instance_json(i), "folder": str(f)} for i, f in zip(result.emitted, folders, strict=True)
            ],
            "refused": [{"seed": s, "why": why} for s, why in result.refused],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    for s, why in result.refused:
        print(f"seed {s} refused (its checks did not all pass: {why}); the next seed was drawn")
    for item, folder in zip(result.emitted, folders, strict=True):
        print(f"{item.problem.id}: {item.output.counts()['pass']} checks passed → {folder}")


class Unit(StrEnum):
    macs = "macs"
    flops = "flops"
    exact = "exact"


def parse_shape(text: str) -> tuple[int, ...]:
    """'1,3,224,224' → (1, 3, 224, 224), with a one-line error for anything else."""
    try:
        shape = tuple(int(x) for x in text.replace("x", ",").split(","))  # an empty part ('1,3,,8', '1,3,') too
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
    input_shape: Annotated[
        list[str] | None,
        typer.Option("--input", help="Input shape, e.g. 1,3,224,224 or 1,4,128; repeat for several inputs."),
    ] = None,
    input_dtype: Annotated[
        list[str] | None,
        typer.Option("--input-dtype", help="float32 (default), long for token indices, ...; one, or one per --input."),
    ] = None,
    unit: Annotated[
        Unit, typer.Option("--convention", help="macs, flops (2·MACs) or exact (k mults + k−1 adds).")
    ] = Unit.macs,
    bias: Annotated[bool, typer.Option("--bias/--no-bias", help="Count one add per output for a bias.")] = False,
    batchnorm: Annotated[
        bool, typer.Option("--count-bn", help="Count normalization layers instead of folding them.")
    ] = False,
    elementwise: Annotated[
        bool,
        typer.Option("--count-elementwise", help="Count element-wise work: activations, pooling, softmax, upsampling."),
    ] = False,
    training: Annotated[
        bool,
        typer.Option(
            "--training",
            help="Also count the backward pass of convolutions, matrix products and attention: operand gradients "
            "(grouped divided once; no input gradient for the first layer), bias-gradient sums with --bias. "
            "macs or flops only.",
        ),
    ] = False,
    train_mode: Annotated[
        bool, typer.Option("--train-mode", help="Run the model in train mode (default: eval mode).")
    ] = False,
    rf: Annotated[
        bool, typer.Option("--rf/--no-rf", help="Receptive fields by index propagation through the operators.")
    ] = True,
    confirm_rf: Annotated[
        bool,
        typer.Option("--confirm-rf", help="Also measure the gradient support of sampled real units and compare."),
    ] = False,
    list_models: Annotated[bool, typer.Option("--list-models", help="List the named models and exit.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Count any network: per-layer output shape, parameters, MACs/FLOPs under a named convention, outputs, and
    receptive fields (min, max and stride over output positions)."""
    import contextlib

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
    from verify.count.analyze import analyze, input_dtypes
    from verify.count.conventions import Convention
    from verify.count.render import as_json as json_doc
    from verify.count.render import print_table

    shapes = [parse_shape(text) for text in input_shape]
    if input_dtype:  # checked before the model is loaded; none given: the model's own precision
        input_dtype = input_dtypes(
            [k.strip() for text in input_dtype for k in text.split(",") if k.strip()], len(shapes)
        )
    conv = Convention(unit.value, bias=bias, batchnorm=batchnorm, elementwise=elementwise)
    with contextlib.redirect_stdout(sys.stderr):  # whatever the model prints stays off stdout (and --json)
        module, name = load_model(model)
        result = analyze(module, shapes, conv, name=name, training=training, dtypes=input_dtype, train_mode=train_mode)
        if rf or confirm_rf:
            _receptive_fields(module, shapes, result, confirm_rf, input_dtype)
    if as_json:
        print(json.dumps(json_doc(result, training), indent=2))
        return
    print_table(result, training, _console())


def _receptive_fields(
    module: Any,
    shapes: Any,
    result: Any,
    confirm: bool = False,
    dtypes: Any = None,
) -> None:
    """Every layer's receptive field (containers too: a residual block's output sees the union of its branches) and
    the model outputs', by index propagation through the traced operators; ``confirm``: also the gradient support of
    sampled real units, compared (printed to stderr)."""
    from verify.count.receptive import field_json, graph_fields
    from verify.count.support import confirm_fields, example_inputs

    g = graph_fields(result.trace)  # the very run the counts read (eval unless --train-mode), not a second one
    layers = g.layers()
    for layer in result.layers:
        outs = layers.get(layer.name)
        if outs and outs[0][1] is not None:
            layer.receptive_field = field_json(outs[0][1])
    outputs = [(path, field_json(f)) for path, f in g.outputs() if f is not None]
    if len(outputs) == 1:
        result.receptive_field = outputs[0][1]
    elif outputs:
        result.receptive_field = {"outputs": dict(outputs)}
    if g.approximated:
        print(
            "verify: receptive fields: taken as seeing every position of their inputs (no exact index map): "
            + ", ".join(f"{k} ({v}×)" for k, v in sorted(g.approximated.items())),
            file=sys.stderr,
        )
    if confirm:
        if result.inputs:  # the inputs the counts ran on (shapes and dtypes)
            shapes, dtypes = [s for s, _ in result.inputs], [d for _, d in result.inputs]
        result.confirm_rf = confirm_fields(module, example_inputs(shapes, dtypes), g)
        for line in result.confirm_rf:
            print(line, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point: usage errors and VerifyError become one line on stderr and exit 2, never a traceback."""
    try:
        plain = _plain_args(sys.argv[1:] if argv is None else argv)
        if plain is not None:
            command, values = plain
            command(**values)
            return 0
        code = app(args=argv, standalone_mode=False, prog_name="verify")
        if code == 130:  # typer turns a KeyboardInterrupt (Ctrl-C, also inside a model's forward) into 130
            print("verify: interrupted", file=sys.stderr)
            return 130
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
    except BrokenPipeError:  # the reader of the output left (`verify all --json | head`): nothing more to say
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the final flush cannot fail
        return 1
    except Exception as exc:  # a fault of ours still ends in one line, never a traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"verify: internal error: {type(exc).__name__}: {first[:300]}", file=sys.stderr)
        return 1
    return int(code or 0)


def entry() -> None:
    """The console script: :func:`main`, then the process ends at once, without tearing down the interpreter (after
    a run of the bank that takes a second of collecting sympy's and torch's objects, for nothing)."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
