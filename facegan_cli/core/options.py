"""Command-line options described as data, so library modules can declare them without Typer.

A model family declares the options of its `facegan train FAMILY` and `facegan models summary FAMILY`
commands as `Opt`s next to the code that reads them; the CLI turns each into a Typer option (cli/shared_options.py)
and hands the parsed values back as a dict keyed by `Opt.name`. Nothing here parses a command line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Opt:
    """One option: its key, its flags, its type and default, its help, and the checks on its value.

    `flags` are Typer's spellings: ("--g-width",), ("-q", "--quiet"), or ("--mirror/--no-mirror",) for a
    switch with an explicit off form. `type` is int, float, str, bool or pathlib.Path; an option whose
    default is None is optional (its value is None when not given).
    """

    name: str
    flags: tuple[str, ...]
    type: type = str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None  # allowed values of a str option
    min: int | float | None = None  # smallest value of an int or float option
    positive: bool = False  # a float that must be finite and > 0 (learning rates, lengths)
    non_negative: bool = False  # a float that must be finite and >= 0 (loss weights)
    hidden: bool = False
    check: Callable[[Any], None] | None = None  # raises ValueError(why) for a value the option refuses

    def with_default(self, default: Any, help: str | None = None) -> Opt:
        """The same option with a family's own default (and help, when it says more)."""
        return replace(self, default=default, help=self.help if help is None else help)

    @property
    def flag(self) -> str:
        """The long spelling users type, e.g. --g-width (for messages)."""
        longest = max(self.flags, key=len)
        return longest.split("/")[0]
