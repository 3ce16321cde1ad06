"""`facegan sample`, `edit` and `translate`: apply a trained network to latents or images (the library's apply/).

`sample` draws images from a generator, as one grid or one file per sample; `edit` changes attributes of face
images with a StarGAN / CCA-GAN / StarGAN+SAGAN checkpoint; `translate` translates images with a trained
translator (cycle-gan and its variants). edit and translate share how a network runs on photos (PHOTOS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.apply.photos import PhotoOptions
from facegan_cli.cli.common import emit_result
from facegan_cli.cli.params import NAMES_NOTE
from facegan_cli.cli.shared_options import (
    OUTPUT,
    PHOTOS,
    GeneratedBatchOpt,
    GeneratorOpt,
    SeedOpt,
    shared_options,
)
from facegan_cli.data.domains import DIRECTIONS

SAMPLE_HELP = (
    "Draw samples from a generator checkpoint (the EMA generator where the family keeps one): a grid when "
    "--out ends in .png/.jpg/.webp, otherwise a folder with one image per sample, named by its row in the "
    "latents (0000.png ...)."
)
SAMPLE_EPILOG = (
    "Example: facegan sample --ckpt runs/dcgan --n 64 --seed 0 --out grid.png --save-latents z.npy\n\n"
    "Example: facegan sample --ckpt runs/dcgan --latents z.npy --out samples/"
)
EDIT_HELP = (
    "Edit face attributes with a trained attribute editor (stargan, ccagan, stargan-sagan).\n\n"
    "With --set NAME=0|1 and/or --flip NAME, each input is translated to its own attributes with those "
    "changes (setting a hair colour clears the other hair colours) and written as OUT/NAME.png. Without them, "
    "each input gets a StarGAN grid OUT/NAME-grid.png: the input, then one image per attribute target (hair "
    "colours set one at a time, every other attribute flipped). An input's own attributes are predicted by "
    "the checkpoint's discriminator unless --source gives them. Inputs that are not already the model's "
    "square are resized (short side) and centre-cropped like the training data. Photos that are not "
    "CelebA-aligned crops need --align dlib (or face-alignment): the largest face's 5 landmarks are moved "
    "by a similarity to where img_align_celeba keeps them, then cropped as in training (centre 178x178)."
    + NAMES_NOTE
)
EDIT_EPILOG = (
    "Example: facegan edit --ckpt runs/ccagan --input face.jpg --set Blond_Hair=1 --flip Male --out edited/\n\n"
    "Example: facegan edit --ckpt runs/stargan --input faces/ --out grids/\n\n"
    "Example: facegan edit --ckpt runs/ccagan --input holiday.jpg --align dlib --flip Smiling --out edited/"
)
TRANSLATE_HELP = (
    "Translate images with a trained translator (cycle-gan, cycle-gan-vae): domain A to B (a2b) or B to A (b2a).\n\n"
    "Each INPUT is an image, a folder of images, or - for image paths on stdin. Each image is translated whole, "
    "aspect kept: its short side scaled to --size (default: the model's training size), padded to a side the "
    "networks take and the output cropped back, so a 300x200 photo with --size 200 gives a 300x200 image; "
    "--tile N translates it in overlapping N x N tiles blended without a seam, for images larger than memory "
    "(instance-norm networks normalise every tile by statistics gathered once from the whole image at a reduced "
    "size). With --align dlib (or face-alignment) the largest face is CelebA-aligned first; a translator with "
    "dense layers (cycle-gan-vae) takes only its training square (resized, centre-cropped). Writes "
    "OUT/NAME.png, or with --grid OUT/NAME-grid.png: input | translation | reconstruction (translated back). "
    "OUT is a new folder." + NAMES_NOTE
)
TRANSLATE_EPILOG = (
    "Example: facegan translate --ckpt runs/cyclegan --direction a2b face.jpg --out paintings/\n\n"
    "Example: facegan translate --ckpt runs/cyclegan --direction b2a paintings/ --grid --out photos/\n\n"
    "Example: facegan translate --ckpt runs/cyclegan --size 1500 --tile 512 holiday-2000x1500.jpg --out painted/\n\n"
    "Example: ls photos/*.jpg | facegan translate --ckpt runs/cyclegan - --align dlib --out painted/"
)


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
    from facegan_cli.apply.sample import sample as sample_images

    doc = sample_images(ckpt, out, n, seed, latents, save_latents_to, nrow, batch_size, device, force)
    emit_result(doc, json_out, lambda d: d["files"])


@shared_options(*PHOTOS)
def edit(
    photos: PhotoOptions, json_out: bool,
    ckpt: Annotated[Path, typer.Option("--ckpt", help="Run directory, checkpoints folder or checkpoint file.")],
    input_: Annotated[Path, typer.Option("--input", help="An image file, a folder of images, or - for paths on stdin.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the edited images (created).")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="NAME=0|1, repeatable or comma-separated (e.g. --set Blond_Hair=1).")] = None,
    flip: Annotated[list[str] | None, typer.Option("--flip", help="Attribute to invert, repeatable (e.g. --flip Male).")] = None,
    source: Annotated[str | None, typer.Option(
        "--source", help="The inputs' own attributes, NAME=0|1 comma-separated (default: predicted by D).")] = None,
) -> None:
    from facegan_cli.apply.edit import edit as edit_images

    doc = edit_images(ckpt, input_, out, set_, flip, source, photos)
    emit_result(doc, json_out, lambda d: [record["output"] for record in d["edits"]])


@shared_options("tile", "overlap", *PHOTOS)
def translate(
    photos: PhotoOptions, json_out: bool, tile: int | None, overlap: int | None,
    inputs: Annotated[list[Path], typer.Argument(help="Images, folders of images, or - for paths on stdin.",
                                                 show_default=False)],
    ckpt: Annotated[Path, typer.Option("--ckpt", help="Run directory, checkpoints folder or checkpoint file.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the translated images (created).")],
    direction: Annotated[str | None, typer.Option(
        "--direction", help=f"{' or '.join(DIRECTIONS)}: A to B (G_A) or B to A (G_B) (default: the model's first; "
        "a one-way model such as pix2pix translates only the direction it was trained in).")] = None,
    grid: Annotated[bool, typer.Option("--grid", help="Write input | translation | reconstruction per input (a "
                                       "one-way model: input | translation).")] = False,
    size: Annotated[int | None, typer.Option(
        "--size", help="Short side to translate at, aspect kept (default: the model's training size).")] = None,
    stochastic: Annotated[bool, typer.Option(
        "--stochastic", help="Keep dropout on and use batch statistics, as junyanz's test.py without --eval (models "
        "with dropout or batch norm, e.g. pix2pix; default: inference mode, as --eval).")] = False,
) -> None:
    from facegan_cli.apply.translate import translate as translate_images

    doc = translate_images(ckpt, inputs, out, direction, grid, size, photos, tile, overlap, stochastic)
    emit_result(doc, json_out, lambda d: [record["output"] for record in d["outputs"]])
