"""Translate images with a trained translator, in one direction (`facegan translate`).

Each input (an image, a folder's images, or paths on stdin) is fitted to the translator's square (short
side resized, centre crop; or, with a landmark backend, the largest face CelebA-aligned as `facegan edit`
does) and translated A -> B or B -> A (the translator's default direction when none is given). The output
is OUT/NAME.png, or with `grid` OUT/NAME-grid.png: the input, its translation and, for a translator that
`reconstructs` (a cycle model), its reconstruction (translated back), side by side. Translators run in
inference mode; `stochastic` runs one that declares the mode as junyanz's test.py without --eval does.
OUT is a new folder, staged and marked as facegan's (core.outputs), so nothing of the user's is
overwritten. Under torchrun each rank translates its share of whole batches (core.distributed.shard) into
the one staging folder, which rank 0 renames once every rank is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.apply.photos import PhotoOptions, face
from facegan_cli.core import distributed
from facegan_cli.core.device import resolve_device
from facegan_cli.core.distributed import DistInfo
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.naming import output_names
from facegan_cli.core.outputs import check_new_folder, check_outside_inputs, shared_staged_folder
from facegan_cli.core.progress import Progress, set_quiet
from facegan_cli.data.grid import grid_array, save_png, to_uint8
from facegan_cli.data.sources import open_image_list
from facegan_cli.models.translation import (
    SOURCE_DOMAIN,
    TARGET_DOMAIN,
    check_direction,
    load_translator,
    to_model_input,
)

TRANSLATIONS_KIND = "translations"  # core.outputs marker: --force replaces only a folder `facegan translate` wrote


def input_files(inputs: Sequence[Path], skipped: list[dict[str, str]] | None = None) -> list[Path]:
    """Every image the inputs name (files, folders' images, '-' for paths on stdin), in order, once each;
    the folder entries left out (FIFOs, dangling links: warned about) are appended to `skipped`."""
    if not inputs:
        raise FaceganError("No input given.", "Name an image, a folder of images, or - to read paths from stdin.")
    files: list[Path] = []
    for item in inputs:
        source = open_image_list(item, option="INPUT")
        files += [Path(entry) for entry in source.entries]
        if skipped is not None:
            skipped += [{"input": path, "reason": reason} for path, reason in source.skipped]
    return list(dict.fromkeys(files))


def translate(
    ckpt: Path,
    inputs: Sequence[Path],
    out: Path,
    direction: str | None = None,
    grid: bool = False,
    size: int | None = None,
    photos: PhotoOptions = PhotoOptions(),
    stochastic: bool = False,
) -> dict[str, Any]:
    """Translate every input; returns the result document (checkpoint, direction, one record per input)."""
    with distributed.process_group(resolve_device(photos.device)) as info:
        if not info.is_main:
            set_quiet(True)  # one progress bar: rank 0's
        return _translate(ckpt, inputs, out, direction, grid, size, photos, info, stochastic)


def _translate(
    ckpt: Path, inputs: Sequence[Path], out: Path, direction: str | None, grid: bool, size: int | None,
    photos: PhotoOptions, info: DistInfo, stochastic: bool = False,
) -> dict[str, Any]:
    if direction is not None:
        check_direction(direction)
    photos.check()
    check_outside_inputs(out, [*(("INPUT", p) for p in inputs if str(p) != "-"), ("--ckpt", ckpt)])
    check_new_folder(out, photos.force, TRANSLATIONS_KIND)
    device = str(distributed.rank_device(info, resolve_device(photos.device)))
    translator = load_translator(ckpt, device)
    direction = translator.check_direction(direction)
    translator.set_stochastic(stochastic)
    rebuilt = grid and translator.reconstructs  # a one-way translator's grid: input | translation
    side = translator.input_size(size)
    skipped: list[dict[str, str]] = []
    files = input_files(inputs, skipped)
    names = output_names(files, "-grid.png" if grid else ".png")  # distinct whatever the inputs are called
    detector = photos.detector(device)
    records = [{"input": str(path), "output": str(out / name)} for path, name in zip(files, names)]
    mine = distributed.shard(len(files), photos.batch_size, info)  # every input without torchrun
    with shared_staged_folder(out, photos.force, TRANSLATIONS_KIND, info) as staging, \
            Progress(len(mine), f"translate {direction}", unit="img") as bar:
        for start in range(mine.start, mine.stop, photos.batch_size):
            chunk = files[start : start + photos.batch_size]
            faces = [face(p, side, detector, getattr(translator, "input_fit", None)) for p in chunk]
            x = to_model_input(np.stack(faces), translator.device)
            with torch.no_grad():
                fake = translator.translate(x, direction)
                rec = translator.reconstruct(fake, direction) if rebuilt else None
            outputs = to_uint8(fake, translator.value_range)
            recs = to_uint8(rec, translator.value_range) if rec is not None else None
            for i in range(len(chunk)):
                name = names[start + i]
                if grid:
                    row = np.stack([faces[i], outputs[i], *([recs[i]] if recs is not None else [])])
                    save_png(grid_array(row, nrow=len(row)), staging / name)
                else:
                    save_png(outputs[i], staging / name)
            bar.advance(len(chunk))
    return {"checkpoint": str(translator.path), "family": translator.family, "step": translator.step,
            "direction": direction, "from": SOURCE_DOMAIN[direction], "to": TARGET_DOMAIN[direction],
            "size": side, "grid": ("input | translation" + (" | reconstruction" if rebuilt else "")) if grid else None,
            "stochastic": stochastic, "outputs": records, "skipped": skipped}
