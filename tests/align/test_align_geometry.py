"""Crop geometry and the crop procedure: the formulas of specs/datasets.md on hand-computed cases, and
the fast warp against a PIL-only restatement of the FFHQ script (tests/references/align_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
from align_helpers import psnr
from PIL import Image
from references.align_reference import reference_align

from facegan_cli.align.geometry import (
    five_points,
    oriented_quad,
    oriented_square,
    points_inside,
    random_shift,
)
from facegan_cli.align.landmarks import Face, select_faces
from facegan_cli.align.warp import (
    WarpSettings,
    align_crop,
    gaussian_blur,
    padding_mask,
    prepare_source,
    quad_affine,
    shrink_factor,
)

# Eyes at (10, 20) and (30, 20), nose (20, 30), mouth corners (12, 40) and (28, 40): an upright face.
UPRIGHT = np.array([[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]], dtype=np.float64)


@pytest.mark.unit
def test_progan_quad_by_hand() -> None:
    # eye_avg = (20.5, 20.5), mouth_avg = (20.5, 40.5): eye_to_eye (20, 0), eye_to_mouth (0, 20);
    # x = (20, 0) - rot90((0, 20)) = (40, 0) -> unit (1, 0) * max(2*20, 1.8*20) = (40, 0); y = (0, 40);
    # c = (20.5, 20.5) + 0.1 * (0, 20) = (20.5, 22.5).
    square = oriented_square(UPRIGHT, "progan")
    np.testing.assert_allclose(square.c, [20.5, 22.5])
    np.testing.assert_allclose(square.x, [40, 0])
    np.testing.assert_allclose(square.y, [0, 40])
    expected = [[-19.5, -17.5], [-19.5, 62.5], [60.5, 62.5], [60.5, -17.5]]
    np.testing.assert_allclose(oriented_quad(UPRIGHT, "progan"), expected)
    assert square.qsize == pytest.approx(80.0)  # zoom = 1024 / 80 = 12.8


@pytest.mark.unit
def test_ffhq_quad_by_hand_has_no_half_pixel() -> None:
    np.testing.assert_allclose(oriented_quad(UPRIGHT, "ffhq"), [[-20, -18], [-20, 62], [60, 62], [60, -18]])


@pytest.mark.unit
def test_rotated_and_mouth_dominated_case_by_hand() -> None:
    # Eyes (0, 0) and (6, 8): eye_to_eye (6, 8), |.| = 10; mouth corners (-16, 12), (-4, 28) ->
    # mouth_avg (-10, 20), eye_avg (3, 4), eye_to_mouth (-13, 16), |.| = 20.6155.
    # x = (6, 8) - (-16, -13) = (22, 21); scale = max(2*10, 1.8*20.6155) = 37.1080.
    lm = np.array([[0, 0], [6, 8], [0, 10], [-16, 12], [-4, 28]], dtype=np.float64)
    square = oriented_square(lm, "ffhq")
    direction = np.array([22.0, 21.0]) / np.hypot(22, 21)
    scale = 1.8 * np.hypot(13, 16)
    np.testing.assert_allclose(square.x, direction * scale)
    np.testing.assert_allclose(square.y, [-square.x[1], square.x[0]])
    np.testing.assert_allclose(square.c, [3 - 1.3, 4 + 1.6])
    c, x, y = square.c, square.x, square.y
    np.testing.assert_allclose(square.quad, [c - x - y, c - x + y, c + x + y, c + x - y])
    # progan shifts the centre by half a pixel and nothing else
    np.testing.assert_allclose(oriented_square(lm, "progan").c, square.c + 0.5)
    np.testing.assert_allclose(oriented_square(lm, "progan").x, square.x)


@pytest.mark.unit
def test_68_points_reduce_to_celeba_five() -> None:
    rng = np.random.default_rng(0)
    lm68 = rng.uniform(0, 100, (68, 2))
    five = five_points(lm68)
    np.testing.assert_allclose(five[0], lm68[36:42].mean(axis=0))
    np.testing.assert_allclose(five[1], lm68[42:48].mean(axis=0))
    np.testing.assert_allclose(five[2], lm68[30])
    np.testing.assert_allclose(five[3], lm68[48])
    np.testing.assert_allclose(five[4], lm68[54])
    # FFHQ's formula on 68 points (eye means, mouth corners 48 and 54) is the 5-point one.
    eye_avg = (lm68[36:42].mean(0) + lm68[42:48].mean(0)) / 2
    eye_to_mouth = (lm68[48] + lm68[54]) / 2 - eye_avg
    np.testing.assert_allclose(oriented_square(lm68, "ffhq").c, eye_avg + 0.1 * eye_to_mouth)
    with pytest.raises(ValueError):
        five_points(np.zeros((7, 2)))


@pytest.mark.unit
def test_rotate_level_off_random_shift_and_degenerate() -> None:
    tilted = UPRIGHT @ np.array([[0.8, 0.6], [-0.6, 0.8]])
    level = oriented_square(tilted, "ffhq", rotate_level=False)
    assert level.x[1] == 0 and level.qsize == pytest.approx(oriented_square(tilted, "ffhq").qsize)
    square = oriented_square(UPRIGHT, "ffhq")
    moved = random_shift(square, 0.1, np.random.default_rng(3))
    expected = square.c + square.qsize * 0.1 * np.random.default_rng(3).normal(0, 1, 2)
    np.testing.assert_allclose(moved.c, expected)
    assert random_shift(square, 0.0, np.random.default_rng(3)) is square
    with pytest.raises(ValueError, match="degenerate"):
        oriented_square(np.zeros((5, 2)))


@pytest.mark.unit
def test_points_inside_and_face_selection() -> None:
    assert points_inside(UPRIGHT, 31, 41) and not points_inside(UPRIGHT, 30, 41)
    assert not points_inside(UPRIGHT - [11, 0], 100, 100)
    small = Face(UPRIGHT, (0, 0, 10, 10))
    big = Face(UPRIGHT, (0, 0, 30, 20))
    assert select_faces([small, big]) == [big]
    assert select_faces([small, big], all_faces=True) == [big, small]
    assert Face.from_points(UPRIGHT).box == (10.0, 20.0, 30.0, 40.0)


@pytest.mark.unit
def test_building_blocks_match_the_reference_arithmetic() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (90, 70, 3)).astype(np.float32)
    for sigma in (0.7, 3.3, 9.5):
        np.testing.assert_allclose(
            gaussian_blur(pixels, sigma), scipy.ndimage.gaussian_filter(pixels, [sigma, sigma, 0]), atol=2e-3
        )
    pad = (7, 11, 5, 13)
    h, w = 90, 70
    y, x, _ = np.ogrid[:h, :w, :1]
    expected = np.maximum(
        1.0 - np.minimum(np.float32(x) / pad[0], np.float32(w - 1 - x) / pad[2]),
        1.0 - np.minimum(np.float32(y) / pad[1], np.float32(h - 1 - y) / pad[3]),
    )
    np.testing.assert_array_equal(padding_mask(h, w, pad), expected[:, :, 0])
    assert (
        shrink_factor(2047, 1024) == 1 and shrink_factor(4096, 1024) == 2 and shrink_factor(6200, 1024) == 3
    )
    # PIL's QUAD samples output pixel centres: output (0, 0) reads input quad[0] + 0.5 + half a step.
    quad = np.array([[10, 20], [10, 60], [50, 60], [50, 20]], dtype=np.float64)
    m = quad_affine(quad, 8)
    np.testing.assert_allclose(m @ [0, 0, 1], [10 + 0.5 + 2.5 - 0.5, 20 + 0.5 + 2.5 - 0.5])


def _face(size: int = 512) -> Image.Image:
    from conftest import CELEBAHQ_SAMPLE

    path = sorted(CELEBAHQ_SAMPLE.glob("*.jpg"))[0] if CELEBAHQ_SAMPLE.is_dir() else None
    if path is None:
        pytest.skip("sample faces not available")
    return Image.open(path).convert("RGB").resize((size, size), Image.LANCZOS)


def _square_quad(cx: float, cy: float, half: float, degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    x = half * np.array([np.cos(t), np.sin(t)])
    y = np.array([-x[1], x[0]])
    c = np.array([cx, cy])
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


@pytest.mark.parametrize(
    ("quad", "reference_size", "padded"),
    [
        (_square_quad(256, 250, 120, 12), 1024, False),  # inside the photo: no padding
        (_square_quad(200, 260, 230, -20), 1024, True),  # leaves the photo: reflect, blur, median
        (_square_quad(250, 255, 200, 7), 128, False),  # qsize 400 > 2 x 128: shrunk by 3 first (FFHQ rule)
        (_square_quad(120, 255, 200, 7), 128, True),  # shrunk, then padded
    ],
)
def test_fast_warp_equals_the_pil_reference(quad: np.ndarray, reference_size: int, padded: bool) -> None:
    image = _face()
    settings = WarpSettings(size=128, transform_size=512, reference_size=reference_size)
    assert prepare_source(image, quad, settings).padded == padded
    ours = align_crop(image, quad, settings)
    theirs = np.asarray(reference_align(image, quad, 128, 512, reference_size))
    # OpenCV rounds the supersampled bilinear values where PIL truncates them: under half a level.
    difference = np.abs(ours.astype(int) - theirs.astype(int))
    assert difference.mean() < 0.6 and difference.max() <= 3, (difference.mean(), difference.max())
    assert psnr(ours, theirs, central=1.0) > 45


@pytest.mark.unit
def test_padding_can_be_switched_off() -> None:
    image = _face(256)
    quad = _square_quad(40, 128, 100, 0)  # the left half of the square lies outside the photo
    settings = WarpSettings(size=64, transform_size=256, enable_padding=False)
    ours = align_crop(image, quad, settings)
    theirs = np.asarray(reference_align(image, quad, 64, 256, enable_padding=False))
    assert ours[:, :15].max() <= 1  # black where there is no photo, as FFHQ's enable_padding=False
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 0.6
    padded = align_crop(image, quad, WarpSettings(size=64, transform_size=256))
    assert padded[:, :15].mean() > 20
