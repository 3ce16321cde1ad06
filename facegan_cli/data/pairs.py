"""Paired data for supervised translation (pix2pix, the feature translator): which images pair up.

Pairs are matched by file name without extension, in order: `facegan prepare pairs`' layout (ROOT/trainA/
and ROOT/trainB/ with the same names; testA/ testB/ held out), `facegan prepare synthetic --style painting`'s
(ROOT/trainA/ and its true paintings under ROOT/truth/trainA/), or two sources given as --data-a/--data-b.
Or junyanz's aligned layout (his pix2pix datasets: ROOT/train/, val/, test/ of images holding A and B side
by side, A on the left): each stream reads one half of every image (data.sources' `half`).
The training loop reads the two sides as streams A and B, B following A's order (train.trainer.Images
order_of), so row i of both is one pair.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.data.domains import DOMAIN_FOLDERS, TRUTH, aligned_folder, truth_folders
from facegan_cli.data.sources import open_image_set


def _stems(path: str) -> list[str]:
    return [Path(name).stem for name in open_image_set(path).source_names()]


def paired_names(a: str, b: str) -> bool:
    """Do two sources hold the same file names (without extension) in the same order?"""
    names = _stems(a)
    return bool(names) and names == _stems(b)


def check_paired(a: str, b: str) -> int:
    """The number of pairs of two sources whose files pair by name (in order); a FaceganError otherwise."""
    names_a, names_b = _stems(a), _stems(b)
    if names_a != names_b:
        extra = sorted(set(names_a) ^ set(names_b))
        detail = (f"{len(names_a)} and {len(names_b)} images" if len(names_a) != len(names_b)
                  else "the same number of images in another order")
        raise FaceganError(
            f"{a} and {b} are not pairs: {detail}" + (f" (unmatched: {', '.join(extra[:3])})" if extra else "") + ".",
            "Pair them by name with `facegan prepare pairs --a A_DIR --b B_DIR --out PAIRS` and train on PAIRS.",
        )
    return len(names_a)


def pair_folders(root: Path, split: str) -> tuple[str, str] | None:
    """(A, B) folders of a split in `prepare pairs`' layout (trainA/ and trainB/ with the same names) or
    `prepare synthetic --style painting`'s (trainA/ and its true paintings truth/trainA/); None when the root
    has no such split."""
    a_name, b_name = DOMAIN_FOLDERS[split]
    truth = truth_folders(root, split)
    if "A" in truth and (root / a_name).is_dir():
        return str(root / a_name), str(truth["A"])
    if (root / a_name).is_dir() and (root / b_name).is_dir():
        return str(root / a_name), str(root / b_name)
    return None


def resolve_pairs(values: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str] | None]:
    """The A and B training data, and the held-out pairs ({"A", "B"} paths) when there are some."""
    root, a, b = values.get("data"), values.get("data_a"), values.get("data_b")
    if root is not None and (a is not None or b is not None):
        raise UsageProblem("--data ROOT gives both sides of the pairs; it cannot be combined with --data-a/--data-b.",
                           "Use either --data ROOT or --data-a and --data-b.")
    if root is None:
        if a is None or b is None:
            raise UsageProblem("Paired data is needed: --data PAIRS (from `facegan prepare pairs`) or --data-a and "
                               "--data-b.", "Example: --data pairs/")
        check_paired(str(a), str(b))
        return {"A": {"path": str(a), "split": "all"}, "B": {"path": str(b), "split": "all"}}, None
    root = Path(root)
    split = values.get("split") or "train"
    if split not in DOMAIN_FOLDERS:
        raise FaceganError(f"--split {split!r}: paired folders have train and test.", "Use --split train or test.")
    aligned = aligned_folder(root, split) if root.is_dir() else None
    if aligned is not None:  # one folder, each image a pair: always paired, one half per stream
        return {side: {"path": str(aligned), "split": "all", "half": side} for side in ("A", "B")}, None
    found = pair_folders(root, split) if root.is_dir() else None
    if found is None:
        raise FaceganError(
            f"--data {root} is not a folder of pairs: it needs {DOMAIN_FOLDERS[split][0]}/ and {DOMAIN_FOLDERS[split][1]}/ with "
            f"the same file names (`facegan prepare pairs`), or {DOMAIN_FOLDERS[split][0]}/ and "
            f"{TRUTH}/{DOMAIN_FOLDERS[split][0]}/ (`facegan prepare synthetic --style painting`), or {split}/ of images "
            "holding A and B side by side (junyanz's aligned layout).",
            "Make one with `facegan prepare pairs --a PHOTOS --b PAINTINGS --out PAIRS`, or pass --data-a and --data-b.",
        )
    check_paired(*found)
    data = {"A": {"path": found[0], "split": "all"}, "B": {"path": found[1], "split": "all"}}
    held = pair_folders(root, "test") if split == "train" else None
    if held is not None:
        check_paired(*held)
    return data, ({"A": held[0], "B": held[1]} if held else None)
