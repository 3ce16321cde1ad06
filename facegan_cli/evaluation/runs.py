"""Training runs at a glance: `facegan runs list | show | plot`.

Everything here reads what the training loop writes into a run directory (core.rundir): config.json
(family and settings), run.json (status; a "running" run whose lock no live process holds was killed:
`RunDir.effective_status`), metrics.jsonl (loss lines every --log-every steps, and the evaluation lines
of --eval, which carry `eval_n`), checkpoints/ (with checkpoints/best) and samples/. Nothing is written
into a run, so a run is read safely while it trains.

`runs plot` draws with matplotlib (evaluation/run_plot.py); listing and showing runs import neither it nor
torch.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import not_regular, read_regular_text, special_kind
from facegan_cli.core.rundir import RunDir, evaluation_lines, list_checkpoints
from facegan_cli.core.runschema import status_problem

# Fields of metrics.jsonl lines that say where and how fast, not how well: never plotted.
BOOKKEEPING = frozenset({"step", "kimg", "epoch", "images_per_s", "resolution", "phase", "batch", "eval_n",
                         "eval_seconds", "kid_std", "is_std"})
# The headline fields `train --eval` writes, in the order they are looked for, and whether higher is better.
EVAL_METRICS = {"fid": False, "kid": False, "swd": False, "is": True, "precision": True}
SEARCH_DEPTH = 3  # folder levels below DIR searched for runs (runs/, runs/group/, runs/group/sub/)
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
        # A run made by `facegan import`: the project and files (SHA-256) its weights came from.
        "imported_from": config.get("imported_from") if isinstance(config.get("imported_from"), dict) else None,
        "fine_tuned": "fine_tune" in config,
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
