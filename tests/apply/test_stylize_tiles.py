"""`transfer fast --tile`: a fast style network (pytorch/examples' TransformerNet, imported, random weights)
stylises a face in overlapping tiles to the input's own size, close to the untiled pass; bad tiles are usage
errors. (A random network's receptive field is wide: the seam-free bound of 2 levels is shown on a fully
convolutional net in test_whole_image.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke_cli
from PIL import Image
from transfer_helpers import random_reference_net

pytestmark = pytest.mark.usefixtures("one_thread")
FACES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "celebahq-sample"


def reference_run(tmp_path: Path) -> Path:
    """Their network with random weights (outputs spread over tens of levels), imported as a run."""
    net = random_reference_net(5)
    torch.save(net.eval().state_dict(), tmp_path / "style.pth")
    result = invoke_cli(["import", tmp_path / "style.pth", "--out", tmp_path / "run"])
    assert result.exit_code == 0, result.output
    return tmp_path / "run"


def test_transfer_fast_in_tiles_keeps_the_input_size(tmp_path: Path) -> None:
    files = sorted(FACES.glob("*.jpg"))
    if not files:
        pytest.skip(f"{FACES} is not available")
    run = reference_run(tmp_path)
    face = tmp_path / "faces" / "face.png"
    face.parent.mkdir()
    with Image.open(files[0]) as image:
        image.convert("RGB").resize((178, 218), Image.Resampling.LANCZOS).save(face)
    whole = invoke_cli(["transfer", "fast", face, "--ckpt", run, "--out", tmp_path / "whole", "--device", "cpu",
                        "--quiet"])
    assert whole.exit_code == 0, whole.output
    untiled = np.asarray(Image.open(tmp_path / "whole" / "face.png")).astype(int)
    assert untiled.shape == (220, 180, 3)  # their stylize: sides rounded up to a multiple of 4
    result = invoke_cli(["transfer", "fast", face, "--ckpt", run, "--tile", "128", "--out", tmp_path / "tiled",
                         "--device", "cpu", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["tile"], doc["overlap"]) == (128, 32)  # 2 x 2 tiles
    tiled = np.asarray(Image.open(doc["outputs"][0]["output"])).astype(int)
    assert tiled.shape == (218, 178, 3)  # the input's own size
    diff = np.abs(tiled - untiled[:218, :178])
    print(f"tiled vs untiled: mean {diff.mean():.2f} levels, 99th percentile {np.percentile(diff, 99):.0f}")
    # No tile-by-tile tone (the statistics of the whole image); what differs is the padding at the image's edge
    # (reflected here, implicit in their stride-2 convolutions) and what lies beyond the overlap.
    assert untiled.std() > 10 and diff.mean() < 4


def test_transfer_fast_rejects_bad_tiles(tmp_path: Path) -> None:
    run = reference_run(tmp_path)
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(image)
    for args, words in ((["--tile", "30"], "multiple of 4"), (["--tile", "32", "--overlap", "20"], "twice the overlap"),
                        (["--tile", "64", "--overlap", "6"], "multiple of 4")):
        result = invoke_cli(["transfer", "fast", image, "--ckpt", run, *args, "--out", tmp_path / "o", "--device",
                             "cpu"])
        assert result.exit_code == 2 and words in " ".join(result.stderr.split()), result.output
        assert "Traceback" not in result.output and not (tmp_path / "o").exists()
