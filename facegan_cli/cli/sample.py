"""`facegan sample`: draw images from a trained generator, as one grid or one file per sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.apply.sample import sample as sample_images
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

HELP = (
    "Draw samples from a generator checkpoint (the EMA generator where the family keeps one): a grid when "
    "--out ends in .png/.jpg/.webp, otherwise a folder with one image per sample, named by its row in the "
    "latents (0000.png ...)."
)
EPILOG = (
    "Example: facegan sample --ckpt runs/dcgan --n 64 --seed 0 --out grid.png --save-latents z.npy\n\n"
    "Example: facegan sample --ckpt runs/dcgan --latents z.npy --out samples/"
)

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
    doc = sample_images(ckpt, out, n, seed, latents, save_latents_to, nrow, batch_size, device, force)
    if json_out:
        emit_json(doc)
    else:
        emit_paths(doc["files"])
