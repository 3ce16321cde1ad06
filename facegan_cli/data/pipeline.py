"""The parallel, ordered, resumable loop shared by every `facegan prepare` command.

Workers decode and crop; the parent process only appends results to the PreparedWriter, in input
order, so the output does not depend on the number of workers. A worker returns one image, or a list
of `Row`s when an input yields several (every face of a photo). An optional `stage` runs in the parent
on consecutive batches of tasks before they reach the workers (e.g. a landmark network on the GPU,
which worker processes must not each load); it runs lazily, so a killed run has lost at most a batch.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import Progress, log
from facegan_cli.data.imageio import RejectedImage
from facegan_cli.data.prepared import MANIFEST, PreparedWriter

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


def guarded(fn: Callable[[Any], np.ndarray], task: Any) -> tuple[bool, Any]:
    """Run one decode task in a worker: (True, pixels) or (False, reject reason)."""
    try:
        return True, fn(task)
    except RejectedImage as exc:
        return False, exc.reason


@dataclass
class Row:
    """One output row of an input that yields several, or (pixels None) one part that was unusable."""

    pixels: np.ndarray | None
    suffix: str = ""  # appended to the input's name and source, e.g. "#1" for its second face
    extras: dict[str, np.ndarray] | None = None
    reason: str = ""  # why the part was unusable, for rejects.tsv


def staged(tasks: Sequence[T], stage: Callable[[list[T]], list[T]], batch: int) -> Iterator[T]:
    """The tasks after `stage`, applied to consecutive batches only when the consumer gets there."""
    for start in range(0, len(tasks), batch):
        yield from stage(list(tasks[start : start + batch]))


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
    stage: Callable[[list[Any]], list[Any]] | None = None,
    stage_batch: int = 32,
    clean: bool = False,
    setup: Callable[[], None] | None = None,
    hint: str | None = None,
) -> None:
    """Feed the inputs not yet handled through `worker` into `writer`; stop per the bad-input policy.

    `hint` is the fix the error suggests when nothing was usable (the command's own options).
    """
    start = writer.inputs_done
    todo = items[start:]
    tasks: Iterable[Any] = [item.task for item in todo]
    if stage is not None:
        tasks = staged([item.task for item in todo], stage, stage_batch)
    with Progress(len(items), description, unit="img", start=start) as bar:
        results = ordered_map(worker, tasks, workers, total=len(todo), clean=clean, setup=setup)
        # closing() stops the worker pool at once when a strict reject or Ctrl-C ends the loop early.
        with contextlib.closing(results):
            for item, (ok, payload) in zip(todo, results, strict=True):
                if not ok:
                    rows = [Row(None, reason=payload)]
                else:
                    rows = payload if isinstance(payload, list) else [Row(payload)]
                for k, row in enumerate(rows):
                    final = k == len(rows) - 1
                    if row.pixels is not None:
                        writer.add(
                            row.pixels, item.name + row.suffix, item.labels, item.split, row.extras, final
                        )
                    elif strict:
                        raise FaceganError(
                            f"{item.source}{row.suffix} cannot be used: {row.reason} (--strict stops at the "
                            "first unusable input).",
                            "Fix or remove that file, or run without --strict to skip such inputs and list "
                            "them in rejects.tsv; add --resume to keep the work already done.",
                        )
                    else:
                        writer.reject(item.source + row.suffix, row.reason, final)
                bar.advance()
    if writer.count == 0:
        rejects = writer.reject_lines()
        rejects_path = writer.write_rejects()
        first = f" (first: {rejects[0][0]}: {rejects[0][1]})" if rejects else ""
        raise FaceganError(
            f"No usable image in {source_label}: all {len(items)} inputs were rejected{first}; the reasons "
            f"are in {rejects_path}.",
            hint
            or "Check that --src points at the right images, or relax the settings that rejected them "
            "(e.g. a smaller --size or --allow-upscale for 'too small').",
        )


def open_writer(writer: PreparedWriter, total: int) -> tuple[str, dict[str, Any] | None]:
    """Open `writer` for a prepare of `total` inputs: (state, None) to go on, or (state, summary) when the
    output is already complete and there is nothing to do."""
    state = writer.open()
    if state == "complete":
        log(f"{writer.out} is already complete; nothing to resume")
        return state, summarize(json.loads((writer.out / MANIFEST).read_text()), writer.out, state)
    if state == "resumed":
        log(f"resuming {writer.out} after {writer.inputs_done} of {total} inputs")
    return state, None


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
