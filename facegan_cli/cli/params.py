"""Options described as data (core.options.Opt) turned into Typer commands.

Families declare their options next to their code; the shared loop options are declared once in
train/spec.py. This module is the only place that makes Typer parameters of them, and builds a command
whose signature is the list of options, so each family's command shows its own defaults in --help.
An Opt whose default is `...` is required; one whose type is an Enum of strings shows its members in
--help. What an Opt does not describe (arguments, repeatable options, ranges with a maximum) is given
as a Typer parameter (`native`) in the same list.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from facegan_cli.cli.checks import checked, refuse
from facegan_cli.cli.click_api import ParameterSource, get_current_context
from facegan_cli.cli.common import FaceganTyper, command
from facegan_cli.core.device import DEVICE_HELP, check_device_name
from facegan_cli.core.options import Opt

_positive = refuse(lambda v: math.isfinite(v) and v > 0, "{value} is not a positive finite number.")
_non_negative = refuse(lambda v: math.isfinite(v) and v >= 0, "{value} is not a finite number >= 0.")


def _choice(allowed: tuple[str, ...]) -> Callable[[str | None], str | None]:
    return refuse(lambda v: v in allowed, "{value!r} is not one of: " + ", ".join(allowed) + ".")


def choices(name: str, values: Iterable[str]) -> Any:
    """A choice type (an Enum of str) whose members are `values`, spelled as on the command line; an Opt or a
    Typer option of this type lists them in --help."""
    return Enum(name, {value.replace("-", "_"): value for value in values}, type=str)


def group(help: str) -> typer.Typer:
    """A command group: its help, and that help when it is run without a command."""
    return FaceganTyper(help=help, no_args_is_help=True)


def native(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    """A Typer parameter declared in Typer's own terms (annotation: Annotated[type, typer.Option/Argument])."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def parameter(opt: Opt | inspect.Parameter) -> inspect.Parameter:
    """The Typer parameter of one option (keyword-only, annotated with its typer.Option)."""
    if isinstance(opt, inspect.Parameter):
        return opt
    kind = opt.type
    optional = opt.default is None
    annotation_type: Any = (kind | None) if optional else kind
    extra: dict[str, Any] = {}
    if opt.min is not None and kind in (int, float):
        extra["min"] = opt.min
    if opt.positive:
        extra["callback"] = _positive
    elif opt.non_negative:
        extra["callback"] = _non_negative
    elif opt.choices:
        extra["callback"] = _choice(opt.choices)
    elif opt.check is not None:
        extra["callback"] = checked(opt.check)
    help_text = opt.help
    if opt.choices and not all(choice in help_text for choice in opt.choices):
        help_text = f"{help_text} One of: {', '.join(opt.choices)}."
    option = typer.Option(*opt.flags, help=help_text, hidden=opt.hidden, **extra)
    default = inspect.Parameter.empty if opt.default is ... else opt.default
    return native(opt.name, Annotated[annotation_type, option], default)


# Said in the help of every command that writes one output per input (core.naming's rule).
NAMES_NOTE = (" Inputs whose names clash (the same name in two folders, names that differ only in case or extension, "
              "a name the command writes itself) get NAME-2.png, NAME-3.png, ...; the result document lists which "
              "input became which file.")

# Options every command of a kind takes, as data like the rest (their parameters come from `parameter`).
OUT = Opt("out", ("--out",), Path, None, "Run directory to create.")
RESUME = Opt("resume", ("--resume",), Path, None, "Continue this run directory exactly where it stopped.")
FORCE = Opt("force", ("--force",), bool, False,
            "Replace an existing output, only if facegan wrote it (its marker and nothing foreign inside).")
DEVICE = Opt("device", ("--device",), str, "auto", DEVICE_HELP, check=check_device_name)
JSON = Opt("json", ("--json",), bool, False, "Print exactly one JSON document on stdout.")
QUIET = Opt("quiet", ("--quiet", "-q"), bool, False, "No progress bars or log lines on stderr.")
DEBUG = Opt("debug", ("--debug",), bool, False, "Show the Python traceback of an error.")
OUTPUT_OPTIONS = (JSON, QUIET, DEBUG)
OUTPUT_NAMES = tuple(opt.name for opt in OUTPUT_OPTIONS)  # what the command, not the library, reads


def build_command(
    name: str, options: Sequence[Opt | inspect.Parameter], run: Callable[[dict[str, Any]], None]
) -> Callable[..., None]:
    """A function Typer can register: its signature is `options`; calling it calls run(values).
    Its help, unless the registration gives one, is run's docstring."""
    seen: set[str] = set()
    unique = [opt for opt in options if not (opt.name in seen or seen.add(opt.name))]  # type: ignore[func-returns-value]
    params = [parameter(opt) for opt in unique]

    def invoke(**values: Any) -> None:
        run(values)

    invoke.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    invoke.__annotations__ = {p.name: p.annotation for p in params}
    invoke.__name__, invoke.__doc__ = name.replace("-", "_"), run.__doc__
    return command(invoke)


def declared_command(
    app: typer.Typer, name: str, options: Sequence[Opt | inspect.Parameter], epilog: str | None = None,
    help: str | None = None,
) -> Callable[[Callable[[dict[str, Any]], None]], Callable[[dict[str, Any]], None]]:
    """Register the decorated run(values) on `app` as command `name` taking `options` (see build_command)."""

    def decorate(run: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        app.command(name, epilog=epilog, help=help)(build_command(name, options, run))
        return run

    return decorate


def given_on_command_line() -> dict[str, Any]:
    """The options of the running command that the user typed (or set through the environment)."""
    ctx = get_current_context()
    return {
        name: value
        for name, value in ctx.params.items()
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    }
