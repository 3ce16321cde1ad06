"""`facegan prepare celeba-hq`: the CelebA-HQ geometry from in-the-wild CelebA, or CelebAMask-HQ resized.

Two sources (specs/datasets.md):
- in-the-wild CelebA (`img_celeba/` + `Anno/`): each image is aligned with the CelebA-HQ oriented crop
  (or FFHQ's) from its 5 landmarks (`list_landmarks_celeba.txt`) or from landmarks dlib or face-alignment
  detect; all images, or the 30,000 of CelebA-HQ in its order through `--mapping`;
- CelebAMask-HQ (`CelebA-HQ-img/{idx}.jpg`, already aligned at 1024): resized, with the CelebA
  attributes attached through CelebA-HQ-to-CelebA-mapping.txt.
Attributes and partitions come from CelebA's files (looked up by the CelebA file name).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from facegan_cli.align.landmarks import Face
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import warn
from facegan_cli.data.crops import apply_crop
from facegan_cli.data.imageio import is_image_name, open_rgb
from facegan_cli.data.prepared import SPLIT_CODES, normalize_split
from facegan_cli.prepare import celeba
from facegan_cli.prepare.align_job import AlignTask
from facegan_cli.prepare.aligned import face_job, prepare_aligned, resize_job
from facegan_cli.prepare.pipeline import Collected, Item, PrepareJob
from facegan_cli.prepare.recipes import Trainer

CELEBAHQ_DEFAULTS: dict[str, Any] = {
    "size": 1024,
    "levels": True,
    "landmarks": "celeba",
    "align": "progan",
    "transform_size": 4096,
    "enable_padding": True,
    "min_face": 32,
    "mapping": None,
    "images": None,
    "celeba": None,
    "attrs": "all",
    "split": "all",
    "limit": None,
}


def _row_labels(table: celeba.Attributes | None, files: list[str], where: Path) -> list[np.ndarray | None]:
    if table is None:
        return [None] * len(files)
    rows = {name: k for k, name in enumerate(table.files)}
    missing = [name for name in files if name not in rows]
    if missing:
        raise FaceganError(
            f"The attribute file of {where} has no row for {missing[0]} ({len(missing)} images in all).",
            "Use the attribute file of the same CelebA download, or pass --attrs none.",
        )
    return [table.values[rows[name]] for name in files]


def _mapping_rows(path: Path) -> list[celeba.HQMapping]:
    if not path.is_file():
        raise FaceganError(
            f"Mapping file {path} not found.",
            f"Pass --mapping with the path of {celeba.HQ_MAPPING_FILE} (shipped with CelebAMask-HQ).",
        )
    return celeba.parse_hq_mapping(path)


def _select(files: list[str], codes: list[int], settings: dict[str, Any]) -> list[int]:
    """Positions kept by --split and --limit."""
    split = settings["split"]
    keep = [k for k, code in enumerate(codes) if split == "all" or code == SPLIT_CODES[split]]
    if settings["limit"]:
        keep = keep[: settings["limit"]]
    if not keep:
        raise FaceganError(
            f"No images listed for split {split!r}.",
            "Check --split and that the partition file belongs to this copy.",
        )
    return keep


def _wild_items(src: Path, settings: dict[str, Any]) -> Collected:
    """In-the-wild CelebA: files, their given landmarks (--landmarks celeba), labels and partitions."""
    if settings["images"]:
        images_dir = Path(settings["images"])
    else:
        try:
            images_dir = celeba.find_images_dir(src, celeba.WILD_DIR)
        except FaceganError as exc:
            # find_images_dir's fix names the aligned archive; the in-the-wild images ship as img_celeba.7z.
            raise FaceganError(
                exc.message,
                f"Point --src at the CelebA folder that holds {celeba.WILD_DIR}/ (the in-the-wild originals: "
                "extract img_celeba.7z there), or pass --images DIR. For CelebAMask-HQ, whose images are "
                f"already aligned, point --src at the folder that holds {celeba.HQ_IMAGES_DIR}/.",
            ) from exc
    if not images_dir.is_dir():
        raise FaceganError(
            f"--images {images_dir} is not a directory.", "Pass the folder of in-the-wild images."
        )
    given: dict[str, np.ndarray] = {}
    landmarks_path = None
    if settings["landmarks"] == "celeba":
        landmarks_path = celeba.find_annotation(src, celeba.LANDMARKS_FILE)
        names, points = celeba.parse_landmarks(landmarks_path)
        given = dict(zip(names, points))
    table, attr_path = celeba.attribute_table(src, settings["attrs"])
    mapping_path = Path(settings["mapping"]) if settings["mapping"] else None
    if mapping_path is not None:
        mapping = _mapping_rows(mapping_path)
        files = [row.orig_file for row in mapping]
        if given:
            for row in mapping:
                if row.orig_file not in given:
                    raise FaceganError(
                        f"{mapping_path}, line {row.line}: {row.orig_file} has no row in {landmarks_path}.",
                        "Use the list_landmarks_celeba.txt of the full CelebA download (202,599 rows).",
                    )
    elif given:
        files = list(given)
    elif table is not None:
        files = table.files
    else:
        files = sorted(name for name in os.listdir(images_dir) if is_image_name(name))
    codes, partition_path = celeba.partition_codes(src, files, required=settings["split"] != "all")
    if partition_path is None:
        warn(f"no {celeba.PARTITION_FILE} in {src}: every image is marked as train")
    labels = _row_labels(table, files, src)
    items = []
    for k in _select(files, codes, settings):
        name = files[k]
        path = celeba.resolve_image(images_dir, name)
        faces = (Face.from_points(given[name]),) if given else None
        task = AlignTask(str(path), len(items), faces)
        items.append(Item(source=str(path), name=name, task=task, labels=labels[k], split=codes[k]))
    annotations = (landmarks_path, attr_path, partition_path, mapping_path)
    provenance = celeba.provenance("celeba-in-the-wild", src, images_dir, annotations)
    return Collected(items, table.names if table is not None else [], provenance)


def _aligned_items(src: Path, settings: dict[str, Any]) -> Collected:
    """CelebAMask-HQ: CelebA-HQ-img/{idx}.jpg, labels through the mapping (or its own attribute file)."""
    folder = Path(settings["images"]) if settings["images"] else src / celeba.HQ_IMAGES_DIR
    if not folder.is_dir():
        raise FaceganError(
            f"Image folder {folder} not found.",
            f"Point --src at CelebAMask-HQ (with {celeba.HQ_IMAGES_DIR}/).",
        )
    mapping_path = Path(settings["mapping"]) if settings["mapping"] else src / celeba.HQ_MAPPING_FILE
    mapping = _mapping_rows(mapping_path) if mapping_path.is_file() or settings["mapping"] else None
    if mapping is not None:
        hq_names = [f"{row.idx}.jpg" for row in mapping]
        celeba_names = [row.orig_file for row in mapping]
    else:
        hq_names = sorted(
            (name for name in os.listdir(folder) if is_image_name(name)),
            key=lambda n: (int(m.group()) if (m := re.match(r"\d+", n)) else 1 << 62, n),
        )
        celeba_names = []
    annotations_root = Path(settings["celeba"]) if settings["celeba"] else None
    attr_path = None
    table = None
    if settings["attrs"].strip().lower() != "none":
        if annotations_root is not None and celeba_names:
            table, attr_path = celeba.attribute_table(annotations_root, settings["attrs"])
            labels = _row_labels(table, celeba_names, annotations_root)
        elif (src / celeba.HQ_ATTR_FILE).is_file():
            table, attr_path = celeba.attribute_table(src, settings["attrs"], src / celeba.HQ_ATTR_FILE)
            labels = _row_labels(table, hq_names, src)
        else:
            raise FaceganError(
                f"No attributes for {src}: neither --celeba (the CelebA folder, read through "
                f"{celeba.HQ_MAPPING_FILE}) nor {src / celeba.HQ_ATTR_FILE}.",
                "Pass --celeba ~/data/CelebA, or --attrs none to prepare the images without labels.",
            )
    else:
        labels = [None] * len(hq_names)
    if annotations_root is not None and celeba_names:
        codes, partition_path = celeba.partition_codes(
            annotations_root, celeba_names, settings["split"] != "all"
        )
    elif settings["split"] != "all":
        raise FaceganError(
            f"--split {settings['split']} needs CelebA's {celeba.PARTITION_FILE} through the mapping.",
            "Pass --celeba ~/data/CelebA (and the mapping), or --split all.",
        )
    else:
        codes, partition_path = [0] * len(hq_names), None
    if partition_path is None:
        warn(f"no CelebA {celeba.PARTITION_FILE} for {src}: every image is marked as train")
    items = []
    for k in _select(hq_names, codes, settings):
        path = celeba.resolve_image(folder, hq_names[k])
        name = celeba_names[k] if celeba_names else hq_names[k]
        items.append(Item(str(path), name, (str(path), settings["size"]), labels[k], codes[k]))
    annotations = (attr_path, partition_path, mapping_path if mapping else None)
    provenance = celeba.provenance("celebamask-hq", src, folder, annotations)
    return Collected(items, table.names if table is not None else [], provenance)


def _resize(task: tuple[str, int]) -> np.ndarray:
    """An already aligned square image resized (antialiased) to the output size."""
    path, size = task
    return apply_crop(open_rgb(path), "none", size)


def is_celebamask_hq(src: Path) -> bool:
    return (src / celeba.HQ_IMAGES_DIR).is_dir() and not (src / celeba.WILD_DIR).is_dir()


def prepare_celebahq(
    src: str | os.PathLike[str], out: str | os.PathLike[str], settings: dict[str, Any], recipe: Trainer, **options: Any
) -> dict[str, Any]:
    """Run the whole prepare; returns the summary document. `options`: see aligned.prepare_aligned."""
    return prepare_aligned(src, out, settings, recipe, _job, **options)


def _job(src: Path, settings: dict[str, Any], recipe: Trainer, device: str) -> PrepareJob:
    settings["split"] = normalize_split(settings["split"])
    if not src.is_dir():
        raise FaceganError(
            f"--src {src} is not a directory.",
            "Point it at the CelebA folder (img_celeba/ and Anno/) or at CelebAMask-HQ (CelebA-HQ-img/).",
        )
    if is_celebamask_hq(src):
        alignment = {"align": "none", "source": "CelebAMask-HQ images, already aligned; resized with PIL Lanczos"}
        return resize_job("celeba-hq", settings, recipe, _aligned_items(src, settings), src, _resize, alignment)
    inputs = _wild_items(src, settings)
    return face_job("celeba-hq", settings, recipe, inputs, src, device, reproduces=REPRODUCES)


REPRODUCES = (
    "the CelebA-HQ oriented crop of progressive_growing_of_gans dataset_tool.py create_celebahq (or the "
    "FFHQ crop of recreate_aligned_images); not its 2^k upscaling before padding nor the encrypted "
    "JPEG-artifact-removal and super-resolution deltas"
)
