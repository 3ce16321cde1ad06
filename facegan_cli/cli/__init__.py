"""The `facegan` command: a Typer app with one group per job.

Every top-level command is declared in COMMANDS and imported only when it runs or shows its own help
(cli.lazy), so `facegan --help`, `--version` and shell completion of the command names import no torch.
A new group or command is one LazyCommand line here. The `train` and `models summary` groups are built
from the families registered when they load, so a family registered later (a plugin, a test) gets its
commands by building the app again (`build_app()`); their help reads the declarations snapshot
(cli.declarations) in a process that has not imported the registry. `app` is the console script's entry point.
"""

from __future__ import annotations

import os

import typer

from facegan_cli import __version__
from facegan_cli.cli.checks import refuse
from facegan_cli.cli.common import FaceganGroup, FaceganTyper
from facegan_cli.cli.lazy import LazyCommand

_CLI = "facegan_cli.cli"
# `facegan --help` lists these in this order; each module is imported when its command is used.
COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand("sample", f"{_CLI}.apply:sample", "Draw samples from a generator checkpoint (the EMA generator "
                "where the family keeps one): a grid when --out ends in .png/.jpg/.webp, otherwise a folder "
                "with one image per sample, named by its row in the latents (0000.png ...).",
                help_from="SAMPLE_HELP", epilog_from="SAMPLE_EPILOG"),
    LazyCommand("edit", f"{_CLI}.apply:edit", "Edit face attributes with a trained attribute editor (stargan, "
                "ccagan, stargan-sagan).", help_from="EDIT_HELP", epilog_from="EDIT_EPILOG"),
    LazyCommand("translate", f"{_CLI}.apply:translate", "Translate images with a trained translator (cycle-gan, "
                "cycle-gan-vae): domain A to B (a2b) or B to A (b2a).",
                help_from="TRANSLATE_HELP", epilog_from="TRANSLATE_EPILOG"),
    LazyCommand("explain", f"{_CLI}.explain:explain", "Look inside a model: guided backpropagation of a "
                "discriminator's filters (--ckpt), or the colour-change heat map of edits (--edited).",
                help_from="HELP", epilog_from="EPILOG"),
    LazyCommand("prepare", f"{_CLI}.prepare:app", "Prepare datasets: CelebA crops, CelebA-HQ and FFHQ-style "
                "aligned faces, synthetic faces, exports for other tools."),
    LazyCommand("train", f"{_CLI}.train:build", "Train a model family (one command per family; `facegan models "
                "list` names them)."),
    LazyCommand("latent", f"{_CLI}.latent:app", "Explore a generator's latent space: interpolation, vector "
                "arithmetic, nearest training images."),
    LazyCommand("models", f"{_CLI}.models:build", "The model families, their presets and parameter counts."),
    LazyCommand("weights", f"{_CLI}.weights:app", "Manage pretrained weights (FID Inception, VGG19, "
                "face-alignment)."),
    LazyCommand("eval", f"{_CLI}.evaluate:app", "Evaluation kits: the visual Turing test of seed 001, attribute "
                "editing (seed 000 Table 1), and image translation (seed 004)."),
    LazyCommand("metrics", f"{_CLI}.metrics:app", "FID, KID, IS, precision/recall, SWD and MS-SSIM that "
                "reproduce pytorch-fid, torch-fidelity and clean-fid, and `stats` to precompute reference "
                "statistics."),
    LazyCommand("runs", f"{_CLI}.runs:app", "Training runs: `list` them (status, progress, metrics, age), "
                "`show` one, `plot` their curves."),
    LazyCommand("transfer", f"{_CLI}.transfer:app", "Style and feature transfer: Gatys's neural style transfer "
                "and Latent Features Transfer through a frozen VGG19, and Johnson et al.'s fast style networks."),
    LazyCommand("import", f"{_CLI}.interop:import_", "Import checkpoints released by (or trained with) other "
                "projects (junyanz CycleGAN, yunjey StarGAN, pytorch/examples DCGAN) as a facegan run.",
                help_from="IMPORT_HELP", epilog_from="IMPORT_EPILOG"),
    LazyCommand("export", f"{_CLI}.interop:export", "Export a run's network to ONNX or TorchScript, checked "
                "against the network in facegan.", help_from="EXPORT_HELP", epilog_from="EXPORT_EPILOG"),
)


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


class _Root(FaceganGroup):
    lazy = COMMANDS


def build_app() -> typer.Typer:
    app = FaceganTyper(
        name="facegan",
        cls=_Root,
        help="Face GANs from the command line: prepare datasets, train, sample, explore latents, evaluate.",
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
    )
    app.callback()(main)
    return app


app = build_app()
