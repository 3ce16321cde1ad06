"""The `facegan` command: a Typer app with one group per job.

`build_app()` assembles it from the families registered at that moment (the `train` and `models
summary` groups have a command per family), so a family registered later (a plugin, a test) gets its
commands by building the app again. `app` is the one built at import, the console script's entry point.
"""

from __future__ import annotations

import os

import typer

from facegan_cli import __version__
from facegan_cli.cli import apply, evaluate, latent, metrics, models, prepare, runs, train, weights
from facegan_cli.cli import explain as explain_cli
from facegan_cli.cli import interop as interop_cli
from facegan_cli.cli import transfer as transfer_cli
from facegan_cli.cli.common import FaceganGroup, FaceganTyper
from facegan_cli.cli.params import refuse


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


_check_max_pixels = refuse(lambda value: value.strip().lower() == "none" or value.strip().isdecimal(),
                           "{value!r} is not a number of pixels: give a whole number, or 0 / none for no limit.")


def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    max_pixels: str | None = typer.Option(
        None, "--max-pixels", callback=_check_max_pixels,
        help="Largest image (width x height) any command decodes; larger files are rejected as possible "
        "decompression bombs (default 89,478,485, PIL's limit; 0 or none = no limit). The environment "
        "variable FACEGAN_MAX_PIXELS sets it too.",
    ),
) -> None:
    """facegan: one tool for face GAN datasets, training, sampling, latent tools and evaluation."""
    if max_pixels is not None:
        # Through the environment, so worker processes (forked or forkserver-started) see the same limit.
        os.environ["FACEGAN_MAX_PIXELS"] = max_pixels


def build_app() -> typer.Typer:
    app = FaceganTyper(
        name="facegan",
        cls=FaceganGroup,
        help="Face GANs from the command line: prepare datasets, train, sample, explore latents, evaluate.",
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(main)
    app.add_typer(prepare.app, name="prepare")
    app.add_typer(train.build(), name="train")
    app.command(name="sample", help=apply.SAMPLE_HELP, epilog=apply.SAMPLE_EPILOG)(apply.sample)
    app.command(name="edit", help=apply.EDIT_HELP, epilog=apply.EDIT_EPILOG)(apply.edit)
    app.command(name="translate", help=apply.TRANSLATE_HELP, epilog=apply.TRANSLATE_EPILOG)(apply.translate)
    app.add_typer(latent.app, name="latent")
    app.add_typer(models.build(), name="models")
    app.add_typer(weights.app, name="weights")
    app.add_typer(evaluate.app, name="eval")
    app.add_typer(metrics.app, name="metrics")
    app.add_typer(runs.app, name="runs")
    app.add_typer(transfer_cli.app, name="transfer")
    app.command(name="explain", help=explain_cli.HELP, epilog=explain_cli.EPILOG)(explain_cli.explain)
    app.command(name="import", help=interop_cli.IMPORT_HELP, epilog=interop_cli.IMPORT_EPILOG)(interop_cli.import_)
    app.command(name="export", help=interop_cli.EXPORT_HELP, epilog=interop_cli.EXPORT_EPILOG)(interop_cli.export)
    return app


app = build_app()
