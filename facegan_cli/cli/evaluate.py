"""`facegan eval`: seed 001's visual Turing test (a numbered sheet for raters) and its scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

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
from facegan_cli.evaluation.turing import ImagePool, RaterScore, make_sheet, score
from facegan_cli.latent.latents import draw_latents
from facegan_cli.models.loading import load_generator

app = typer.Typer(help="Human evaluation kits: the visual Turing test of seed 001.", no_args_is_help=True)


def _fake_pool(
    fake: Path | None, fake_ckpt: Path | None, n: int, seed: int, device: str, batch_size: int
) -> ImagePool | Path:
    if fake_ckpt is None:
        if fake is None:
            raise FaceganError(
                "No fake images: neither --fake nor --fake-ckpt was given.",
                "Pass a folder of generated images with --fake, or a checkpoint with --fake-ckpt.",
            )
        return fake
    if fake is not None:
        raise FaceganError(
            "Both --fake and --fake-ckpt were given; the fakes must come from one of them.",
            "Drop one of the two options.",
        )
    generator = load_generator(fake_ckpt, resolve_device(device))
    pixels = generator.pixels(draw_latents(n, generator.z_dim, seed), batch_size, "generating fakes")
    names = [f"{generator.path.absolute()}#seed={seed}:{i}" for i in range(n)]
    return ImagePool.from_array(pixels, names)


@app.command(
    "turing",
    epilog="Example: facegan eval turing --real data/faces32 --fake samples/ --n 50 --out sheet/\n\n"
    "Give raters the sheet/ folder (numbered images, sheet.png, answers.txt); keep sheet.key.json.",
)
@command
def turing(
    real: Annotated[
        Path, typer.Option("--real", help="Real images: a folder of images or a prepared dataset.")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for the raters: numbered images, sheet.png, answers.txt."),
    ],
    fake: Annotated[Path | None, typer.Option("--fake", help="Generated images: a folder of images.")] = None,
    fake_ckpt: Annotated[
        Path | None,
        typer.Option("--fake-ckpt", help="Or generate the fakes from this checkpoint (seeded by --seed)."),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Real images and fake images on the sheet (2n in all).")] = 50,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Where the answer key goes (default: OUT.key.json beside OUT)."),
    ] = None,
    seed: SeedOpt = 0,
    size: Annotated[
        int | None,
        typer.Option("--size", help="Resize every image to N x N (centre crop) (default: keep sizes)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Images per forward pass with --fake-ckpt.")
    ] = 64,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    force: ForceOpt = False,
) -> None:
    """Make a shuffled, numbered sheet of n real and n fake images and a separate answer key."""
    fakes = _fake_pool(fake, fake_ckpt, n, seed, device, batch_size)
    sheet = make_sheet(real, fakes, n, out, seed=seed, key=key, size=size, force=force)
    if json_out:
        emit_json(
            {
                "sheet": sheet.folder,
                "key": sheet.key,
                "contact_sheet": sheet.contact_sheet,
                "answers_template": sheet.answers_template,
                "images": len(sheet.images),
                "n_real": sheet.labels.count("real"),
                "n_fake": sheet.labels.count("fake"),
            }
        )
    else:
        emit_paths([sheet.folder, sheet.contact_sheet, sheet.answers_template, sheet.key])


def _row(table: Table, result: RaterScore) -> None:
    table.add_row(
        result.rater,
        str(result.n),
        f"{result.accuracy:.3f}",
        f"{result.false_positive_rate:.3f}",
        f"{result.fakes_called_real}/{result.fakes}",
        f"{result.reals_called_fake}/{result.reals}",
    )


@app.command(
    "score",
    epilog="Example: facegan eval score --key sheet.key.json --answers alice.txt --answers bob.txt\n\n"
    "Answers files: one line per image, 'NUMBER real|fake' (or r|f), e.g. '007 fake'; '#' starts a comment.",
)
@command
def score_cmd(
    key: Annotated[Path, typer.Option("--key", help="The answer key written by `facegan eval turing`.")],
    answers: Annotated[
        list[Path], typer.Option("--answers", help="One rater's answers file; repeat per rater.")
    ],
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Accuracy and false-positive rate (share of fakes called real) per rater and overall."""
    report = score(key, answers)
    if json_out:
        emit_json(
            {
                "key": key,
                "raters": [r.as_dict() for r in report.raters],
                "overall": report.overall.as_dict(),
            }
        )
        return
    table = Table(title=f"visual Turing test ({key})")
    for column in (
        "rater",
        "n",
        "accuracy",
        "FPR (fake called real)",
        "fakes called real",
        "reals called fake",
    ):
        table.add_column(column, justify="left" if column == "rater" else "right")
    for result in report.raters:
        _row(table, result)
    _row(table, report.overall)
    Console().print(table)
