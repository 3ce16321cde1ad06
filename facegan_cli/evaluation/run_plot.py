"""`facegan runs plot`: the curves of one or several runs in one figure, drawn with matplotlib (Agg).

One panel per quantity (the --eval metrics first, then every loss), several runs overlaid in one colour
each (matplotlib's tab10, Tableau's ten categorical colours); a loss is drawn faint as logged and strong
smoothed (TensorBoard's debiased exponential moving average), an evaluation as points joined by a line.
Every panel has its axes labelled (step; the quantity) and a legend. PNG, SVG or PDF.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.outputs import check_new_file, check_outside_inputs, new_file
from facegan_cli.core.rundir import RunDir
from facegan_cli.evaluation.runs import BOOKKEEPING, EVAL_METRICS, _number, _open_run, check_run_files

FORMATS = ("png", "svg", "pdf")
DPI = 100  # --width and --panel-height are pixels of the PNG (and the same size in points / 0.72 elsewhere)
LEGEND_HEIGHT = 28  # pixels above the panels for the figure's legend
# Tableau's ten categorical colours (matplotlib's tab10): distinct on white, and for the common colour-vision
# deficiencies.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so the first points are not pulled
    towards zero."""
    out, average = [], 0.0
    for i, value in enumerate(values):
        average = average * weight + (1 - weight) * value
        out.append(average / (1 - weight ** (i + 1)) if weight > 0 else value)
    return out


def _series(records: list[dict[str, Any]]) -> tuple[dict[str, list[tuple[float, float]]], set[str]]:
    """Per quantity, its (step, value) points; and which quantities are evaluations."""
    series: dict[str, list[tuple[float, float]]] = {}
    evaluated: set[str] = set()
    for record in records:
        step = _number(record.get("step"))
        if step is None:
            continue
        is_eval = "eval_n" in record
        for key, raw in record.items():
            value = _number(raw)
            if key in BOOKKEEPING or value is None:
                continue
            series.setdefault(key, []).append((step, value))
            if is_eval:
                evaluated.add(key)
    return series, evaluated


def _names(runs: list[RunDir]) -> list[str]:
    """Legend names: the folder names, with their parent where two runs share a name."""
    names = [run.path.name for run in runs]
    return [f"{run.path.parent.name}/{name}" if names.count(name) > 1 else name for run, name in zip(runs, names)]


def figure_format(out: Path, fmt: str | None) -> str:
    """The format of the figure: --format, else the suffix of --out (they must agree when both are given)."""
    suffix = out.suffix.lower().lstrip(".")
    chosen = (fmt or suffix).lower()
    if chosen not in FORMATS:
        raise FaceganError(f"--out {out}: {chosen or 'no suffix'} is not a figure format facegan writes.",
                           f"Name the figure like curves.png (or .svg, .pdf), or give --format {'|'.join(FORMATS)}.")
    if fmt and suffix and suffix != chosen:
        raise UsageProblem(f"--format {fmt} does not match --out {out}.", f"Name the figure like curves.{chosen}.")
    return chosen


def _draw_panel(axes: Any, key: str, lines: list[tuple[int, str, list[tuple[float, float]]]], evaluation: bool,
                weight: float) -> None:
    """One quantity: raw and smoothed curves of every run that logged it (evaluations: points)."""
    for colour, name, points in lines:
        steps = [x for x, _ in points]
        values = [y for _, y in points]
        tint = f"C{colour}"
        if evaluation:
            axes.plot(steps, values, color=tint, marker="o", markersize=5, linewidth=1.5, label=name)
        elif len(points) == 1:
            axes.plot(steps, values, color=tint, marker="o", linestyle="none", label=name)
        else:  # the values as logged, faint; over them the smoothed curve, which the legend names
            axes.plot(steps, values, color=tint, alpha=0.3, linewidth=1)
            axes.plot(steps, smooth(values, weight), color=tint, linewidth=2, label=name)
    from matplotlib.ticker import MaxNLocator

    axes.set_title(key + (" (lower is better)" if key in EVAL_METRICS else ""), fontsize=10)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    axes.set_xlabel("step")
    axes.set_ylabel(key)
    axes.grid(True, color="0.9")
    axes.legend(fontsize=7, loc="best", frameon=False)  # which run is which, in every panel


def plot_runs(
    paths: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str], smoothing: float = 0.6,
    width: int = 1200, panel_height: int = 280, force: bool = False, fmt: str | None = None,
) -> dict[str, Any]:
    """Draw the curves of one or several runs into one figure (`runs plot`); returns what was drawn."""
    out = Path(out)
    chosen = figure_format(out, fmt)
    check_new_file(out, force)
    if not 0 <= smoothing < 1:
        raise UsageProblem(f"--smooth {smoothing} is outside [0, 1).", "Use e.g. 0.6 (0 draws the values as logged).")
    if width < 400 or panel_height < 150:
        raise UsageProblem(f"A {width} px wide figure with {panel_height} px panels is too small to read.",
                           "Use --width 400 or more and --panel-height 150 or more.")
    runs = [_open_run(path) for path in paths]
    if not runs:
        raise FaceganError("No run to plot.", "Pass one or more run directories.")
    # Inside a run, the figure would be a file the run never wrote: --force on that run would refuse.
    check_outside_inputs(out, [("RUN", run.path) for run in runs])
    for run in runs:
        check_run_files(run, status=False)  # a FIFO metrics.jsonl would block the figure
    per_run = [_series(run.metric_records()) for run in runs]
    evaluated = set().union(*(e for _, e in per_run))
    order: list[str] = [k for k in EVAL_METRICS if k in evaluated]
    order += sorted(k for k in evaluated if k not in order)
    for series, _ in per_run:
        order += [k for k in series if k not in order]
    if not order:
        raise FaceganError(
            f"{', '.join(str(r.path) for r in runs)} logged no metrics yet (metrics.jsonl is empty or missing).",
            "Plot the run once it has trained --log-every steps.",
        )
    import matplotlib  # imported here: only `runs plot` needs it

    matplotlib.use("Agg")  # files only, never a window (and no display needed)
    from matplotlib.figure import Figure

    names = _names(runs)
    columns = 1 if len(order) == 1 else 2
    rows = -(-len(order) // columns)
    height = LEGEND_HEIGHT + rows * panel_height
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    # Margins in pixels: the legend row and each panel's title above, tick labels and "step" below.
    grid = figure.add_gridspec(rows, columns, top=1 - (LEGEND_HEIGHT + 24) / height, bottom=48 / height,
                               left=70 / width, right=1 - 15 / width, hspace=80 / (panel_height - 80),
                               wspace=0.25)
    for k, key in enumerate(order):
        lines = [(i % 10, names[i], series[key]) for i, (series, _) in enumerate(per_run) if key in series]
        _draw_panel(figure.add_subplot(grid[k // columns, k % columns]), key, lines, key in evaluated, smoothing)
    # Above the panels: the runs in their colours, and how to read the lines.
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=f"C{i % 10}", linewidth=3) for i in range(len(runs))]
    handles += [Line2D([], [], color="0.4", alpha=0.35, linewidth=1),
                Line2D([], [], color="0.4", linewidth=2),
                Line2D([], [], color="0.4", marker="o", markersize=5, linewidth=1.5)]
    labels = [*names, "loss as logged", f"smoothed (EMA {smoothing:g})" if smoothing > 0 else "loss", "evaluation"]
    figure.legend(handles, labels, loc="upper left", ncol=len(labels), frameon=False, fontsize=9,
                  bbox_to_anchor=(0.005, 1.0), handlelength=1.6, columnspacing=1.2)
    with new_file(out, force, "runs-plot") as tmp:
        figure.savefig(tmp, format=chosen, dpi=DPI, facecolor="white")
    return {"out": str(out), "format": chosen, "runs": [str(r.path) for r in runs], "names": names,
            "panels": order, "width": width, "height": height, "smoothing": smoothing}
