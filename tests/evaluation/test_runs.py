"""`facegan runs list | show | plot`: what a run directory says, read back for people.

The runs are written the way the training loop writes them (core.rundir: RunDir.create, set_status,
metrics.jsonl lines, checkpoints), without training, so every status can be set up exactly: finished,
stopped, failed, killed (run.json says "running" but no process holds the lock) and really running (the
lock held by this test process).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from facegan_cli.core.checkpoint import save_checkpoint
from facegan_cli.core.rundir import MetricsLog, RunDir
from facegan_cli.evaluation.run_plot import PALETTE, smooth
from facegan_cli.evaluation.runs import find_runs


def make_run(path: Path, status: str | None, steps: int = 40, evals: tuple[float, ...] = (), **extra: Any) -> RunDir:
    """A run directory with `steps` logged steps (a loss that falls, with noise), an evaluation every 10
    steps with the values `evals`, one checkpoint and one sample grid; run.json says `status` (None: left
    as "running", its lock held until the caller releases it)."""
    config = {"family": "dcgan", "model": {"resolution": 8}, "data": {}, "train": {"steps": steps, "kimg": None}}
    run = RunDir.create(path, config)
    rng = np.random.default_rng(len(path.name))
    log = MetricsLog(run.metrics_path)
    for step in range(1, steps + 1):
        log.write({"step": step, "kimg": step * 0.008, "epoch": step / 10, "images_per_s": 100.0,
                   "loss_D": float(1.5 * math.exp(-step / 20) + 0.1 * rng.standard_normal()),
                   "loss_G": float(0.5 + 0.05 * rng.standard_normal())})
        if step % 10 == 0 and step // 10 <= len(evals):
            value = evals[step // 10 - 1]
            log.write({"step": step, "kimg": step * 0.008, "eval_n": 5000, "fid": value, "kid": value / 1000,
                       "kid_std": 0.001, "eval_seconds": 9.5})
    log.close()
    save_checkpoint(run.checkpoints, steps, {"G": {}}, {"family": "dcgan", "model": {}}, None)
    Image.new("RGB", (8, 8), (90, 20, 200)).save(run.samples / f"step-{steps:09d}.png")
    if status is not None:
        run.set_status(status, step=steps, kimg=steps * 0.008, **extra)
        run.release()
    return run


@pytest.fixture
def zoo(tmp_path: Path) -> tuple[Path, RunDir]:
    root = tmp_path / "runs"
    make_run(root / "finished", "finished", evals=(80.0, 50.0, 60.0))
    make_run(root / "stopped", "stopped", steps=20)
    make_run(root / "group" / "failed", "failed", steps=10, reason="diverged: a loss became NaN")
    killed = make_run(root / "killed", None, steps=30)
    killed.release()  # the process died: run.json still says running, nobody holds the lock
    live = make_run(root / "live", None, steps=5)  # this process holds the lock: really running
    (root / "notes").mkdir()  # not a run
    (root / "notes" / "todo.txt").write_text("x")
    return root, live


def test_runs_list_reports_every_status(zoo: tuple[Path, RunDir], cli_json: Callable[..., Any]) -> None:
    root, live = zoo
    try:
        doc = cli_json("runs", "list", root)
    finally:
        live.release()
    runs = {Path(r["run"]).name: r for r in doc["runs"]}
    assert sorted(runs) == ["failed", "finished", "killed", "live", "stopped"]
    assert {name: r["status"] for name, r in runs.items()} == {
        "finished": "finished", "stopped": "stopped", "failed": "failed", "killed": "killed", "live": "running"}
    assert runs["killed"]["stale"] and not runs["live"]["stale"] and not runs["finished"]["stale"]
    assert runs["failed"]["reason"].startswith("diverged") and runs["failed"]["step"] == 10  # found one level down
    assert runs["killed"]["step"] == 30 and runs["live"]["step"] == 5  # from the logged lines while running
    assert all(r["family"] == "dcgan" and r["age_s"] >= 0 for r in runs.values())
    finished = runs["finished"]
    assert finished["step"] == 40 and finished["steps"] == 40
    assert finished["last_metric"] == {"name": "fid", "value": 60.0, "step": 30}
    assert finished["best_metric"] == {"name": "fid", "value": 50.0, "step": 20}
    assert runs["stopped"]["best_metric"] is None  # trained without --eval
    assert find_runs(root / "finished") == [root / "finished"]  # a run itself lists as itself


def test_runs_show(zoo: tuple[Path, RunDir], cli_json: Callable[..., Any]) -> None:
    root, live = zoo
    live.release()
    run = root / "finished"
    save_checkpoint(run / "checkpoints" / "best", 20, {"G": {}}, {"family": "dcgan", "model": {}}, None)
    doc = cli_json("runs", "show", run)
    assert doc["status"] == "finished" and doc["config"]["family"] == "dcgan"
    assert [c["step"] for c in doc["checkpoints"]] == [40]
    assert doc["best_checkpoint"].endswith("best/ckpt-000000020.safetensors")
    assert doc["latest_grid"].endswith("samples/step-000000040.png")
    assert doc["last_losses"]["step"] == 40 and [e["step"] for e in doc["evaluations"]] == [10, 20, 30]


def test_runs_show_refuses_a_folder_that_is_no_run(tmp_path: Path, cli: Callable[..., Any]) -> None:
    result = cli("runs", "show", tmp_path)
    assert result.exit_code == 1 and "not a facegan run directory" in result.stderr


def _drawn(path: Path, width: int, panels: int, panel_height: int) -> np.ndarray:
    with Image.open(path) as image:
        assert image.size == (width, 28 + math.ceil(panels / 2) * panel_height)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # drawn, not blank
    return pixels


def _has_colour(pixels: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return bool((pixels.reshape(-1, 3) == colour).all(axis=1).sum() > 100)


def test_runs_plot_one_and_several(zoo: tuple[Path, RunDir], tmp_path: Path, cli_json: Callable[..., Any],
                                   cli: Callable[..., Any]) -> None:
    root, live = zoo
    live.release()
    one = cli_json("runs", "plot", root / "finished", "--out", tmp_path / "one.png", "--width", 800)
    assert one["panels"] == ["fid", "kid", "loss_D", "loss_G"]  # evaluations first; bookkeeping left out
    pixels = _drawn(tmp_path / "one.png", 800, 4, 280)
    assert _has_colour(pixels, PALETTE[0]) and not _has_colour(pixels, PALETTE[1])
    several = cli_json("runs", "plot", root / "finished", root / "stopped", root / "group" / "failed",
                       "--out", tmp_path / "three.png", "--panel-height", 200)
    assert several["names"] == ["finished", "stopped", "failed"]
    pixels = _drawn(tmp_path / "three.png", 1200, 4, 200)
    assert all(_has_colour(pixels, PALETTE[k]) for k in range(3))  # each run drawn in its colour
    again = cli("runs", "plot", root / "finished", "--out", tmp_path / "one.png")
    assert again.exit_code == 1 and "already exists" in again.stderr  # never overwritten without --force
    assert cli("runs", "plot", root / "finished", "--out", tmp_path / "one.png", "--force").exit_code == 0
    bad = cli("runs", "plot", root / "finished", "--out", tmp_path / "curves.txt")
    assert bad.exit_code == 1 and "not a figure format" in bad.stderr


def test_runs_plot_svg_and_pdf(zoo: tuple[Path, RunDir], tmp_path: Path, cli_json: Callable[..., Any],
                               cli: Callable[..., Any]) -> None:
    root, live = zoo
    live.release()
    svg = cli_json("runs", "plot", root / "finished", "--out", tmp_path / "c.svg")
    text = (tmp_path / "c.svg").read_text()
    assert svg["format"] == "svg" and text.lstrip().startswith("<?xml") and "<svg" in text
    assert "step" in text and "loss_D" in text  # axes labels and panel titles are text in the SVG
    pdf = cli_json("runs", "plot", root / "finished", "--out", tmp_path / "c.pdf", "--format", "pdf")
    assert pdf["format"] == "pdf" and (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")
    clash = cli("runs", "plot", root / "finished", "--out", tmp_path / "d.png", "--format", "svg")
    assert clash.exit_code == 2 and not (tmp_path / "d.png").exists()


def test_runs_plot_needs_logged_metrics(tmp_path: Path, cli: Callable[..., Any]) -> None:
    run = RunDir.create(tmp_path / "fresh", {"family": "dcgan", "model": {}, "data": {}, "train": {}})
    run.release()
    result = cli("runs", "plot", run.path, "--out", tmp_path / "c.png")
    assert result.exit_code == 1 and "logged no metrics yet" in result.stderr
    assert not (tmp_path / "c.png").exists()


def test_smoothing_is_tensorboards() -> None:
    assert smooth([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])  # debiased: no pull towards 0
    assert smooth([0.0, 10.0], 0.5) == pytest.approx([0.0, 10 * 0.5 / 0.75])
    assert smooth([3.0, 4.0], 0.0) == [3.0, 4.0]
