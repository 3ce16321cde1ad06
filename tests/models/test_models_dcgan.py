"""DCGAN presets through `facegan models summary` (their reference parameter counts are declared in models/dcgan.py
and checked by the family contract), variants' counts, shapes and value ranges."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import invoke_cli

from facegan_cli.models import registry

# specs/dcgan.md: pytorch/examples (radford64), seed 001 (heikka32), the Keras CelebA example (keras64), as the
# family declares them (checked by tests/models/test_family_contract.py).
COUNTS = {name: (ref.counts["generator"], ref.counts["discriminator"])
          for name, ref in registry.get_family("dcgan").reference_counts.items()}
SHAPES = {
    "radford64": (100, 64, (-1.0, 1.0)),
    "heikka32": (100, 32, (-1.0, 1.0)),
    "keras64": (128, 64, (0.0, 1.0)),
}


def summary(*args: str) -> dict:
    result = invoke_cli(["models", "summary", "dcgan", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # exactly one JSON document, nothing else on stdout


@pytest.mark.parametrize("preset", sorted(SHAPES))
def test_summary_names_the_preset_and_its_latent(preset: str) -> None:
    payload = summary("--preset", preset)
    assert payload["family"] == "dcgan" and payload["preset"] == preset
    assert payload["config"]["z_dim"] == SHAPES[preset][0]


@pytest.mark.parametrize("preset", sorted(SHAPES))
def test_forward_shapes_and_value_ranges(preset: str) -> None:
    z_dim, res, (lo, hi) = SHAPES[preset]
    config = registry.resolve_config("dcgan", preset)
    generator = registry.build_generator("dcgan", config).eval()
    discriminator = registry.build_discriminator("dcgan", config).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        # Blow up the last convolution so the output activation reaches its limits: they are the range.
        last_conv = [
            m for m in generator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
        ][-1]
        last_conv.weight.mul_(1e4)
        images = generator(torch.randn(3, z_dim))
        logits = discriminator(images)
    assert images.shape == (3, 3, res, res)
    assert lo <= images.min() < lo + 0.5 and hi - 0.5 < images.max() <= hi
    assert logits.shape == (3,)


def test_heikka32_depth4_and_first_bn_variants() -> None:
    depth4 = summary("--preset", "heikka32", "--depth", "4")
    # 4 layers, k4 throughout, 512 wide: G 100*512*16 + 512*256*16 + 256*128*16 + 128*3*16 + BN 2*(512+256+128);
    # D 3*128*16 + 128*256*16 + 256*512*16 + 512*1*16 + BN 2*(256+512).
    assert depth4["generator"]["parameters"] == 3_448_576
    assert depth4["discriminator"]["parameters"] == 2_637_312
    first_bn = summary("--preset", "heikka32", "--d-first-bn")
    assert first_bn["generator"]["parameters"] == COUNTS["heikka32"][0]
    assert first_bn["discriminator"]["parameters"] == COUNTS["heikka32"][1] + 2 * 128
    both = summary("--preset", "heikka32", "--depth", "4", "--d-first-bn", "--width", "64")
    assert both["config"]["width"] == 64 and both["config"]["d_first_bn"] is True
    for payload in (depth4, first_bn, both):
        config = payload["config"]
        generator = registry.build_generator("dcgan", config).eval()
        discriminator = registry.build_discriminator("dcgan", config).eval()
        with torch.no_grad():
            images = generator(torch.randn(2, 100))
            assert images.shape == (2, 3, 32, 32)
            assert discriminator(images).shape == (2,)
        assert registry.count_parameters(generator) == payload["generator"]["parameters"]
        assert registry.count_parameters(discriminator) == payload["discriminator"]["parameters"]


def test_summary_table_and_list() -> None:
    result = invoke_cli(["models", "summary", "dcgan", "--preset", "radford64"])
    assert result.exit_code == 0, result.output
    assert "3,576,704" in result.stdout and "2,765,568" in result.stdout
    assert "ConvTranspose2d" in result.stdout and "512x4x4" in result.stdout
    listed = invoke_cli(["models", "list", "--json"])
    assert listed.exit_code == 0
    dcgan = next(f for f in json.loads(listed.stdout)["families"] if f["family"] == "dcgan")
    assert dcgan["presets"][0] == "radford64" and set(dcgan["presets"]) >= set(COUNTS)


def test_summary_user_errors_exit_1() -> None:
    # An unknown preset exits 1; a --depth the preset cannot take is a bad number: a usage error, exit 2.
    for args, status in (
        (["--preset", "keras64", "--depth", "4"], 2),
        (["--preset", "nope"], 1),
        (["--preset", "heikka32", "--depth", "3"], 2),
    ):
        result = invoke_cli(["models", "summary", "dcgan", *args])
        assert result.exit_code == status, args
        assert "Error" in result.output and "Traceback" not in result.output
    assert invoke_cli(["models", "summary", "nofamily"]).exit_code == 1
    help_text = invoke_cli(["models", "summary", "--help"]).output
    assert "Example:" in help_text and "--d-first-bn" in help_text
