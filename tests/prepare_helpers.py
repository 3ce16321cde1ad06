"""Shared helpers of the prepare tests: a run broken off in the middle, and counting the work a resume does."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from facegan_cli.data.prepared import PreparedWriter


@contextlib.contextmanager
def writer_fails(at: int, error: Callable[[PreparedWriter], BaseException]) -> Iterator[None]:
    """Inside the block, the `at`-th PreparedWriter.add (and any later one) raises `error(writer)` instead of
    writing: Ctrl-C or a full disk in the middle of a prepare run. PreparedWriter is whole again after it."""
    real_add = PreparedWriter.add
    calls = 0

    def add(self: PreparedWriter, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls >= at:
            raise error(self)
        return real_add(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PreparedWriter, "add", add)
        yield


def interrupt(writer: PreparedWriter) -> BaseException:
    """Ctrl-C, for `writer_fails`."""
    return KeyboardInterrupt()


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[None]:
    """Counts the calls of `owner.name` from now on (the function still runs): one item per call."""
    real, calls = getattr(owner, name), []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(None)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls
