"""Typer callbacks that check a value: a library check's ValueError becomes a usage error (exit 2).

Apart from cli.params (which builds commands from option declarations and imports the device and option
modules) so that the root app can check --max-pixels at start-up for the price of Typer alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer


def checked(check: Callable[[Any], None]) -> Callable[[Any], Any]:
    """A Typer callback from a library check: its ValueError becomes a usage error (exit 2) naming the value."""

    def callback(value: Any) -> Any:
        if value is not None:
            try:
                check(value)
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
        return value

    return callback


def refuse(test: Callable[[Any], bool], why: str) -> Callable[[Any], Any]:
    """A Typer callback refusing (exit 2) a value for which `test` is false; `why` is formatted with the value."""

    def check(value: Any) -> None:
        if not test(value):
            raise ValueError(why.format(value=value))

    return checked(check)
