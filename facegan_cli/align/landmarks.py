"""Faces found in an image, the landmark backends that find them, and which faces to keep.

Backends (specs/datasets.md):
- celeba: the dataset's own 5 points (given with the input; nothing is detected);
- dlib: dlib's detector and 68-point shape predictor (extra [dlib]), fully offline (dlib_backend.py);
- face-alignment: the 1adrianb package's S3FD detector and 2D-FAN, batched on the device (fan_backend.py).
A detecting backend returns every face it finds; `select_faces` keeps the largest, or all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

BACKENDS = ("celeba", "face-alignment", "dlib")
DETECTORS = ("face-alignment", "dlib")


@dataclass(frozen=True)
class Face:
    """One face: landmarks (68 x 2 iBUG or 5 x 2 CelebA order, pixel indices) and its detection box."""

    points: np.ndarray
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float = 1.0

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @classmethod
    def from_points(cls, points: np.ndarray) -> Face:
        """A face known only by its landmarks (CelebA's): its box is the landmarks' bounding box."""
        pts = np.asarray(points, dtype=np.float64)
        return cls(pts, (*pts.min(axis=0).tolist(), *pts.max(axis=0).tolist()))


def select_faces(faces: Sequence[Face], all_faces: bool = False) -> list[Face]:
    """The largest face (by detection box), or every face largest first (so #0 is always the largest)."""
    ordered = sorted(faces, key=lambda face: face.area, reverse=True)
    return ordered if all_faces else ordered[:1]


class Detector(Protocol):
    """What a detecting backend offers; images are H x W x 3 uint8 RGB arrays."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]: ...

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...

    def describe(self) -> dict[str, Any]: ...


def open_detector(
    name: str, device: str = "auto", batch_size: int | None = None, weights: dict[str, Any] | None = None
) -> Detector:
    """Load the named detecting backend (a FaceganError says what is missing and how to get it).

    `weights` gives face-alignment's networks as the user's own files (see fan_backend)."""
    if name == "dlib":
        from facegan_cli.align.dlib_backend import DlibDetector

        return DlibDetector()
    if name == "face-alignment":
        from facegan_cli.align.fan_backend import FanDetector

        return FanDetector(device=device, batch_size=batch_size, weights=weights)
    raise ValueError(f"{name!r} is not a detecting landmark backend; choose one of {', '.join(DETECTORS)}")
