"""Options declared once and shared by every command that takes them."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from facegan_cli.cli.common import DebugOpt, DeviceOpt, ForceOpt, JsonOpt, QuietOpt, command
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


class Protocol(str, Enum):
    pytorch_fid = "pytorch-fid"
    torch_fidelity = "torch-fidelity"
    clean = "clean"


# The choices above are the library's, spelled out for --help; keep them in step.
assert {p.value for p in Protocol} == set(PROTOCOLS)


@dataclasses.dataclass(frozen=True)
class _Option:
    kind: Any
    default: Any
    flag: str
    help: str


SHARED_OPTIONS: dict[str, _Option | tuple[Any, Any]] = {
    "inputs": (Annotated[list[Path] | None, typer.Argument(
        help="Folders or zips of images, prepared datasets (see --split), or .npz statistics (fid only).",
        show_default=False)], None),
    "ckpt": _Option(Path | None, None, "--ckpt",
                    "Also score a generator: run directory, checkpoints/ folder or .safetensors file."),
    "n": _Option(int, 50_000, "--n", "Samples to generate with --ckpt."),
    "seed": _Option(int, 0, "--seed", "Seed of the --ckpt latents (and of the metric's own draws)."),
    "dims": _Option(int | None, 2048, "--dims", "Feature layer: 2048, 768, 192 or 64."),
    "protocol": _Option(Protocol, Protocol.pytorch_fid, "--protocol",
                        "Which reference to reproduce: pytorch-fid (bilinear, the default), torch-fidelity (TF1 "
                        "bilinear) or clean (clean-fid's PIL bicubic). Recorded in every result."),
    "inception_weights": _Option(Path | None, None, "--inception-weights",
                                 "FID Inception weights to use instead of the cached pt_inception-2015-12-05-6726825d"
                                 ".pth. A file with the official name (or torch-fidelity's) is SHA-256 checked; under "
                                 "any other name it is used as given, and its SHA-256 is reported."),
    "split": _Option(str | None, None, "--split", "Split of prepared datasets: train, valid, test or all."),
    "batch_size": _Option(int | None, None, "--batch-size",
                          "Images per forward pass (default: 50 on the CPU, 250 on a GPU)."),
    "workers": _Option(int | None, None, "--workers",
                       "Processes decoding images (default: every CPU with a GPU; on the CPU 1, i.e. decoding in "
                       "the main process, which leaves the cores to the network)."),
    "strict": _Option(bool, False, "--strict", "Fail on the first unusable image instead of skipping it."),
    "no_cache": _Option(bool, False, "--no-cache",
                        "Neither read nor write the feature cache under $FACEGAN_HOME/features."),
    "fast": _Option(bool, False, "--fast",
                    "Allow TF32 on CUDA: faster, but no longer float32-faithful to the references."),
    "device": (DeviceOpt, "auto"),
    "json_out": (JsonOpt, False),
    "quiet": (QuietOpt, False),
    "debug": (DebugOpt, False),
    "force": (ForceOpt, False),
}
# The usual selections, in the order --help lists them.
GENERATED = ("inputs", "ckpt", "n", "seed")
INCEPTION = ("protocol", "inception_weights", "no_cache", "fast")
OUTPUT = ("device", "json_out", "quiet", "debug")
READING = ("split", "batch_size", "workers", "strict", *OUTPUT)
_UNSET = object()


def _shared_parameter(name: str, override: Any = _UNSET) -> inspect.Parameter:
    """The Typer parameter of one shared option; `override`: the command's default, or (default, help)."""
    spec = SHARED_OPTIONS[name]
    default, help_text = override if isinstance(override, tuple) else (override, None)
    if isinstance(spec, _Option):
        annotation = Annotated[spec.kind, typer.Option(spec.flag, help=help_text or spec.help)]
        fallback = spec.default
    else:
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
