"""The generic training loop through `facegan train dcgan`: run dirs, checkpoints, resume, signals, NaN."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_helpers import invoke_cli
from safetensors.torch import load_file
from train_helpers import TINY_DCGAN, write_image_folder

from facegan_cli.core.checkpoint import list_checkpoints, load_checkpoint
from facegan_cli.core.errors import FaceganError
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.dcgan_trainer import DCGANTrainer
from facegan_cli.train.loop import LoopSettings, run_training


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("imgs") / "faces", n=32)


def train(args: list[str]) -> object:
    result = invoke_cli(["train", "dcgan", *args])
    return result


def test_train_writes_run_directory(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = train(["--data", str(images), "--out", str(out), "--steps", "4", "--ckpt-every", "2",
                    "--log-every", "2", "--sample-every", "2", "--json", *TINY_DCGAN])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "finished" and report["step"] == 4
    config = json.loads((out / "config.json").read_text())
    assert config["family"] == "dcgan" and config["model"]["width"] == 8 and config["model"]["batch"] == 8
    assert config["data"]["images"]["fingerprint"] and config["facegan_version"]  # per named stream
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == [
        "ckpt-000000002.safetensors", "ckpt-000000004.safetensors"]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4]
    assert {"loss_D", "loss_G", "D_x", "D_G_z", "images_per_s"} <= set(lines[0])
    assert (out / "samples" / "step-000000004.png").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    ckpt = load_checkpoint(out)
    assert ckpt.step == 4 and ckpt.meta["family"] == "dcgan" and set(ckpt.modules) == {"G", "D"}


def test_keeps_last_k_checkpoints(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = train(["--data", str(images), "--out", str(out), "--steps", "6", "--ckpt-every", "1",
                    "--keep", "2", *TINY_DCGAN])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["ckpt-000000005.safetensors", "ckpt-000000005.state.safetensors",
                     "ckpt-000000006.safetensors", "ckpt-000000006.state.safetensors"]


def test_refuses_to_overwrite_without_force(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--data", str(images), "--out", str(out), "--steps", "1", *TINY_DCGAN]
    assert train(args).exit_code == 0
    again = train(args)
    assert again.exit_code == 1
    assert "already exists" in again.stderr and "--force" in again.stderr and "Traceback" not in again.output
    assert train([*args, "--force"]).exit_code == 0


# keras64 at full width (its dense first layer) is slow on a CPU; the family contract already resumes every
# family bit-exactly at tiny size, so the full-size preset runs in the slow tier.
@pytest.mark.parametrize("preset_args", [TINY_DCGAN, pytest.param(
    ["--preset", "keras64", "--batch", "4", "--device", "cpu", "--no-tensorboard", "--quiet"], marks=pytest.mark.slow)])
def test_resume_is_bit_exact(images: Path, tmp_path: Path, preset_args: list[str]) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["--data", str(images), "--ckpt-every", "100", "--seed", "3", "--mirror", *preset_args]
    assert train([*common, "--out", str(straight), "--steps", "4"]).exit_code == 0
    assert train([*common, "--out", str(split), "--steps", "2"]).exit_code == 0
    resumed = train(["--resume", str(split), "--steps", "4", "--device", "cpu", "--quiet", "--no-tensorboard"])
    assert resumed.exit_code == 0, resumed.output
    a = load_file(str(straight / "checkpoints" / "ckpt-000000004.safetensors"))
    b = load_file(str(split / "checkpoints" / "ckpt-000000004.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # A run whose halves differ would fail the check above; make sure training actually moved the weights.
    first = load_file(str(split / "checkpoints" / "ckpt-000000002.safetensors"))
    assert not torch.equal(first["G.main.0.weight" if "G.main.0.weight" in first else "G.dense.weight"],
                           b["G.main.0.weight" if "G.main.0.weight" in b else "G.dense.weight"])
    steps = [json.loads(x)["step"] for x in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))
    assert json.loads((split / "config.json").read_text())["train"]["steps"] == 4  # says what ran


def test_resume_rejects_changed_dataset(images: Path, tmp_path: Path) -> None:
    data = write_image_folder(tmp_path / "data", n=16)
    out = tmp_path / "run"
    assert train(["--data", str(data), "--out", str(out), "--steps", "2", *TINY_DCGAN]).exit_code == 0
    write_image_folder(data, n=16, seed=99)  # same names, other pixels
    result = train(["--resume", str(out), "--steps", "4", "--device", "cpu", "--quiet"])
    assert result.exit_code == 1 and "fingerprint" in result.stderr


class _DivergingTrainer(DCGANTrainer):
    """Makes G's weights NaN at step 5, as an exploding learning rate would."""

    def train_step(self, batch, step):  # type: ignore[override]
        if step == 4:
            with torch.no_grad():
                next(self.modules["G"].parameters()).fill_(float("nan"))
        return super().train_step(batch, step)


def test_nan_stops_and_keeps_last_good_checkpoint(images: Path, tmp_path: Path) -> None:
    config = resolve_config("dcgan", "radford64", {"width": 8, "g_width": 8, "batch": 8})
    settings = LoopSettings(steps=20, log_every=100, ckpt_every=2, sample_every=100, tensorboard=False)
    out = tmp_path / "run"
    with pytest.raises(FaceganError, match="NaN or infinite"):
        run_training(_DivergingTrainer, "dcgan", config, {"path": str(images), "split": "all"}, settings, out,
                     device="cpu")
    ckpts = list_checkpoints(out / "checkpoints")
    assert [p.name for p in ckpts][-1] == "ckpt-000000004.safetensors"
    for tensor in load_file(str(ckpts[-1])).values():
        assert torch.isfinite(tensor.float()).all()
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "facegan_cli", *args]


def test_sigterm_saves_and_exits_zero_then_resumes(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        _cli("train", "dcgan", "--data", str(images), "--out", str(out), "--steps", "100000",
             "--log-every", "1", "--ckpt-every", "100000", *TINY_DCGAN),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    deadline = time.time() + 120
    metrics = out / "metrics.jsonl"
    while proc.poll() is None and time.time() < deadline and not (
        metrics.exists() and metrics.read_text().count("\n") >= 2
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "stopped"
    ckpt = load_checkpoint(out)
    assert ckpt.step == status["step"] >= 2
    resumed = train(["--resume", str(out), "--steps", str(ckpt.step + 2), "--device", "cpu", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(out).step == ckpt.step + 2


def test_user_errors_exit_one_without_traceback(tmp_path: Path) -> None:
    missing = train(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), *TINY_DCGAN])
    assert missing.exit_code == 1 and "Traceback" not in missing.output and "nope" in missing.stderr
    bad_preset = train(["--data", str(tmp_path), "--out", str(tmp_path / "r"), "--preset", "huge"])
    assert bad_preset.exit_code == 1 and "radford64" in bad_preset.stderr
    no_out = train(["--data", str(tmp_path)])  # a usage error: exit 2, as Typer's own
    assert no_out.exit_code == 2 and "--out" in no_out.stderr
    bad_resume = train(["--resume", str(tmp_path)])
    assert bad_resume.exit_code == 1 and "not a facegan run directory" in bad_resume.stderr


def test_epochs_become_steps(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = train(["--data", str(images), "--out", str(out), "--epochs", "1.5", "--json", *TINY_DCGAN])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["step"] == 6  # 32 images / batch 8 = 4 steps per epoch


def test_tensorboard_events_when_asked(images: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    args = [a for a in TINY_DCGAN if a != "--no-tensorboard"]
    result = train(["--data", str(images), "--out", str(out), "--steps", "2", "--log-every", "1",
                    "--tensorboard", *args])
    assert result.exit_code == 0, result.output
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
