"""`facegan runs`: the training runs under a folder, one run in detail, and their curves in one figure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from facegan_cli.cli.common import emit_result, result_table
from facegan_cli.cli.params import group
from facegan_cli.cli.shared_options import REPORT, shared_command
from facegan_cli.evaluation.runs import BOOKKEEPING, list_runs, show_run

app = group("Training runs: `list` them (status, progress, metrics, age), `show` one, `plot` their curves.")


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


def _origin(run: dict[str, Any]) -> str:
    imported = run.get("imported_from")
    if not imported:
        return ""
    return f" (imported from {imported.get('project')}" + (", fine-tuned)" if run.get("fine_tuned") else ")")


def _files(imported: dict[str, Any]) -> str:
    return "\n".join(f"{f.get('file')}  sha256 {str(f.get('sha256'))[:16]}" for f in imported.get("files") or [])


@shared_command(app, "list", *REPORT, epilog="Example: facegan runs list runs/ --json")
def list_(
    json_out: bool,
    folder: Annotated[Path, typer.Argument(help="A folder of runs (searched 3 levels deep), or one run.")] = Path("."),
) -> None:
    """Every run under FOLDER: family, status (a run left 'running' by a killed process shows as killed),
    step or kimg, the last and best --eval metric, and the time since it last wrote."""
    doc = list_runs(folder)
    rows = [(run["run"], (run.get("family") or "") + _origin(run),
             run["status"] + (f" ({run['reason']})" if run.get("reason") and run["status"] == "failed" else ""),
             _progress(run), _metric(run.get("last_metric")), _metric(run.get("best_metric")), _age(run.get("age_s")))
            for run in doc["runs"]]
    columns = ("run", "family", "status", "progress", "last", "best", "age")
    emit_result(doc, json_out, lambda _: result_table(f"runs under {folder}", columns, rows, left=6))


@shared_command(app, "show", *REPORT, epilog="Example: facegan runs show runs/dcgan")
def show(
    json_out: bool,
    run: Annotated[Path, typer.Argument(help="A run directory.")],
) -> None:
    """One run: status, settings, checkpoints (and the best one), the newest sample grid, the last losses."""
    doc = show_run(run)
    train = (doc.get("config") or {}).get("train", {})
    rows = [
        ("family", str(doc.get("family")) + _origin(doc)),
        ("status", doc["status"] + (f" ({doc['reason']})" if doc.get("reason") else "")),
        ("progress", _progress(doc)),
        ("settings", ", ".join(f"{k}={v}" for k, v in train.items() if v is not None)),
        ("checkpoints", "\n".join(c["path"] for c in doc["checkpoints"]) or "none"),
        ("best checkpoint", (doc.get("best_checkpoint") or "") + f"  {_metric(doc.get('best_metric'))}"),
        ("latest grid", doc.get("latest_grid") or "none"),
    ]
    if doc.get("imported_from"):
        rows.insert(1, ("imported files", _files(doc["imported_from"])))
    if doc.get("last_losses"):
        rows.append(("last losses", ", ".join(
            f"{k} {v:.4g}" for k, v in doc["last_losses"].items() if k not in BOOKKEEPING and isinstance(v, float))))
    emit_result(doc, json_out, lambda _: result_table(str(run), ("", ""), rows, show_header=False))


@shared_command(app, "plot", "force", *REPORT,
                epilog="Example: facegan runs plot runs/dcgan runs/dcgan-lr1e-4 --out curves.png\n\n"
                "Example: facegan runs plot runs/dcgan --out curves.pdf --smooth 0.9")
def plot(
    force: bool, json_out: bool,
    runs: Annotated[list[Path], typer.Argument(help="One or more run directories, overlaid in one colour each.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The figure to write (.png, .svg or .pdf).")],
    smoothing: Annotated[float, typer.Option("--smooth", help="Loss smoothing as TensorBoard's (0: none).")] = 0.6,
    width: Annotated[int, typer.Option("--width", help="Figure width in pixels.")] = 1200,
    panel_height: Annotated[int, typer.Option("--panel-height", help="Height of each panel in pixels.")] = 280,
    fmt: Annotated[str | None, typer.Option("--format", help="png, svg or pdf (default: --out's suffix).")] = None,
) -> None:
    """Loss curves (raw and smoothed) and --eval metrics (points) of one or several runs, one panel per quantity
    with labelled axes and a legend, drawn with matplotlib."""
    from facegan_cli.evaluation.run_plot import plot_runs  # matplotlib loads only for a plot

    doc = plot_runs(runs, out, smoothing, width, panel_height, force, fmt)
    emit_result(doc, json_out, lambda d: [d["out"]])
