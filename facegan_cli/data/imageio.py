"""Robust image decoding: every input becomes an RGB uint8 array or a `RejectedImage` with a reason.

The bad-input policy of specs/datasets.md lives here: EXIF orientation is applied; CMYK, palette,
16-bit, grayscale and alpha images are converted to RGB; corrupt, truncated, zero-byte and non-image
files are rejected with a short reason that goes into `rejects.tsv`.

Alpha is dropped (the colour channels are kept as they are, not composited on a background), which is
what PIL's `convert("RGB")` and StyleGAN's dataset_tool do, so datasets match those tools.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Lower-case suffixes of files treated as images when a folder or zip is scanned.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}
)

# Modes whose pixels are 16-bit integers; PIL's own convert() would clip them to 255 instead of scaling.
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


class RejectedImage(Exception):
    """An input that cannot be used; `reason` is the short text written to rejects.tsv.

    `source` names the input (a path, or the name given with bytes) once `open_rgb` has seen it.
    """

    def __init__(self, reason: str, source: str = "") -> None:
        super().__init__(f"{source}: {reason}" if source else reason)
        self.reason = reason
        self.source = source


def is_image_name(name: str) -> bool:
    """True for file names with an image suffix (case-insensitive), so `.JPG` is not missed."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _read_bytes(source: str | os.PathLike[str] | bytes) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    try:
        return Path(source).read_bytes()
    except FileNotFoundError as exc:
        raise RejectedImage("missing file") from exc
    except IsADirectoryError as exc:
        raise RejectedImage("not an image (a directory)") from exc
    except OSError as exc:
        raise RejectedImage(f"unreadable file: {exc.strerror or exc}") from exc


def _sixteen_to_rgb(img: Image.Image) -> Image.Image:
    # Scale 0..65535 to 0..255 by the high byte (v >> 8, within one step of v / 257) rather than clipping.
    values = np.asarray(img).astype(np.int64)
    eight = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)
    return Image.fromarray(np.repeat(eight[:, :, None], 3, axis=2), mode="RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _SIXTEEN_BIT_MODES:
        return _sixteen_to_rgb(img)
    if mode == "F":
        raise RejectedImage("unsupported pixel mode F (floating-point image)")
    if mode in ("P", "PA"):
        # Through RGBA so a palette with transparency converts without PIL's warning; alpha is then dropped.
        return img.convert("RGBA").convert("RGB")
    # L, LA, 1, CMYK, RGBA, RGBa, La, YCbCr, LAB, HSV: PIL's conversions drop alpha and map colour spaces.
    return img.convert("RGB")


def open_rgb(source: str | os.PathLike[str] | bytes, name: str = "", min_size: int = 0) -> Image.Image:
    """Decode `source` (a path or the file's bytes) into an upright RGB PIL image.

    Raises RejectedImage for anything unusable, including images whose shorter side is below
    `min_size` after orientation; its `source` is `name`, or the path when no name is given.
    """
    try:
        return _decode(source, min_size)
    except RejectedImage as exc:
        label = name or ("" if isinstance(source, bytes | bytearray | memoryview) else str(source))
        raise RejectedImage(exc.reason, label) from exc.__cause__


def _decode(source: str | os.PathLike[str] | bytes, min_size: int) -> Image.Image:
    data = _read_bytes(source)
    if not data:
        raise RejectedImage("zero-byte file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL warns on odd metadata; the pixels are what matter
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise RejectedImage("not an image") from exc
    except Image.DecompressionBombError as exc:
        raise RejectedImage(f"image too large: {exc}") from exc
    except Exception as exc:  # PIL raises many types for damaged headers
        raise RejectedImage(f"truncated or corrupt image: {exc}") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # load() decodes every byte now, so a truncated JPEG fails here and not later in a worker.
            img.load()
    except Exception as exc:
        raise RejectedImage(f"truncated or corrupt image: {exc}") from exc
    try:
        upright = ImageOps.exif_transpose(img)
    except Exception:
        # Damaged EXIF: the pixels decoded fine, so keep them in stored orientation.
        upright = img
    if upright is None:
        upright = img
    rgb = _to_rgb(upright)
    width, height = rgb.size
    if min_size and min(width, height) < min_size:
        raise RejectedImage(f"too small: {width}x{height} < {min_size}")
    return rgb


def load_rgb(source: str | os.PathLike[str] | bytes, name: str = "", min_size: int = 0) -> np.ndarray:
    """Decode `source` into an H x W x 3 uint8 array (see `open_rgb` for the conversion rules)."""
    return np.asarray(open_rgb(source, name=name, min_size=min_size), dtype=np.uint8).copy()
