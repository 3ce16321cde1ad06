"""One training set at several resolutions, for families that train through a pyramid (ProGAN).

A prepared dataset written with `--levels` stores every 2x2 box-averaged level; each is read from its
memory map when a phase needs it. A folder or zip of images is decoded once at the largest resolution
and halved in memory with the same exact box average, so both sources give the same pixels.
"""

from __future__ import annotations

import os

import numpy as np

from facegan_cli.core.errors import FaceganError
from facegan_cli.data.sources import ImageSource, PreparedSource, open_image_set


def box_halvings(images: np.ndarray, factor: int) -> np.ndarray:
    """N x H x W x C uint8 -> each factor x factor block averaged, rounded half to even.

    The batched form of data.crops.box_downsample (what `prepare --levels` writes): every level is the
    rounded mean of the top level's block, never of an already-rounded level.
    """
    if factor == 1:
        return images
    n, h, w, c = images.shape
    out = np.empty((n, h // factor, w // factor, c), dtype=np.uint8)
    area = factor * factor
    for start in range(0, n, 256):  # chunks keep the int64 intermediate small
        chunk = images[start : start + 256].astype(np.int64)
        total = chunk.reshape(-1, h // factor, factor, w // factor, factor, c).sum(axis=(2, 4))
        quotient, remainder = np.divmod(total, area)
        round_up = (2 * remainder > area) | ((2 * remainder == area) & (quotient % 2 == 1))
        out[start : start + 256] = quotient + round_up
    return out


class ImageLevels:
    """The rows of one split at every resolution in `resolutions` (checked to exist when opened)."""

    def __init__(self, path: str | os.PathLike[str], split: str | None, resolutions: list[int]) -> None:
        self.path = path
        self.split = split
        self.resolutions = sorted(set(resolutions))
        self.top = self.resolutions[-1]
        first = open_image_set(path, split=split)
        self._prepared = isinstance(first, PreparedSource)
        if self._prepared:
            held = first.dataset.resolutions  # type: ignore[attr-defined]
            missing = [r for r in self.resolutions if r not in held]
            if missing:
                raise FaceganError(
                    f"Training to {self.top}x{self.top} reads every level "
                    f"{', '.join(map(str, self.resolutions))} of the dataset, but the prepared dataset {path} "
                    f"holds only {', '.join(map(str, held))} (missing {', '.join(map(str, missing))}).",
                    "Prepare it again with all levels: re-run the `facegan prepare ...` command that wrote it "
                    "with --levels (e.g. `facegan prepare celeba --crop progan --size 128 --levels`), or train "
                    "to a --resolution whose levels it holds.",
                )
        self.top_set: ImageSource = open_image_set(path, split=split, resolution=self.top)
        self._decoded: np.ndarray | None = None

    @property
    def fingerprint(self) -> str:
        return self.top_set.fingerprint

    def _top_pixels(self) -> np.ndarray:
        if self._decoded is None:
            self._decoded = self.top_set.load_array()
        return self._decoded

    @property
    def count(self) -> int:
        # A decoded folder may skip unreadable files, so its count is that of what was decoded.
        return len(self.top_set) if self._prepared else len(self._top_pixels())

    def array(self, resolution: int) -> np.ndarray:
        """N x res x res x 3 uint8 images of one level."""
        if resolution not in self.resolutions:
            raise ValueError(f"level {resolution} was not opened (have {self.resolutions})")
        if self._prepared:
            return open_image_set(self.path, split=self.split, resolution=resolution).load_array()
        return box_halvings(self._top_pixels(), self.top // resolution)
