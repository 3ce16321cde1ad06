"""Stylise images with a trained fast style network (`facegan transfer fast`).

Each input (an image, a folder's images, or paths on stdin) keeps its size and aspect ratio (`size` resizes
the short side first, LANCZOS, aspect kept), goes through the network once on the 0-255 scale (their
stylize: ToTensor x 255), and is written as OUT/NAME.png, clamped to 0-255 and truncated to uint8 as their
save_image does. Images of equal size are stylised together, `batch_size` at a time (the InstanceNorms
normalise each image on its own, so a batch changes no pixel); the network runs in inference mode,
channels_last on the CPU and CUDA, built once. With `tile`, each image is stylised in overlapping tiles
blended without a seam (apply.whole_image: the InstanceNorms normalise every tile by statistics gathered once
from the whole image at a reduced size), so an image larger than memory fits; the output then has the
input's own size (their stylize writes sides that are not a multiple of 4 rounded up to one). OUT is a new folder, staged and marked as facegan's
(core.outputs): nothing partial is left when an input fails. Under torchrun each rank stylises its share
of the inputs (core.distributed.shard) into the one staging folder, which rank 0 renames when all are done.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from facegan_cli.apply.translate import input_files
from facegan_cli.apply.whole_image import (
    apply_tiled,
    read_scaled,
    resolve_tiling,
    shape_groups,
)
from facegan_cli.core import distributed
from facegan_cli.core.device import Precision, resolve_device
from facegan_cli.core.distributed import DistInfo
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.naming import output_names
from facegan_cli.core.outputs import check_new_folder, check_outside_inputs, shared_staged_folder
from facegan_cli.core.progress import Progress, set_quiet
from facegan_cli.data.grid import save_png
from facegan_cli.data.imageio import RejectedImage, check_side_option, display_name
from facegan_cli.models.fast_style import LoadedStylizer, load_stylizer, to_pixels
from facegan_cli.models.translation import downsampling_multiple

STYLIZED_KIND = "stylized"  # core.outputs marker: --force replaces only a folder `transfer fast` wrote


def read_input(path: Path, size: int | None) -> np.ndarray:
    """One input as H x W x 3 uint8, short side `size` (LANCZOS) when given; an unusable file names itself."""
    try:
        return read_scaled(path, size, Image.Resampling.LANCZOS)
    except RejectedImage as exc:
        raise FaceganError(f"INPUT {display_name(path)} cannot be stylised: {exc.reason}.",
                           "Remove it from the inputs or replace it with a JPEG/PNG image.") from None


def stylize_arrays(
    model: LoadedStylizer, pixels: Sequence[np.ndarray], precision: Precision, tile: int | None = None,
    overlap: int | None = None, batch_size: int = 4,
) -> torch.Tensor:
    """Equal-size H x W x 3 uint8 images -> their stylised N x H' x W' x 3 uint8 (CPU); with `tile`, each in
    tiles of that side, `batch_size` tiles at a time (H' x W' = H x W)."""
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)
    if tile is None:
        return to_pixels(model.stylize(precision.tensor(x.to(model.device).float())))
    multiple = downsampling_multiple(model.module)
    made = [apply_tiled(lambda t: model.stylize(precision.tensor(t)), x[i : i + 1].float(), multiple, tile, overlap,
                        batch_size, model.device)[0] for i in range(x.shape[0])]
    return to_pixels(torch.cat(made))


def stylize_files(
    ckpt: Path, inputs: Sequence[Path], out: Path, size: int | None = None, batch_size: int = 4,
    device: str = "auto", force: bool = False, tile: int | None = None, overlap: int | None = None,
) -> dict[str, Any]:
    """Stylise every input; returns the result document (checkpoint, one record per input). `tile`: stylise
    each image in tiles of this side overlapping by `overlap` (default: a quarter tile)."""
    if size is not None:
        check_side_option(size, "--size")
    if batch_size < 1:
        raise UsageProblem(f"--batch-size {batch_size} must be at least 1.", "Use e.g. --batch-size 4.")
    with distributed.process_group(resolve_device(device)) as info:
        if not info.is_main:
            set_quiet(True)  # one progress bar: rank 0's
        return _stylize(ckpt, inputs, out, size, batch_size, device, force, info, tile, overlap)


def _groups(files: list[Path], rows: range, size: int | None) -> dict[tuple[int, int], list[int]]:
    """The rows of `rows` by the size their image will have (decoded header only), in input order."""
    from facegan_cli.data.imageio import probe_size

    groups: dict[tuple[int, int], list[int]] = {}
    for i in rows:
        try:
            w, h = probe_size(files[i])
        except RejectedImage as exc:
            raise FaceganError(f"INPUT {display_name(files[i])} cannot be stylised: {exc.reason}.",
                               "Remove it from the inputs or replace it with a JPEG/PNG image.") from None
        if size is not None:  # resize_short_side's arithmetic (EXIF rotation may swap them: grouped by key only)
            short, long = min(w, h), max(w, h)
            w, h = (size, int(size * long / short)) if w <= h else (int(size * long / short), size)
        groups.setdefault((w, h), []).append(i)
    return groups


def _stylize(
    ckpt: Path, inputs: Sequence[Path], out: Path, size: int | None, batch_size: int, device: str, force: bool,
    info: DistInfo, tile: int | None = None, overlap: int | None = None,
) -> dict[str, Any]:
    check_outside_inputs(out, [*(("INPUT", p) for p in inputs if str(p) != "-"), ("--ckpt", ckpt)])
    check_new_folder(out, force, STYLIZED_KIND)
    torch_device = distributed.rank_device(info, resolve_device(device))
    model = load_stylizer(ckpt, torch_device)
    overlap = resolve_tiling(tile, overlap, downsampling_multiple(model.module))  # its stride-2 convolutions: 4
    precision = Precision(torch_device, channels_last=True)
    model.module = precision.module(model.module)
    skipped: list[dict[str, str]] = []
    files = input_files(inputs, skipped)
    names = output_names(files, ".png")  # distinct whatever the inputs are called
    records = [{"input": str(path), "output": str(out / name)} for path, name in zip(files, names)]
    mine = distributed.shard(len(files), batch_size, info)  # every input without torchrun
    groups = _groups(files, mine, size)
    with shared_staged_folder(out, force, STYLIZED_KIND, info) as staging, \
            Progress(len(mine), "transfer fast", unit="img") as bar:
        for rows in groups.values():
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                pixels = [read_input(files[i], size) for i in chunk]
                # EXIF-rotated files may differ from their header's size: stylised in groups of their own.
                for members in shape_groups(pixels).values():
                    made = stylize_arrays(model, [pixels[j] for j in members], precision, tile, overlap,
                                          batch_size).numpy()
                    for j, image in zip(members, made):
                        save_png(image, staging / names[chunk[j]])
                bar.advance(len(chunk))
    return {"checkpoint": str(model.path), "family": "fast-style", "step": model.step, "size": size, "tile": tile,
            "overlap": overlap,
            "outputs": records, "skipped": skipped}
