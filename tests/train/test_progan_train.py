"""`facegan train progan` end to end on CPU: grow 4 -> 8 -> 16, exact resume mid-fade-in, sampling."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke_cli
from PIL import Image
from safetensors.torch import load_file
from train_helpers import write_image_folder

from facegan_cli.core.checkpoint import list_checkpoints, load_checkpoint
from facegan_cli.models.loading import load_generator

# 32-image phases at batch 8 (4 steps each): 4x4, 8x8 fade-in, 8x8, 16x16 fade-in, 16x16 = 160 images.
TINY = ["--max-channels", "8", "--phase-kimg", "0.032", "--batch", "8", "--device", "cpu",
        "--no-tensorboard", "--quiet", "--seed", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def levels(prepare_synthetic: Callable[..., Path]) -> Path:
    """The synthetic faces as `prepare celeba --crop progan --size 16 --levels` writes them (16, 8, 4)."""
    return prepare_synthetic("celeba-progan", size=16, levels=True, crop="progan")


@pytest.fixture(scope="module")
def grown(levels: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("progan-run") / "run"
    result = invoke_cli(["train", "progan", "--data", str(levels), "--out", str(out), "--log-every", "1",
                                 "--ckpt-every", "7", "--sample-every", "1000", "--json", *TINY])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_grows_from_4_to_16(grown: tuple[Path, dict]) -> None:
    out, report = grown
    assert report["status"] == "finished" and report["kimg"] == pytest.approx(0.16) and report["step"] == 20
    assert report["phase"] == "16x16-stable"
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    # Each fade-in starts one image after its phase boundary, as the original's schedule: with batches
    # that divide the phase length, the step at exactly 32 images still trains 4x4.
    assert [x["resolution"] for x in lines] == [4] * 5 + [8] * 8 + [16] * 7
    assert [x["phase"] for x in lines] == [0] * 5 + [1] * 3 + [2] * 5 + [3] * 3 + [4] * 4
    # alpha at each fade-in step's start: images 40, 48, 56 (8x8) and 104, 112, 120 (16x16).
    assert [x["alpha"] for x in lines[5:8] + lines[13:16]] == [0.25, 0.5, 0.75] * 2
    assert all(x["alpha"] == 1.0 for x in lines[:5] + lines[8:13] + lines[16:])
    assert all(np.isfinite([x["loss_D"], x["loss_G"], x["gp"]]).all() for x in lines)
    # A grid of the EMA generator at the end of every phase, at that phase's resolution (8 x 8 cells).
    for name, size in (("phase-00-4x4-stable", 4), ("phase-01-8x8-fade-in", 8), ("phase-02-8x8-stable", 8),
                       ("phase-03-16x16-fade-in", 16)):
        assert _png(out / "samples" / f"{name}.png").shape == (8 * (size + 2) + 2,) * 2 + (3,), name
    ckpt = load_checkpoint(out)
    assert ckpt.step == 20 and set(ckpt.modules) == {"G", "D", "G_ema"}
    assert ckpt.meta["model"]["grown"] == {"resolution": 16, "fading": False, "alpha": 1.0}
    assert ckpt.load_state()["images_seen"] == 160
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["kimg"] == pytest.approx(0.16) and config["model"]["resolution"] == 16


def test_mid_training_checkpoint_samples_at_its_phase(grown: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = grown
    # Step 14 (112 images) was saved inside the 16x16 fade-in: alpha = (104 - 96) / 32 at that step.
    mid = out / "checkpoints" / "ckpt-000000014.safetensors"
    assert mid.exists()
    generator = load_generator(mid)
    assert generator.resolution == 16 and generator.weights == "G_ema"
    assert generator.module.fading and generator.module.alpha == pytest.approx(0.25)
    result = invoke_cli(["sample", "--ckpt", str(mid), "--n", "4", "--out", str(tmp_path / "s.png"),
                                 "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["resolution"] == 16
    assert _png(tmp_path / "s.png").shape == (2 * 18 + 2, 2 * 18 + 2, 3)
    interp = invoke_cli(["latent", "interpolate", "--ckpt", str(out), "--pairs", "s1:s2", "--steps", "3",
                                 "--out", str(tmp_path / "i.png"), "--quiet"])
    assert interp.exit_code == 0, interp.output
    assert _png(tmp_path / "i.png").shape[0] >= 16


def test_resume_mid_fade_in_is_bit_exact(levels: Path, tmp_path: Path) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["--data", str(levels), "--ckpt-every", "1000", "--log-every", "1000", *TINY]
    done = invoke_cli(["train", "progan", *common, "--out", str(straight), "--kimg", "0.16"])
    assert done.exit_code == 0, done.output
    # Stop inside the 16x16 fade-in (alpha 0.5 after 112 images), then continue to the end.
    first = invoke_cli(["train", "progan", *common, "--out", str(split), "--kimg", "0.112"])
    assert first.exit_code == 0, first.output
    halfway = load_checkpoint(split)
    assert halfway.meta["model"]["grown"]["fading"] and halfway.load_state()["images_seen"] == 112
    resumed = invoke_cli(["train", "progan", "--resume", str(split), "--kimg", "0.16", "--device", "cpu",
                                  "--quiet", "--no-tensorboard"])
    assert resumed.exit_code == 0, resumed.output
    a = load_file(str(list_checkpoints(straight / "checkpoints")[-1]))
    b = load_file(str(list_checkpoints(split / "checkpoints")[-1]))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    before = load_file(str(halfway.path))
    assert not torch.equal(before["G_ema.blocks.2.conv0.weight"], b["G_ema.blocks.2.conv0.weight"])
    # The optimisers were saved and restored too (a resume that reset them would not be bit-exact).
    state = load_checkpoint(split).load_state()
    assert state["optimizers"]["G"]["state"]


def test_missing_levels_say_how_to_prepare(prepare_synthetic: Callable[..., Path], tmp_path: Path) -> None:
    flat = prepare_synthetic("celeba-progan", tmp_path / "flat", size=16, levels=False, crop="progan")
    result = invoke_cli(["train", "progan", "--data", str(flat), "--out", str(tmp_path / "r"), *TINY])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "--levels" in result.stderr and "missing 4, 8" in result.stderr


def test_folder_of_images_is_box_halved(tmp_path: Path) -> None:
    data = write_image_folder(tmp_path / "faces", n=16, size=8)
    out = tmp_path / "run"
    result = invoke_cli(["train", "progan", "--data", str(data), "--out", str(out), "--json", *TINY])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["phase"] == "8x8-stable"  # the target defaults to the images' size
    assert load_checkpoint(out).meta["model"]["resolution"] == 8


def test_user_errors(levels: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "r")
    bad_group = invoke_cli(["train", "progan", "--data", str(levels), "--out", out, "--mbstd-group", "3",
                                    *TINY])
    assert bad_group.exit_code == 2 and "--mbstd-group" in bad_group.stderr  # a bad number: a usage error
    bad_res = invoke_cli(["train", "progan", "--data", str(levels), "--out", out, "--resolution", "32",
                                  *TINY])
    assert bad_res.exit_code == 1 and "32" in bad_res.stderr
    no_out = invoke_cli(["train", "progan", "--data", str(levels)])
    assert no_out.exit_code == 2 and "--out" in no_out.stderr  # usage errors exit 2, as Typer's own
    bad_phase = invoke_cli(["train", "progan", "--data", str(levels), "--out", out, *TINY,
                                    "--phase-kimg", "0"])
    assert bad_phase.exit_code == 2 and "--phase-kimg" in bad_phase.stderr


def test_help_lists_the_choices() -> None:
    result = invoke_cli(["train", "progan", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in ("Example:", "--phase-kimg", "--mbstd-group", "1e-8", "Conv 1x1", "paper", "v2", "no-mirror"):
        assert text in result.output, text


def test_metrics_score_a_progan_checkpoint(grown: tuple[Path, dict], levels: Path) -> None:
    out, _ = grown
    result = invoke_cli(["metrics", "swd", str(levels), "--ckpt", str(out), "--n", "30", "--device", "cpu",
                                 "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["levels"] == [16] and np.isfinite(payload["value"])


@pytest.mark.slow
def test_two_gloo_processes_grow_together(levels: Path, tmp_path: Path) -> None:
    """torchrun with 2 CPU processes: each phase re-wraps its layers in DDP; ranks end identical."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "facegan_cli",
           "train", "progan", "--data", str(levels), "--out", str(out), *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads((out / "run.json").read_text())
    assert status["world_size"] == 2 and status["kimg"] == pytest.approx(0.16)
    assert len(set(status["rank_checksums"])) == 1
