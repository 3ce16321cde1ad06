"""The face-alignment landmark backend (the 1adrianb package): S3FD faces, 2D-FAN 68 points, in batches.

The package reads its weights from `torch.hub.get_dir()/checkpoints/` (2DFAN4-11f355bf06.pth.tar and
s3fd-619a316812.pth), downloading what is missing. facegan finds, downloads (core.weights) and verifies
each file BEFORE the package reads it: a file under the official name must match the SHA-256 prefix in
that name, so random bytes or a swapped file there are refused with a message, never handed to a
loader. A user's own network (retrained, converted, or random for tests) is passed explicitly
(`--fan-weights`, `--s3fd-weights`) under a name of its own: it is used unverified, with a warning,
and its full hash goes into the dataset's manifest. The package is pointed at the chosen files through
a private hub folder of links, so it never downloads or reads anything else. With no file and no
network the backend fails at once with a message naming both files.

Detection runs on a batch of images, each downscaled to at most `detect_size` pixels on its long side
and zero-padded to a common size (padding on the right and bottom leaves coordinates unchanged), so a
GPU sees one tensor per batch; the 2D-FAN then sees each face at full resolution, all faces of an
image in one batch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facegan_cli.align.landmarks import Face
from facegan_cli.core import weights as W
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import warn

KEYS = ("face-alignment-2dfan4", "face-alignment-s3fd")
DETECT_SIZE = 640
BATCH = {"cuda": 32, "mps": 16, "cpu": 4}


def _missing_error(missing: list[W.WeightsFile], cause: BaseException | None) -> FaceganError:
    names = " and ".join(w.filename for w in missing)
    urls = ", ".join(w.url for w in missing)
    imports = "; ".join(f"`facegan weights import {w.key} /path/to/{w.filename}`" for w in missing)
    why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
    return FaceganError(
        f"--landmarks face-alignment needs the face-alignment weights {names}, which are not in "
        f"{W.torch_hub_checkpoints()} or {W.cache_dir()}, and the package could not download them from "
        f"{urls}{why}.",
        f"Download them elsewhere and run {imports} (or copy them into {W.torch_hub_checkpoints()}); or "
        "use --landmarks dlib, which works offline.",
    )


def resolve_weights(explicit: dict[str, Path | None] | None = None) -> dict[str, W.Resolved]:
    """Each network's verified file (or the user's own, unverified), downloading what is missing.

    Raises one FaceganError naming every file that is neither here nor downloadable, and one naming a
    file under an official name whose hash does not match (core.weights.verify).
    """
    explicit = explicit or {}
    chosen: dict[str, W.Resolved] = {}
    missing: list[W.WeightsFile] = []
    cause: BaseException | None = None
    for key in KEYS:
        try:
            chosen[key] = W.resolve(key, explicit.get(key))
        except FaceganError as exc:
            if W.locate(W.get(key)) is not None or explicit.get(key) is not None:
                raise  # present but wrong: say that, not "missing"
            missing.append(W.get(key))
            cause = exc.__cause__
    if missing:
        raise _missing_error(missing, cause)
    for key, found in chosen.items():
        if not found.verified:
            warn(f"{found.path} is your own {W.get(key).filename} network (SHA-256 {found.sha256[:12]}...), not the "
                 "official one; its landmarks are used as they are and the hash is recorded in the manifest")
    return chosen


@contextlib.contextmanager
def _private_hub(chosen: dict[str, W.Resolved]) -> Iterator[None]:
    """torch.hub pointed at a temporary folder holding exactly the chosen files under the package's names."""
    import torch.hub

    folder = Path(tempfile.mkdtemp(prefix="facegan-fan-hub-"))
    # torch.hub keeps an explicit set_dir() in _hub_dir (None: follow $TORCH_HOME); restoring get_dir()'s
    # value instead would pin the current $TORCH_HOME for the rest of the process.
    previous = getattr(torch.hub, "_hub_dir", None)
    try:
        checkpoints = folder / "checkpoints"
        checkpoints.mkdir()
        for key, found in chosen.items():
            os.symlink(found.path.resolve(), checkpoints / W.get(key).filename)
        torch.hub.set_dir(str(folder))
        yield
    finally:
        torch.hub._hub_dir = previous
        shutil.rmtree(folder, ignore_errors=True)


def _centred_on(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Which boxes have their centre on the image. S3FD also reports boxes in the zero padding that
    makes a batch's images one size, and the package's crop fails on a box that misses the image."""
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    return (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)


class FanDetector:
    """S3FD + 2D-FAN through face_alignment.FaceAlignment (flip_input=False, compile=False)."""

    name = "face-alignment"

    def __init__(
        self,
        device: str = "auto",
        batch_size: int | None = None,
        detect_size: int = DETECT_SIZE,
        weights: dict[str, Path | None] | None = None,
    ) -> None:
        """`weights` maps "face-alignment-2dfan4" / "face-alignment-s3fd" to a user's own file (optional)."""
        import face_alignment

        self.device = resolve_device(device)
        self.batch_size = batch_size or BATCH.get(self.device.type, 4)
        self.detect_size = detect_size
        chosen = resolve_weights(weights)
        with _private_hub(chosen):
            self.model = face_alignment.FaceAlignment(
                face_alignment.LandmarksType.TWO_D,
                device=str(self.device),
                flip_input=False,
                face_detector="sfd",
                compile=False,
                max_batch_size=self.batch_size,
            )
        self.weights = {
            W.get(key).filename: {"path": str(found.path), "sha256": found.sha256, "official": found.verified}
            for key, found in chosen.items()
        }

    def describe(self) -> dict[str, Any]:
        import face_alignment

        return {
            "backend": self.name,
            "face_alignment": getattr(face_alignment, "__version__", "unknown"),
            "device": str(self.device),
            "detector": "sfd",
            "detect_size": self.detect_size,
            "weights": self.weights,
        }

    def _boxes(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """S3FD boxes (x0, y0, x1, y1, score) per image, in the images' own coordinates."""
        import torch

        scaled, factors = [], []
        for image in images:
            height, width = image.shape[:2]
            factor = min(1.0, self.detect_size / max(height, width))
            if factor < 1.0:
                size = (max(1, round(width * factor)), max(1, round(height * factor)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            scaled.append(image)
            factors.append(np.array([image.shape[1] / width, image.shape[0] / height]))
        height = max(image.shape[0] for image in scaled)
        width = max(image.shape[1] for image in scaled)
        batch = np.zeros((len(scaled), height, width, 3), dtype=np.uint8)
        for k, image in enumerate(scaled):
            batch[k, : image.shape[0], : image.shape[1]] = image
        tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device, dtype=torch.float32)
        found = self.model.face_detector.detect_from_batch(tensor)
        out = []
        for image, boxes, factor in zip(images, found, factors):
            boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
            boxes[:, [0, 2]] /= factor[0]
            boxes[:, [1, 3]] /= factor[1]
            out.append(boxes[_centred_on(boxes, image.shape[1], image.shape[0])])
        return out

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        results: list[list[Face]] = []
        for start in range(0, len(images), self.batch_size):
            chunk = [
                np.ascontiguousarray(image, dtype=np.uint8)
                for image in images[start : start + self.batch_size]
            ]
            for image, boxes in zip(chunk, self._boxes(chunk)):
                if len(boxes) == 0:
                    results.append([])
                    continue
                points = self.model.get_landmarks_from_image(image, detected_faces=list(boxes))
                results.append(
                    [
                        Face(np.asarray(p, dtype=np.float64), tuple(b[:4].tolist()), float(b[4]))
                        for p, b in zip(points, boxes)
                    ]
                )
        return results

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detect_batch([image])[0]
