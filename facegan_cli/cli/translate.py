"""`facegan translate`: translate images with a trained translator (cycle-gan and its variants)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.apply.edit import ALIGN_CHOICES
from facegan_cli.apply.translate import translate as translate_images
from facegan_cli.cli.common import (
    DebugOpt,
    DeviceOpt,
    FanWeightsOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    S3fdWeightsOpt,
    command,
    emit_json,
    emit_paths,
)
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
def translate(
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
    align: Annotated[str, typer.Option(
        "--align", help=f"Landmark backend that aligns photos first: {', '.join(ALIGN_CHOICES)} (none: resize "
        "and centre-crop only).")] = "none",
    fan_weights: FanWeightsOpt = None,
    s3fd_weights: S3fdWeightsOpt = None,
    force: ForceOpt = False,
    device: DeviceOpt = "auto",
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    own = {"face-alignment-2dfan4": fan_weights, "face-alignment-s3fd": s3fd_weights}
    doc = translate_images(ckpt, inputs, out, direction, grid, size, batch_size, align, own, force, device)
    if json_:
        emit_json(doc)
    else:
        emit_paths([record["output"] for record in doc["outputs"]])
