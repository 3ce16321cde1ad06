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
from facegan_cli.data.prepared import SPLIT_CODES, PreparedWriter, digest_file, normalize_split
from facegan_cli.prepare import celeba
from facegan_cli.prepare.pipeline import Item, open_writer, run_items, summarize
from facegan_cli.prepare.recipes import Recipe

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
    for key in ("size", "crop_size", "limit"):
        value = settings[key]
        if value is not None and (not isinstance(value, int) or value < 1):
            option = f"--{key.replace('_', '-')}"
            raise FaceganError(
                f"{option} must be a positive integer, not {value!r}.", f"Pass e.g. {option} 64."
            )
    if settings["size"] < 4:
        raise FaceganError(f"--size {settings['size']} is too small.", "Use 4 or more (64 is DCGAN's).")
    settings["split"] = normalize_split(settings["split"])


def _attribute_table(src: Path, attrs: str) -> tuple[celeba.Attributes | None, Path | None]:
    spec = attrs.strip()
    if spec.lower() == "none":
        return None, None
    try:
        path = celeba.find_annotation(src, celeba.ATTR_FILE)
        table = celeba.parse_attributes(path)
    except FaceganError as exc:
        raise FaceganError(
            exc.message, exc.fix + " Or pass --attrs none to prepare the images without labels."
        ) from exc
    if spec.lower() != "all":
        table = table.select([name.strip() for name in spec.split(",") if name.strip()])
    return table, path


def collect_items(src: Path, settings: dict[str, Any]) -> tuple[list[Item], list[str], dict[str, Any]]:
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
    table, attr_path = _attribute_table(src, settings["attrs"])
    if table is not None:
        files = table.files
    else:
        files = sorted(name for name in os.listdir(images_dir) if is_image_name(name))

    split = settings["split"]
    partition_path = celeba.find_annotation(src, celeba.PARTITION_FILE, required=split != "all")
    if partition_path is not None:
        partition = celeba.parse_partition(partition_path)
        missing = [name for name in files if name not in partition]
        if missing:
            raise FaceganError(
                f"{partition_path} has no row for {missing[0]} ({len(missing)} images in all).",
                "Use the list_eval_partition.txt of the same CelebA download as the images and attributes.",
            )
        codes = [partition[name] for name in files]
    else:
        warn(f"no {celeba.PARTITION_FILE} in {src}: every image is marked as train")
        codes = [0] * len(files)

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
    annotations = {
        path.name: {"path": str(path.resolve()), "sha256": digest_file(path, hashlib.sha256()).hexdigest()}
        for path in (attr_path, partition_path)
        if path
    }
    provenance = {
        "kind": "celeba",
        "path": str(src.resolve()),
        "images": str(images_dir.resolve()),
        "annotations": annotations,
    }
    return items, (table.names if table is not None else []), provenance


def prepare_celeba(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: dict[str, Any],
    recipe: Recipe,
    *,
    workers: int,
    resume: bool = False,
    force: bool = False,
    strict: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    """Run the whole prepare; returns the summary document (see pipeline.summarize)."""
    src, out = Path(src), Path(out)
    settings = dict(settings)
    _validate(settings)
    items, label_names, provenance = collect_items(src, settings)
    inputs = hashlib.sha256()
    for item in items:
        inputs.update(name_bytes(f"{item.name}\t{item.split}\t"))
        if item.labels is not None:
            inputs.update(item.labels.tobytes())
    plan = {"command": "celeba", "settings": settings, "inputs": inputs.hexdigest()}
    writer = PreparedWriter(
        out,
        resolution=settings["size"],
        plan=plan,
        total_inputs=len(items),
        label_names=label_names,
        levels=settings["levels"],
        resume=resume,
        force=force,
    )
    state, done = open_writer(writer, len(items))
    if done is not None:
        return done
    with writer:
        run_items(
            writer,
            items,
            functools.partial(guarded, _process),
            workers=workers,
            strict=strict,
            source_label=str(src),
            description=f"celeba {settings['crop']} {settings['size']}",
        )
        provenance.update(inputs=len(items), accepted=writer.count, rejected=writer.rejected)
        manifest = writer.finish(
            {
                "name": name or out.name,
                "recipe": recipe.describe(),
                "settings": settings,
                "sources": [provenance],
            }
        )
    return summarize(manifest, out, state)
