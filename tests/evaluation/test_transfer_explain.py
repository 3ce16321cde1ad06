"""`facegan explain`: guided backpropagation equals a direct computation and differs from plain gradients;
the figure works on the discriminators of the built-in families; the colour-change heat map of edits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from train_helpers import make_run

from facegan_cli.core.checkpoint import save_checkpoint
from facegan_cli.evaluation.explain import (
    colour_change,
    filter_objective,
    guided_gradients,
    guided_rectifiers,
    heat_colours,
    layer_response,
)
from facegan_cli.models import registry

pytestmark = pytest.mark.usefixtures("one_thread")


class SmallNet(nn.Module):
    """conv -> ReLU -> conv -> LeakyReLU(0.2) -> conv -> (filters to explain)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1), nn.Conv2d(6, 4, 3)
        self.act1, self.act2 = nn.ReLU(inplace=True), nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c3(self.act2(self.c2(self.act1(self.c1(x)))))


class FunctionalNet(SmallNet):
    """The same network calling the rectifiers as functions (as ProGAN's discriminator does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c3(F.leaky_relu(self.c2(torch.relu(self.c1(x))), 0.2))


def direct_guided(net: SmallNet, x: torch.Tensor, channel: int) -> torch.Tensor:
    """Guided backpropagation written out: the convolutions' adjoints, and at each rectifier the gradient
    kept only where it is positive, times the rectifier's own slope at its input."""
    a1 = net.c1(x)
    a2 = net.c2(torch.relu(a1))
    out = net.c3(F.leaky_relu(a2, 0.2))
    grad = torch.zeros_like(out)
    grad[:, channel] = 1.0  # d(sum of the filter's map)/d(map)
    grad = torch.nn.grad.conv2d_input(a2.shape, net.c3.weight, grad)
    grad = grad.clamp(min=0) * torch.where(a2 > 0, 1.0, 0.2)
    grad = torch.nn.grad.conv2d_input(a1.shape, net.c2.weight, grad, padding=1)
    grad = grad.clamp(min=0) * (a1 > 0).float()
    return torch.nn.grad.conv2d_input(x.shape, net.c1.weight, grad, padding=1)


@pytest.mark.parametrize("net_class", [SmallNet, FunctionalNet])
def test_guided_backprop_equals_the_direct_computation(net_class: type[SmallNet]) -> None:
    net = net_class().eval()
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    guided = guided_gradients(net, net.c3, x, [0, 3])
    plain = guided_gradients(net, net.c3, x, [0, 3], guided=False)
    for k, channel in enumerate([0, 3]):
        want = direct_guided(net, x, channel)
        torch.testing.assert_close(guided[k], want, rtol=1e-5, atol=1e-6)
        # Plain gradients are the network's own backward pass: different.
        image = x.clone().requires_grad_(True)
        (plain_want,) = torch.autograd.grad(net(image)[:, channel].sum(), image)
        torch.testing.assert_close(plain[k], plain_want, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(guided[k], plain[k], atol=1e-4)
    # Outside the block the network is untouched: the forward values are the same either way.
    with guided_rectifiers():
        inside = net(x)
    torch.testing.assert_close(inside, net(x))


def test_the_pass_stops_at_the_layer_and_max_reduction() -> None:
    net = SmallNet().eval()
    x = torch.randn(1, 3, 8, 8)
    response = layer_response(net, net.act1, x)
    assert response.shape == (1, 6, 8, 8) and (response >= 0).all()
    assert filter_objective(response, 2, "max") == response[:, 2].max()


def _explain_args(run: Path, *extra: object) -> list[object]:
    return ["explain", "--ckpt", run, "--device", "cpu", *extra]


def test_explain_a_dcgan_discriminator(cli, cli_json, celebahq_sample: Path, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")  # heikka32's D (LeakyReLU modules), random weights
    faces = sorted(celebahq_sample.glob("*.jpg"))[:2]
    folder = tmp_path / "faces"
    folder.mkdir()
    for path in faces:
        (folder / path.name).write_bytes(path.read_bytes())
    doc = cli_json(*_explain_args(run, "--input", folder, "--out", tmp_path / "g.png", "--filters", "0,5,9"))
    assert doc["network"] == "D" and doc["filters"] == [0, 5, 9] and doc["method"] == "guided backpropagation"
    assert doc["layer"] == "main.8"  # the last convolution with several filters (main.11 is the 1-filter output)
    figure = np.asarray(Image.open(tmp_path / "g.png"))
    assert figure.shape[0] > 2 * 64 and figure.shape[1] > 4 * 64  # 2 rows, input + 3 filters, cells >= 64 px
    plain = cli_json(*_explain_args(run, "--input", folder, "--out", tmp_path / "p.png", "--layer", "main.2",
                                    "--plain"))
    assert plain["method"] == "plain gradient" and plain["layer"] == "main.2"
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "p.png")), figure)
    # Mistakes: one paragraph each, nothing written.
    bad_layer = cli(*_explain_args(run, "--input", folder, "--out", tmp_path / "x.png", "--layer", "fc9"))
    assert bad_layer.exit_code == 1 and "main.0" in bad_layer.stderr
    too_many = cli(*_explain_args(run, "--input", folder, "--out", tmp_path / "x.png", "--filters", "4000"))
    assert too_many.exit_code == 2 and "filters" in too_many.stderr  # a bad number: a usage error
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    unreadable = cli(*_explain_args(run, "--input", broken, "--out", tmp_path / "x.png"))
    assert unreadable.exit_code == 1 and "broken.png" in unreadable.stderr
    assert not (tmp_path / "x.png").exists()
    exists = cli(*_explain_args(run, "--input", folder, "--out", tmp_path / "g.png"))
    assert exists.exit_code == 1 and "already exists" in exists.stderr
    usage = cli("explain", "--input", folder, "--out", tmp_path / "y.png")
    assert usage.exit_code == 2


def test_explain_refuses_a_family_without_a_discriminator(cli, tmp_path: Path, celebahq_sample: Path) -> None:
    config = registry.resolve_config("attr-classifier", None, {"resolution": 8, "width": 4})
    net = registry.get_family("attr-classifier").networks(config)["classifier"]
    save_checkpoint(tmp_path / "clf" / "checkpoints", 1, {"C": net.state_dict()},
                    {"family": "attr-classifier", "model": config}, {"step": 1})
    face = sorted(celebahq_sample.glob("*.jpg"))[0]
    result = cli(*_explain_args(tmp_path / "clf", "--input", face, "--out", tmp_path / "x.png"))
    assert result.exit_code == 1 and "no discriminator" in result.stderr


def test_explain_stargan_style_discriminator_and_heat_map_of_real_edits(cli, cli_json, ccagan_run: Path,
                                                                        celebahq_sample: Path, tmp_path: Path) -> None:
    """The CCA-GAN editor's D returns (source, class) logits: the hook reads the layer all the same. Its edits
    (`facegan edit`) are then drawn as the colour-change heat map."""
    faces = tmp_path / "faces"
    faces.mkdir()
    for path in sorted(celebahq_sample.glob("*.jpg"))[:2]:
        (faces / path.name).write_bytes(path.read_bytes())
    doc = cli_json(*_explain_args(ccagan_run, "--input", faces, "--out", tmp_path / "d.png", "--filters", "0,1"))
    assert doc["network"] == "D"
    edited = tmp_path / "edited"
    assert cli("edit", "--ckpt", ccagan_run, "--input", faces, "--flip", "Male", "--out", edited, "--device", "cpu",
               "--quiet").exit_code == 0
    heat = cli_json("explain", "--input", faces, "--edited", edited, "--edited", edited, "--out", tmp_path / "h.png")
    assert len(heat["pairs"]) == 2 and len(heat["pairs"][0]["edits"]) == 2
    first = heat["pairs"][0]["edits"][0]
    assert 0 < first["mean_change"] <= first["max_change"] <= 1 and heat["scale"] == pytest.approx(
        max(e["max_change"] for p in heat["pairs"] for e in p["edits"]), rel=1e-2)
    figure = np.asarray(Image.open(tmp_path / "h.png"))
    assert figure.shape[1] > 5 * 64  # input | edit | change | edit | change


def test_heat_map_measures_the_colour_change(cli_json, cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inputs, edits = tmp_path / "in", tmp_path / "ed"
    inputs.mkdir()
    edits.mkdir()
    base = rng.integers(0, 200, (32, 32, 3), dtype=np.uint8)
    changed = base.copy()
    changed[:8] += 40  # the top quarter changes colour, the rest is untouched
    Image.fromarray(base).save(inputs / "face.png")
    Image.fromarray(changed).save(edits / "face.png")
    doc = cli_json("explain", "--input", inputs, "--edited", edits, "--out", tmp_path / "h.png", "--scale", 0.5)
    record = doc["pairs"][0]["edits"][0]
    expected = colour_change(base, changed)
    assert record["mean_change"] == pytest.approx(expected.mean()) and expected[8:].max() == 0
    assert record["max_change"] == pytest.approx(40 * np.sqrt(3) / (255 * np.sqrt(3)))
    assert record["changed_share"] == pytest.approx(0.25) and doc["scale"] == 0.5
    assert heat_colours(np.array([0.0]))[0].tolist() == [0, 0, 0]
    assert heat_colours(np.array([1.0]))[0].tolist() == [255, 255, 255]
    assert json.loads(json.dumps(doc))["out"].endswith("h.png")
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(base).save(other / "someone-else.png")
    missing = cli("explain", "--input", inputs, "--edited", other, "--out", tmp_path / "m.png")
    assert missing.exit_code == 1 and "has no edit of face.png" in missing.stderr
    mixed = cli("explain", "--input", inputs, "--edited", edits, "--layer", "main.2", "--out", tmp_path / "m.png")
    assert mixed.exit_code == 2
