"""Turning generator outputs into uint8 pixels, grids and image files."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facegan_cli.core.atomic import atomic_path


def to_uint8(images: torch.Tensor, value_range: tuple[float, float]) -> np.ndarray:
    """N x C x H x W floats in `value_range` -> N x H x W x 3 uint8 (rounded, clipped), on the host."""
    lo, hi = value_range
    scaled = (images.detach().float() - lo) * (255.0 / (hi - lo))
    scaled = scaled.round_().clamp_(0, 255).to(torch.uint8)
    if scaled.shape[1] == 1:
        scaled = scaled.expand(-1, 3, -1, -1)
    return scaled.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def grid_array(pixels: np.ndarray, nrow: int | None = None, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile N x H x W x 3 uint8 images into one array, `nrow` images per row (default: square-ish)."""
    n, h, w, c = pixels.shape
    ncol = nrow or max(1, math.ceil(math.sqrt(n)))
    nlines = math.ceil(n / ncol)
    canvas = np.full(
        (nlines * (h + padding) + padding, ncol * (w + padding) + padding, c), pad_value, dtype=np.uint8
    )
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        canvas[y : y + h, x : x + w] = pixels[i]
    return canvas


def save_png(pixels: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write one H x W x 3 uint8 image atomically; the format follows the suffix (png default)."""
    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format=fmt)
    return path


def save_grid(
    images: torch.Tensor,
    path: str | os.PathLike[str],
    value_range: tuple[float, float],
    nrow: int | None = None,
    padding: int = 2,
) -> Path:
    return save_png(grid_array(to_uint8(images, value_range), nrow=nrow, padding=padding), path)
