"""`facegan sample`: draw images from a trained generator, as one grid or one file per sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.apply.sample import sample as sample_images
from facegan_cli.cli.common import command, emit_result
from facegan_cli.cli.options import OUTPUT, GeneratedBatchOpt, GeneratorOpt, SeedOpt, shared_options

HELP = (
    "Draw samples from a generator checkpoint (the EMA generator where the family keeps one): a grid when "
    "--out ends in .png/.jpg/.webp, otherwise a folder with one image per sample, named by its row in the "
    "latents (0000.png ...)."
)
EPILOG = (
    "Example: facegan sample --ckpt runs/dcgan --n 64 --seed 0 --out grid.png --save-latents z.npy\n\n"
    "Example: facegan sample --ckpt runs/dcgan --latents z.npy --out samples/"
)


@command
@shared_options(*OUTPUT, "force")
def sample(
    device: str, json_out: bool, force: bool,
    ckpt: GeneratorOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="A grid image (.png/.jpg/.webp) or a folder.")],
    n: Annotated[int | None, typer.Option("--n", help="Number of samples (default: 64, or every row of --latents).")] = None,
    seed: SeedOpt = 0,
    latents: Annotated[Path | None, typer.Option(
        "--latents", help="Use the rows of this z.npy (from --save-latents) instead of drawing new ones.")] = None,
    save_latents_to: Annotated[Path | None, typer.Option(
        "--save-latents", help="Also write the latents used as an N x z_dim .npy file.")] = None,
    nrow: Annotated[int | None, typer.Option("--nrow", help="Images per grid row (default: square-ish).")] = None,
    batch_size: GeneratedBatchOpt = 64,
) -> None:
    """Draw samples from a generator checkpoint."""
    doc = sample_images(ckpt, out, n, seed, latents, save_latents_to, nrow, batch_size, device, force)
    emit_result(doc, json_out, lambda d: d["files"])
