"""The CelebA crops against the code they reproduce (torchvision transforms, ProGAN's dataset_tool)."""

from __future__ import annotations

import numpy as np
import pytest
import torchvision.transforms as T
from PIL import Image

from facegan_cli.data.crops import apply_crop, box_downsample
from facegan_cli.data.imageio import RejectedImage


def _image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    # Smooth structure plus noise, so resampling differences would show.
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=-1)
    noisy = base + rng.integers(-20, 21, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


@pytest.mark.unit
@pytest.mark.parametrize("width,height", [(178, 218), (218, 178), (100, 100), (333, 250), (65, 301)])
@pytest.mark.parametrize("size", [64, 32])
def test_dcgan_crop_equals_torchvision_resize_centercrop(width: int, height: int, size: int) -> None:
    img = _image(width, height)
    expected = np.asarray(T.Compose([T.Resize(size), T.CenterCrop(size)])(img))
    np.testing.assert_array_equal(apply_crop(img, "dcgan", size), expected)


@pytest.mark.unit
def test_celeba32_is_the_64_crop_resized_by_torchvision() -> None:
    img = _image(178, 218, seed=3)
    expected = np.asarray(T.Compose([T.Resize(64), T.CenterCrop(64), T.Resize(32)])(img))
    np.testing.assert_array_equal(apply_crop(img, "dcgan", 32, crop_size=64), expected)


@pytest.mark.unit
@pytest.mark.parametrize("size", [128, 64])
def test_stargan_crop_equals_torchvision_centercrop_resize(size: int) -> None:
    img = _image(178, 218, seed=1)
    expected = np.asarray(T.Compose([T.CenterCrop(178), T.Resize(size)])(img))
    np.testing.assert_array_equal(apply_crop(img, "stargan", size), expected)


def _progan_levels(crop: np.ndarray, levels: int) -> list[np.ndarray]:
    """ProGAN's TFRecordExporter.add_image: float32 halving, each level quantised with np.rint."""
    img = crop.transpose(2, 0, 1)
    out = []
    for lod in range(levels):
        if lod:
            img = img.astype(np.float32)
            img = (img[:, 0::2, 0::2] + img[:, 0::2, 1::2] + img[:, 1::2, 0::2] + img[:, 1::2, 1::2]) * 0.25
        out.append(np.rint(img).clip(0, 255).astype(np.uint8).transpose(1, 2, 0))
    return out


@pytest.mark.unit
def test_progan_crop_and_levels_match_the_original_tool() -> None:
    pixels = np.asarray(_image(178, 218, seed=2))
    crop = pixels[121 - 64 : 121 + 64, 89 - 64 : 89 + 64]
    np.testing.assert_array_equal(apply_crop(pixels, "progan", 128), crop)
    reference = _progan_levels(crop, 6)  # 128, 64, 32, 16, 8, 4
    for level, expected in enumerate(reference):
        np.testing.assert_array_equal(apply_crop(pixels, "progan", 128 >> level), expected)
        np.testing.assert_array_equal(box_downsample(crop, 1 << level), expected)


@pytest.mark.unit
def test_box_downsample_rounds_half_to_even() -> None:
    blocks = {
        (1, 2, 2, 2): 2,
        (1, 1, 2, 2): 2,
        (1, 1, 1, 2): 1,
        (2, 2, 3, 3): 2,
        (3, 3, 4, 4): 4,
        (0, 0, 0, 1): 0,
    }
    for values, expected in blocks.items():
        block = np.array(values, dtype=np.uint8).reshape(2, 2, 1)
        assert box_downsample(block, 2)[0, 0, 0] == expected, values


@pytest.mark.unit
def test_none_crop_resizes_square_images_with_lanczos() -> None:
    img = _image(256, 256, seed=4)
    np.testing.assert_array_equal(
        apply_crop(img, "none", 64), np.asarray(img.resize((64, 64), Image.LANCZOS))
    )
    np.testing.assert_array_equal(apply_crop(img, "none", 256), np.asarray(img))
    with pytest.raises(RejectedImage, match="not square"):
        apply_crop(_image(200, 256), "none", 64)


@pytest.mark.unit
def test_inputs_too_small_for_the_crop_are_rejected() -> None:
    with pytest.raises(RejectedImage, match="too small"):
        apply_crop(_image(150, 150), "stargan", 128)  # the 178 box does not fit
    with pytest.raises(RejectedImage, match="too small"):
        apply_crop(_image(178, 160), "progan", 128)  # rows 57..185 do not exist
    with pytest.raises(RejectedImage, match="too small"):
        apply_crop(_image(40, 50), "dcgan", 64)
    assert apply_crop(_image(40, 50), "dcgan", 64, allow_upscale=True).shape == (64, 64, 3)
    with pytest.raises(RejectedImage, match="allow-upscale"):
        apply_crop(_image(178, 218), "stargan", 256)
