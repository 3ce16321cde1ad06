"""`facegan prepare faces`: align any folder of face photos (FFHQ or CelebA-HQ crop) into a dataset.

Images are found recursively (any case of .jpg/.png/...; hidden files skipped), in sorted order. Labels
come from a `labels.csv` beside them when it has a 0/1 row for every image (as `prepare synthetic
--layout folder` writes). `--align none` skips landmarks: each image is resized (short side, Lanczos)
and centre-cropped, for folders that are already aligned.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from facegan_cli.core.errors import FaceganError
from facegan_cli.data.imageio import open_rgb
from facegan_cli.data.sources import FolderSource, fit_square
from facegan_cli.prepare.align_job import AlignTask
from facegan_cli.prepare.aligned import face_job, prepare_aligned, resize_job
from facegan_cli.prepare.pipeline import Collected, Item, PrepareJob
from facegan_cli.prepare.recipes import Trainer

FACES_DEFAULTS: dict[str, Any] = {
    "size": 1024,
    "levels": False,
    "align": "ffhq",
    "landmarks": "face-alignment",
    "transform_size": 4096,
    "enable_padding": True,
    "rotate_level": True,
    "random_shift": 0.0,
    "seed": 0,
    "all_faces": False,
    "min_face": 32,
    "limit": None,
}


def _square(task: tuple[str, int]) -> np.ndarray:
    path, size = task
    return fit_square(open_rgb(path), size)


def collect_items(src: Path, settings: dict[str, Any]) -> Collected:
    """Every image under `src`, with labels.csv rows when it covers them all."""
    if not src.is_dir():
        raise FaceganError(f"--src {src} is not a directory.", "Point it at a folder of face photos.")
    folder = FolderSource(src, "all", resolution=None, workers=1)
    labels = folder.labels
    items = []
    for k, entry in enumerate(folder.entries[: settings["limit"] or None]):
        path = str(src / entry)
        task: Any = (path, settings["size"]) if settings["align"] == "none" else AlignTask(path, k)
        items.append(Item(path, entry, task, labels[k] if labels is not None else None, 0))
    provenance = {"kind": "folder", "path": str(src.resolve()), "images": len(folder.entries)}
    if labels is not None:
        provenance["labels"] = str((src / "labels.csv").resolve())
    return Collected(items, folder.label_names, provenance)


def prepare_faces(
    src: str | os.PathLike[str], out: str | os.PathLike[str], settings: dict[str, Any], recipe: Trainer, **options: Any
) -> dict[str, Any]:
    """Run the whole prepare; returns the summary document. `options`: see aligned.prepare_aligned."""
    return prepare_aligned(src, out, settings, recipe, _job, **options)


def _job(src: Path, settings: dict[str, Any], recipe: Trainer, device: str) -> PrepareJob:
    inputs = collect_items(src, settings)
    if settings["align"] == "none":
        alignment = {"align": "none", "crop": "short side resized (Lanczos), centre square"}
        return resize_job("faces", settings, recipe, inputs, src, _square, alignment)
    return face_job("faces", settings, recipe, inputs, src, device)
