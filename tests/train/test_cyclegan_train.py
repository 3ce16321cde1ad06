"""`facegan train cycle-gan` end to end: the two domains, junyanz's layout, epochs over the larger domain,
random crops, an interrupted run resumed bit for bit with full history buffers, and the data errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import write_image_folder

from facegan_cli.core.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")
# thesis64's options (resize-conv, reflection padding, D noise, TV), tiny, with random 16x16 crops of images
# upsampled to 20 on the device (the data is 20 and 24 px: held at 20), pools of 3 images, batch 2.
TINY = ["--preset", "thesis64", "--resolution", "16", "--load-size", "20", "--ngf", "8", "--ndf", "8",
        "--n-blocks", "1", "--n-layers-d", "2", "--batch", "2", "--pool-size", "3", "--device", "cpu",
        "--no-tensorboard", "--quiet", "--seed", "3"]


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """junyanz's layout: trainA 6 images (24 px), trainB 10 (20 px), testA 3, testB 3."""
    root = tmp_path_factory.mktemp("cg") / "photo2painting"
    write_image_folder(root / "trainA", n=6, size=24, seed=1)
    write_image_folder(root / "trainB", n=10, size=20, seed=2)
    write_image_folder(root / "testA", n=3, size=24, seed=3)
    write_image_folder(root / "testB", n=3, size=20, seed=4)
    return root


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / f"ckpt-{step:09d}.safetensors"))


def _pools(run: Path) -> dict[str, Any]:
    state = load_checkpoint(run).load_state()["trainer"]
    return {name: (state[name]["count"], state[name]["images"]) for name in ("pool_A", "pool_B")}


def test_junyanz_layout_epochs_over_the_larger_domain(cli, domains: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = cli("train", "cycle-gan", "--data", domains, "--out", out, "--epochs", "1", "--json", *TINY)
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["step"] == 5  # max(6, 10) images / batch 2: junyanz's epoch is a pass over the larger domain
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["A"]["path"] == str(domains / "trainA") and config["data"]["B"]["path"] == str(domains / "trainB")
    model = config["model"]
    assert (model["resolution"], model["load_size"], model["data_resolution"]) == (16, 20, 20)
    assert (model["upsample"], model["padding"], model["lambda_tv"], model["d_noise_std"]) == ("nearest", "reflect", 0.1, 0.1)
    weights = _weights(out, 5)
    assert {k.split(".")[0] for k in weights} == {"G_A", "G_B", "D_A", "D_B"}
    assert weights["D_A.model.0.weight"].shape == (8, 3, 4, 4)
    grid = out / "samples" / "step-000000005.png"
    from PIL import Image

    assert Image.open(grid).size == (6 * 16 + 7 * 2, 6 * 16 + 7 * 2)  # a row per A image (6) x 6 columns
    test = cli("train", "cycle-gan", "--data", domains, "--split", "test", "--out", tmp_path / "t", "--steps", "1",
               "--json", *TINY)
    assert test.exit_code == 0, test.output
    assert json.loads((tmp_path / "t" / "config.json").read_text())["data"]["A"]["path"] == str(domains / "testA")


def test_interrupted_run_resumes_bit_exactly_with_full_pools(domains: Path, tmp_path: Path, cli) -> None:
    """SIGTERM at whatever step the run reached (the 3-image pools are full after two steps), then --resume:
    weights, optimiser-visible state and both history buffers equal a straight run of the same length."""
    stopped = tmp_path / "stopped"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "facegan_cli", "train", "cycle-gan", "--data-a", str(domains / "trainA"), "--data-b",
         str(domains / "trainB"), "--out", str(stopped), "--steps", "100000", "--log-every", "1", "--ckpt-every",
         "100000", *TINY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    metrics, deadline = stopped / "metrics.jsonl", time.time() + 120
    while proc.poll() is None and time.time() < deadline and not (
        metrics.exists() and metrics.read_text().count("\n") >= 4
    ):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    k = load_checkpoint(stopped).step
    assert k >= 4
    pools = _pools(stopped)
    assert pools["pool_A"][0] == pools["pool_B"][0] == 3  # full when the run stopped
    resumed = cli("train", "cycle-gan", "--resume", stopped, "--steps", k + 3, "--device", "cpu", "--quiet")
    assert resumed.exit_code == 0, resumed.output

    straight = tmp_path / "straight"
    done = cli("train", "cycle-gan", "--data-a", domains / "trainA", "--data-b", domains / "trainB", "--out", straight,
               "--steps", k + 3, *TINY)
    assert done.exit_code == 0, done.output
    a, b = _weights(straight, k + 3), _weights(stopped, k + 3)
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    for name, (count, images) in _pools(straight).items():
        assert _pools(stopped)[name][0] == count and torch.equal(_pools(stopped)[name][1], images)
    lines = [json.loads(line) for line in (stopped / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, k + 4))


def test_data_problems_are_one_paragraph(cli, domains: Path, tmp_path: Path) -> None:
    both = cli("train", "cycle-gan", "--data", domains, "--data-a", domains / "trainA", "--out", tmp_path / "r", *TINY)
    assert both.exit_code == 2 and "--data-a" in both.stderr
    one = cli("train", "cycle-gan", "--data-a", domains / "trainA", "--out", tmp_path / "r", *TINY)
    assert one.exit_code == 2 and "--data-b" in one.stderr
    flat = cli("train", "cycle-gan", "--data", domains / "trainA", "--out", tmp_path / "r", *TINY)
    assert flat.exit_code == 1 and "trainA/" in flat.stderr and "Traceback" not in flat.output
    small = cli("train", "cycle-gan", "--data", domains, "--out", tmp_path / "r", "--preset", "junyanz256",
                "--device", "cpu", "--quiet")
    assert small.exit_code == 1 and "smaller than the 256x256 crops" in small.stderr and "thesis64" in small.stderr
    pack = cli("train", "cycle-gan", "--data", domains, "--out", tmp_path / "r", *TINY, "--pack", "2", "--batch", "3")
    assert pack.exit_code == 2 and "--pack 2" in pack.stderr  # a bad number: a usage error
    assert not (tmp_path / "r").exists()


def test_models_summary_gives_the_spec_full_model_total(cli_json) -> None:
    # Each network's junyanz count is declared in models/cyclegan.py and checked by the family contract.
    six = cli_json("models", "summary", "cycle-gan", "--n-blocks", "6", "--pack", "2")
    # 2G + 2D: the spec's full-model totals.
    assert 2 * six["generator"]["parameters"] + 2 * six["discriminator"]["parameters"] == 21_211_016


def test_a_stream_holds_its_own_resolution(domains: Path) -> None:
    """Images(resolution=...) (the generic loop's per-stream size) keeps that stream at its size; the others
    take the run's, and an epoch is a pass over the stream with the most batches."""
    from facegan_cli.train.streams import StreamSet
    from facegan_cli.train.trainer import Images

    data = {"A": {"path": str(domains / "trainA"), "split": "all"}, "B": {"path": str(domains / "trainB"), "split": "all"}}
    streams = StreamSet({"A": Images(resolution=20), "B": Images()}, data, 0, torch.device("cpu"), (-1.0, 1.0))
    streams.load(16, 2)
    batch = streams.batch(0, 0, 2, False, 0, 1)
    assert batch["A"].shape == (2, 3, 20, 20) and batch["B"].shape == (2, 3, 16, 16)
    assert streams.steps_per_epoch == 5  # B: 10 images / 2


def test_two_gloo_processes_agree(domains: Path, tmp_path: Path) -> None:
    """Under torchrun (DDP, gloo): G_A and G_B each run several times per step, and both ranks end equal."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "facegan_cli",
           "train", "cycle-gan", "--data", str(domains), "--out", str(out), "--steps", "3", "--ckpt-every", "3",
           "--log-every", "3", *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads((out / "run.json").read_text())
    assert status["world_size"] == 2 and len(set(status["rank_checksums"])) == 1
