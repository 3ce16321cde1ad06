"""Shared CLI plumbing: the common options, error handling and result output.

Every command is wrapped by `command(...)`, which turns a FaceganError into one paragraph on stderr and
exit status 1 (a traceback only with --debug), applies --quiet, and leaves stdout to results.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from facegan_cli.core import progress
from facegan_cli.core.device import DEVICE_HELP
from facegan_cli.core.errors import FaceganError

F = TypeVar("F", bound=Callable[..., Any])

DeviceOpt = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or log lines on stderr.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the Python traceback of an error.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing output.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]


def _debug_requested(kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("debug")) or os.environ.get("FACEGAN_DEBUG") == "1"


def command(fn: F) -> F:
    """Wrap a Typer command: --quiet, user errors as one paragraph + exit 1, tracebacks only with --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        progress.set_quiet(bool(kwargs.get("quiet")))
        debug = _debug_requested(kwargs)
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except FaceganError as exc:
            if debug:
                traceback.print_exc()
            typer.echo(f"Error: {exc.paragraph()}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
            if debug:
                traceback.print_exc()
            typer.echo(
                f"Error: internal error ({type(exc).__name__}: {exc}). This is a facegan bug; re-run with "
                "--debug to see the traceback and please report it.",
                err=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def emit_json(payload: Any) -> None:
    """The one JSON document of a --json command, on stdout."""
    sys.stdout.write(json.dumps(payload, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def emit_paths(paths: list[Path] | list[str]) -> None:
    """Paths written, one per line on stdout, for shell pipelines."""
    for path in paths:
        typer.echo(str(path))


def read_path_list(values: list[str]) -> list[str]:
    """Expand a lone '-' into the newline-separated paths on stdin."""
    if values == ["-"]:
        return [line.strip() for line in sys.stdin if line.strip()]
    return values


def parse_index_list(text: str, option: str) -> list[int]:
    """'3,17,22' -> [3, 17, 22], with an error that names the option."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise FaceganError(
            f"{option} {text!r} is not a comma-separated list of integers.", f"Write it like {option} 3,17,22."
        ) from exc
    if not values:
        raise FaceganError(f"{option} is empty.", f"Write it like {option} 3,17,22.")
    return values
