"""`facegan runs`: the training runs under a folder, one run in detail, and their curves in one figure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from facegan_cli.cli.common import (
    DebugOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    command,
    emit_json,
    emit_line,
    result_console,
)
from facegan_cli.evaluation.runs import BOOKKEEPING, list_runs, plot_runs, show_run

app = typer.Typer(
    help="Training runs: `list` them (status, progress, metrics, age), `show` one, `plot` their curves.",
    no_args_is_help=True,
)

_EXAMPLES = {
    "list": "Example: facegan runs list runs/ --json",
    "show": "Example: facegan runs show runs/dcgan",
    "plot": "Example: facegan runs plot runs/dcgan runs/dcgan-lr1e-4 --out curves.png",
}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _metric(found: dict[str, Any] | None) -> str:
    return "" if not found else f"{found['name']} {found['value']:.4g} @{found['step']}"


def _progress(run: dict[str, Any]) -> str:
    if run.get("kimg_total"):
        return f"{run.get('kimg') or 0:.1f}/{run['kimg_total']:g} kimg"
    step = run.get("step")
    return "" if step is None else f"{step}" + (f"/{run['steps']}" if run.get("steps") else "")


@app.command("list", epilog=_EXAMPLES["list"])
@command
def list_(
    folder: Annotated[Path, typer.Argument(help="A folder of runs (searched 3 levels deep), or one run.")] = Path("."),
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Every run under FOLDER: family, status (a run left 'running' by a killed process shows as killed),
    step or kimg, the last and best --eval metric, and the time since it last wrote."""
    doc = list_runs(folder)
    if json_out:
        emit_json(doc)
        return
    table = Table(title=f"runs under {folder}")
    for column in ("run", "family", "status", "progress", "last", "best", "age"):
        table.add_column(column, justify="right" if column == "age" else "left")
    for run in doc["runs"]:
        status = run["status"] + (f" ({run['reason']})" if run.get("reason") and run["status"] == "failed" else "")
        table.add_row(run["run"], run.get("family") or "", status, _progress(run), _metric(run.get("last_metric")),
                      _metric(run.get("best_metric")), _age(run.get("age_s")))
    result_console().print(table)


@app.command("show", epilog=_EXAMPLES["show"])
@command
def show(
    run: Annotated[Path, typer.Argument(help="A run directory.")],
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """One run: status, settings, checkpoints (and the best one), the newest sample grid, the last losses."""
    doc = show_run(run)
    if json_out:
        emit_json(doc)
        return
    table = Table(title=str(run), show_header=False)
    table.add_column("", justify="left")
    table.add_column("", justify="left")
    table.add_row("family", str(doc.get("family")))
    table.add_row("status", doc["status"] + (f" ({doc['reason']})" if doc.get("reason") else ""))
    table.add_row("progress", _progress(doc))
    train = (doc.get("config") or {}).get("train", {})
    table.add_row("settings", ", ".join(f"{k}={v}" for k, v in train.items() if v is not None))
    table.add_row("checkpoints", "\n".join(c["path"] for c in doc["checkpoints"]) or "none")
    table.add_row("best checkpoint", (doc.get("best_checkpoint") or "") + f"  {_metric(doc.get('best_metric'))}")
    table.add_row("latest grid", doc.get("latest_grid") or "none")
    if doc.get("last_losses"):
        table.add_row("last losses", ", ".join(
            f"{k} {v:.4g}" for k, v in doc["last_losses"].items() if k not in BOOKKEEPING and isinstance(v, float)))
    result_console().print(table)


@app.command("plot", epilog=_EXAMPLES["plot"])
@command
def plot(
    runs: Annotated[list[Path], typer.Argument(help="One or more run directories, overlaid in one colour each.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The figure to write (.png).")],
    smoothing: Annotated[float, typer.Option("--smooth", help="Loss smoothing as TensorBoard's (0: none).")] = 0.6,
    width: Annotated[int, typer.Option("--width", help="Figure width in pixels.")] = 1200,
    panel_height: Annotated[int, typer.Option("--panel-height", help="Height of each panel in pixels.")] = 280,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Loss curves (smoothed) and --eval metrics of one or several runs, in one PNG drawn without matplotlib."""
    doc = plot_runs(runs, out, smoothing, width, panel_height, force)
    emit_json(doc) if json_out else emit_line(doc["out"])
