"""The protocols' resizers against the reference packages' own resizing code, and batching rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facegan_cli.core.errors import FaceganError
from facegan_cli.metrics.protocols import (
    PROTOCOLS,
    get_protocol,
    pil_bicubic_resize,
    tf1_bilinear_resize,
)


def _images(side: int, n: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)


@pytest.mark.parametrize("side", [32, 128, 299, 300, 512])
def test_tf1_bilinear_is_bit_exact_with_torch_fidelity(side: int) -> None:
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    x = torch.from_numpy(_images(side)).permute(0, 3, 1, 2).float()
    expected = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    assert torch.equal(tf1_bilinear_resize(x), expected)


@pytest.mark.unit
@pytest.mark.parametrize("side", [64, 128, 256, 299, 512])
def test_clean_resize_matches_clean_fid_pil_float_resizer(side: int) -> None:
    from cleanfid.resize import build_resizer

    images = _images(side, n=1)
    expected = build_resizer("clean")(images[0])  # 299 x 299 x 3 float32, clipped to [0, 255]
    got = pil_bicubic_resize(torch.from_numpy(images).permute(0, 3, 1, 2)).clamp(0, 255)[0].permute(1, 2, 0)
    # PIL rounds to float32 once; torch computes in float64 and rounds once: within float32 rounding.
    assert np.abs(got.numpy() - expected).max() < 1e-3


@pytest.mark.unit
def test_pytorch_fid_protocol_is_its_interpolate_then_2x_minus_1() -> None:
    images = torch.from_numpy(_images(64)).permute(0, 3, 1, 2)
    x = images.float() / 255
    expected = 2 * torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
    assert torch.equal(PROTOCOLS["pytorch-fid"].prepare(images), expected)


def test_every_protocol_gives_network_input_in_minus_one_one() -> None:
    images = torch.from_numpy(_images(96)).permute(0, 3, 1, 2)
    for protocol in PROTOCOLS.values():
        out = protocol.prepare(images)
        assert out.shape == (2, 3, 299, 299) and out.dtype == torch.float32
        assert out.min() >= -1.0001 and out.max() <= 1.0001, protocol.name
    # The protocols really differ (that is why they exist): TF-style scaling vs 2x-1, bicubic vs bilinear.
    a, b, c = (PROTOCOLS[name].prepare(images) for name in ("pytorch-fid", "torch-fidelity", "clean"))
    assert (a - b).abs().max() > 1e-3 and (b - c).abs().max() > 1e-3


@pytest.mark.unit
def test_unknown_protocol_names_the_choices() -> None:
    with pytest.raises(FaceganError) as info:
        get_protocol("tensorflow")
    assert "pytorch-fid, torch-fidelity, clean" in info.value.paragraph()
