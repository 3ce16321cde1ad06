"""What `prepare celeba-hq` and `prepare faces` share: settings checks, the landmark backend, --shard,
and the resumable run that writes the prepared dataset (with each face's quad and landmarks)."""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from facegan_cli.align.geometry import MODES
from facegan_cli.align.landmarks import BACKENDS, open_detector
from facegan_cli.align.warp import WarpSettings
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.data.imageio import guarded
from facegan_cli.data.prepared import PreparedDataset
from facegan_cli.prepare.align_job import (
    EXTRAS,
    AlignJob,
    AlignTask,
    FaceStage,
    align_input,
    describe_job,
    worker_setup,
)
from facegan_cli.prepare.pipeline import Collected, Item, PrepareJob, run_job
from facegan_cli.prepare.recipes import Trainer, check_sizes

# CelebA-HQ's constants are fractions of a 1024 output; FFHQ's shrink rule is relative to --size.
PROGAN_REFERENCE_SIZE = 1024

NOTHING_USABLE_HINT = (
    "Check that --src points at photos of faces. By reason: 'no face' means the landmark backend found "
    "none (try the other --landmarks backend); 'face too small' a lower --min-face; 'landmarks outside "
    "the image' a landmark file that does not belong to these images; 'zero-byte file', 'not an image' "
    "or 'truncated or corrupt image' damaged files."
)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' (0 <= i < n) -> (i, n); None for no sharding."""
    if text is None or str(text).strip() in ("", "0/1"):
        return None
    try:
        index, count = (int(part) for part in str(text).split("/"))
    except ValueError as exc:
        raise UsageProblem(
            f"--shard {text!r} is not of the form i/n.", "Write e.g. --shard 0/4 ... 3/4."
        ) from exc
    if count < 1 or not 0 <= index < count:
        raise UsageProblem(
            f"--shard {text}: i must be 0 <= i < n.",
            f"Use --shard 0/{max(count, 1)} ... {max(count, 1) - 1}/{count}.",
        )
    return index, count


def shard_range(total: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """The contiguous block [start, stop) of the inputs that shard i of n handles (shards in order
    concatenate to the whole dataset)."""
    if shard is None:
        return 0, total
    index, count = shard
    return total * index // count, total * (index + 1) // count


def check_settings(settings: dict[str, Any]) -> None:
    """FaceganError for values no option parser catches (recipes can hold anything)."""
    check_sizes(settings, ("size", "transform_size", "limit"), 256, "1024 is CelebA-HQ's")
    align = settings.get("align", "progan")
    if align not in (*MODES, "none"):
        raise FaceganError(f"Unknown --align {align!r}.", "Use progan, ffhq or none.")
    if align != "none":
        if settings["landmarks"] not in BACKENDS:
            raise FaceganError(
                f"Unknown --landmarks {settings['landmarks']!r}.", f"Use one of {', '.join(BACKENDS)}."
            )
        if settings["transform_size"] < settings["size"]:
            raise UsageProblem(
                f"--transform-size {settings['transform_size']} is smaller than --size {settings['size']}.",
                "The quad is resampled at --transform-size and then reduced to --size: pass a transform size "
                "at least as large (4096 as the originals, or e.g. 1024 for speed).",
            )
    if float(settings.get("min_face", 0)) < 0 or float(settings.get("random_shift", 0.0)) < 0:
        raise UsageProblem("--min-face and --random-shift cannot be negative.", "Pass 0 or more.")


def make_job(settings: dict[str, Any]) -> AlignJob:
    mode = settings["align"]
    warp = WarpSettings(
        size=settings["size"],
        transform_size=settings["transform_size"],
        reference_size=PROGAN_REFERENCE_SIZE if mode == "progan" else settings["size"],
        enable_padding=bool(settings.get("enable_padding", True)),
    )
    return AlignJob(
        mode=mode,
        warp=warp,
        landmarks=settings["landmarks"],
        all_faces=bool(settings.get("all_faces", False)),
        rotate_level=bool(settings.get("rotate_level", True)),
        random_shift=float(settings.get("random_shift", 0.0)),
        seed=int(settings.get("seed", 0)),
        min_face=float(settings.get("min_face", 32)),
    )


def fan_weights(settings: dict[str, Any]) -> dict[str, Path | None]:
    """The user's own face-alignment networks (--fan-weights, --s3fd-weights), by core.weights key."""
    return {
        key: Path(settings[name]) if settings.get(name) else None
        for key, name in (("face-alignment-2dfan4", "fan_weights"), ("face-alignment-s3fd", "s3fd_weights"))
    }


def landmark_stage(
    job: AlignJob, device: str, settings: dict[str, Any] | None = None
) -> tuple[Callable | None, int, dict[str, Any]]:
    """Load the landmark backend before anything is written (a missing model fails at once).

    Returns the parent-side stage (face-alignment), its batch size, and the backend's provenance.
    dlib is loaded here too so that a missing model fails before any work; each worker loads its own
    copy, since workers start clean (see core.parallel._context).
    """
    if job.landmarks == "celeba":
        return None, 1, {"backend": "celeba", "source": "list_landmarks_celeba.txt"}
    if job.landmarks == "dlib":
        from facegan_cli.align import dlib_backend

        return None, 1, dlib_backend.shared().describe()
    detector = open_detector(job.landmarks, device=device, weights=fan_weights(settings or {}))
    return FaceStage(detector), getattr(detector, "batch_size", 8), detector.describe()


def align_worker(job: AlignJob) -> Callable[[AlignTask], tuple[bool, Any]]:
    return functools.partial(guarded, functools.partial(align_input, job))


def inputs_digest(items: list[Item]) -> str:
    """Identifies the inputs (names, labels, partitions, given landmarks) for --resume."""
    digest = hashlib.sha256()
    for item in items:
        # surrogateescape: a file name that is not UTF-8 is hashed as its own bytes instead of failing.
        digest.update(f"{item.name}\t{item.split}\t{item.source}\t".encode("utf-8", "surrogateescape"))
        if item.labels is not None:
            digest.update(np.asarray(item.labels).tobytes())
        faces = getattr(item.task, "faces", None)
        for face in faces or ():
            digest.update(np.asarray(face.points, dtype=np.float64).tobytes())
    return digest.hexdigest()


def face_counts(out: Path) -> dict[str, int]:
    """How many images held several faces (only the largest is kept unless --all-faces, whose rows
    NAME#0, NAME#1, ... of one image count once)."""
    data = PreparedDataset.open(out)
    faces = data.extra("faces")
    if faces is None:
        return {}
    several = {re.sub(r"#\d+$", "", name) for name, n in zip(data.names, faces) if n > 1}
    return {"several_faces": len(several)}


def _job(
    command: str, settings: dict[str, Any], recipe: Trainer, inputs: Collected, src: Path, worker: Callable, **more: Any
) -> PrepareJob:
    return PrepareJob(
        command,
        settings,
        recipe,
        inputs,
        worker,
        source_label=str(src),
        description=f"{command} {settings['size']}",
        # dlib and OpenCV keep thread pools that a forked child would inherit locked (see core.parallel).
        clean=True,
        setup=worker_setup,
        hint=NOTHING_USABLE_HINT,
        **more,
    )


def face_job(
    command: str,
    settings: dict[str, Any],
    recipe: Trainer,
    inputs: Collected,
    src: Path,
    device: str,
    **alignment: Any,
) -> PrepareJob:
    """Each input aligned from its landmarks (given, or detected by the --landmarks backend, which is
    loaded now: a missing model fails before anything is written); quads and landmarks kept per row."""
    job = make_job(settings)
    stage, stage_batch, backend = landmark_stage(job, device, settings)
    described = {**describe_job(job), "landmark_backend": backend, **alignment}
    return _job(
        command,
        settings,
        recipe,
        inputs,
        src,
        align_worker(job),
        stage=stage,
        stage_batch=stage_batch,
        extras=EXTRAS,
        manifest={"alignment": described},
    )


def resize_job(
    command: str,
    settings: dict[str, Any],
    recipe: Trainer,
    inputs: Collected,
    src: Path,
    resize: Callable[[Any], np.ndarray],
    alignment: dict[str, Any],
) -> PrepareJob:
    """Inputs that are already aligned, only resized by `resize` (no landmarks)."""
    worker = functools.partial(guarded, resize)
    return _job(command, settings, recipe, inputs, src, worker, manifest={"alignment": alignment})


def run_sharded(job: PrepareJob, out: Path, shard: tuple[int, int] | None, **options: Any) -> dict[str, Any]:
    """Run this shard of `job`'s inputs into the prepared dataset `out` (see pipeline.run_job); returns the
    summary, with the count of several-face images when faces were aligned."""
    items = job.inputs.items
    total = len(items)
    start, stop = shard_range(total, shard)
    items = job.inputs.items = items[start:stop]
    if not items:
        raise FaceganError(
            f"Shard {shard[0]}/{shard[1]} of {total} inputs is empty." if shard else "No inputs to prepare.",
            "Use fewer shards than inputs." if shard else "Check --src and the options that select inputs.",
        )
    job.plan = {"inputs": inputs_digest(items), "shard": list(shard) if shard else None}
    if shard:
        job.inputs.provenance["shard"] = {"index": shard[0], "count": shard[1], "inputs": [start, stop], "of": total}
    summary = run_job(job, out, **options)
    if job.extras and summary["state"] != "complete":
        summary["faces"] = face_counts(out)
    return summary


def prepare_aligned(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: dict[str, Any],
    recipe: Trainer,
    build: Callable[[Path, dict[str, Any], Trainer, str], PrepareJob],
    *,
    device: str = "auto",
    shard: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Check `settings`, let `build(src, settings, recipe, device)` collect the inputs into a job, and run
    the block `shard` ("i/n") of it; returns the summary document (see pipeline.summarize). `device` runs
    the landmark networks; `options` are pipeline.run_job's (workers, resume, force, strict, name)."""
    settings = dict(settings)
    check_settings(settings)
    shard_spec = parse_shard(shard)
    job = build(Path(src), settings, recipe, device)
    return run_sharded(job, Path(out), shard_spec, **options)
