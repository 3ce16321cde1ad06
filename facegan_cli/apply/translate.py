"""Translate images with a trained translator, in one direction (`facegan translate`).

Each input (an image, a folder's images, or paths on stdin) is translated whole, aspect kept: its short side
scaled to `size` (default: the translator's training size), its sides padded to the networks' multiple and
the output cropped back to the scaled input's shape (apply.whole_image); with `tile`, in overlapping tiles
blended without a seam, so an image larger than memory fits. With a landmark backend the largest face is
CelebA-aligned first (the square `facegan edit` uses); a translator with dense layers takes only its
training square (short side resized, centre crop). Translated A -> B or B -> A (the translator's default
direction when none is given). The output is OUT/NAME.png, or with `grid` OUT/NAME-grid.png: the input, its
translation and, for a translator that `reconstructs` (a cycle model), its reconstruction (translated back),
side by side. Translators run in inference mode; `stochastic` runs one that declares the mode as junyanz's
test.py without --eval does. OUT is a new folder, staged and marked as facegan's (core.outputs), so nothing
of the user's is overwritten. Under torchrun each rank translates its share of whole batches (core.distributed.shard) into
the one staging folder, which rank 0 renames once every rank is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.apply.photos import PhotoOptions, face, whole_photo
from facegan_cli.apply.whole_image import (
    apply_padded,
    apply_tiled,
    resolve_tiling,
    shape_groups,
)
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
    tile: int | None = None,
    overlap: int | None = None,
    stochastic: bool = False,
) -> dict[str, Any]:
    """Translate every input; returns the result document (checkpoint, direction, one record per input).
    `tile`: translate each image in tiles of this side overlapping by `overlap` (default: a quarter tile)."""
    with distributed.process_group(resolve_device(photos.device)) as info:
        if not info.is_main:
            set_quiet(True)  # one progress bar: rank 0's
        return _translate(ckpt, inputs, out, direction, grid, size, photos, info, tile, overlap, stochastic)


def _translate(
    ckpt: Path, inputs: Sequence[Path], out: Path, direction: str | None, grid: bool, size: int | None,
    photos: PhotoOptions, info: DistInfo, tile: int | None, overlap: int | None, stochastic: bool = False,
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
    multiple = translator.size_multiple  # 0: dense layers, only the training square
    overlap = resolve_tiling(tile, overlap, multiple)
    skipped: list[dict[str, str]] = []
    files = input_files(inputs, skipped)
    names = output_names(files, "-grid.png" if grid else ".png")  # distinct whatever the inputs are called
    detector = photos.detector(device)
    fit = getattr(translator, "input_fit", None)
    records: list[dict[str, Any]] = [{"input": str(path), "output": str(out / name)} for path, name in zip(files, names)]
    mine = distributed.shard(len(files), photos.batch_size, info)  # every input without torchrun

    def run(net: Any, x: torch.Tensor, notes: list[dict[str, Any]]) -> torch.Tensor:
        """net over whole images: as they are (dense), padded, or tile by tile (one image at a time, what was
        done noted in its `notes` entry)."""
        if not multiple:
            return net(x.to(translator.device))
        if tile is None:
            return apply_padded(net, x.to(translator.device), multiple)
        parts = []
        for i in range(x.shape[0]):
            made, notes[i]["tiling"] = apply_tiled(net, x[i : i + 1], multiple, tile, overlap, photos.batch_size,
                                                 translator.device)
            parts.append(made)
        return torch.cat(parts)

    with shared_staged_folder(out, photos.force, TRANSLATIONS_KIND, info) as staging, \
            Progress(len(mine), f"translate {direction}", unit="img") as bar:
        for start in range(mine.start, mine.stop, photos.batch_size):
            chunk = files[start : start + photos.batch_size]
            if multiple and detector is None:
                inputs_ = [whole_photo(p, side, fit) for p in chunk]
            else:
                inputs_ = [face(p, side, detector, fit) for p in chunk]
            for members in shape_groups(inputs_).values():  # equal shapes run together
                # Tiled images stay on the CPU and go to the device a tile batch at a time.
                x = to_model_input(np.stack([inputs_[j] for j in members]),
                                   torch.device("cpu") if tile is not None else translator.device)
                notes = [records[start + j] for j in members]
                with torch.no_grad():
                    fake = run(lambda t: translator.translate(t, direction), x, notes)
                    rec = run(lambda t: translator.reconstruct(t, direction), fake, [{} for _ in members]) \
                        if rebuilt else None
                outputs = to_uint8(fake, translator.value_range)
                recs = to_uint8(rec, translator.value_range) if rec is not None else None
                for k, j in enumerate(members):
                    name = names[start + j]
                    records[start + j]["shape"] = list(outputs[k].shape[:2])
                    if grid:
                        row = np.stack([inputs_[j], outputs[k], *([recs[k]] if recs is not None else [])])
                        save_png(grid_array(row, nrow=len(row)), staging / name)
                    else:
                        save_png(outputs[k], staging / name)
            bar.advance(len(chunk))
    return {"checkpoint": str(translator.path), "family": translator.family, "step": translator.step,
            "direction": direction, "from": SOURCE_DOMAIN[direction], "to": TARGET_DOMAIN[direction],
            "size": side, "tile": tile, "overlap": overlap,
            "grid": ("input | translation" + (" | reconstruction" if rebuilt else "")) if grid else None,
            "stochastic": stochastic, "outputs": records, "skipped": skipped}
