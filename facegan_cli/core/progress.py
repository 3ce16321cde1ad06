"""The single progress helper of the library: a rich bar on stderr, silent when asked or not a TTY.

Library code calls `track(...)` or `Progress(...)`; only this module knows about rich, so the library
stays usable from notebooks and scripts. A bar opened while another is shown (an evaluation inside the
training bar, the generation inside a metric) joins that display as one more line, rather than starting
a second live display that would fight the first for the terminal.
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
_shown: list[_RichProgress] = []  # the live display now on screen (at most one), which nested bars join


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
        self._joined = bool(_shown)
        if self._enabled and self._joined:
            self._bar = _shown[-1]
        elif self._enabled:
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
        if self._bar is not None:
            self._task = self._bar.add_task(description, total=total, completed=start, rate="", info="")

    def __enter__(self) -> Progress:
        if self._bar is not None and not self._joined:
            self._bar.start()
            _shown.append(self._bar)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is None:
            return
        if self._joined:
            self._bar.remove_task(self._task)  # the nested line goes; the outer bar stays
            return
        self._bar.stop()
        _shown.remove(self._bar)

    def advance(self, n: int = 1, info: str | None = None) -> None:
        if self._bar is None:
            return
        self._bar.advance(self._task, n)
        task = next(t for t in self._bar.tasks if t.id == self._task)
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
