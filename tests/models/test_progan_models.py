"""ProGAN's layers and networks: equalised lr, pixel norm, minibatch stddev, fade-in exactness, counts."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from cli_helpers import invoke_cli

from facegan_cli.models.layers import EqualizedConv2d, EqualizedLinear, minibatch_stddev, pixel_norm
from facegan_cli.models.progan import ProDiscriminator, ProGenerator, apply_overrides, channels
from facegan_cli.models.registry import build_generator, resolve_config
from facegan_cli.train.progan_trainer import fade_reals

pytestmark = pytest.mark.usefixtures("one_thread")


# --- equalised learning rate -------------------------------------------------------------------------------


@pytest.mark.unit
def test_equalized_conv_initialisation_and_runtime_scale() -> None:
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3)
    # Stored weights are N(0, 1) draws; biases start at zero.
    assert abs(conv.weight.std().item() - 1.0) < 0.02 and abs(conv.weight.mean().item()) < 0.02
    assert torch.count_nonzero(conv.bias) == 0
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(64 * 9))
    x = torch.randn(2, 64, 5, 5)
    expected = F.conv2d(x, conv.weight * (math.sqrt(2) / 24), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected)


@pytest.mark.unit
def test_equalized_layers_keep_unit_input_at_gain_scale_whatever_the_fan_in() -> None:
    """The point of the runtime scale: every layer's output has std ~= gain for N(0, 1) input."""
    torch.manual_seed(1)
    for fan_in in (16, 512):
        dense = EqualizedLinear(fan_in, 256)
        out = dense(torch.randn(512, fan_in))
        assert out.std().item() == pytest.approx(math.sqrt(2), rel=0.08), fan_in
    rgb = EqualizedConv2d(128, 3, 1, gain=1.0)
    assert rgb.scale == pytest.approx(1 / math.sqrt(128))
    assert rgb(torch.randn(64, 128, 4, 4)).std().item() == pytest.approx(1.0, rel=0.1)


@pytest.mark.unit
def test_network_gains_follow_the_original() -> None:
    G = ProGenerator(16, z_dim=512, fmap_max=32)
    D = ProDiscriminator(16, fmap_max=32)
    assert G.blocks[0].dense.scale == pytest.approx(math.sqrt(2) / 4 / math.sqrt(512))  # dense input layer
    assert G.to_rgb[2].scale == pytest.approx(1 / math.sqrt(32))  # toRGB: gain 1, 1x1 kernel
    assert G.blocks[1].conv0.scale == pytest.approx(math.sqrt(2) / math.sqrt(32 * 9))
    assert D.blocks[0].dense1.scale == pytest.approx(1 / math.sqrt(32))  # linear output: gain 1
    assert D.blocks[0].conv.weight.shape[1] == 33  # + the minibatch stddev map
    for p in [*G.parameters(), *D.parameters()]:
        if p.dim() == 1:
            assert torch.count_nonzero(p) == 0  # every bias starts at zero


@pytest.mark.unit
def test_channels_per_resolution() -> None:
    assert [channels(r) for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)] == [
        512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert channels(64, fmap_max=16) == 16


# --- pixel norm and minibatch stddev on hand-checked tensors --------------------------------------------------


@pytest.mark.unit
def test_pixel_norm_by_hand() -> None:
    x = torch.tensor([3.0, 4.0, 0.0, 0.0]).view(1, 4, 1, 1)  # mean of squares = 25 / 4
    out = pixel_norm(x).view(-1)
    torch.testing.assert_close(out, torch.tensor([1.2, 1.6, 0.0, 0.0]))
    # Two pixels (1, -1) and (2, 2), each normalised over its own channels.
    y = torch.tensor([[1.0, -1.0], [2.0, 2.0]]).t().reshape(1, 2, 2, 1)
    torch.testing.assert_close(pixel_norm(y)[0, :, :, 0].t(), torch.tensor([[1.0, -1.0], [1.0, 1.0]]))
    # eps = 1e-8 (not the seed's 10^8): a zero vector stays zero and finite.
    assert torch.equal(pixel_norm(torch.zeros(1, 3, 1, 1)), torch.zeros(1, 3, 1, 1))


@pytest.mark.unit
def test_minibatch_stddev_by_hand() -> None:
    # 4 samples, group 2: groups are {0, 2} and {1, 3} (stride M = 2), as the original's reshape.
    x = torch.tensor([1.0, 2.0, 5.0, 10.0]).view(4, 1, 1, 1)
    out = minibatch_stddev(x, 2)
    assert out.shape == (4, 2, 1, 1)
    assert torch.equal(out[:, 0], x[:, 0])
    # {1, 5}: biased var 4 -> std 2; {2, 10}: var 16 -> std 4.
    torch.testing.assert_close(out[:, 1].view(-1), torch.tensor([2.0, 4.0, 2.0, 4.0]))


@pytest.mark.unit
def test_minibatch_stddev_averages_over_channels_and_pixels() -> None:
    x = torch.zeros(2, 2, 2, 2)
    x[0, 0], x[1, 0] = 1.0, 3.0  # channel 0: std 1 at every pixel; channel 1 constant: sqrt(1e-8)
    out = minibatch_stddev(x, 4)  # group = min(4, 2) = the whole batch
    assert out.shape == (2, 3, 2, 2)
    torch.testing.assert_close(out[:, 2], torch.full((2, 2, 2), (1.0 + 1e-4) / 2))
    with pytest.raises(ValueError, match="multiple"):
        minibatch_stddev(torch.zeros(6, 1, 1, 1), 4)


# --- fade-in exactness ---------------------------------------------------------------------------------------


def _nets() -> tuple[ProGenerator, ProDiscriminator]:
    torch.manual_seed(3)
    return ProGenerator(16, z_dim=16, fmap_max=16), ProDiscriminator(16, fmap_max=16, mbstd_group=4)


@pytest.mark.unit
def test_freshly_grown_generator_at_alpha_zero_is_the_upsampled_previous_output() -> None:
    G, _ = _nets()
    z = torch.randn(8, 16)
    with torch.no_grad():
        G.set_phase(8)
        previous = G(z)
        G.set_phase(16, fading=True, alpha=0.0)
        grown = G(z)
        assert grown.shape == (8, 3, 16, 16) and previous.shape == (8, 3, 8, 8)
        assert torch.equal(grown, F.interpolate(previous, scale_factor=2, mode="nearest"))
        # alpha = 1 is exactly the new stage alone, and in between the new stage does count.
        G.set_phase(16, fading=True, alpha=1.0)
        faded_in = G(z)
        G.set_phase(16)
        assert torch.equal(faded_in, G(z))
        G.set_phase(16, fading=True, alpha=0.5)
        torch.testing.assert_close(G(z), 0.5 * (grown + faded_in))


@pytest.mark.unit
def test_freshly_grown_discriminator_at_alpha_zero_scores_like_the_previous_one() -> None:
    _, D = _nets()
    x = torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        D.set_phase(8)
        previous = D(F.avg_pool2d(x, 2))
        D.set_phase(16, fading=True, alpha=0.0)
        assert torch.equal(D(x), previous)
        D.set_phase(16, fading=True, alpha=1.0)
        faded_in = D(x)
        D.set_phase(16)
        assert torch.equal(faded_in, D(x))
        assert not torch.allclose(faded_in, previous)


@pytest.mark.unit
def test_paths_hold_only_the_phase_parameters_and_compute_the_same() -> None:
    G, D = _nets()
    G.set_phase(8, fading=True, alpha=0.3)
    D.set_phase(8, fading=True, alpha=0.3)
    g_path, d_path = G.path(), D.path()
    g_ids = {id(p) for p in g_path.parameters()}
    expected = {id(p) for m in (*G.blocks[:2], G.to_rgb[0], G.to_rgb[1]) for p in m.parameters()}
    assert g_ids == expected
    assert {id(p) for p in d_path.parameters()} == {
        id(p) for m in (*D.blocks[:2], D.from_rgb[0], D.from_rgb[1]) for p in m.parameters()}
    z = torch.randn(4, 16)
    with torch.no_grad():
        assert torch.equal(g_path(z, 0.3), G(z))
        x = G(z)
        assert torch.equal(d_path(x, 0.3), D(x))


@pytest.mark.unit
def test_real_image_cross_fade() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4).expand(1, 3, 4, 4).contiguous()
    blurred = fade_reals(x, 0.0)
    # Each 2x2 block replaced by its mean, e.g. the top-left block (0, 1, 4, 5) by 2.5.
    torch.testing.assert_close(blurred[0, 0], torch.tensor(
        [[2.5, 2.5, 4.5, 4.5], [2.5, 2.5, 4.5, 4.5], [10.5, 10.5, 12.5, 12.5], [10.5, 10.5, 12.5, 12.5]]))
    assert torch.equal(fade_reals(x, 1.0), x)
    torch.testing.assert_close(fade_reals(x, torch.tensor(0.25)), 0.75 * blurred + 0.25 * x)


# --- parameter counts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [1024, 256])
def test_models_summary_counts_the_full_resolution_path(resolution: int) -> None:
    """The paper's counts themselves (specs/progan.md) are declared in models/progan.py and checked by the family
    contract; what they leave out is checked here."""
    result = invoke_cli(["models", "summary", "progan", "--resolution", str(resolution), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    # Every stage's toRGB / fromRGB is built (the network grows through them) but not in the paper's count.
    assert payload["generator"]["all_parameters"] > payload["generator"]["parameters"]


def test_summary_resolution_errors() -> None:
    bad = invoke_cli(["models", "summary", "progan", "--resolution", "48", "--json"])
    assert bad.exit_code == 2 and "power of two" in bad.stderr  # a bad number: a usage error
    other = invoke_cli(["models", "summary", "dcgan", "--resolution", "64", "--json"])
    assert other.exit_code == 1 and "progan" in other.stderr


@pytest.mark.unit
def test_max_channels_caps_widths_and_latent() -> None:
    config = apply_overrides(resolve_config("progan", "v2"), 16, 8)
    assert config["z_dim"] == 8 and config["fmap_max"] == 8
    G = build_generator("progan", config)
    assert G(torch.randn(2, 8)).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="power of two"):
        apply_overrides(config, 24)
