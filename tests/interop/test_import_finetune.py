"""An imported run is an ordinary run: `train FAMILY --resume RUN --data ...` fine-tunes it (fresh optimisers,
said so in config.json), `runs list` / `runs show` say where it came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from interop_helpers import examples_outf, junyanz_folder
from train_helpers import write_image_folder

from facegan_cli.core.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def test_imported_dcgan_fine_tunes(tmp_path: Path, cli_json, cli) -> None:
    cli_json("import", examples_outf(tmp_path), "--out", tmp_path / "run")
    imported = load_checkpoint(tmp_path / "run")
    refused = cli("train", "dcgan", "--resume", tmp_path / "run", "--steps", 2)
    assert refused.exit_code == 2 and "needs the data" in refused.stderr
    data = write_image_folder(tmp_path / "faces", n=8, size=64)
    doc = cli_json("train", "dcgan", "--resume", tmp_path / "run", "--data", data, "--steps", 2, "--batch", 4,
                   "--ckpt-every", 2, "--device", "cpu", "--no-tensorboard")
    assert doc["step"] == 2
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["fine_tune"]["optimizer_state"].startswith("fresh")
    assert config["fine_tune"]["imported_networks"] == ["D", "G"] and config["imported_from"]["project"]
    tuned = load_checkpoint(tmp_path / "run")
    assert tuned.step == 2 and tuned.meta["imported_from"]["source"] == "examples-dcgan"
    assert tuned.modules["G"]["main.0.weight"].shape == imported.modules["G"]["main.0.weight"].shape
    assert not (tuned.modules["G"]["main.0.weight"] == imported.modules["G"]["main.0.weight"]).all()  # it trained
    # From now on an ordinary exact resume (the state file exists).
    doc = cli_json("train", "dcgan", "--resume", tmp_path / "run", "--steps", 3, "--device", "cpu")
    assert doc["step"] == 3


def test_runs_list_and_show_say_where_a_run_came_from(tmp_path: Path, cli_json) -> None:
    cli_json("import", junyanz_folder(tmp_path), "--out", tmp_path / "runs" / "monet")
    listed = cli_json("runs", "list", tmp_path / "runs")["runs"]
    assert listed[0]["imported_from"]["project"] == "junyanz/pytorch-CycleGAN-and-pix2pix"
    shown = cli_json("runs", "show", tmp_path / "runs" / "monet")
    assert shown["status"] == "finished" and shown["imported_from"]["files"][0]["sha256"]


def test_imported_runs_serve_latent_and_explain(tmp_path: Path, cli_json, cli) -> None:
    import numpy as np

    cli_json("import", examples_outf(tmp_path), "--out", tmp_path / "run")
    np.save(tmp_path / "z.npy", np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32))
    cli_json("latent", "interpolate", "--ckpt", tmp_path / "run", "--latents", tmp_path / "z.npy", "--pairs", "0:5",
             "--steps", 3, "--out", tmp_path / "interp.png")
    faces = write_image_folder(tmp_path / "faces", n=2, size=64)
    cli_json("explain", "--ckpt", tmp_path / "run", "--input", faces, "--out", tmp_path / "guided.png")
    assert (tmp_path / "interp.png").is_file() and (tmp_path / "guided.png").is_file()
