"""data.crops.fit_square: the input fits imported models bring from their projects, equal to the torchvision
pipelines they name (on a real face, and on a CelebA-shaped 178 x 218 image)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torchvision.transforms as T
from PIL import Image

from facegan_cli.data.crops import fit_square, input_fit_problem

SQUARE_BICUBIC = {"crop": "none", "resize": "square", "filter": "bicubic"}
CENTER_BILINEAR = {"crop": "center-square", "resize": "short-side", "filter": "bilinear"}


@pytest.mark.unit
def test_fits_are_the_torchvision_pipelines(celebahq_sample: Path) -> None:
    with Image.open(sorted(celebahq_sample.glob("*.jpg"))[0]) as image:
        face = image.convert("RGB")
    celeba_shaped = face.resize((178, 218), Image.BICUBIC)
    cases = [
        (face, 64, SQUARE_BICUBIC, T.Resize([64, 64], T.InterpolationMode.BICUBIC)),
        (celeba_shaped, 128, SQUARE_BICUBIC, T.Resize([128, 128], T.InterpolationMode.BICUBIC)),
        (celeba_shaped, 128, CENTER_BILINEAR, T.Compose([T.CenterCrop(178), T.Resize(128)])),
        (celeba_shaped.transpose(Image.Transpose.ROTATE_90), 64, CENTER_BILINEAR,
         T.Compose([T.CenterCrop(178), T.Resize(64)])),
    ]
    for image, side, fit, reference in cases:
        got, want = np.asarray(fit_square(image, side, fit)), np.asarray(reference(image))
        assert got.shape == (side, side, 3) and np.array_equal(got, want), fit


@pytest.mark.unit
def test_an_edited_fit_is_named() -> None:
    assert input_fit_problem(SQUARE_BICUBIC) == ""
    assert "input_fit.filter" in input_fit_problem({**SQUARE_BICUBIC, "filter": "nearest"})
    assert "unknown key" in input_fit_problem({**SQUARE_BICUBIC, "gamma": 2})
    assert "not an object" in input_fit_problem(["square"])
