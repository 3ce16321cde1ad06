"""`facegan sample`: draw images from a trained generator, as one grid or one file per sample."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.cli.common import (
    DebugOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    SeedOpt,
    command,
    emit_json,
    emit_paths,
)
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.outputs import check_new_folder, make_out_dir, staged_folder
from facegan_cli.data.grid import grid_array, save_png, to_uint8
from facegan_cli.latent.latents import draw_latents, load_latents, save_latents
from facegan_cli.latent.outputs import check_new_file, is_image_path
from facegan_cli.models.loading import load_generator

HELP = (
    "Draw samples from a generator checkpoint (the EMA generator where the family keeps one): a grid when "
    "--out ends in .png/.jpg/.webp, otherwise a folder with one image per sample, named by its row in the "
    "latents (0000.png ...)."
)
EPILOG = (
    "Example: facegan sample --ckpt runs/dcgan --n 64 --seed 0 --out grid.png --save-latents z.npy\n\n"
    "Example: facegan sample --ckpt runs/dcgan --latents z.npy --out samples/"
)

_SAMPLE_FILE = re.compile(r"^\d+\.png$")
# The ownership marker's kind: --force replaces only a folder `facegan sample` wrote (core.outputs).
SAMPLES_KIND = "samples"


def _owned(rel: str) -> bool:
    """Entries a sample folder holds (paths relative to it), which --force may replace."""
    return bool(_SAMPLE_FILE.match(rel))


CkptOpt = Annotated[
    Path,
    typer.Option("--ckpt", help="Run directory, its checkpoints/ folder or a .safetensors checkpoint file."),
]
LatentsInOpt = Annotated[
    Path | None,
    typer.Option(
        "--latents", help="Use the rows of this z.npy (from --save-latents) instead of drawing new ones."
    ),
]
SaveLatentsOpt = Annotated[
    Path | None, typer.Option("--save-latents", help="Also write the latents used as an N x z_dim .npy file.")
]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Images generated per forward pass.")]


@command
def sample(
    ckpt: CkptOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="A grid image (.png/.jpg/.webp) or a folder.")],
    n: Annotated[
        int | None, typer.Option("--n", help="Number of samples (default: 64, or every row of --latents).")
    ] = None,
    seed: SeedOpt = 0,
    latents: LatentsInOpt = None,
    save_latents_to: SaveLatentsOpt = None,
    nrow: Annotated[
        int | None, typer.Option("--nrow", help="Images per grid row (default: square-ish).")
    ] = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    force: ForceOpt = False,
) -> None:
    """Draw samples from a generator checkpoint."""
    grid = is_image_path(out)
    if grid:
        check_new_file(out, force)
    else:
        check_new_folder(out, force, SAMPLES_KIND, _owned)
    if save_latents_to is not None:
        check_new_file(save_latents_to, force, "--save-latents")
    make_out_dir(out.parent)  # a parent that is a file is the user's error, found before the generator loads
    if n is not None and n < 1:
        raise FaceganError(f"--n {n} must be at least 1.", "Use e.g. --n 64.")
    generator = load_generator(ckpt, resolve_device(device))
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

    written: list[Path] = []
    if grid:
        written.append(save_png(grid_array(generator.pixels(z, batch_size, "sampling"), nrow=nrow), out))
    else:
        # Written batch by batch, so that tens of thousands of samples (for metrics) never sit in memory.
        names = [f"{i:0{max(4, len(str(len(z) - 1)))}d}.png" for i in range(len(z))]
        with staged_folder(out, force, SAMPLES_KIND, _owned) as staging:
            done = 0
            for batch in generator.batches(z, batch_size, "sampling"):
                for image in to_uint8(batch, generator.value_range):
                    save_png(image, staging / names[done])
                    done += 1
        written += [out / name for name in names]
    if save_latents_to is not None:
        written.append(save_latents(z, save_latents_to))

    if json_out:
        emit_json(
            {
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
        )
    else:
        emit_paths(written)
