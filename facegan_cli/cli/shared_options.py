"""Options declared once and shared by every command that takes them.

A command registered with `@shared_command(app, NAME, *names)` (or made with `@shared_options(*names)` and
registered by its caller) takes its own options, then the shared options `names`, with its own default where
it differs (its --help shows it). It receives the values of the shared options its own signature names (e.g.
inputs, ckpt, dims, json_out, device) as themselves; a parameter named in GROUPS receives several as one value
(`settings`: the metric options as one metrics.run.Settings; `photos`: PHOTOS); the rest (--quiet, --debug)
only `cli.common.command` reads.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from facegan_cli.apply.photos import ALIGN_CHOICES, PhotoOptions
from facegan_cli.cli.params import DEBUG, DEVICE, FORCE, JSON, QUIET, build_command, native, parameter
from facegan_cli.core.options import Opt
from facegan_cli.metrics.settings import PROTOCOL_NAMES, Settings

F = TypeVar("F", bound=Callable[..., Any])

# Face alignment of photos before a network sees them: `facegan edit`, `translate` and `prepare`.
ALIGN = Opt("align", ("--align",), str, "none", f"Landmark backend that aligns photos first: "
            f"{', '.join(ALIGN_CHOICES)} (none: resize and centre-crop only).")
FAN_WEIGHTS = Opt("fan_weights", ("--fan-weights",), Path, None,
                  "--landmarks face-alignment: your own 2D-FAN network (the package's state-dict format) instead of "
                  "the official 2DFAN4-11f355bf06.pth.tar; used unverified, its SHA-256 recorded in the manifest.")
S3FD_WEIGHTS = Opt("s3fd_weights", ("--s3fd-weights",), Path, None, "--landmarks face-alignment: your own S3FD "
                   "detector instead of the official s3fd-619a316812.pth; used unverified, its SHA-256 recorded in "
                   "the manifest.")
VGG_WEIGHTS = Opt("vgg_weights", ("--vgg-weights",), Path, None, "A local VGG19 file instead of the cached "
                  "vgg19-dcbb9e9d.pth: under that name it is SHA-256 verified; under another name it is your own "
                  "network in torchvision's format (used as given, its SHA-256 reported).")
JSON_OUT = dataclasses.replace(JSON, name="json_out")
# Whole images in tiles (apply.whole_image): `translate` and `transfer fast`.
TILE = Opt("tile", ("--tile",), int, None, "Run the network in overlapping tiles of this side (a multiple of the "
           "network's side multiple: 4 for cycle-gan and fast-style, 256 for pix2pix's unet_256), blended without "
           "a seam: bounded memory for large images.")
OVERLAP = Opt("overlap", ("--overlap",), int, None, "With --tile: pixels neighbouring tiles share (a multiple of "
              "the network's side multiple, at most half the tile; default: a quarter tile).")
# A generator checkpoint and its batch, as `facegan sample` and `facegan latent ...` take them.
GeneratorOpt = Annotated[Path, typer.Option(
    "--ckpt", help="Run directory, its checkpoints/ folder or a .safetensors checkpoint file.")]
GeneratedBatchOpt = Annotated[int, typer.Option("--batch-size", help="Images generated per forward pass.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]
FigureOpt = Annotated[Path, typer.Option("--out", "-o", help="The figure to write (.png, .jpg or .webp).")]



# The metric options: what `facegan metrics ...` and the eval commands share (inputs, the Inception network
# and its protocol, reading), then what the commands that run a network or write files share.
SHARED_OPTIONS: dict[str, Opt | inspect.Parameter] = {opt.name: opt for opt in (
    native("inputs", Annotated[list[Path] | None, typer.Argument(
        help="Folders or zips of images, prepared datasets (see --split), or .npz statistics (fid only).",
        show_default=False)], None),
    Opt("ckpt", ("--ckpt",), Path, None, "Also score a generator (or a translator's translations, see "
        "--translate): run directory, checkpoints/ folder or .safetensors file."),
    Opt("n", ("--n",), int, 50_000, "Samples to generate with --ckpt (a translator: at most this many of "
        "--translate's images)."),
    Opt("translate", ("--translate",), Path, None, "With a translator --ckpt (cycle-gan): the images it "
        "translates for the metric (a folder, zip or prepared dataset; --split applies)."),
    Opt("direction", ("--direction",), str, None, "With --translate: a2b or b2a (default: the model's first).",
        choices=("a2b", "b2a")),
    Opt("seed", ("--seed",), int, 0, "Seed of the --ckpt latents (and of the metric's own draws)."),
    Opt("dims", ("--dims",), int, 2048, "Feature layer: 2048, 768, 192 or 64."),
    Opt("protocol", ("--protocol",), str, "pytorch-fid", "Which reference to reproduce: pytorch-fid (bilinear, "
        "the default), torch-fidelity (TF1 bilinear) or clean (clean-fid's PIL bicubic). Recorded in every "
        "result.", choices=PROTOCOL_NAMES),
    Opt("inception_weights", ("--inception-weights",), Path, None, "FID Inception weights to use instead of the "
        "cached pt_inception-2015-12-05-6726825d.pth. A file with the official name (or torch-fidelity's) is "
        "SHA-256 checked; under any other name it is used as given, and its SHA-256 is reported."),
    # The eval commands' name for the metrics' --batch-size (theirs is the batch of the network evaluated).
    Opt("inception_batch", ("--inception-batch",), int, None, "Images per Inception pass (default: 50 on the CPU, 250 on a GPU)."),
    Opt("split", ("--split",), str, None, "Split of prepared datasets: train, valid, test or all."),
    Opt("batch_size", ("--batch-size",), int, None, "Images per forward pass (default: 50 on the CPU, 250 on a GPU)."),
    Opt("workers", ("--workers",), int, None, "Processes decoding images (default: every CPU with a GPU; on the "
        "CPU 1, i.e. decoding in the main process, which leaves the cores to the network)."),
    Opt("strict", ("--strict",), bool, False, "Fail on the first unusable image instead of skipping it."),
    Opt("no_cache", ("--no-cache",), bool, False, "Neither read nor write the feature cache under $FACEGAN_HOME/features."),
    Opt("fast", ("--fast",), bool, False, "Allow TF32 on CUDA: faster, but no longer float32-faithful to the references."),
    DEVICE, JSON_OUT, QUIET, DEBUG, FORCE, ALIGN, FAN_WEIGHTS, S3FD_WEIGHTS, VGG_WEIGHTS, TILE, OVERLAP,
    Opt("photo_batch", ("--batch-size",), int, 16, "Images per forward pass."),
)}

# The usual selections, in the order --help lists them.
GENERATED = ("inputs", "ckpt", "n", "seed", "translate", "direction")
INCEPTION = ("protocol", "inception_weights", "no_cache", "fast")
REPORT = ("json_out", "quiet", "debug")
OUTPUT = ("device", *REPORT)
# A trained network run on photos (edit, translate): its batch, the photos' alignment, --force and the output
# options; a `photos` parameter receives them as the library's last arguments (see photo_arguments).
PHOTOS = ("photo_batch", "align", "fan_weights", "s3fd_weights", "force", *OUTPUT)
READING = ("split", "batch_size", "workers", "strict", *OUTPUT)
_UNSET = object()


def _shared_parameter(name: str, override: Any = _UNSET) -> inspect.Parameter:
    """The Typer parameter of one shared option; `override`: the command's default, or (default, help)."""
    spec = SHARED_OPTIONS[name]
    default, help_text = override if isinstance(override, tuple) else (override, None)
    if override is _UNSET:
        return parameter(spec)
    return spec.replace(default=default) if isinstance(spec, inspect.Parameter) else parameter(
        spec.with_default(default, help_text))


def metric_settings(values: dict[str, Any]) -> Settings:
    """metrics.run.Settings from the parsed metric options (those it has a field for)."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    given = {k: getattr(v, "value", v) for k, v in values.items() if k in fields}
    if "inception_batch" in values:
        given["batch_size"] = values["inception_batch"]
    if "no_cache" in values:
        given["cache"] = not values["no_cache"]
    return Settings(**given)


def photo_arguments(values: dict[str, Any]) -> PhotoOptions:
    """The PHOTOS options as apply.edit.edit and apply.translate.translate take them, the user's own
    face-alignment weights by the key of the official file each replaces."""
    own = {"face-alignment-2dfan4": values["fan_weights"], "face-alignment-s3fd": values["s3fd_weights"]}
    return PhotoOptions(values["photo_batch"], values["align"], own, values["force"], values["device"])


# Parameters that receive several shared options as one value, and how it is made of them.
GROUPS: dict[str, Callable[[dict[str, Any]], Any]] = {"settings": metric_settings, "photos": photo_arguments}


def shared_options(*names: str, **overrides: Any) -> Callable[[F], F]:
    """A command (with cli.common.command's error handling and output rules) that takes its own options and
    the shared options `names`; `overrides` maps a name to the command's own default, or to (default, help)
    where the help says something else for it."""

    def decorate(fn: F) -> F:
        own = inspect.signature(fn, eval_str=True).parameters
        options = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for n, p in own.items() if n not in (*names, *GROUPS)]
        options += [_shared_parameter(name, overrides.get(name, _UNSET)) for name in names]

        @functools.wraps(fn)
        def run(values: dict[str, Any]) -> None:
            shared = {k: v for k, v in values.items() if k in names}
            fn(**{k: v for k, v in values.items() if k in own},
               **{group: make(shared) for group, make in GROUPS.items() if group in own})

        return build_command(fn.__name__, options, run)  # type: ignore[return-value]

    return decorate


def shared_command(
    app: typer.Typer, name: str, *names: str, epilog: str | None = None, help: str | None = None, **overrides: Any
) -> Callable[[F], F]:
    """Register on `app` a command that takes the shared options `names` (see `shared_options`)."""

    def decorate(fn: F) -> F:
        return app.command(name, epilog=epilog, help=help)(shared_options(*names, **overrides)(fn))

    return decorate
