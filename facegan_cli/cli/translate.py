"""`facegan translate`: translate images with a trained translator (cycle-gan and its variants)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.apply.translate import translate as translate_images
from facegan_cli.cli.common import command, emit_result
from facegan_cli.cli.options import ALIGNED, OUTPUT, shared_options, weights_given
from facegan_cli.models.translation import DIRECTIONS

HELP = (
    "Translate images with a trained translator (cycle-gan, cycle-gan-vae): domain A to B (a2b) or B to A (b2a).\n\n"
    "Each INPUT is an image, a folder of images, or - for image paths on stdin. Images are resized (short side) "
    "and centre-cropped to the model's square (--size: another multiple of 4 for fully convolutional "
    "translators, e.g. full-size photos), or with --align dlib (or face-alignment) their largest face is "
    "CelebA-aligned first. Writes OUT/NAME.png, or with --grid OUT/NAME-grid.png: input | translation | "
    "reconstruction (translated back). OUT is a new folder."
)
EPILOG = (
    "Example: facegan translate --ckpt runs/cyclegan --direction a2b face.jpg --out paintings/\n\n"
    "Example: facegan translate --ckpt runs/cyclegan --direction b2a paintings/ --grid --out photos/\n\n"
    "Example: ls photos/*.jpg | facegan translate --ckpt runs/cyclegan - --align dlib --out painted/"
)


@command
@shared_options(*ALIGNED, "force", *OUTPUT)
def translate(
    align: str, fan_weights: Path | None, s3fd_weights: Path | None, force: bool, device: str, json_out: bool,
    inputs: Annotated[list[Path], typer.Argument(help="Images, folders of images, or - for paths on stdin.",
                                                 show_default=False)],
    ckpt: Annotated[Path, typer.Option("--ckpt", help="Run directory, checkpoints folder or checkpoint file.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the translated images (created).")],
    direction: Annotated[str, typer.Option(
        "--direction", help=f"{' or '.join(DIRECTIONS)}: A to B (G_A) or B to A (G_B).")] = "a2b",
    grid: Annotated[bool, typer.Option("--grid", help="Write input | translation | reconstruction per input.")] = False,
    size: Annotated[int | None, typer.Option(
        "--size", help="Square side to translate at (default: the model's training size).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 16,
) -> None:
    doc = translate_images(ckpt, inputs, out, direction, grid, size, batch_size, align,
                           weights_given(fan_weights, s3fd_weights), force, device)
    emit_result(doc, json_out, lambda d: [record["output"] for record in d["outputs"]])
