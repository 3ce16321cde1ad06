"""`facegan train ... --eval fid,kid --eval-every N --eval-ref REF`: metrics while training.

A tiny DCGAN on smooth random images, scored with the random-initialised FID Inception of the metrics
tests on 4 samples per evaluation (cheap; the FIDs are then far from real ones, but every property tested
here is about bookkeeping, which the sample count does not change): the metric lines, TensorBoard, the
best generator in checkpoints/best, and resumes (lengthened, and after a kill that lost a checkpoint)
that write exactly the lines of the uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from metrics_helpers import MetricsWorld, world  # noqa: F401
from safetensors.torch import load_file
from train_helpers import TINY_DCGAN, write_image_folder

from facegan_cli.core.checkpoint import list_checkpoints, state_path_of
from facegan_cli.core.rundir import RunDir
from facegan_cli.metrics.in_training import evaluation_lines, prune_best

pytestmark = pytest.mark.usefixtures("one_thread")
TIMING = ("eval_seconds", "images_per_s")  # the only fields allowed to differ between two runs


@pytest.fixture
def setup(world: MetricsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:  # noqa: F811
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "home"))  # the reference's features are cached here
    faces = write_image_folder(tmp_path / "faces", n=16)
    return {"faces": faces, "eval": ["--eval", "fid,kid", "--eval-every", "2", "--eval-ref", str(faces), "--eval-n", "4",
                                     "--eval-inception-weights", str(world.weights)]}


def lines(run: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_eval_lines_best_checkpoint_and_resumes(
    setup: dict[str, Any], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    common = ["--data", setup["faces"], "--ckpt-every", "2", "--log-every", "2", *TINY_DCGAN, *setup["eval"]]
    full = tmp_path / "full"
    done = cli("train", "dcgan", "--out", full, "--steps", "4", *common, "--tensorboard")
    assert done.exit_code == 0, done.output + done.stderr
    expected = lines(full)
    evals = evaluation_lines(expected)
    (cached,) = (tmp_path / "home" / "features").glob("*.npz")  # the reference's features, stored once
    stored = cached.stat().st_mtime_ns
    assert [e["step"] for e in evals] == [2, 4] and all(e["eval_n"] == 4 for e in evals)
    assert all(e["fid"] > 0 and "kid" in e and "kid_std" in e for e in evals)
    # The best generator is kept: that of the lowest FID (the first metric), with the step's weights.
    best_step = min(evals, key=lambda e: e["fid"])["step"]
    (best,) = list_checkpoints(full / "checkpoints" / "best")
    assert best.name == f"ckpt-{best_step:09d}.safetensors"
    saved = load_file(str(full / "checkpoints" / f"ckpt-{best_step:09d}.safetensors"))
    kept = load_file(str(best))
    assert kept and all(torch.equal(kept[k], saved[k]) for k in kept) and all(k.startswith("G.") for k in kept)
    sampled = cli("sample", "--ckpt", full / "checkpoints" / "best", "--n", "2", "--out", tmp_path / "b.png",
                  "--device", "cpu", "--json")
    assert sampled.exit_code == 0 and json.loads(sampled.stdout)["step"] == best_step
    # The number is `facegan metrics fid` of the step's checkpoint with the run's seed and --eval-n.
    scored = cli("metrics", "fid", setup["faces"], "--ckpt", full, "--n", "4", "--seed", "0", "--device", "cpu",
                 "--workers", "1", "--inception-weights", setup["eval"][-1], "--json", "--quiet")
    assert json.loads(scored.stdout)["value"] == pytest.approx(evals[-1]["fid"], rel=1e-9)
    # TensorBoard has the evaluations under eval/.
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(full / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/fid")] == [2, 4] and "eval/kid" in events.Tags()["scalars"]

    # Lengthened on resume: the same lines as the uninterrupted run, each evaluation once.
    half = tmp_path / "half"
    assert cli("train", "dcgan", "--out", half, "--steps", "2", *common, "--no-tensorboard").exit_code == 0
    assert cli("train", "dcgan", "--resume", half, "--steps", "4", "--device", "cpu", "--quiet").exit_code == 0
    assert lines(half) == expected

    # Killed after the evaluation of step 4 but before its checkpoint: the resume (from step 2) drops the
    # lines and the best generator of the lost steps and writes them again, identically.
    killed = tmp_path / "killed"
    shutil.copytree(full, killed)
    weights = killed / "checkpoints" / "ckpt-000000004.safetensors"
    weights.unlink()
    state_path_of(weights).unlink()
    RunDir(killed).set_status("running")  # what run.json said when the process died
    again = cli("train", "dcgan", "--resume", killed, "--device", "cpu", "--quiet")
    assert again.exit_code == 0, again.output + again.stderr
    assert lines(killed) == expected
    assert [p.name for p in list_checkpoints(killed / "checkpoints" / "best")] == [best.name]
    # Four more runs and resumes read the reference from the cache: never featurised (or written) again.
    assert [p.stat().st_mtime_ns for p in (tmp_path / "home" / "features").glob("*.npz")] == [stored]


def test_best_folder_follows_the_newest_checkpoint(tmp_path: Path) -> None:
    """checkpoints/best keeps the newest best and the newest from no later than the newest checkpoint."""
    best = tmp_path / "best"
    best.mkdir()

    def names() -> list[int]:
        return [int(p.name[5:14]) for p in list_checkpoints(best)]

    for step in (2, 4, 6):
        (best / f"ckpt-{step:09d}.safetensors").write_bytes(b"x")
    prune_best(best, saved_step=4)
    assert names() == [4, 6]  # 2 is neither the newest nor the one a resume from step 4 needs
    prune_best(best, saved_step=4, resumed=True)
    assert names() == [4]  # 6 was evaluated after the checkpoint the run resumes from
    prune_best(best, saved_step=8)
    assert names() == [4]


def test_run_with_best_is_still_a_run_for_force(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", {"family": "dcgan", "model": {}, "data": {}, "train": {}})
    run.best.mkdir()
    (run.best / "ckpt-000000002.safetensors").write_bytes(b"x")
    run.record(run.best / "ckpt-000000002.safetensors")  # as the loop records what keep_best wrote
    run.release()
    RunDir.check_new(run.path, force=True)  # replaceable: every entry recorded
    # Named like a best checkpoint, but the run never wrote it: a name proves nothing.
    (run.best / "ckpt-000000004.safetensors").write_bytes(b"mine")
    with pytest.raises(Exception, match="ckpt-000000004"):
        RunDir.check_new(run.path, force=True)
    (run.best / "ckpt-000000004.safetensors").unlink()
    (run.best / "mine.txt").write_text("keep")
    with pytest.raises(Exception, match="mine.txt"):
        RunDir.check_new(run.path, force=True)


@pytest.mark.parametrize(
    "family,args,message",
    [
        ("dcgan", ["--eval", "fid"], "--eval needs --eval-ref"),
        ("dcgan", ["--eval", "fid,ssim", "--eval-ref", "x"], "ssim is not a metric computed while training"),
        ("dcgan", ["--eval-every", "5"], "--eval-every only configure(s) --eval"),
        ("stargan", ["--eval", "fid", "--eval-ref", "x"], "stargan is an attribute editor"),
    ],
)
def test_eval_options_refused_clearly(
    family: str, args: list[str], message: str, setup: dict[str, Any], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    result = cli("train", family, "--data", setup["faces"], "--out", tmp_path / "run", "--steps", "1",
                 "--device", "cpu", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.replace("│", " ").split()), result.output
    assert not (tmp_path / "run").exists()


def test_missing_reference_stops_before_training(setup: dict[str, Any], tmp_path: Path, cli: Callable[..., Any]) -> None:
    result = cli("train", "dcgan", "--data", setup["faces"], "--out", tmp_path / "run", "--steps", "2", *TINY_DCGAN,
                 "--eval", "fid", "--eval-ref", tmp_path / "nowhere")
    assert result.exit_code == 1 and "nowhere" in result.stderr and "does not exist" in result.stderr
    assert not list_checkpoints(tmp_path / "run" / "checkpoints")


@pytest.mark.slow
def test_eval_under_torchrun(setup: dict[str, Any], tmp_path: Path) -> None:
    """Two gloo ranks train and evaluate; rank 0 alone writes each evaluation once, and the number is that of
    `metrics fid` on the checkpoint (every rank sampled rank 0's generator)."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "facegan_cli",
           "train", "dcgan", "--data", str(setup["faces"]), "--out", str(out), "--steps", "4", "--ckpt-every", "2",
           "--log-every", "2", *TINY_DCGAN, *setup["eval"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evals = evaluation_lines(lines(out))
    assert [e["step"] for e in evals] == [2, 4]
    assert list_checkpoints(out / "checkpoints" / "best")
    scored = subprocess.run(
        [sys.executable, "-m", "facegan_cli", "metrics", "fid", str(setup["faces"]), "--ckpt", str(out), "--n", "4",
         "--device", "cpu", "--workers", "1", "--inception-weights", setup["eval"][-1], "--json", "--quiet"],
        capture_output=True, text=True, env=env, timeout=300)
    assert json.loads(scored.stdout)["value"] == pytest.approx(evals[-1]["fid"], rel=1e-9)


def test_higher_is_better_metrics_pick_the_largest_best(setup: dict[str, Any]) -> None:
    """is and pr (precision) are better when higher: the best, and a resume's restored best, is the largest."""
    from facegan_cli.metrics.in_training import TrainingEvaluator

    evaluator = TrainingEvaluator("is,pr", setup["faces"], 20, 0, torch.device("cpu"))
    assert evaluator.keys == ["is", "precision"] and evaluator.higher_is_better
    evaluator.restore([{"step": 2, "eval_n": 20, "is": 1.5}, {"step": 2, "loss_G": 9.0},
                       {"step": 4, "eval_n": 20, "is": 1.9}, {"step": 6, "eval_n": 20, "is": 1.7}])
    assert evaluator.best == 1.9 and evaluator.better(2.0, evaluator.best) and not evaluator.better(1.8, 1.9)
    lower = TrainingEvaluator("swd,fid", setup["faces"], 20, 0, torch.device("cpu"))
    lower.restore([{"step": 2, "eval_n": 20, "swd": 3.0}, {"step": 4, "eval_n": 20, "swd": 2.0}])
    assert lower.best == 2.0 and not lower.higher_is_better


@pytest.mark.slow
def test_eval_is_pr_swd_lines_best_and_exact_resume(
    setup: dict[str, Any], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """--eval is,pr,swd: the values of the metrics commands, the best by the highest IS, and a resume that
    writes exactly the uninterrupted run's lines and keeps its best generator."""
    evaluation = ["--eval", "is,pr,swd", "--eval-every", "2", "--eval-ref", str(setup["faces"]), "--eval-n", "20",
                  "--eval-inception-weights", setup["eval"][-1]]
    common = ["--data", setup["faces"], "--ckpt-every", "2", "--log-every", "2", *TINY_DCGAN, *evaluation]
    full = tmp_path / "full"
    done = cli("train", "dcgan", "--out", full, "--steps", "4", *common)
    assert done.exit_code == 0, done.output + done.stderr
    expected = lines(full)
    evals = evaluation_lines(expected)
    assert [e["step"] for e in evals] == [2, 4]
    assert all({"is", "is_std", "precision", "recall", "density", "coverage", "swd"} <= set(e) for e in evals)
    best_step = max(evals, key=lambda e: e["is"])["step"]
    (best,) = list_checkpoints(full / "checkpoints" / "best")
    assert best.name == f"ckpt-{best_step:09d}.safetensors"
    # The numbers are `facegan metrics is` / `pr` of the last checkpoint with the run's seed and --eval-n.
    common_metrics = ["--ckpt", full, "--n", "20", "--seed", "0", "--device", "cpu", "--workers", "1",
                      "--inception-weights", setup["eval"][-1], "--json", "--quiet"]
    scored = json.loads(cli("metrics", "report", setup["faces"], "--metrics", "is,pr", *common_metrics).stdout)
    assert scored["values"]["is.is_mean"] == pytest.approx(evals[-1]["is"], rel=1e-9)
    assert scored["values"]["pr.precision"] == evals[-1]["precision"]
    # Lengthened on resume: the same lines and the same best generator.
    half = tmp_path / "half"
    assert cli("train", "dcgan", "--out", half, "--steps", "2", *common).exit_code == 0
    assert cli("train", "dcgan", "--resume", half, "--steps", "4", "--device", "cpu", "--quiet").exit_code == 0
    assert lines(half) == expected
    assert [p.name for p in list_checkpoints(half / "checkpoints" / "best")] == [best.name]
