"""`facegan import` of junyanz's pix2pix files (random weights saved in his exact state-dict format): the run
translates as his test.py --eval does, and D comes along."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from references.cyclegan_reference import junyanz_test_pixels, save_networks
from references.pix2pix_reference import define_networks

pytestmark = pytest.mark.usefixtures("one_thread")


def _randomised(net: torch.nn.Module) -> torch.nn.Module:
    """Weights, biases and batch-norm statistics away from their initial values, to test the mapping harder."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)
    return net.eval()


def test_junyanz_pix2pix_translate_is_test_py_eval(tmp_path: Path, celebahq_sample: Path, cli_json) -> None:
    torch.manual_seed(0)
    nets = {k: _randomised(v) for k, v in define_networks(num_downs=7, ngf=4, ndf=4).items()}
    folder = tmp_path / "checkpoints" / "faces_pix2pix"
    save_networks(nets, folder, "latest")
    doc = cli_json("import", folder, "--direction", "b2a", "--out", tmp_path / "run")
    assert doc["family"] == "pix2pix" and doc["project"] == "junyanz/pytorch-CycleGAN-and-pix2pix"
    assert {f["file"] for f in doc["files"]} == {"latest_net_G.pth", "latest_net_D.pth"}
    assert doc["inferred"]["netg"] == "unet_128" and doc["inferred"]["ngf"] == 4 and doc["inferred"]["ndf"] == 4
    faces = sorted(celebahq_sample.glob("*.jpg"))[:2]
    out = tmp_path / "out"
    result = cli_json("translate", *faces, "--ckpt", tmp_path / "run", "--out", out, "--device", "cpu")
    assert result["direction"] == "b2a"  # the only way a one-way model trained BtoA translates
    for record, face in zip(result["outputs"], faces):
        expected = junyanz_test_pixels(nets["G"], face, crop_size=128).astype(np.int16)
        with Image.open(record["output"]) as image:
            got = np.asarray(image.convert("RGB")).astype(np.int16)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1  # rounding (facegan) vs truncation (tensor2im)
    from facegan_cli.models.translation import load_translator

    model = load_translator(tmp_path / "run")
    assert sorted(model.nets) == ["D", "G"] and model.conditional_d
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.nets["D"](torch.cat([x, x], 1)), nets["D"](torch.cat([x, x], 1)))
