"""The single progress helper of the library: a rich bar on stderr, silent when asked or not a TTY.

Library code calls `track(...)` or `Progress(...)`; only this module knows about rich, so the library
stays usable from notebooks and scripts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as _RichProgress

T = TypeVar("T")

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Hide every progress bar and log line of this process (the CLI's --quiet)."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet or os.environ.get("FACEGAN_QUIET") == "1"


def _stderr_console() -> Console:
    return Console(stderr=True)


def bars_enabled() -> bool:
    return not is_quiet() and sys.stderr.isatty()


def log(message: str) -> None:
    """A one-line note for the user on stderr (never stdout, which carries results)."""
    if not is_quiet():
        print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """Warnings are shown even with --quiet: they change how a result should be read."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


class Progress:
    """A progress bar with rate and ETA; a no-op when bars are disabled."""

    def __init__(self, total: int | None, description: str, unit: str = "it", start: int = 0) -> None:
        self._enabled = bars_enabled()
        self._unit = unit
        self._bar: _RichProgress | None = None
        if self._enabled:
            self._bar = _RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=_stderr_console(),
                transient=False,
            )
            self._task = self._bar.add_task(description, total=total, completed=start, rate="", info="")

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, n: int = 1, info: str | None = None) -> None:
        if self._bar is None:
            return
        self._bar.advance(self._task, n)
        task = self._bar.tasks[0]
        speed = task.speed
        fields = {"rate": f"{speed:.1f} {self._unit}/s" if speed else ""}
        if info is not None:
            fields["info"] = info
        self._bar.update(self._task, **fields)


def track(items: Iterable[T], total: int | None, description: str, unit: str = "it") -> Iterator[T]:
    with Progress(total, description, unit) as bar:
        for item in items:
            yield item
            bar.advance()
