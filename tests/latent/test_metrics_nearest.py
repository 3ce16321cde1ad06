"""`latent nearest --space inception`: nearest training images in FID Inception feature space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from metrics_helpers import MetricsWorld, homes, make_generator, run_cli, world  # noqa: F401
from PIL import Image

from facegan_cli.core.seeding import draw_latents
from facegan_cli.data.grid import to_uint8
from facegan_cli.latent.nearest import SPACES
from facegan_cli.models.loading import load_generator


def test_inception_space_finds_the_planted_sample(homes: MetricsWorld, tmp_path: Path) -> None:  # noqa: F811
    assert "inception" in SPACES
    run = make_generator(tmp_path / "run")
    generator = load_generator(run, "cpu")
    samples = to_uint8(generator.module(draw_latents(2, generator.z_dim, 0)).detach(), generator.value_range)
    data = tmp_path / "train"
    data.mkdir()
    for i, face in enumerate(homes.faces[:4]):
        Image.fromarray(face[::4, ::4]).save(data / f"{i}.png")  # 32x32 real faces
    Image.fromarray(samples[1]).save(data / "4.png")  # PNG: the training set holds sample 1 exactly
    result = run_cli(
        "latent", "nearest", "--ckpt", run, "--data", data, "--n", 2, "-k", 2, "--space", "inception",
        "--inception-weights", homes.weights, "--device", "cpu", "--out", tmp_path / "nn.png", "--json", "--quiet",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["space"] == "inception"
    best = payload["queries"][1]["neighbours"][0]
    assert best["index"] == 4 and best["distance"] < 1e-6
    others = [q["neighbours"][0]["distance"] for q in payload["queries"][:1]]
    assert min(others) > 1e-4 and np.isfinite(others).all()
