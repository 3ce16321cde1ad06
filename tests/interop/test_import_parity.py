"""`facegan import` of each source project's files, then facegan's command output against the project's own
test-time path (transcribed in tests/references/) on real faces: at most one grey level apart.

Each test builds the project's network (its transcription) with random weights, saves it exactly as the
project saves it (file names, state-dict keys), imports it through the CLI and runs the command a user would."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from references.cyclegan_reference import (
    ResnetGenerator,
    add_legacy_instance_norm_keys,
    define_networks,
    junyanz_test_pixels,
    save_networks,
)
from references.dcgan_reference import (
    ExamplesDiscriminator,
    ExamplesGenerator,
    examples_samples,
    examples_weights_init,
)
from references.stargan_reference import YunjeyDiscriminator, YunjeyGenerator, solver_test_pixels

pytestmark = pytest.mark.usefixtures("one_thread")
FACES = 2


def faces(celebahq_sample: Path) -> list[Path]:
    return sorted(celebahq_sample.glob("*.jpg"))[:FACES]


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def test_junyanz_cyclegan_translate_is_test_py(tmp_path: Path, celebahq_sample: Path, cli_json) -> None:
    torch.manual_seed(0)
    nets = define_networks(ngf=8, ndf=8, n_blocks=2, n_layers_d=2)
    for g in (nets["G_A"], nets["G_B"]):  # junyanz's init leaves biases 0; random ones test the mapping harder
        for p in g.parameters():
            p.data.add_(torch.randn_like(p) * 0.05)
    folder = tmp_path / "checkpoints" / "photo2painting"
    save_networks(nets, folder, "latest")
    save_networks({"G_A": ResnetGenerator(3, 3, 8, 2)}, folder, "5")  # an older epoch the import must not pick
    doc = cli_json("import", folder, "--out", tmp_path / "run")
    assert doc["family"] == "cycle-gan" and doc["project"] == "junyanz/pytorch-CycleGAN-and-pix2pix"
    assert {f["file"] for f in doc["files"]} == {f"latest_net_{n}.pth" for n in ("G_A", "G_B", "D_A", "D_B")}
    assert doc["inferred"]["ngf"] == 8 and doc["inferred"]["n_blocks"] == 2 and doc["inferred"]["n_layers_d"] == 2
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    import hashlib
    sha = hashlib.sha256((folder / "latest_net_G_A.pth").read_bytes()).hexdigest()
    assert sha in [f["sha256"] for f in config["imported_from"]["files"]]
    for direction, g in (("a2b", nets["G_A"]), ("b2a", nets["G_B"])):
        out = tmp_path / f"out-{direction}"
        result = cli_json("translate", *faces(celebahq_sample), "--ckpt", tmp_path / "run", "--direction", direction,
                          "--size", 64, "--out", out, "--device", "cpu")
        for record, face in zip(result["outputs"], faces(celebahq_sample)):
            expected = junyanz_test_pixels(g, face, crop_size=64).astype(np.int16)
            got = pixels(Path(record["output"]))
            assert got.shape == expected.shape
            assert np.abs(got - expected).max() <= 1, direction  # rounding (facegan) vs truncation (tensor2im)


def test_junyanz_one_direction_legacy_keys(tmp_path: Path, celebahq_sample: Path, cli_json) -> None:
    """A pretrained test model (latest_net_G.pth, e.g. style_monet_pretrained) written by pre-0.4 code: the
    InstanceNorm statistics junyanz's load_networks drops are dropped, and --direction b2a places it."""
    torch.manual_seed(1)
    g = define_networks(ngf=8, ndf=8, n_blocks=1)["G_A"]
    folder = tmp_path / "style_monet_pretrained"
    folder.mkdir()
    torch.save(add_legacy_instance_norm_keys(g.state_dict(), g), folder / "latest_net_G.pth")
    doc = cli_json("import", folder / "latest_net_G.pth", "--direction", "b2a", "--out", tmp_path / "run")
    assert doc["inferred"]["legacy_instance_norm_keys_dropped"] > 0
    assert doc["inferred"]["networks"] == ["G_B"]
    face = faces(celebahq_sample)[0]
    result = cli_json("translate", face, "--ckpt", tmp_path / "run", "--direction", "b2a", "--size", 64,
                      "--out", tmp_path / "out", "--device", "cpu")
    expected = junyanz_test_pixels(g, face, crop_size=64).astype(np.int16)
    assert np.abs(pixels(Path(result["outputs"][0]["output"])) - expected).max() <= 1
    # The other direction is not in the file: one paragraph, exit 1.
    from cli_helpers import invoke_cli

    refused = invoke_cli(["translate", face, "--ckpt", tmp_path / "run", "--direction", "a2b", "--out",
                          tmp_path / "no"])
    assert refused.exit_code == 1 and "holds no G_A" in refused.stderr
    assert not (tmp_path / "no").exists()


def test_yunjey_stargan_edit_is_solver_test(tmp_path: Path, celebahq_sample: Path, cli_json) -> None:
    torch.manual_seed(2)
    attrs = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    G = YunjeyGenerator(conv_dim=8, c_dim=5, repeat_num=2)
    D = YunjeyDiscriminator(image_size=64, conv_dim=8, c_dim=5, repeat_num=6)
    for module in G.modules():  # trained-looking norms: affine weights and running statistics that are not 1 / 0
        if isinstance(module, torch.nn.InstanceNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    models = tmp_path / "stargan_celeba_64" / "models"
    models.mkdir(parents=True)
    torch.save(G.state_dict(), models / "20000-G.ckpt")  # Solver.save_model: '{}-G.ckpt'.format(i + 1)
    torch.save(D.state_dict(), models / "20000-D.ckpt")
    doc = cli_json("import", models, "--out", tmp_path / "run")
    assert doc["family"] == "stargan" and doc["inferred"]["resolution"] == 64 and doc["inferred"]["c_dim"] == 5
    # CelebA-shaped inputs (178 x 218), made from the real faces: yunjey's CenterCrop(178) -> Resize(64).
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for face in faces(celebahq_sample):
        with Image.open(face) as image:
            image.convert("RGB").resize((178, 218), Image.BICUBIC).save(inputs / f"{face.stem}.png")
    source = {"Black_Hair": 0, "Blond_Hair": 1, "Brown_Hair": 0, "Male": 1, "Young": 0}
    result = cli_json("edit", "--ckpt", tmp_path / "run", "--input", inputs, "--out", tmp_path / "edits",
                      "--source", ",".join(f"{k}={v}" for k, v in source.items()), "--device", "cpu")
    c_org = torch.tensor([[float(source[a]) for a in attrs]])
    for record in result["edits"]:
        expected = solver_test_pixels(G, Path(record["input"]), c_org, attrs, image_size=64,
                                      out=tmp_path / f"{Path(record['input']).stem}-ref.png").astype(np.int16)
        got = pixels(Path(record["output"]))  # facegan's grid: 2-pixel gaps around and between the tiles
        tiles = [got[2:66, 2 + i * 66 : 66 + i * 66] for i in range(len(attrs) + 1)]
        assert np.abs(np.concatenate(tiles, axis=1) - expected).max() <= 1


def test_examples_dcgan_sample_is_netG(tmp_path: Path, cli_json) -> None:
    torch.manual_seed(3)
    netG, netD = ExamplesGenerator(nz=16, ngf=4), ExamplesDiscriminator(ndf=4)
    netG.apply(examples_weights_init)
    netD.apply(examples_weights_init)
    netG.train()
    with torch.no_grad():  # trained-looking BatchNorm running statistics
        netG(torch.randn(32, 16, 1, 1))
    outf = tmp_path / "outf"
    outf.mkdir()
    for epoch in (3, 4):
        torch.save(netG.state_dict(), outf / f"netG_epoch_{epoch}.pth")
        torch.save(netD.state_dict(), outf / f"netD_epoch_{epoch}.pth")
    doc = cli_json("import", outf, "--out", tmp_path / "run")
    assert doc["family"] == "dcgan" and {f["file"] for f in doc["files"]} == {"netG_epoch_4.pth", "netD_epoch_4.pth"}
    assert doc["inferred"]["nz"] == 16 and doc["inferred"]["ngf"] == 4 and doc["inferred"]["image_size"] == 64
    z = torch.randn(3, 16)
    np.save(tmp_path / "z.npy", z.numpy())
    result = cli_json("sample", "--ckpt", tmp_path / "run", "--latents", tmp_path / "z.npy", "--out",
                      tmp_path / "samples", "--device", "cpu")
    expected = examples_samples(netG, z).numpy().astype(np.int16)
    for i, path in enumerate(sorted(result["files"])):
        assert np.abs(pixels(Path(path)) - expected[i]).max() <= 1
