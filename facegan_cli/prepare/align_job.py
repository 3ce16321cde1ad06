"""One input of an aligning prepare: decode, find the landmarks, pick the faces, crop (bad-input policy).

`align_input(job, task)` runs in a worker process and returns the rows of one input (pipeline.Row):
one per kept face, with its crop quad and 5 landmarks in source-image pixel indices. An input is
rejected (RejectedImage, written to rejects.tsv) when it cannot be decoded, when no face is found, when
the landmarks fall outside the image or do not span a face, or when the face is smaller than
`min_face` pixels (the side of its crop square in the source). With `all_faces`, a face that fails
these checks is listed as `path#k` while the other faces of the image are kept.

Landmarks come from the task (CelebA's own points, or faces a parent-side stage found with
face-alignment) or are detected here with dlib.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from facegan_cli.align.geometry import five_points, oriented_square, points_inside, random_shift
from facegan_cli.align.landmarks import Detector, Face, select_faces
from facegan_cli.align.warp import WarpSettings, align_crop
from facegan_cli.data.imageio import RejectedImage, load_rgb, open_rgb
from facegan_cli.prepare.pipeline import Row

# Per-row arrays an aligning prepare stores beside the images (see prepared.PreparedWriter extras).
EXTRAS: dict[str, tuple[int, ...]] = {"quads": (4, 2), "landmarks": (5, 2), "faces": ()}


@dataclass(frozen=True)
class AlignJob:
    """The settings every input of one prepare shares."""

    mode: str  # progan (CelebA-HQ) | ffhq
    warp: WarpSettings
    landmarks: str  # celeba | dlib | face-alignment
    all_faces: bool = False
    rotate_level: bool = True
    random_shift: float = 0.0
    seed: int = 0
    min_face: float = 32.0


@dataclass(frozen=True)
class AlignTask:
    """One input: its file, its position (seeds random_shift), and faces already known (or None)."""

    path: str
    index: int
    faces: tuple[Face, ...] | None = field(default=None, compare=False)


def worker_setup() -> None:
    """Run once in each alignment worker: OpenCV on one thread, since the workers already use every core
    and OpenCV's own pool in each would oversubscribe them."""
    import cv2

    cv2.setNumThreads(1)


def crop_face(image: Image.Image, face: Face, job: AlignJob, key: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """The aligned crop of one face and its extras; RejectedImage when the face cannot be used."""
    width, height = image.size
    five = five_points(face.points)
    if not points_inside(five, width, height):
        raise RejectedImage(f"landmarks outside the image ({width}x{height})")
    try:
        square = oriented_square(five, job.mode, job.rotate_level)
    except ValueError as exc:
        raise RejectedImage(str(exc)) from exc
    if square.qsize < job.min_face:
        raise RejectedImage(f"face too small: {square.qsize:.0f} px crop < --min-face {job.min_face:g}")
    square = random_shift(square, job.random_shift, np.random.default_rng([job.seed, *key]))
    pixels = align_crop(image, square.quad, job.warp)
    return pixels, {"quads": square.quad, "landmarks": five}


def _detect(job: AlignJob, image: Image.Image) -> list[Face]:
    if job.landmarks != "dlib":
        raise ValueError(f"landmarks {job.landmarks!r} must be found before the worker (see FaceStage)")
    from facegan_cli.align import dlib_backend

    return dlib_backend.shared().detect(np.asarray(image))


def align_input(job: AlignJob, task: AlignTask) -> list[Row]:
    """The rows of one input (see the module docstring)."""
    image = open_rgb(task.path)
    faces = list(task.faces) if task.faces is not None else _detect(job, image)
    if not faces:
        raise RejectedImage("no face")
    chosen = select_faces(faces, job.all_faces)
    rows = []
    for k, face in enumerate(chosen):
        suffix = f"#{k}" if job.all_faces else ""
        try:
            pixels, extras = crop_face(image, face, job, (task.index, k))
        except RejectedImage as exc:
            if not job.all_faces:
                raise
            rows.append(Row(None, suffix, reason=exc.reason))
            continue
        rows.append(Row(pixels, suffix, {**extras, "faces": np.float32(len(faces))}))
    if all(row.pixels is None for row in rows):
        raise RejectedImage(rows[0].reason)
    return rows


class FaceStage:
    """Finds faces for a batch of tasks in the parent process (face-alignment: one network, batched on
    the device) so the workers only crop. An undecodable file is left for the worker to reject."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    def __call__(self, tasks: list[AlignTask]) -> list[AlignTask]:
        images: list[np.ndarray] = []
        positions: list[int] = []
        for k, task in enumerate(tasks):
            try:
                images.append(load_rgb(task.path))
            except RejectedImage:
                continue
            positions.append(k)
        found = self.detector.detect_batch(images) if images else []
        out = list(tasks)
        for k, faces in zip(positions, found):
            out[k] = replace(tasks[k], faces=tuple(faces))
        return out


def describe_job(job: AlignJob) -> dict[str, Any]:
    """The settings the manifest records."""
    return {
        "align": job.mode,
        "landmarks": job.landmarks,
        "size": job.warp.size,
        "transform_size": job.warp.transform_size,
        "shrink_reference_size": job.warp.reference_size,
        "enable_padding": job.warp.enable_padding,
        "all_faces": job.all_faces,
        "rotate_level": job.rotate_level,
        "random_shift": job.random_shift,
        "seed": job.seed,
        "min_face": job.min_face,
    }
