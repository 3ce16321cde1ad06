"""Paired images for supervised translation (`facegan prepare pairs`): two folders matched by file name.

`--a DIR` (e.g. photos) and `--b DIR` (e.g. their paintings) are matched by file name without extension
(a/012712.jpg with b/012712.png); files of one side without a partner are listed, never guessed. Each
matched pair is decoded through the one decode path (data.imageio); a pair with an unusable file (corrupt,
truncated, not an image, ...) is skipped into rejects.tsv (`--strict` stops instead). With `--size N` both
images are resized (short side) and centre-cropped to N x N, otherwise they keep their pixels. The pairs are
split at random (by `--seed`) into `--test` held-out pairs (DEFAULT: 10%, the thesis's 270/30 of 300) and the
rest, and written as PNGs in junyanz's layout, which CycleGAN reads too:

    OUT/trainA/NAME.png  OUT/trainB/NAME.png   the training pairs (the same NAME on both sides)
    OUT/testA/NAME.png   OUT/testB/NAME.png    the held-out pairs
    OUT/pairs.json       sources, settings, counts, the names of each split, the unmatched files
    OUT/rejects.tsv      pairs that could not be used (file TAB reason)

The folder is staged and appears complete or not at all; `--force` replaces only a folder this command wrote.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facegan_cli.core.atomic import write_json, write_text
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.naming import output_names
from facegan_cli.core.outputs import check_new_folder, check_outside_inputs, staged_folder
from facegan_cli.core.parallel import default_workers, ordered_map
from facegan_cli.core.progress import Progress, log, warn
from facegan_cli.data.crops import center_crop, resize_short_side
from facegan_cli.data.imageio import RejectedImage, display_name, is_image_name, open_rgb

PAIRS_KIND = "pairs"  # core.outputs marker
FOLDERS = {"train": ("trainA", "trainB"), "test": ("testA", "testB")}
TEST_SHARE = 0.1


def _images(folder: Path, option: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FaceganError(f"{option} {display_name(folder)} is not a folder.", f"Point {option} at a folder of images.")
    found: dict[str, Path] = {}
    clashes: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and is_image_name(path.name):
            if path.stem in found:
                clashes.append(f"{found[path.stem].name} and {path.name}")
            found[path.stem] = path
    if clashes:
        raise FaceganError(f"{option} {display_name(folder)} holds files that differ only in their extension "
                           f"({clashes[0]}), so they cannot be paired by name.", "Rename or remove one of them.")
    if not found:
        raise FaceganError(f"No images found in {option} {display_name(folder)}.", f"Point {option} at a folder of images.")
    return found


def match_names(a: dict[str, Path], b: dict[str, Path]) -> tuple[list[str], list[str], list[str]]:
    """(names on both sides, sorted; names only in A; names only in B)."""
    both = sorted(set(a) & set(b))
    return both, sorted(set(a) - set(b)), sorted(set(b) - set(a))


def _load(task: tuple[str, str, int | None]) -> tuple[bool, Any]:
    """Worker: both images of a pair as uint8 arrays, or (False, 'file: reason')."""
    a, b, size = task
    pixels = []
    for path in (a, b):
        try:
            image = open_rgb(path)
            if size is not None and image.size != (size, size):  # the resize is bounded: a reject too
                image = center_crop(resize_short_side(image, size, Image.BICUBIC), size)
        except RejectedImage as exc:
            return False, f"{path}\t{exc.reason}"
        pixels.append(np.asarray(image, dtype=np.uint8))
    return True, pixels


def held_out_count(pairs: int, test: int | None) -> int:
    """Held-out pairs: `test`, or DEFAULT 10% (rounded, at least 1 when there are 2 pairs or more)."""
    if test is None:
        return min(pairs - 1, max(1, round(pairs * TEST_SHARE))) if pairs >= 2 else 0
    if test < 0 or test >= pairs:
        raise UsageProblem(f"--test {test} leaves no training pair out of {pairs}.",
                           f"Pass --test between 0 and {max(0, pairs - 1)}.")
    return test


def prepare_pairs(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    size: int | None = None,
    test: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    strict: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Write the pairs of `a` and `b` into `out` (see the module docstring); returns the summary."""
    a, b, out = Path(a), Path(b), Path(out)
    if size is not None and size < 1:
        raise UsageProblem(f"--size {size} must be at least 1.", "Pass e.g. --size 64.")
    check_outside_inputs(out, [("--a", a), ("--b", b)])
    check_new_folder(out, force, PAIRS_KIND)
    side_a, side_b = _images(a, "--a"), _images(b, "--b")
    names, only_a, only_b = match_names(side_a, side_b)
    if not names:
        raise FaceganError(
            f"No file of --a {display_name(a)} has a partner of the same name in --b {display_name(b)} (e.g. "
            f"{next(iter(side_a.values())).name} and {next(iter(side_b.values())).name}).",
            "Pairs are matched by file name without extension: give both sides the same names.",
        )
    if only_a or only_b:
        warn(f"{len(only_a)} file(s) of --a and {len(only_b)} of --b have no partner and are left out "
             f"(listed in pairs.json)")
    tasks = [(str(side_a[n]), str(side_b[n]), size) for n in names]
    # One output name per pair, the same in both domains' folders: names that differ only in case (one file on
    # macOS) or start with a dot (hidden) would otherwise collide or hide (core.naming's rule).
    stems = [name.removesuffix(".png") for name in output_names([f"{n}.png" for n in names])]
    kept: list[str] = []
    rejects: list[str] = []
    held = held_out_count(len(names), test)
    order = list(range(len(names)))
    random.Random(seed).shuffle(order)
    test_rows = set(order[:held])
    with staged_folder(out, force, PAIRS_KIND) as staging, \
            Progress(len(tasks), "pairs", unit="pair") as bar:
        splits: dict[str, list[str]] = {"train": [], "test": []}
        results = ordered_map(_load, tasks, workers or min(default_workers(), 8), total=len(tasks))
        for row, (name, stem, (ok, payload)) in enumerate(zip(names, stems, results, strict=True)):
            bar.advance()
            if not ok:
                if strict:
                    raise FaceganError(f"The pair {name} cannot be used: {payload.replace(chr(9), ': ')} (--strict "
                                       "stops at the first unusable pair).",
                                       "Fix or remove that file, or run without --strict to skip such pairs.")
                rejects.append(payload)
                continue
            split = "test" if row in test_rows else "train"
            for folder, pixels in zip(FOLDERS[split], payload, strict=True):
                (staging / folder).mkdir(exist_ok=True)  # a split without pairs gets no folders
                Image.fromarray(pixels).save(staging / folder / f"{stem}.png")
            splits[split].append(stem)
            kept.append(stem)
        if not kept:
            raise FaceganError(f"None of the {len(names)} pairs could be used (first: {rejects[0].replace(chr(9), ': ')}).",
                               "Check the images of --a and --b.")
        if rejects:
            warn(f"{len(rejects)} pair(s) skipped (unusable files, see rejects.tsv)")
        write_text(staging / "rejects.tsv", "".join(f"{line}\n" for line in rejects))
        summary = {
            "out": str(out), "a": str(a.resolve()), "b": str(b.resolve()), "size": size, "seed": seed,
            "pairs": len(kept), "train": len(splits["train"]), "test": len(splits["test"]),
            "rejected": len(rejects), "unmatched": {"a": [side_a[n].name for n in only_a],
                                                    "b": [side_b[n].name for n in only_b]},
            "names": splits,
        }
        write_json(staging / "pairs.json", summary)
    log(f"{len(kept)} pairs: {len(splits['train'])} train, {len(splits['test'])} test")
    return summary
