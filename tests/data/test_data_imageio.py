"""Decoding under the bad-input policy: every odd kind of file is converted to RGB or rejected."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan_cli.data.imageio import RejectedImage, is_image_name, load_rgb


def _reason(source: Path | bytes) -> str:
    with pytest.raises(RejectedImage) as info:
        load_rgb(source)
    return info.value.reason


def _jpeg_bytes(image: Image.Image, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=100, **kwargs)
    return buffer.getvalue()


@pytest.mark.unit
def test_rgb_png_round_trips_exactly(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (12, 9, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = load_rgb(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (12, 9, 3)
    np.testing.assert_array_equal(out, pixels)
    np.testing.assert_array_equal(load_rgb((tmp_path / "a.png").read_bytes(), name="a.png"), pixels)


@pytest.mark.unit
def test_zero_byte_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert _reason(tmp_path / "empty.jpg") == "zero-byte file"
    assert _reason(b"") == "zero-byte file"


@pytest.mark.unit
def test_non_image_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("this is not a JPEG\n" * 20)
    assert _reason(tmp_path / "notes.jpg") == "not an image"


@pytest.mark.unit
def test_missing_file_is_rejected(tmp_path: Path) -> None:
    assert _reason(tmp_path / "gone.jpg") == "missing file"
    with pytest.raises(RejectedImage) as info:
        load_rgb(b"\x00\x01", name="archive.zip/img.png")
    assert info.value.source == "archive.zip/img.png" and info.value.reason == "not an image"


@pytest.mark.unit
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_rejected(tmp_path: Path, fmt: str) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    data = buffer.getvalue()
    (tmp_path / "cut").write_bytes(data[: len(data) // 2])
    assert _reason(tmp_path / "cut").startswith("truncated or corrupt image:")


@pytest.mark.unit
def test_cmyk_jpeg_is_converted(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    (tmp_path / "cmyk.jpg").write_bytes(_jpeg_bytes(cmyk))
    out = load_rgb(tmp_path / "cmyk.jpg")
    assert out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - [255, 0, 0]).max() <= 3


@pytest.mark.unit
@pytest.mark.parametrize("transparency", [False, True])
def test_palette_png_is_converted_to_its_colours(tmp_path: Path, transparency: bool) -> None:
    palette_image = Image.new("P", (4, 2))
    palette_image.putpalette([10, 20, 30, 200, 100, 50] + [0] * (254 * 3))
    palette_image.putdata([0, 1, 0, 1, 1, 1, 0, 0])
    kwargs = {"transparency": 0} if transparency else {}
    palette_image.save(tmp_path / "p.png", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL warns when a transparent palette is converted carelessly
        out = load_rgb(tmp_path / "p.png")
    expected = np.array([[10, 20, 30], [200, 100, 50]], dtype=np.uint8)[[0, 1, 0, 1, 1, 1, 0, 0]].reshape(
        2, 4, 3
    )
    np.testing.assert_array_equal(out, expected)


@pytest.mark.unit
def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 255, 256, 32768], [40000, 65280, 65535, 1000]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    image.save(tmp_path / "deep.png")
    out = load_rgb(tmp_path / "deep.png")
    assert out.shape == (2, 4, 3)
    np.testing.assert_array_equal(out[..., 0], (values >> 8).astype(np.uint8))
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert out[0, 3, 0] == 128  # clipping would give 255


@pytest.mark.unit
def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    gray = np.arange(30, dtype=np.uint8).reshape(5, 6) * 8
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = load_rgb(tmp_path / "g.png")
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


@pytest.mark.unit
def test_alpha_is_dropped_keeping_colour(tmp_path: Path) -> None:
    rgba = np.zeros((3, 3, 4), dtype=np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[0, 0, 3] = 0  # fully transparent pixel keeps its stored colour, as PIL convert("RGB") does
    rgba[1:, :, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "a.png"), np.broadcast_to([10, 20, 30], (3, 3, 3)))
    la = np.stack([np.full((2, 2), 77, np.uint8), np.array([[0, 255], [128, 255]], np.uint8)], axis=-1)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "la.png"), np.full((2, 2, 3), 77))


@pytest.mark.unit
def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = (255, 0, 0)  # left half red
    stored[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    (tmp_path / "rot.jpg").write_bytes(_jpeg_bytes(Image.fromarray(stored), exif=exif.tobytes()))
    out = load_rgb(tmp_path / "rot.jpg")
    assert out.shape == (40, 20, 3)
    expected = np.rot90(stored, k=-1).astype(int)  # clockwise: the left half becomes the top half
    away_from_edge = np.r_[0:16, 24:40]  # JPEG blurs colours across the red/blue boundary
    assert np.abs(out[away_from_edge].astype(int) - expected[away_from_edge]).max() <= 8


@pytest.mark.unit
def test_too_small_is_rejected_with_its_size(tmp_path: Path) -> None:
    Image.new("RGB", (10, 8)).save(tmp_path / "s.png")
    assert _reason_min(tmp_path / "s.png", 16) == "too small: 10x8 < 16"
    assert load_rgb(tmp_path / "s.png", min_size=8).shape == (8, 10, 3)


def _reason_min(path: Path, min_size: int) -> str:
    with pytest.raises(RejectedImage) as info:
        load_rgb(path, min_size=min_size)
    return info.value.reason


@pytest.mark.unit
def test_image_names_are_case_insensitive() -> None:
    assert is_image_name("A.JPG") and is_image_name("b.Png") and is_image_name("c.jpeg")
    assert not is_image_name("labels.csv") and not is_image_name("README")


@pytest.mark.unit
def test_real_sample_faces_and_non_faces_decode(celebahq_sample: Path, non_faces: Path) -> None:
    face = load_rgb(sorted(celebahq_sample.glob("*.jpg"))[0])
    assert face.shape == (1024, 1024, 3) and face.std() > 10
    animal = load_rgb(sorted(non_faces.glob("*.jpg"))[0])
    assert animal.ndim == 3 and animal.shape[2] == 3
