"""How `facegan edit` and `facegan translate` read photos: the options they share (batch size, landmark
backend, the user's own face-alignment networks, --force, device) and the ways an input becomes the model's
input: the model's square (resized and centre-cropped like the training data, or, with a landmark backend,
the largest face CelebA-aligned), or for `translate` the whole frame with its short side scaled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facegan_cli.core.errors import FaceganError, UsageProblem

if TYPE_CHECKING:  # the options are declared by the CLI before it knows it needs OpenCV or torch
    import numpy as np

    from facegan_cli.align.landmarks import Detector

ALIGN_CHOICES = ("none", "dlib", "face-alignment")


@dataclass(frozen=True)
class PhotoOptions:
    """batch_size: photos per forward pass; align: "none" or a landmark backend of ALIGN_CHOICES;
    own_networks: the user's own face-alignment weights by the key of the official file each replaces (None:
    the verified official ones); force: replace an output folder facegan wrote; device: "auto", "cpu", "cuda"."""

    batch_size: int = 16
    align: str = "none"
    own_networks: dict[str, Path | None] | None = None
    force: bool = False
    device: str = "auto"

    def check(self) -> None:
        """The user's errors in these options, before any work."""
        if self.batch_size < 1:
            raise UsageProblem(f"--batch-size {self.batch_size} must be at least 1.", "Use e.g. --batch-size 16.")
        if self.align not in ALIGN_CHOICES:
            raise FaceganError(f"--align {self.align!r} is not a backend.", f"Use one of: {', '.join(ALIGN_CHOICES)}.")

    def detector(self, device: str) -> Detector | None:
        """The landmark backend, opened (a missing or unverifiable landmark model fails here, before any
        output), or None without --align."""
        from facegan_cli.align.landmarks import open_detector

        return open_detector(self.align, device=device, weights=self.own_networks) if self.align != "none" else None


def face(path: Path, resolution: int, detector: Detector | None, fit: dict[str, str] | None = None) -> np.ndarray:
    """One input as the model's resolution x resolution x 3 uint8 square (`fit`: the model's own way of fitting
    inputs, which an imported model brings from its project; None: facegan's)."""
    from facegan_cli.models.editing import fit_face

    return fit_face(path, resolution, fit) if detector is None else aligned_face(path, resolution, detector)


def whole_photo(path: Path, short_side: int, fit: dict[str, str] | None = None) -> np.ndarray:
    """The whole frame of an input, aspect kept, its short side scaled to `short_side` (with the model's own
    resampling filter when `fit` names one, else LANCZOS)."""
    from facegan_cli.apply.whole_image import read_scaled
    from facegan_cli.data.crops import fit_filter
    from facegan_cli.data.imageio import RejectedImage

    try:
        return read_scaled(path, short_side, fit_filter(fit))
    except RejectedImage as exc:
        raise FaceganError(f"Cannot use {path}: {exc.reason}.", "Pass a JPEG/PNG image or a folder of them, or crop "
                           "a very elongated one.") from exc


def aligned_face(path: Path, resolution: int, detector: Detector) -> np.ndarray:
    """The largest face of a photo, CelebA-aligned and cropped as the editors' training data."""
    import numpy as np

    from facegan_cli.align.celeba_crop import celeba_crop
    from facegan_cli.align.geometry import five_points
    from facegan_cli.align.landmarks import select_faces
    from facegan_cli.data.imageio import RejectedImage, open_rgb

    try:
        image = np.asarray(open_rgb(path), dtype=np.uint8)
    except RejectedImage as exc:
        raise FaceganError(f"Cannot read {path}: {exc.reason}.", "Pass a JPEG/PNG image or a folder of them.") from exc
    faces = detector.detect(image)
    if not faces:
        raise FaceganError(
            f"No face was found in {path} by the {detector.name} landmark backend.",
            "Pass a photo with a visible face, try the other --align backend, or --align none for images "
            "that are already training crops.",
        )
    return celeba_crop(image, five_points(select_faces(faces)[0].points), resolution)
