"""The parallel, ordered, resumable loop shared by every `facegan prepare` command.

Workers decode and crop; the parent process only appends results to the PreparedWriter, in input
order, so the output does not depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import Progress
from facegan_cli.data.imageio import RejectedImage
from facegan_cli.data.prepared import PreparedWriter

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """The CPUs this process may use (affinity-aware where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _context() -> multiprocessing.context.BaseContext:
    # fork starts workers in milliseconds and they only run numpy/PIL code; elsewhere spawn is the safe one.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; only the parent should react (checkpoint, then exit).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def ordered_map(fn: Callable[[T], R], tasks: Sequence[T], workers: int) -> Iterator[R]:
    """fn over tasks in order, on `workers` processes (in this process when workers <= 1)."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield fn(task)
        return
    workers = min(workers, len(tasks))
    chunksize = max(1, min(64, len(tasks) // (workers * 8)))
    with _context().Pool(workers, initializer=_ignore_sigint) as pool:
        yield from pool.imap(fn, tasks, chunksize=chunksize)


def guarded(fn: Callable[[Any], np.ndarray], task: Any) -> tuple[bool, Any]:
    """Run one decode task in a worker: (True, pixels) or (False, reject reason)."""
    try:
        return True, fn(task)
    except RejectedImage as exc:
        return False, exc.reason


@dataclass
class Item:
    """One input of a prepare: where it comes from and what its row will carry."""

    source: str  # shown in rejects.tsv and messages
    name: str  # written to names.txt
    task: Any  # the picklable argument of the worker function
    labels: np.ndarray | None = None
    split: int = 0


def run_items(
    writer: PreparedWriter,
    items: Sequence[Item],
    worker: Callable[[Any], tuple[bool, Any]],
    workers: int,
    strict: bool,
    source_label: str,
    description: str = "prepare",
) -> None:
    """Feed the inputs not yet handled through `worker` into `writer`; stop per the bad-input policy."""
    start = writer.inputs_done
    todo = items[start:]
    with Progress(len(items), description, unit="img", start=start) as bar:
        results = ordered_map(worker, [item.task for item in todo], workers)
        # closing() stops the worker pool at once when a strict reject or Ctrl-C ends the loop early.
        with contextlib.closing(results):
            for item, (ok, payload) in zip(todo, results, strict=True):
                if ok:
                    writer.add(payload, item.name, item.labels, item.split)
                elif strict:
                    raise FaceganError(
                        f"{item.source} cannot be used: {payload} (--strict stops at the first unusable "
                        "input).",
                        "Fix or remove that file, or run without --strict to skip such inputs and list them "
                        "in rejects.tsv; add --resume to keep the work already done.",
                    )
                else:
                    writer.reject(item.source, payload)
                bar.advance()
    if writer.count == 0:
        rejects = writer.reject_lines()
        rejects_path = writer.write_rejects()
        first = f" (first: {rejects[0][0]}: {rejects[0][1]})" if rejects else ""
        raise FaceganError(
            f"No usable image in {source_label}: all {len(items)} inputs were rejected{first}; the reasons "
            f"are in {rejects_path}.",
            "Check that --src points at the right images, or relax the settings that rejected them "
            "(e.g. a smaller --size or --allow-upscale for 'too small').",
        )


def summarize(manifest: dict[str, Any], out: Path, state: str) -> dict[str, Any]:
    """The result document of a prepare command (stdout, or --json)."""
    return {
        "out": str(out),
        "state": state,
        "count": manifest["count"],
        "resolutions": manifest["resolutions"],
        "splits": manifest["splits"],
        "label_names": manifest["label_names"],
        "rejected": manifest["rejected"]["total"],
        "rejects_file": str(out / "rejects.tsv"),
        "fingerprint": manifest["fingerprint"],
        "manifest": str(out / "manifest.json"),
    }
