"""Two image domains for translation, in junyanz's layouts: ROOT/trainA, trainB, testA, testB (unaligned), or
ROOT/train, test of images holding an A and a B side by side (aligned: each domain is one half).

A user's existing CycleGAN dataset (junyanz/pytorch-CycleGAN-and-pix2pix's `datasets/NAME`) works as it is.
`facegan prepare synthetic --style painting` writes the same layout plus `truth/`: truth/testA/NAME is the
true other-domain image of testA/NAME (its painting), truth/testB/NAME that of testB/NAME (its photo), so
translations can be scored against ground truth.
"""

from __future__ import annotations

import os
from pathlib import Path

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.data.sources import ImageSource, open_image_set

DOMAIN_FOLDERS = {"train": ("trainA", "trainB"), "test": ("testA", "testB")}
TRUTH = "truth"
# The two ways a translator runs (declared here, without torch, for the options that offer them), and which
# domain a direction reads and which it writes.
DIRECTIONS = ("a2b", "b2a")
SOURCE_DOMAIN = {"a2b": "A", "b2a": "B"}
TARGET_DOMAIN = {"a2b": "B", "b2a": "A"}


def domain_folders(root: str | os.PathLike[str], split: str, option: str = "--data") -> dict[str, Path]:
    """{"A": ROOT/trainA, "B": ROOT/trainB} (split train) or testA/testB (split test), checked to exist."""
    if split not in DOMAIN_FOLDERS:
        raise FaceganError(f"--split {split!r}: junyanz's layout has train and test.", "Use --split train or test.")
    root = Path(root)
    if not root.is_dir():
        raise FaceganError(f"{option} {root} is not a folder.", f"Point {option} at a folder holding trainA/ and trainB/.")
    found = {}
    for domain, name in zip(("A", "B"), DOMAIN_FOLDERS[split]):
        if not (root / name).is_dir():
            raise FaceganError(
                f"{option} {root} has no {name}/ folder, so it is not in junyanz's layout (trainA/, trainB/, testA/, "
                "testB/).",
                "Give the two domains with --data-a and --data-b instead (folders, zips or prepared datasets).",
            )
        found[domain] = root / name
    return found


def aligned_folder(root: Path, split: str) -> Path | None:
    """ROOT/train (or test) of junyanz's aligned layout (his pix2pix datasets: train/, val/, test/ of images
    holding A and B side by side): the split's folder where the root has no trainA/ (testA/); else None."""
    if split not in DOMAIN_FOLDERS:
        return None
    folder, a_name = root / split, DOMAIN_FOLDERS[split][0]
    return folder if folder.is_dir() and not (root / a_name).is_dir() else None


def truth_folders(root: str | os.PathLike[str], split: str) -> dict[str, Path]:
    """The true translations of each domain's images where the dataset has them (ROOT/truth/testA, ...):
    {"A": the B-domain truth of every A image, "B": the A-domain truth of every B image}; {} when absent."""
    root = Path(root)
    found = {}
    for domain, name in zip(("A", "B"), DOMAIN_FOLDERS.get(split, ())):
        if (root / TRUTH / name).is_dir():
            found[domain] = root / TRUTH / name
    return found


def resolve_domains(
    root: str | os.PathLike[str] | None, data_a: str | os.PathLike[str] | None,
    data_b: str | os.PathLike[str] | None, split: str | None,
) -> dict[str, dict[str, str]]:
    """{"A": {"path", "split"}, "B": ...} from --data ROOT (junyanz's layout; split train or test) or from
    --data-a and --data-b (any image source; split applies to prepared datasets, default all)."""
    if root is not None and (data_a is not None or data_b is not None):
        raise UsageProblem("--data ROOT gives both domains; it cannot be combined with --data-a/--data-b.",
                           "Use either --data ROOT (junyanz's layout) or --data-a and --data-b.")
    if root is not None:
        aligned = aligned_folder(Path(root), split or "train")
        if aligned is not None:  # junyanz's aligned layout: each image holds A (left) and B (right)
            return {side: {"path": str(aligned), "split": "all", "half": side} for side in ("A", "B")}
        return {domain: {"path": str(path), "split": "all"} for domain, path in domain_folders(root, split or "train").items()}
    if data_a is None or data_b is None:
        raise UsageProblem("Both domains are needed: --data-a and --data-b (or --data ROOT in junyanz's layout).",
                           "Example: --data-a photos/ --data-b paintings/")
    return {"A": {"path": str(data_a), "split": split or "all"}, "B": {"path": str(data_b), "split": split or "all"}}


def open_domain(
    path: str | os.PathLike[str], split: str | None, resolution: int, workers: int | None = None,
    strict: bool = False, half: str | None = None,
) -> ImageSource:
    """A domain's images read for a translator of `resolution`: a folder or zip fits each image to that square
    (so paintings of mixed sizes all count), a prepared dataset gives that level, or its own images when it has
    no such level (the caller resizes them). `half`: one side of side-by-side pairs (aligned layout)."""
    try:
        return open_image_set(path, split=split, resolution=resolution, workers=workers, strict=strict, half=half)
    except FaceganError:
        source = open_image_set(path, split=split, workers=workers, strict=strict, half=half)
        if source.kind != "prepared":
            raise
        return source
