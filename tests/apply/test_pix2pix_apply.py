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
