"""SIGINT/SIGTERM turn into a polite request: the training loop saves a checkpoint and exits 0."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopFlag:
    """Installs handlers for SIGINT and SIGTERM while active; `requested` becomes True on a signal.

    A second Ctrl-C restores the default handler's behaviour (immediate KeyboardInterrupt), so a user is
    never trapped by a hung save.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()
