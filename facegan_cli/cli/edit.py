"""`facegan edit`: change attributes of face images with a StarGAN / CCA-GAN / StarGAN+SAGAN checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.apply.edit import edit as edit_images
from facegan_cli.cli.common import command, emit_result
from facegan_cli.cli.options import ALIGNED, OUTPUT, shared_options, weights_given

HELP = (
    "Edit face attributes with a trained attribute editor (stargan, ccagan, stargan-sagan).\n\n"
    "With --set NAME=0|1 and/or --flip NAME, each input is translated to its own attributes with those "
    "changes (setting a hair colour clears the other hair colours) and written as OUT/NAME.png. Without them, "
    "each input gets a StarGAN grid OUT/NAME-grid.png: the input, then one image per attribute target (hair "
    "colours set one at a time, every other attribute flipped). An input's own attributes are predicted by "
    "the checkpoint's discriminator unless --source gives them. Inputs that are not already the model's "
    "square are resized (short side) and centre-cropped like the training data. Photos that are not "
    "CelebA-aligned crops need --align dlib (or face-alignment): the largest face's 5 landmarks are moved "
    "by a similarity to where img_align_celeba keeps them, then cropped as in training (centre 178x178)."
)
EPILOG = (
    "Example: facegan edit --ckpt runs/ccagan --input face.jpg --set Blond_Hair=1 --flip Male --out edited/\n\n"
    "Example: facegan edit --ckpt runs/stargan --input faces/ --out grids/\n\n"
    "Example: facegan edit --ckpt runs/ccagan --input holiday.jpg --align dlib --flip Smiling --out edited/"
)

@command
@shared_options(*ALIGNED, "force", *OUTPUT)
def edit(
    align: str, fan_weights: Path | None, s3fd_weights: Path | None, force: bool, device: str, json_out: bool,
    ckpt: Annotated[Path, typer.Option("--ckpt", help="Run directory, checkpoints folder or checkpoint file.")],
    input_: Annotated[Path, typer.Option("--input", help="An image file, a folder of images, or - for paths on stdin.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the edited images (created).")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="NAME=0|1, repeatable or comma-separated (e.g. --set Blond_Hair=1).")] = None,
    flip: Annotated[list[str] | None, typer.Option("--flip", help="Attribute to invert, repeatable (e.g. --flip Male).")] = None,
    source: Annotated[str | None, typer.Option(
        "--source", help="The inputs' own attributes, NAME=0|1 comma-separated (default: predicted by D).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 16,
) -> None:
    doc = edit_images(ckpt, input_, out, set_, flip, source, batch_size, align,
                      weights_given(fan_weights, s3fd_weights), force, device)
    emit_result(doc, json_out, lambda d: [record["output"] for record in d["edits"]])
