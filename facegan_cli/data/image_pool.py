"""Real images to compare generated ones with, served square at one size and named by their source.

A thin layer over `data.sources.open_image_set` (prepared datasets, folders, zips, and the project's
bad-input policy): it adds the source name of every row, which the nearest-neighbour report and the
Turing-test key record, and serves a prepared dataset from its stored resolution closest to the size
asked for. Unusable files are skipped by the reader, so batches carry the row numbers they hold.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from facegan_cli.core.errors import FaceganError
from facegan_cli.data.sources import ImageSource, PreparedSource, open_image_set


def square_resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to size x size (Lanczos); unchanged when already that size."""
    h, w = pixels.shape[:2]
    if (h, w) == (size, size):
        return pixels
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = Image.fromarray(np.ascontiguousarray(pixels[top : top + side, left : left + side]))
    return np.asarray(image.resize((size, size), Image.Resampling.LANCZOS))


def _source_names(images: ImageSource) -> list[str]:
    if isinstance(images, PreparedSource):
        names = images.dataset.names
        if len(names) == images.dataset.count:
            return [names[int(row)] for row in images.rows]
        return [f"{images.dataset.path.absolute()}[{int(row)}]" for row in images.rows]
    entries: list[str] = getattr(images, "entries", [])
    root = images.path.absolute()
    return [f"{root}/{entry}" for entry in entries]


class RealImages:
    """The rows of an image set at size x size; `names[i]` says where row i came from."""

    def __init__(self, images: ImageSource, size: int | None) -> None:
        self.images = images
        self.size = size
        self.names = _source_names(images)

    def __len__(self) -> int:
        return len(self.images)

    def _fit(self, pixels: np.ndarray) -> np.ndarray:
        if self.size is None or pixels.shape[1:3] == (self.size, self.size):
            return pixels
        return np.stack([square_resize(p, self.size) for p in pixels])

    def load(self, rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(images, the rows they are): unusable files among `rows` are left out, with a warning."""
        pixels, kept = self.images.load_with_indices(np.asarray(rows, dtype=np.int64))
        return self._fit(pixels), kept

    def image(self, row: int) -> np.ndarray:
        return self.load([row])[0][0]

    def batches(self, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every usable row in order, as (N x size x size x 3 uint8 images, their row numbers)."""
        for start in range(0, len(self), batch_size):
            yield self.load(np.arange(start, min(start + batch_size, len(self))))


def open_real_images(
    path: str | os.PathLike[str], size: int | None = None, option: str = "--data"
) -> RealImages:
    """A prepared dataset, a folder or a zip of images, served at size x size (default: as stored).

    A prepared dataset is read at its smallest stored resolution not below `size` (the least detail
    lost when shrinking); folders and zips are fitted to `size` as `open_image_set` does.
    """
    path = Path(path)
    if not path.exists():
        raise FaceganError(
            f"{option} {path} does not exist.", "Pass a prepared dataset, a folder or a zip of images."
        )
    images = open_image_set(path)
    if isinstance(images, PreparedSource):
        stored = sorted(images.dataset.resolutions)
        at_least = [r for r in stored if size is not None and r >= size]
        resolution = at_least[0] if at_least else stored[-1]
        if resolution != images.resolution:
            images = open_image_set(path, resolution=resolution)
    elif size is not None:
        images = open_image_set(path, resolution=size)
    return RealImages(images, size)
