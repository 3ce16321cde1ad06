"""Draw images from a generator checkpoint, as one grid or one file per sample (`facegan sample`).

Under torchrun each rank generates its share of whole batches (core.distributed.shard), so every image
is the one a single process would draw: a folder's files are written by the rank that made them into one
staging folder, which rank 0 renames once every rank is done; a grid is gathered and written by rank 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facegan_cli.core import distributed
from facegan_cli.core.device import resolve_device
from facegan_cli.core.distributed import DistInfo
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.outputs import (
    check_new_file,
    check_new_folder,
    make_out_dir,
    new_file,
    shared_staged_folder,
)
from facegan_cli.core.progress import set_quiet
from facegan_cli.core.seeding import draw_latents
from facegan_cli.data.figure import is_image_path
from facegan_cli.data.grid import grid_array, save_png, to_uint8
from facegan_cli.latent.latents import load_latents, write_latents
from facegan_cli.models.loading import load_generator

# The ownership marker's kind: --force replaces only a folder `facegan sample` wrote (core.outputs).
SAMPLES_KIND = "samples"


def sample(
    ckpt: str | Path,
    out: Path,
    n: int | None = None,
    seed: int = 0,
    latents: Path | None = None,
    save_latents_to: Path | None = None,
    nrow: int | None = None,
    batch_size: int = 64,
    device: str = "auto",
    force: bool = False,
) -> dict[str, Any]:
    """Samples of `ckpt` at drawn (or given) latents into a grid image or a folder; returns what was written.

    A folder is written batch by batch through a staging folder, so tens of thousands of samples (for
    metrics) never sit in memory and an interrupted run never leaves a folder that looks complete.
    Under torchrun the ranks share the work (see the module docstring).
    """
    with distributed.process_group(resolve_device(device)) as info:
        if not info.is_main:
            set_quiet(True)  # one progress bar: rank 0's
        return _sample(ckpt, out, n, seed, latents, save_latents_to, nrow, batch_size, device, force, info)


def _sample(
    ckpt: str | Path, out: Path, n: int | None, seed: int, latents: Path | None, save_latents_to: Path | None,
    nrow: int | None, batch_size: int, device: str, force: bool, info: DistInfo,
) -> dict[str, Any]:
    grid = is_image_path(out)
    if grid:
        check_new_file(out, force)
    else:
        check_new_folder(out, force, SAMPLES_KIND)
    if save_latents_to is not None:
        check_new_file(save_latents_to, force, "--save-latents")
    make_out_dir(out.parent)  # a parent that is a file is the user's error, found before the generator loads
    if n is not None and n < 1:
        raise UsageProblem(f"--n {n} must be at least 1.", "Use e.g. --n 64.")
    generator = load_generator(ckpt, distributed.rank_device(info, resolve_device(device)))
    if latents is not None:
        z = load_latents(latents, generator.z_dim)
        if n is not None:
            if n > z.shape[0]:
                raise FaceganError(
                    f"--n {n} asks for more samples than the {z.shape[0]} rows of {latents}.",
                    f"Use --n {z.shape[0]} or less, or leave --n out to use every row.",
                )
            z = z[:n]
    else:
        z = draw_latents(n if n is not None else 64, generator.z_dim, seed)

    if batch_size < 1:
        raise UsageProblem(f"--batch-size {batch_size} must be at least 1.", "Use e.g. --batch-size 64.")
    mine = distributed.shard(len(z), batch_size, info)  # every row without torchrun
    written: list[Path] = []
    if grid:
        pixels = distributed.all_gather_rows(info, generator.pixels(z[mine.start : mine.stop], batch_size, "sampling"))
        if info.is_main:
            with new_file(out, force, "sample-grid") as tmp:
                save_png(grid_array(pixels, nrow=nrow), tmp)
        written.append(out)
    else:
        names = [f"{i:0{max(4, len(str(len(z) - 1)))}d}.png" for i in range(len(z))]
        with shared_staged_folder(out, force, SAMPLES_KIND, info) as staging:
            done = mine.start
            for batch in generator.batches(z[mine.start : mine.stop], batch_size, "sampling"):
                for image in to_uint8(batch, generator.value_range):
                    save_png(image, staging / names[done])
                    done += 1
        written += [out / name for name in names]
    if save_latents_to is not None:
        if info.is_main:
            write_latents(z, save_latents_to, force)
        written.append(save_latents_to)
    return {
        "checkpoint": generator.path,
        "step": generator.step,
        "generator": generator.weights,
        "n": len(z),
        "seed": None if latents is not None else seed,
        "latents": latents,
        "resolution": generator.resolution,
        "out": out,
        "files": written,
        "saved_latents": save_latents_to,
    }
