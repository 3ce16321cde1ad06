"""pix2pix from the CLI: train on pairs, translate one way (inference or stochastic mode), paired evaluation
(L1, PSNR, SSIM against the untranslated input) on `prepare synthetic` and `prepare pairs` layouts, explain
its conditional D."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan_cli.prepare import synthetic

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["--netg", "resnet_6blocks", "--resolution", "16", "--load-size", "20", "--ngf", "4", "--ndf", "4",
        "--n-layers-d", "2", "--batch", "2", "--device", "cpu", "--no-tensorboard", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a 3-step BtoA pix2pix run, its synthetic photo/painting data at 20x20)."""
    from cli_helpers import invoke_cli

    root = tmp_path_factory.mktemp("pix2pix")
    synthetic.write_synthetic(root / "synth", n=40, size=20, style="painting")
    result = invoke_cli(["train", "pix2pix", "--data", root / "synth", "--out", root / "run", "--steps", 3,
                         "--direction", "BtoA", *TINY])
    assert result.exit_code == 0, result.output
    return root / "run", root / "synth"


def test_translate_one_way_grid_and_stochastic(cli, trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = trained
    faces = sorted((data / "testB").iterdir())[:2]
    doc = json.loads(cli("translate", *faces, "--ckpt", run, "--out", tmp_path / "g", "--grid", "--device", "cpu",
                         "--json", "--quiet").stdout)
    assert doc["direction"] == "b2a" and doc["grid"] == "input | translation"
    with Image.open(doc["outputs"][0]["output"]) as grid:
        assert grid.size[0] > grid.size[1] * 1.5 and grid.size[0] < grid.size[1] * 2.5  # two cells
    wrong = cli("translate", *faces, "--ckpt", run, "--direction", "a2b", "--out", tmp_path / "w", "--device", "cpu")
    assert wrong.exit_code == 2 and "translates only b2a" in wrong.stderr
    outs = []
    for name, extra in (("e1", []), ("e2", []), ("s1", ["--stochastic"]), ("s2", ["--stochastic"])):
        result = cli("translate", faces[0], "--ckpt", run, "--out", tmp_path / name, "--device", "cpu", "--quiet", *extra)
        assert result.exit_code == 0, result.output
        outs.append(np.asarray(Image.open(next((tmp_path / name).glob("*.png")))))
    assert np.array_equal(outs[0], outs[1])  # junyanz's test.py --eval: deterministic
    assert not np.array_equal(outs[0], outs[2])  # dropout and batch statistics


def test_eval_translation_on_paired_splits(cli, trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = trained

    def evaluate(root: Path) -> dict:
        result = cli("eval", "translation", "--ckpt", run, "--data", root, "--no-inception", "--device", "cpu",
                     "--json", "--quiet")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    doc = evaluate(data)  # truth/testB: the true photo of every testB painting
    assert list(doc["directions"]) == ["b2a"]
    d = doc["directions"]["b2a"]
    assert d["reconstruction_l1"] is None and 0 <= d["adversarial_accuracy"] <= 1 and d["n_real"] == d["n_translated"]
    pairs = d["pairs"]
    assert pairs["n"] == 2 and pairs["input_l1"] > 0.05 and -1 <= pairs["ssim"] <= 1 and -1 <= pairs["input_ssim"] <= 1
    # `prepare pairs`' layout: testA/ and testB/ with the same names are each other's truth.
    pairs_root = tmp_path / "pairs"
    shutil.copytree(data / "testB", pairs_root / "testB")
    shutil.copytree(data / "truth" / "testB", pairs_root / "testA")
    again = evaluate(pairs_root)["directions"]["b2a"]["pairs"]
    assert again == pairs


def test_explain_the_conditional_discriminator(cli_json, trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = trained
    doc = cli_json("explain", "--ckpt", run, "--input", sorted((data / "testB").iterdir())[0], "--out",
                   tmp_path / "d.png", "--filters", "0,1", "--device", "cpu")
    assert doc["network"] == "D" and Path(doc["out"]).exists()


def _aligned(data: Path, root: Path) -> Path:
    """junyanz's aligned layout from synthetic pairs: ROOT/train and ROOT/test of A|B images side by side."""
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        for photo in sorted((data / f"{split}A").iterdir()):
            with Image.open(photo) as a, Image.open(data / "truth" / f"{split}A" / photo.name) as b:
                pair = Image.new("RGB", (a.width + b.width, a.height))
                pair.paste(a, (0, 0))
                pair.paste(b, (a.width, 0))
                pair.save(root / split / f"{photo.stem}.jpg", quality=95)
    return root


def test_junyanz_aligned_layout_trains_and_evaluates(cli, trained: tuple[Path, Path], tmp_path: Path) -> None:
    from facegan_cli.data.sources import open_image_set

    _, data = trained
    root = _aligned(data, tmp_path / "facades")
    first = sorted((root / "train").iterdir())[0]
    left = open_image_set(root / "train", half="A").load_array([0])[0]
    with Image.open(first) as pair:
        assert left.shape == (20, 20, 3) and np.abs(left.astype(int) - np.asarray(pair)[:, :20].astype(int)).max() == 0
    result = cli("train", "pix2pix", "--data", root, "--out", tmp_path / "run", "--steps", 2, *TINY)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["A"]["half"] == "A" and config["data"]["B"]["path"] == str(root / "train")
    doc = json.loads(cli("eval", "translation", "--ckpt", tmp_path / "run", "--data", root, "--no-inception",
                         "--device", "cpu", "--json", "--quiet").stdout)
    pairs = doc["directions"]["a2b"]["pairs"]
    assert pairs["n"] == len(list((root / "test").iterdir())) and pairs["input_l1"] > 0.05
