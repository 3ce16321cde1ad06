"""It learns: a fast style network trained on real faces (../shared/data/celebahq-sample, 40 faces, flipped at
random) with a real painting (candy.jpg) stylises the 6 held-out faces: their style loss falls at least tenfold
below that of the untouched faces, while their content loss stays below the one of the painting itself in
the faces' place (slow).

The examples preset's weights (1e5 / 1e10) at 32 px (style image 32 x 32, lr 2e-3) for STEPS steps of batch 4
on one CPU thread, with the tests' random-initialised VGG16 (transfer_helpers: no real weights on this
machine, no network). The losses are the training's own (content weight 1e5 * MSE relu2_2; style weight 1e10 * Gram MSE at relu1_2..relu4_3), per
held-out face, averaged. The run's last sample grid (held-out faces | stylised) is printed for a look.

Measured (2026-12-08, loaded 2-core CPU, 30 minutes): NOT passing. Held-out style loss 1.47e6 for the outputs
against 5.45e6 for the untouched faces (3.7x, not 10x); content 1.83e5 against the painting's 2.13e5. An
earlier run (faces preset, 48 px, 400 steps): style 5.87e6 against 3.23e6. See benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke_cli
from PIL import Image
from transfer_helpers import STYLES, vgg16_file_fixture  # noqa: F401 (fixture)

from facegan_cli.features.vgg16 import VGG16Extractor
from facegan_cli.models.fast_style import load_stylizer
from facegan_cli.train.fast_style_trainer import perceptual_loss, style_pixels
from facegan_cli.transfer.style_losses import gram

FACES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "celebahq-sample"
STEPS = 1000
SIDE = 32
LR = 2e-3
pytestmark = pytest.mark.usefixtures("one_thread")


def _faces(folder: Path, files: list[Path]) -> Path:
    folder.mkdir(parents=True)
    for path in files:
        Image.open(path).convert("RGB").resize((SIDE, SIDE), Image.Resampling.LANCZOS).save(folder / f"{path.stem}.png")
    return folder


@pytest.mark.slow
def test_fast_style_network_stylises_held_out_faces(tmp_path: Path, vgg16_file: Path) -> None:
    files = sorted(FACES.glob("*.jpg"))
    if len(files) < 46:
        pytest.skip(f"{FACES} is not available")
    train, held = _faces(tmp_path / "train", files[:40]), _faces(tmp_path / "held", files[40:46])
    style_file = STYLES / "candy.jpg"
    run = tmp_path / "run"
    result = invoke_cli([str(a) for a in (
        "train", "fast-style", "--data", train, "--heldout", held, "--style-image", style_file, "--vgg-weights",
        vgg16_file, "--preset", "examples", "--resolution", SIDE, "--style-size", SIDE, "--lr", LR, "--mirror", "--steps", STEPS,
        "--log-every", 100, "--sample-every", STEPS, "--ckpt-every", STEPS, "--out", run, "--device", "cpu",
        "--no-tensorboard", "--json", "--quiet")])
    assert result.exit_code == 0, result.output

    config = json.loads((run / "config.json").read_text())["model"]
    vgg = VGG16Extractor(vgg16_file, "cpu")
    model = load_stylizer(run)
    x = torch.from_numpy(np.stack([np.asarray(Image.open(p)) for p in sorted(held.iterdir()) if p.suffix == ".png"]))
    x = x.permute(0, 3, 1, 2).float()
    with torch.no_grad():
        grams = {k: gram(f, "tutorial") for k, f in vgg(style_pixels(style_file, SIDE) / 255, config["style_layers"]).items()}
        y = model.stylize(x).clamp(0, 255)
        painting = style_pixels(style_file, SIDE).expand_as(x)

        def losses(image: torch.Tensor) -> tuple[float, float]:
            parts = [perceptual_loss(vgg, x[i : i + 1], image[i : i + 1], grams, config) for i in range(len(x))]
            return float(np.mean([float(c) for c, _ in parts])), float(np.mean([float(s) for _, s in parts]))

        stylised, untouched, the_painting = losses(y), losses(x), losses(painting)
    grid = sorted((run / "samples").glob("*.png"))[-1]
    kept = Path("/tmp/facegan-fast-style-grid.png")
    shutil.copyfile(grid, kept)
    print(json.dumps({"stylised": stylised, "untouched": untouched, "painting": the_painting, "grid": str(kept)}))
    assert stylised[1] * 10 <= untouched[1], (stylised, untouched)
    assert stylised[0] < the_painting[0], (stylised, the_painting)
