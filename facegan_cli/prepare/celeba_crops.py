"""`facegan prepare celeba`: aligned CelebA (or the synthetic tree) -> a prepared dataset."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import warn
from facegan_cli.data.crops import CROPS, apply_crop
from facegan_cli.data.imageio import guarded, is_image_name, name_bytes, open_rgb
from facegan_cli.data.prepared import SPLIT_CODES, normalize_split
from facegan_cli.prepare import celeba
from facegan_cli.prepare.pipeline import Collected, Item, PrepareJob, run_job
from facegan_cli.prepare.recipes import Trainer, check_sizes

# Built-in defaults; a recipe overrides them and command-line options override the recipe.
CELEBA_DEFAULTS: dict[str, Any] = {
    "size": 64,
    "crop": "dcgan",
    "crop_size": None,
    "attrs": "all",
    "split": "all",
    "levels": False,
    "allow_upscale": False,
    "images": None,
    "limit": None,
}


def _process(task: tuple[str, str, int, int | None, bool]) -> np.ndarray:
    path, crop, size, crop_size, allow_upscale = task
    return apply_crop(open_rgb(path), crop, size, crop_size, allow_upscale)


def _validate(settings: dict[str, Any]) -> None:
    if settings["crop"] not in CROPS:
        raise FaceganError(f"Unknown crop {settings['crop']!r}.", f"Use one of {', '.join(CROPS)}.")
    check_sizes(settings, ("size", "crop_size", "limit"), 64, "64 is DCGAN's")
    settings["split"] = normalize_split(settings["split"])


def collect_items(src: Path, settings: dict[str, Any]) -> Collected:
    """The inputs in CelebA order, with labels and partition codes, and the source's provenance."""
    if not src.is_dir():
        raise FaceganError(
            f"--src {src} is not a directory.",
            "Point it at the CelebA folder (holding img_align_celeba/ and Anno/), or run "
            "`facegan prepare synthetic --out DIR` to make a synthetic one.",
        )
    images_dir = Path(settings["images"]) if settings["images"] else celeba.find_images_dir(src)
    if not images_dir.is_dir():
        raise FaceganError(f"--images {images_dir} is not a directory.", "Pass the folder of aligned images.")
    table, attr_path = celeba.attribute_table(src, settings["attrs"])
    if table is not None:
        files = table.files
    else:
        files = sorted(name for name in os.listdir(images_dir) if is_image_name(name))

    split = settings["split"]
    codes, partition_path = celeba.partition_codes(src, files, required=split != "all")
    if partition_path is None:
        warn(f"no {celeba.PARTITION_FILE} in {src}: every image is marked as train")

    items = []
    for k, name in enumerate(files):
        if split != "all" and codes[k] != SPLIT_CODES[split]:
            continue
        path = celeba.resolve_image(images_dir, name)
        task = (
            str(path),
            settings["crop"],
            settings["size"],
            settings["crop_size"],
            settings["allow_upscale"],
        )
        labels = table.values[k] if table is not None else None
        items.append(Item(source=str(path), name=name, task=task, labels=labels, split=codes[k]))
        if settings["limit"] and len(items) >= settings["limit"]:
            break
    if not items:
        raise FaceganError(
            f"No images listed for split {split!r} in {src}.",
            "Check --split and that the partition file belongs to this CelebA copy.",
        )
    provenance = celeba.provenance("celeba", src, images_dir, (attr_path, partition_path))
    return Collected(items, table.names if table is not None else [], provenance)


def prepare_celeba(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: dict[str, Any],
    recipe: Trainer,
    **options: Any,
) -> dict[str, Any]:
    """Run the whole prepare; returns the summary document (see pipeline.summarize). `options` are
    pipeline.run_job's: workers, resume, force, strict, name."""
    src, out = Path(src), Path(out)
    settings = dict(settings)
    _validate(settings)
    inputs = collect_items(src, settings)
    digest = hashlib.sha256()
    for item in inputs.items:
        digest.update(name_bytes(f"{item.name}\t{item.split}\t"))
        if item.labels is not None:
            digest.update(item.labels.tobytes())
    job = PrepareJob(
        "celeba",
        settings,
        recipe,
        inputs,
        functools.partial(guarded, _process),
        source_label=str(src),
        description=f"celeba {settings['crop']} {settings['size']}",
        plan={"inputs": digest.hexdigest()},
    )
    return run_job(job, out, **options)
