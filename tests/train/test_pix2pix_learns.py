"""It learns: pix2pix trained on synthetic photo/painting pairs on the CPU paints held-out faces close to their
true paintings (slow).

`prepare synthetic --style painting`: 300 faces at 128x128; pix2pix trains on the 135 photos of trainA and
their true paintings (truth/trainA), junyanz's step (unet_128 with batch norm and dropout, the conditional
PatchGAN, vanilla GAN + 100 L1, Adam 2e-4 beta1 0.5) narrowed to 8 filters, batch 4, no jitter at this size
(load = crop = 128), 600 steps with the linear decay over epochs 12-18. On the 15 held-out faces (testA and
truth/testA) the translation's L1 to the true painting must be at most half the untranslated photo's, and
its PSNR and SSIM higher.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import invoke_cli

from facegan_cli.prepare.synthetic import write_synthetic

STEPS = 600
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_pix2pix_paints_held_out_faces(tmp_path: Path) -> None:
    data = tmp_path / "photo2painting"
    write_synthetic(data, n=300, size=128, style="painting", workers=2)
    run = tmp_path / "run"
    result = invoke_cli([str(a) for a in (
        "train", "pix2pix", "--data", data, "--out", run, "--netg", "unet_128", "--ngf", 8, "--ndf", 8, "--batch", 4,
        "--load-size", 128, "--steps", STEPS, "--n-epochs", 12, "--n-epochs-decay", 6, "--log-every", 100,
        "--ckpt-every", 1000, "--sample-every", 1000, "--device", "cpu", "--no-tensorboard", "--json", "--quiet")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["step"] == STEPS
    evaluated = invoke_cli(["eval", "translation", "--ckpt", str(run), "--data", str(data), "--no-inception",
                            "--device", "cpu", "--json", "--quiet"])
    assert evaluated.exit_code == 0, evaluated.output
    d = json.loads(evaluated.stdout)["directions"]["a2b"]
    pairs = d["pairs"]
    print("pix2pix", json.dumps({k: round(v, 4) for k, v in pairs.items()}),
          "adversarial_accuracy", round(d["adversarial_accuracy"], 3))
    assert pairs["n"] == 15
    assert pairs["l1"] <= 0.5 * pairs["input_l1"], pairs
    assert pairs["psnr"] > pairs["input_psnr"] and pairs["ssim"] > pairs["input_ssim"], pairs
