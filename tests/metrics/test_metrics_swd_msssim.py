"""SWD (ProGAN's pyramid, patches and projections) and MS-SSIM against pytorch-msssim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from metrics_helpers import load_faces
from scipy import ndimage

from facegan_cli.core.errors import FaceganError
from facegan_cli.metrics import msssim, swd


@pytest.fixture(scope="module")
def faces(celebahq_sample: Path) -> np.ndarray:
    return np.stack(load_faces(celebahq_sample, side=192))


def _scipy_gauss(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    kernel = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256.0 * scale
    return ndimage.convolve(x, kernel[None, None], mode="mirror")  # OpenCV's reflect-101 border


def test_pyramid_steps_match_scipy_mirror_convolution() -> None:
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 3, 32, 32)).astype(np.float32)
    down = swd.pyr_down(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(down, _scipy_gauss(x)[:, :, ::2, ::2], rtol=0, atol=2e-4)
    small = x[:, :, :16, :16]
    stuffed = np.zeros_like(x)
    stuffed[:, :, ::2, ::2] = small
    up = swd.pyr_up(torch.from_numpy(small)).numpy()
    np.testing.assert_allclose(up, _scipy_gauss(stuffed, 4.0), rtol=0, atol=2e-4)


def test_laplacian_pyramid_reconstructs_the_image() -> None:
    x = torch.rand(2, 3, 64, 64) * 255
    pyramid = swd.laplacian_pyramid(x, len(swd.levels_for(64)))
    assert [p.shape[-1] for p in pyramid] == [64, 32, 16]
    rebuilt = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        rebuilt = band + swd.pyr_up(rebuilt)
    torch.testing.assert_close(rebuilt, x, rtol=0, atol=1e-3)


def test_swd_sees_degradation_is_seeded_and_per_level(faces: np.ndarray) -> None:
    small = faces[:, ::3, ::3][:, :64, :64]  # 64x64 faces: levels 64, 32, 16
    real, other = small[:12], small[12:24]
    noisy = np.clip(other.astype(np.int16) + np.random.default_rng(0).integers(-60, 61, other.shape), 0, 255)
    near = swd.swd([real], [other], 64, seed=1)
    far = swd.swd([real], [noisy.astype(np.uint8)], 64, seed=1)
    assert near["levels"] == [64, 32, 16] and len(near["per_level"]) == 3
    assert near["average"] == pytest.approx(np.mean(near["per_level"]))
    assert far["per_level"][0] > 2 * near["per_level"][0]  # noise lives in the finest band
    again = swd.swd([real[:6], real[6:]], [other], 64, seed=1)  # batching does not matter, the seed does
    assert again["average"] == pytest.approx(near["average"], rel=1e-5)


def test_swd_refuses_tiny_or_mismatched_images() -> None:
    with pytest.raises(FaceganError, match="at least 16"):
        swd.DescriptorSet(8, 0)
    descriptors = swd.DescriptorSet(32, 0)
    with pytest.raises(FaceganError, match="one size"):
        descriptors.add(np.zeros((1, 16, 16, 3), np.uint8), torch.device("cpu"))


def test_msssim_matches_pytorch_msssim(faces: np.ndarray) -> None:
    from pytorch_msssim import ms_ssim as reference

    a, b = faces[:6], faces[6:12]
    got = msssim.pair_scores(a, b)
    x = torch.from_numpy(a).permute(0, 3, 1, 2).float()
    y = torch.from_numpy(b).permute(0, 3, 1, 2).float()
    expected = reference(x, y, data_range=255, size_average=False).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert np.ptp(got) > 0.01  # different pairs, different values: the comparison is not trivial


def test_msssim_identity_small_images_and_pairs(faces: np.ndarray) -> None:
    assert msssim.pair_scores(faces[:2], faces[:2]) == pytest.approx(1.0, abs=1e-6)
    tiny = faces[:4, ::3, ::3]  # 64x64: below pytorch-msssim's minimum, still defined here
    values = msssim.pair_scores(tiny[:2], tiny[2:])
    assert np.all((values > 0) & (values < 1))
    pairs = msssim.random_pairs(5, 2000, seed=0)
    assert np.all(pairs[:, 0] != pairs[:, 1]) and set(np.unique(pairs)) == set(range(5))
    assert np.array_equal(pairs, msssim.random_pairs(5, 2000, seed=0))
