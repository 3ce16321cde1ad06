"""`facegan train stargan|ccagan|stargan-sagan` end to end on CPU, labels through the generic loop, exact resume."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke_cli
from PIL import Image
from safetensors.torch import load_file
from train_helpers import write_image_folder

from facegan_cli.core.checkpoint import load_checkpoint
from facegan_cli.data.device_data import DeviceImages, EpochOrder
from facegan_cli.data.prepared import PreparedDataset
from facegan_cli.data.stargan_split import protocol_rows, stargan_test_mask
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.loop import LoopSettings, run_training
from facegan_cli.train.stargan_trainer import StarGANTrainer

TINY = ["--split-protocol", "celeba", "--g-width", "8", "--d-width", "8", "--g-repeat", "1", "--batch", "4", "--n-critic", "2",
        "--device", "cpu", "--no-tensorboard", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def train(family: str, *args: object) -> object:
    return invoke_cli(["train", family, *[str(a) for a in args]])


def test_device_images_carry_label_rows() -> None:
    pixels = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    labels = np.array([[0, 1], [1, 0], [1, 1], [0, 0]], dtype=np.int8)
    data = DeviceImages(pixels, torch.device("cpu"), (-1.0, 1.0), labels=labels)
    images, rows = data.batch_with_labels(torch.tensor([2, 0]))
    torch.testing.assert_close(images, data.batch(torch.tensor([2, 0])))
    assert rows is not None and rows.dtype == torch.float32 and rows.tolist() == [[1, 1], [0, 1]]
    assert DeviceImages(pixels, torch.device("cpu"), (-1.0, 1.0)).batch_with_labels(torch.tensor([1]))[1] is None


def test_trains_with_selected_attributes_and_resumes_exactly(attrs16: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    attrs = "Black_Hair,Blond_Hair,Brown_Hair,Male,Young"
    args = ["--data", attrs16, "--attrs", attrs, "--steps", "6", "--ckpt-every", "3", "--log-every", "1",
            "--sample-every", "3", "--seed", "2", *TINY, "--n-critic", "3"]
    result = train("ccagan", *args, "--out", straight, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "finished" and report["step"] == 6
    config = json.loads((straight / "config.json").read_text())
    assert config["family"] == "ccagan" and config["model"]["attrs"] == attrs.split(",")
    assert config["model"]["resolution"] == 16 and config["model"]["d_repeat"] == 4
    assert config["data"]["images"]["split"] == "train"  # --split-protocol celeba
    lines = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5, 6]
    assert all(x["gp"] > 0 and np.isfinite(x["loss_D"]) for x in lines)
    assert lines[1]["loss_G"] == 0.0 and lines[2]["loss_G"] != 0.0  # G's first update at step 3 (n_critic 3)
    # The grid: 8 fixed inputs, each followed by its 5 attribute targets (16 px cells, 2 px padding).
    with Image.open(straight / "samples" / "step-000000006.png") as grid:
        assert grid.size == (6 * 18 + 2, 8 * 18 + 2)
    state = load_checkpoint(straight).load_state()
    assert state["optimizers"]["G"]["param_groups"][0]["lr"] == 0.0  # decayed to exactly 0 at the end
    assert state["optimizers"]["D"]["param_groups"][0]["lr"] == 0.0

    # Interrupted after step 3 (its last checkpoint), then resumed: the same weights, bit for bit.
    split = tmp_path / "split"
    shutil.copytree(straight, split)
    for file in (split / "checkpoints").glob("ckpt-000000006.*"):
        file.unlink()
    resumed = train("ccagan", "--resume", split, "--device", "cpu", "--quiet", "--no-tensorboard")
    assert resumed.exit_code == 0, resumed.output
    a = load_file(str(straight / "checkpoints" / "ckpt-000000006.safetensors"))
    b = load_file(str(split / "checkpoints" / "ckpt-000000006.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("G.main.0.") for k in a)  # the CCA module before conv 1
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # ... and the same metrics (G's losses of step 3, logged at steps 4 and 5 between its updates, included).
    def logged(run: Path) -> list[dict]:
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in x.items() if k != "images_per_s"} for x in lines]

    assert logged(split) == logged(straight) and logged(split)[3]["loss_G"] == logged(split)[2]["loss_G"] != 0
    first = load_file(str(split / "checkpoints" / "ckpt-000000003.safetensors"))
    assert not torch.equal(first["D.main.1.weight"], b["D.main.1.weight"])


def test_stargan_and_sagan_train_on_other_attributes(attrs16: Path, tmp_path: Path) -> None:
    for family in ("stargan", "stargan-sagan"):
        out = tmp_path / family
        result = train(family, "--data", attrs16, "--out", out, "--attrs", "Smiling,Gray_Hair,Black_Hair",
                       "--steps", "2", "--loss", "bce", "--lambda-rec", "0", *TINY, "--json")
        assert result.exit_code == 0, result.output
        ckpt = load_checkpoint(out)
        assert ckpt.meta["family"] == family and ckpt.meta["model"]["attrs"] == ["Smiling", "Gray_Hair", "Black_Hair"]
        assert ckpt.modules["D"]["cls.weight"].shape[0] == 3
        assert ckpt.meta["model"]["loss"] == "bce" and ckpt.meta["model"]["lambda_rec"] == 0.0
        has_sagan = any(".theta." in k for k in ckpt.modules["G"])
        assert has_sagan == (family == "stargan-sagan")


def test_user_errors(attrs16: Path, tmp_path: Path) -> None:
    missing = train("stargan", "--data", attrs16, "--out", tmp_path / "a", "--attrs", "Blue_Hair", "--steps", "1",
                    *TINY)
    assert missing.exit_code == 1 and "Blue_Hair" in missing.stderr and "Traceback" not in missing.output
    folder = write_image_folder(tmp_path / "plain", n=8, size=16)
    unlabelled = train("stargan", "--data", folder, "--out", tmp_path / "b", "--steps", "1", *TINY)
    assert unlabelled.exit_code == 1 and "labels" in unlabelled.stderr
    placement = train("stargan", "--data", attrs16, "--out", tmp_path / "c", "--cca-placement", "all", *TINY)
    assert placement.exit_code == 1 and "ccagan" in placement.stderr
    loss = train("ccagan", "--data", attrs16, "--out", tmp_path / "d", "--loss", "hinge", *TINY)
    assert loss.exit_code == 1 and "wgan-gp" in loss.stderr
    protocol = train("stargan", "--data", attrs16, "--out", tmp_path / "f", "--split-protocol", "stargan", *TINY[2:])
    assert protocol.exit_code == 1 and "stargan-train" in protocol.stderr and "empty" in protocol.stderr
    repeat = train("stargan", "--data", attrs16, "--out", tmp_path / "e", "--d-repeat", "5", "--steps", "1", *TINY)
    assert repeat.exit_code == 2 and "--d-repeat 4" in repeat.stderr  # a bad number: a usage error


def test_help_shows_defaults_and_example() -> None:
    for family in ("stargan", "ccagan", "stargan-sagan"):
        result = invoke_cli(["train", family, "--help"])
        assert result.exit_code == 0
        assert "Example: facegan" in result.output and "--lambda-rec" in result.output


class _Spy(StarGANTrainer):
    seen: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def train_step(self, batch, step):  # type: ignore[override]
        _Spy.seen.append((step, batch["images"].clone(), batch["labels"].clone()))
        return super().train_step(batch, step)


def test_loop_feeds_each_batch_its_own_label_rows(attrs16: Path, tmp_path: Path) -> None:
    attrs = ["Young", "Male", "Smiling"]
    config = resolve_config("stargan", None, {"attrs": attrs, "resolution": 16, "d_repeat": 4, "g_width": 8,
                                              "d_width": 8, "g_repeat": 1, "batch": 4})
    settings = LoopSettings(steps=3, seed=5, log_every=10, ckpt_every=10, sample_every=10, tensorboard=False)
    _Spy.seen = []
    run_training(lambda cfg: _Spy(cfg, "stargan"), "stargan", config, {"path": str(attrs16), "split": "train"},
                 settings, tmp_path / "run", device="cpu")
    dataset = PreparedDataset.open(attrs16)
    rows = dataset.split_indices("train")
    columns = [dataset.label_names.index(a) for a in attrs]
    pixels = np.asarray(dataset.images(16))[rows]
    order = EpochOrder(len(rows), 4, 5)
    assert [s for s, _, _ in _Spy.seen] == [0, 1, 2]
    for step, real, labels in _Spy.seen:
        idx = order.indices(step).numpy()
        expected = torch.from_numpy(pixels[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1
        torch.testing.assert_close(real, expected)
        assert labels.tolist() == dataset.labels[rows][idx][:, columns].astype(float).tolist()


def test_stargan_split_protocol_replays_yunjey_loader() -> None:
    names = [f"{i:06d}.jpg" for i in range(1, 5001)]
    shuffled_rows = names[::-1]  # dataset rows in another order than the attribute file's
    mask = stargan_test_mask(shuffled_rows)
    saved = random.getstate()
    try:  # yunjey/stargan data_loader.py preprocess(), transcribed
        lines = list(names)
        random.seed(1234)
        random.shuffle(lines)
        test = {line for i, line in enumerate(lines) if (i + 1) < 2000}
    finally:
        random.setstate(saved)
    assert mask.sum() == 1999 and {shuffled_rows[i] for i in np.flatnonzero(mask)} == test
    train_rows, test_rows = protocol_rows(shuffled_rows, "stargan-train"), protocol_rows(shuffled_rows, "stargan-test")
    assert len(train_rows) == 3001 and set(train_rows).isdisjoint(test_rows) and len(test_rows) == 1999


def test_epochs_set_the_length_and_the_decay_ends_at_zero(attrs16: Path, tmp_path: Path) -> None:
    out = tmp_path / "epochs"
    # 24 training rows at batch 4 = 6 steps per epoch; half an epoch = 3 steps, decaying over the last 1.5.
    result = train("ccagan", "--data", attrs16, "--out", out, "--epochs", "0.5", *TINY, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["step"] == 3
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["steps"] == 3 and config["model"]["lambda_rec"] == 1.0 and config["model"]["batch"] == 4
    state = load_checkpoint(out).load_state()
    assert state["optimizers"]["G"]["param_groups"][0]["lr"] == 0.0


@pytest.mark.slow
def test_two_gloo_processes_agree(attrs16: Path, tmp_path: Path) -> None:
    """torchrun --nproc_per_node=2 with gloo: labels split with the images, identical weights on both ranks."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "facegan_cli",
           "train", "ccagan", "--data", str(attrs16), "--out", str(out), "--steps", "4", "--log-every", "2", *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "finished" and status["world_size"] == 2
    assert len(set(status["rank_checksums"])) == 1
