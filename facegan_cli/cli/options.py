"""Options declared once and shared by every command that takes them."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from facegan_cli.cli.common import command
from facegan_cli.cli.params import DEBUG, DEVICE, FORCE, JSON, QUIET, parameter
from facegan_cli.core.options import Opt
from facegan_cli.metrics.protocols import PROTOCOLS
from facegan_cli.metrics.run import Settings

F = TypeVar("F", bound=Callable[..., Any])

# ---------------------------------------------------------------------------------------------------------
# Metric options: what `facegan metrics ...` and `facegan eval attributes` share (inputs, the Inception
# network and its protocol, reading), and the device, output switches and --force that the metrics, eval and
# latent commands share. A command registered with `@shared_command(app, NAME, *names)` (or decorated with
# `@shared_options(*names)`) takes those options, with its own default where it differs (its --help shows
# it). It receives the values of the options its own signature names (e.g. inputs, ckpt, dims, json_out,
# device) as themselves; a `settings` parameter receives the metric options as one metrics.run.Settings;
# the rest (--quiet, --debug) only `cli.common.command` reads.
# ---------------------------------------------------------------------------------------------------------


SHARED_OPTIONS: dict[str, Opt | tuple[Any, Any]] = {
    "inputs": (Annotated[list[Path] | None, typer.Argument(
        help="Folders or zips of images, prepared datasets (see --split), or .npz statistics (fid only).",
        show_default=False)], None),
    "ckpt": Opt("ckpt", ("--ckpt",), Path, None,
                "Also score a generator (or a translator's translations, see --translate): run directory, "
                "checkpoints/ folder or .safetensors file."),
    "n": Opt("n", ("--n",), int, 50_000, "Samples to generate with --ckpt (a translator: at most this many of "
             "--translate's images)."),
    "translate": Opt("translate", ("--translate",), Path, None,
                     "With a translator --ckpt (cycle-gan): the images it translates for the metric (a folder, zip or "
                     "prepared dataset; --split applies)."),
    "direction": Opt("direction", ("--direction",), str, "a2b", "With --translate: a2b or b2a.",
                     choices=("a2b", "b2a")),
    "seed": Opt("seed", ("--seed",), int, 0, "Seed of the --ckpt latents (and of the metric's own draws)."),
    "dims": Opt("dims", ("--dims",), int, 2048, "Feature layer: 2048, 768, 192 or 64."),
    "protocol": Opt("protocol", ("--protocol",), str, "pytorch-fid",
                    "Which reference to reproduce: pytorch-fid (bilinear, the default), torch-fidelity (TF1 "
                    "bilinear) or clean (clean-fid's PIL bicubic). Recorded in every result.", choices=tuple(PROTOCOLS)),
    "inception_weights": Opt("inception_weights", ("--inception-weights",), Path, None,
                             "FID Inception weights to use instead of the cached pt_inception-2015-12-05-6726825d.pth. "
                             "A file with the official name (or torch-fidelity's) is SHA-256 checked; under any other "
                             "name it is used as given, and its SHA-256 is reported."),
    "split": Opt("split", ("--split",), str, None, "Split of prepared datasets: train, valid, test or all."),
    "batch_size": Opt("batch_size", ("--batch-size",), int, None,
                      "Images per forward pass (default: 50 on the CPU, 250 on a GPU)."),
    "workers": Opt("workers", ("--workers",), int, None,
                   "Processes decoding images (default: every CPU with a GPU; on the CPU 1, i.e. decoding in the main "
                   "process, which leaves the cores to the network)."),
    "strict": Opt("strict", ("--strict",), bool, False, "Fail on the first unusable image instead of skipping it."),
    "no_cache": Opt("no_cache", ("--no-cache",), bool, False,
                    "Neither read nor write the feature cache under $FACEGAN_HOME/features."),
    "fast": Opt("fast", ("--fast",), bool, False,
                "Allow TF32 on CUDA: faster, but no longer float32-faithful to the references."),
    "device": DEVICE,
    "json_out": dataclasses.replace(JSON, name="json_out"),
    "quiet": QUIET,
    "debug": DEBUG,
    "force": FORCE,
}
# The usual selections, in the order --help lists them.
GENERATED = ("inputs", "ckpt", "n", "seed", "translate", "direction")
INCEPTION = ("protocol", "inception_weights", "no_cache", "fast")
OUTPUT = ("device", "json_out", "quiet", "debug")
READING = ("split", "batch_size", "workers", "strict", *OUTPUT)
_UNSET = object()


def _shared_parameter(name: str, override: Any = _UNSET) -> inspect.Parameter:
    """The Typer parameter of one shared option; `override`: the command's default, or (default, help)."""
    spec = SHARED_OPTIONS[name]
    default, help_text = override if isinstance(override, tuple) else (override, None)
    if isinstance(spec, Opt):
        return parameter(spec if override is _UNSET else spec.with_default(default, help_text))
    annotation, fallback = spec
    default = fallback if override is _UNSET else default
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def metric_settings(values: dict[str, Any]) -> Settings:
    """metrics.run.Settings from the parsed metric options (those it has a field for)."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    given = {k: getattr(v, "value", v) for k, v in values.items() if k in fields}
    if "no_cache" in values:
        given["cache"] = not values["no_cache"]
    return Settings(**given)


def shared_options(*names: str, **overrides: Any) -> Callable[[F], F]:
    """Give a command the shared options `names`; `overrides` maps a name to the command's own default,
    or to (default, help) where the help says something else for it."""

    def decorate(fn: F) -> F:
        own = inspect.signature(fn, eval_str=True).parameters
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for n, p in own.items() if n not in (*names, "settings")]
        params += [_shared_parameter(name, overrides.get(name, _UNSET)) for name in names]

        @functools.wraps(fn)
        def wrapper(**values: Any) -> Any:
            passed = {k: v for k, v in values.items() if k in own}
            if "settings" in own:
                passed["settings"] = metric_settings({k: v for k, v in values.items() if k in names})
            return fn(**passed)

        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]

    return decorate


def shared_command(
    app: typer.Typer, name: str, *names: str, epilog: str | None = None, help: str | None = None, **overrides: Any
) -> Callable[[F], F]:
    """Register a command on `app` (Typer's app.command, with cli.common.command's error handling and
    output rules) that takes the shared options `names` (see `shared_options`)."""

    def decorate(fn: F) -> F:
        return app.command(name, epilog=epilog, help=help)(command(shared_options(*names, **overrides)(fn)))

    return decorate
