"""The ordered worker-pool map that prepare jobs, dataset readers and exports share.

`ordered_map(fn, tasks, workers)` runs `fn` over `tasks` on worker processes and yields the results in
input order, so what is built from them does not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """The CPUs this process may use (affinity-aware where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _context(clean: bool = False) -> multiprocessing.context.BaseContext:
    """How worker processes start.

    fork starts workers in milliseconds and suits workers that only run numpy/PIL code. Workers that run
    libraries with their own thread pools (dlib, OpenCV) must not be forked from a parent that has used
    those pools: the child inherits locks held by threads that do not exist in it and hangs. `clean`
    asks for forkserver workers, forked from a fresh server process that never ran such code.
    """
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context("spawn")
    if not clean:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    # The server would import __main__ (the whole CLI, torch included: seconds) before the first worker;
    # workers import only the modules of the function they run, when they unpickle it.
    context.set_forkserver_preload([])
    return context


def _ignore_sigint(setup: Callable[[], None] | None = None) -> None:
    # Ctrl-C reaches the whole process group; only the parent should react (checkpoint, then exit).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if setup is not None:
        setup()


def ordered_map(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    workers: int,
    total: int | None = None,
    clean: bool = False,
    setup: Callable[[], None] | None = None,
) -> Iterator[R]:
    """fn over tasks in order, on `workers` processes (in this process when workers <= 1).

    `tasks` may be a lazy iterable when `total` gives its length. `clean` and `setup` (run once in each
    worker) are for workers that use threaded native libraries (see _context).
    """
    count = len(tasks) if total is None else total  # type: ignore[arg-type]
    if workers <= 1 or count <= 1:
        for task in tasks:
            yield fn(task)
        return
    workers = min(workers, count)
    chunksize = max(1, min(64, count // (workers * 8)))
    with _context(clean).Pool(workers, initializer=_ignore_sigint, initargs=(setup,)) as pool:
        yield from pool.imap(fn, tasks, chunksize=chunksize)
