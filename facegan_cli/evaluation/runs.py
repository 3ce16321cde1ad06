"""Training runs at a glance: `facegan runs list | show | plot`.

Everything here reads what the training loop writes into a run directory (core.rundir): config.json
(family and settings), run.json (status; a "running" run whose lock no live process holds was killed:
`RunDir.effective_status`), metrics.jsonl (loss lines every --log-every steps, and the evaluation lines
of --eval, which carry `eval_n`), checkpoints/ (with checkpoints/best) and samples/. Nothing is written
into a run, so a run is read safely while it trains.

`plot_runs` draws with PIL alone (no plotting package): one panel per quantity (the --eval metrics
first, then every loss), several runs overlaid in one colour each; losses are drawn faint as logged and
strong smoothed (TensorBoard's debiased exponential moving average), evaluations as points.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facegan_cli.core.checkpoint import list_checkpoints
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.files import not_regular, read_regular_text, special_kind
from facegan_cli.core.outputs import check_new_file, check_outside_inputs, new_file
from facegan_cli.core.rundir import RunDir
from facegan_cli.core.runschema import status_problem
from facegan_cli.data.figure import is_image_path
from facegan_cli.data.grid import save_png
from facegan_cli.metrics.in_training import evaluation_lines

# Fields of metrics.jsonl lines that say where and how fast, not how well: never plotted.
BOOKKEEPING = frozenset({"step", "kimg", "epoch", "images_per_s", "resolution", "phase", "batch", "eval_n",
                         "eval_seconds", "kid_std", "is_std"})
# The headline fields `train --eval` writes, in the order they are looked for, and whether higher is better.
EVAL_METRICS = {"fid": False, "kid": False, "swd": False, "is": True, "precision": True}
SEARCH_DEPTH = 3  # folder levels below DIR searched for runs (runs/, runs/group/, runs/group/sub/)
# Tableau's ten categorical colours: distinct on white, and for the common colour-vision deficiencies.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
_STEP_FILE = re.compile(r"(\d+)")


def is_run(path: Path) -> bool:
    """A directory `facegan train` wrote: a config.json beside a run.json or a checkpoints/ folder (exists(),
    not is_file(): a run whose config.json or run.json was replaced by a FIFO is listed, as unreadable)."""
    return (path / "config.json").exists() and ((path / "run.json").exists() or (path / "checkpoints").is_dir())


def find_runs(root: str | os.PathLike[str]) -> list[Path]:
    """The run directories at or below `root` (SEARCH_DEPTH levels; hidden folders and runs' insides skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise FaceganError(f"{root} is not a folder.", "Pass the folder that holds your runs (e.g. runs/).")
    if is_run(root):
        return [root]
    found: list[Path] = []
    level = [root]
    for _ in range(SEARCH_DEPTH):
        below: list[Path] = []
        for folder in level:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue  # unreadable: nothing of it can be listed
            for child in children:
                (found if is_run(child) else below).append(child)
        level = below
    return sorted(found)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _last_activity(run: RunDir, status: dict[str, Any]) -> float | None:
    times = [float(status["time"])] if _number(status.get("time")) is not None else []
    for path in (run.metrics_path, *list_checkpoints(run.checkpoints)[-1:]):
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            continue
    return max(times) if times else None


def _metric_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The last and the best --eval values (by the first metric the run evaluates), with their steps."""
    evals = evaluation_lines(records)
    if not evals:
        return {"last_metric": None, "best_metric": None}
    key = next((k for k in EVAL_METRICS if k in evals[0]), None)
    if key is None:
        return {"last_metric": None, "best_metric": None}
    scored = [e for e in evals if _number(e.get(key)) is not None]
    if not scored:
        return {"last_metric": None, "best_metric": None}
    best = (max if EVAL_METRICS[key] else min)(scored, key=lambda e: e[key])
    return {"last_metric": {"name": key, "value": scored[-1][key], "step": scored[-1].get("step")},
            "best_metric": {"name": key, "value": best[key], "step": best.get("step")}}


def check_run_files(run: RunDir, status: bool = True) -> None:
    """FaceganError naming run.json or metrics.jsonl when one is not a regular file (a FIFO would block the
    listing) or, with `status`, when run.json does not hold a valid status (core.runschema)."""
    status_path = run.path / "run.json"
    for path, what in ((status_path, "The run status"), (run.metrics_path, "The metrics log")):
        if os.path.lexists(path):
            kind = special_kind(path)
            if kind is not None:
                raise not_regular(path, what, kind)
    if status and status_path.is_file():
        try:
            payload = json.loads(read_regular_text(status_path, "The run status"))
        except (OSError, ValueError) as exc:
            raise FaceganError(f"{status_path} cannot be read ({exc}).", "") from exc
        problem = status_problem(payload)
        if problem:
            raise FaceganError(f"{status_path} is not a valid run status: {problem}.", "")


def summarize(path: str | os.PathLike[str], now: float | None = None) -> dict[str, Any]:
    """One run as `runs list` reports it: family, status, progress, last and best metric, age.

    A run whose files cannot be read is reported with `error` instead of failing the whole listing."""
    run = RunDir(path)
    now = time.time() if now is None else now
    try:
        config = run.config()
        check_run_files(run)
    except FaceganError as exc:
        return {"run": str(run.path), "name": run.path.name, "status": "unreadable", "error": exc.message}
    status = run.effective_status()
    records = run.metric_records()
    losses = [r for r in records if "eval_n" not in r]
    last = losses[-1] if losses else {}
    train = config.get("train", {})
    step = max((s for s in (_number(status.get("step")), _number(last.get("step"))) if s is not None), default=None)
    kimg = max((k for k in (_number(status.get("kimg")), _number(last.get("kimg"))) if k is not None), default=None)
    activity = _last_activity(run, status)
    return {
        "run": str(run.path),
        "name": run.path.name,
        "family": config.get("family"),
        "status": status.get("status", "unknown"),
        "stale": bool(status.get("stale")),
        "reason": status.get("reason"),
        "step": None if step is None else int(step),
        "steps": train.get("steps") if not train.get("kimg") else None,
        "kimg": kimg,
        "kimg_total": train.get("kimg"),
        **_metric_summary(records),
        "updated": activity,
        "age_s": None if activity is None else round(max(0.0, now - activity), 1),
    }


def list_runs(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Every run at or below `root`, summarised (`runs list`)."""
    now = time.time()
    return {"root": str(root), "runs": [summarize(path, now) for path in find_runs(root)]}


def _open_run(path: str | os.PathLike[str]) -> RunDir:
    run = RunDir(path)
    if not is_run(run.path):
        raise FaceganError(f"{run.path} is not a facegan run directory (no config.json and run.json).",
                           "Pass the --out directory of a `facegan train` run (`facegan runs list` finds them).")
    return run


def _newest_grid(samples: Path) -> Path | None:
    grids = [p for p in samples.glob("*.png") if p.is_file()] if samples.is_dir() else []
    if not grids:
        return None

    def order(path: Path) -> tuple[float, str]:
        return (path.stat().st_mtime, path.name)

    return max(grids, key=order)


def show_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One run in detail (`runs show`): its summary, configuration, status, checkpoints, best checkpoint,
    newest sample grid and the last lines of its metrics."""
    run = _open_run(path)
    summary = summarize(run.path)
    checkpoints = []
    for weights in list_checkpoints(run.checkpoints):
        match = _STEP_FILE.search(weights.name)
        checkpoints.append({"path": str(weights), "step": int(match.group(1)) if match else None,
                            "bytes": weights.stat().st_size})
    best = list_checkpoints(run.best)
    records = run.metric_records() if summary.get("error") is None else []  # a FIFO log would block
    losses = [r for r in records if "eval_n" not in r]
    grid = _newest_grid(run.samples)
    return {
        **summary,
        "config": run.config() if summary.get("error") is None else None,
        "run_json": run.effective_status(),
        "checkpoints": checkpoints,
        "best_checkpoint": str(best[-1]) if best else None,
        "latest_grid": None if grid is None else str(grid),
        "metric_lines": len(records),
        "last_losses": losses[-1] if losses else None,
        "evaluations": evaluation_lines(records),
        "tensorboard": str(run.path / "tensorboard") if (run.path / "tensorboard").is_dir() else None,
    }


# --- plotting ------------------------------------------------------------------------------------------


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


def _nice_ticks(low: float, high: float, count: int = 5, whole: bool = False) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart; at least 1 apart when
    `whole`, for step numbers)."""
    span = high - low
    if span <= 0:
        return [low]
    raw = max(span / max(1, count - 1), 1.0 if whole else 0.0)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def _labels(ticks: list[float]) -> list[str]:
    """Tick labels with as many digits as the ticks' spacing needs (46056 and 46058, not 4.606e+04 twice)."""
    spacing = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(ticks[0]) or 1.0
    largest = max(abs(t) for t in ticks) or 1.0
    if 1e-4 <= spacing and largest < 1e6:
        decimals = max(0, -math.floor(math.log10(spacing)))
        return [f"{t:.{decimals}f}" for t in ticks]
    digits = max(0, math.floor(math.log10(largest)) - math.floor(math.log10(spacing)))
    return [f"{t:.{digits}e}" for t in ticks]


def _faint(colour: tuple[int, int, int], amount: float = 0.65) -> tuple[int, int, int]:
    return tuple(round(c + (255 - c) * amount) for c in colour)  # type: ignore[return-value]


def _panel(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], title: str,
    lines: list[tuple[tuple[int, int, int], list[tuple[float, float]]]], evaluation: bool, weight: float,
    font: Any,
) -> None:
    x0, y0, x1, y1 = box
    left, right, top, bottom = x0 + 64, x1 - 12, y0 + 24, y1 - 28
    draw.text((x0 + 8, y0 + 4), title + ("" if evaluation or weight <= 0 else f" (smoothed {weight:g})"),
              fill=(0, 0, 0), font=font)
    xs = [x for _, points in lines for x, _ in points]
    ys = [y for _, points in lines for _, y in points]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    if y_high == y_low:
        pad = abs(y_low) * 0.05 or 1.0
        y_low, y_high = y_low - pad, y_high + pad
    pad = (y_high - y_low) * 0.05
    y_low, y_high = y_low - pad, y_high + pad

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x_low) / (x_high - x_low) * (right - left),
                bottom - (y - y_low) / (y_high - y_low) * (bottom - top))

    draw.rectangle((left, top, right, bottom), outline=(120, 120, 120), fill=(255, 255, 255))
    y_ticks = _nice_ticks(y_low, y_high)
    for tick, text in zip(y_ticks, _labels(y_ticks)):
        _, y = at(x_low, tick)
        draw.line((left, y, right, y), fill=(232, 232, 232))
        draw.text((left - 6 - draw.textlength(text, font=font), y - 6), text, fill=(60, 60, 60), font=font)
    x_ticks = _nice_ticks(x_low, x_high, whole=True)
    for tick, text in zip(x_ticks, _labels(x_ticks)):
        x, _ = at(tick, y_low)
        draw.line((x, top, x, bottom), fill=(232, 232, 232))
        draw.text((x - draw.textlength(text, font=font) / 2, bottom + 4), text, fill=(60, 60, 60), font=font)
    draw.text((right - draw.textlength("step", font=font), bottom + 15), "step", fill=(60, 60, 60), font=font)
    for colour, points in lines:
        steps = [x for x, _ in points]
        values = [y for _, y in points]
        if evaluation:
            drawn = [at(x, y) for x, y in points]
            if len(drawn) > 1:
                draw.line(drawn, fill=colour, width=2)
            for x, y in drawn:
                draw.ellipse((x - 3.5, y - 3.5, x + 3.5, y + 3.5), fill=colour)
            continue
        if len(points) > 1:
            draw.line([at(x, y) for x, y in points], fill=_faint(colour), width=1)
            draw.line([at(x, y) for x, y in zip(steps, smooth(values, weight))], fill=colour, width=2)
        else:
            x, y = at(steps[0], values[0])
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)


def _names(runs: list[RunDir]) -> list[str]:
    """Legend names: the folder names, with their parent where two runs share a name."""
    names = [run.path.name for run in runs]
    return [f"{run.path.parent.name}/{name}" if names.count(name) > 1 else name for run, name in zip(runs, names)]


def plot_runs(
    paths: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str], smoothing: float = 0.6,
    width: int = 1200, panel_height: int = 280, force: bool = False,
) -> dict[str, Any]:
    """Draw the curves of one or several runs into one PNG (`runs plot`); returns what was drawn."""
    out = Path(out)
    if not is_image_path(out):
        raise FaceganError(f"--out {out} is not an image file name.", "Name the figure like curves.png.")
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
    font = ImageFont.load_default()
    columns = 1 if len(order) == 1 else 2
    rows = -(-len(order) // columns)
    names = _names(runs)
    legend = 28
    image = Image.new("RGB", (width, legend + rows * panel_height), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    x = 10
    for k, name in enumerate(names):
        colour = PALETTE[k % len(PALETTE)]
        draw.rectangle((x, 9, x + 12, 21), fill=colour)
        draw.text((x + 18, 8), name, fill=(0, 0, 0), font=font)
        x += 36 + int(draw.textlength(name, font=font))
    panel_width = width // columns
    for k, key in enumerate(order):
        lines = [(PALETTE[i % len(PALETTE)], series[key]) for i, (series, _) in enumerate(per_run) if key in series]
        row, column = divmod(k, columns)
        box = (column * panel_width, legend + row * panel_height, (column + 1) * panel_width,
               legend + (row + 1) * panel_height)
        _panel(draw, box, key, lines, key in evaluated, smoothing, font)
    with new_file(out, force, "runs-plot") as tmp:
        save_png(np.asarray(image), tmp)
    return {"out": str(out), "runs": [str(r.path) for r in runs], "names": names, "panels": order,
            "width": image.width, "height": image.height, "smoothing": smoothing}
