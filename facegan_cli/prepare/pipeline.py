"""The parallel, ordered, resumable run shared by every `facegan prepare` command that writes a dataset.

A command collects its inputs (`Collected`), describes the work (`PrepareJob`: the worker, the plan that
--resume checks, what the manifest records) and hands it to `run_job`. Workers decode and crop; the parent process only appends results to the PreparedWriter, in input
order, so the output does not depend on the number of workers. A worker returns one image, or a list
of `Row`s when an input yields several (every face of a photo). An optional `stage` runs in the parent
on consecutive batches of tasks before they reach the workers (e.g. a landmark network on the GPU,
which worker processes must not each load); it runs lazily, so a killed run has lost at most a batch.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.parallel import ordered_map
from facegan_cli.core.progress import Progress, log
from facegan_cli.data.prepared import MANIFEST, PreparedWriter
from facegan_cli.prepare.recipes import Trainer

T = TypeVar("T")


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


@dataclass
class Collected:
    """What a prepare command found: its inputs in output order, their label names, and where they came
    from (the manifest's `sources` entry)."""

    items: list[Item]
    label_names: list[str]
    provenance: dict[str, Any]


@dataclass
class PrepareJob:
    """One prepare, ready for `run_job`."""

    command: str
    settings: dict[str, Any]
    recipe: Trainer
    inputs: Collected
    worker: Callable[[Any], tuple[bool, Any]]  # task -> (True, pixels or rows) or (False, reject reason)
    source_label: str  # how messages name the input
    description: str  # the progress bar's
    plan: dict[str, Any] = field(default_factory=dict)  # what else decides the output (for --resume)
    manifest: dict[str, Any] = field(default_factory=dict)  # more manifest fields (e.g. "alignment")
    extras: dict[str, tuple[int, ...]] | None = None  # per-row arrays beside the images (quads, landmarks)
    stage: Callable[[list[Any]], list[Any]] | None = None  # see run_items
    stage_batch: int = 32
    clean: bool = False
    setup: Callable[[], None] | None = None
    hint: str | None = None


def run_job(
    job: PrepareJob,
    out: Path,
    *,
    workers: int,
    resume: bool = False,
    force: bool = False,
    strict: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    """Write the inputs of `job` into the prepared dataset `out` (resumably); returns the summary."""
    items, settings = job.inputs.items, job.settings
    writer = PreparedWriter(
        out,
        resolution=settings["size"],
        plan={"command": job.command, "settings": settings, **job.plan},
        total_inputs=len(items),
        label_names=job.inputs.label_names,
        levels=bool(settings.get("levels")),
        resume=resume,
        force=force,
        extras=job.extras,
    )
    state, done = open_writer(writer, len(items))
    if done is not None:
        return done
    with writer:
        run_items(
            writer,
            items,
            job.worker,
            workers=workers,
            strict=strict,
            source_label=job.source_label,
            description=job.description,
            stage=job.stage,
            stage_batch=job.stage_batch,
            clean=job.clean,
            setup=job.setup,
            hint=job.hint,
        )
        provenance = {**job.inputs.provenance, "inputs": len(items), "accepted": writer.count}
        provenance["rejected"] = writer.rejected
        fields = {"name": name or out.name, "recipe": job.recipe.describe(), "settings": settings}
        manifest = writer.finish({**fields, "sources": [provenance], **job.manifest})
    return summarize(manifest, out, state)


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
