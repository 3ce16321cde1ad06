"""`facegan import`: other projects' checkpoint files -> an ordinary facegan run.

The inputs (files, or folders whose files are taken) are offered to every registered source
(interop.sources) in priority order; the first that recognises its file names reads them (weights-only,
hashed) and maps them onto a family from their shapes. Everything that can fail is done before anything is
written; the run is then written into a staged folder that appears under --out only once complete: a
config.json recording `imported_from` (project, files and their SHA-256, what was inferred), run.json
("finished" at step 0, imported), and one checkpoint of safetensors weights with no training state, which
`facegan train FAMILY --resume RUN --data ...` fine-tunes from with fresh optimisers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from facegan_cli import __version__
from facegan_cli.core.atomic import write_json
from facegan_cli.core.checkpoint import CHECKPOINT_DIR, save_checkpoint
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import special_kind
from facegan_cli.core.outputs import check_outside_inputs, staged_folder
from facegan_cli.core.rundir import RUN_KIND, RunDir
from facegan_cli.interop.sources import Imported, ImportRequest, Source, read_files, sources
from facegan_cli.models import registry

DIRECTIONS = ("a2b", "b2a")


def expand_inputs(inputs: Sequence[Path]) -> list[Path]:
    """The files the inputs name: files as given, a folder's regular files (not its sub-folders)."""
    if not inputs:
        raise FaceganError("No input given.", "Name the checkpoint files to import, or the folder that holds them.")
    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found += sorted(p for p in item.iterdir() if p.is_file() and not p.name.startswith("."))
        elif item.exists() and special_kind(item) is None:
            found.append(item)
        elif item.exists():
            raise FaceganError(f"{item} is a {special_kind(item)}, not a checkpoint file.", "Name a regular file.")
        else:
            raise FaceganError(f"{item} does not exist.", "Name the checkpoint files to import, or their folder.")
    return list(dict.fromkeys(found))


def describe_sources() -> str:
    return "; ".join(f"{s.project}: {s.describe}" for s in sources())


def source_names() -> list[str]:
    """What --family accepts: every family a source maps onto, then the sources' own names."""
    every = sources()
    return [*dict.fromkeys(f for s in every for f in s.families), *(s.name for s in every)]


def examples() -> list[str]:
    return [s.example for s in sources() if s.example]


def _candidates(request: ImportRequest) -> list[Source]:
    every = sources()
    if request.family is None:
        return every
    chosen = [s for s in every if request.family == s.name or request.family in s.families]
    if not chosen:
        known = sorted({s.name for s in every} | {f for s in every for f in s.families})
        raise FaceganError(f"--family {request.family!r} names no family or project facegan imports from.",
                           f"Use one of: {', '.join(known)} (or leave --family out to detect it).")
    return chosen


def choose_source(paths: Sequence[Path], request: ImportRequest) -> tuple[Source, list[Path]]:
    """The first source (in priority order, restricted by --family) that recognises some of the files."""
    for source in _candidates(request):
        chosen = source.select(paths, request)
        if chosen:
            return source, chosen
    others = [s for s in sources() if s.select(paths, request)] if request.family else []
    if others:
        raise FaceganError(
            f"The files given are {others[0].project} files, which do not map onto --family {request.family}.",
            f"Leave --family out (they import as {', '.join(others[0].families)}), or import files of that family.",
        )
    names = ", ".join(p.name for p in paths[:6]) + (f" and {len(paths) - 6} more" if len(paths) > 6 else "")
    raise FaceganError(
        f"None of the files given ({names}) is named as a project facegan imports from saves its checkpoints.",
        f"facegan reads: {describe_sources()}. Keep the file names the project wrote.",
    )


def _check_request(request: ImportRequest) -> None:
    if request.direction is not None and request.direction not in DIRECTIONS:
        raise FaceganError(f"--direction {request.direction!r} is not a direction.", "Use a2b or b2a.")
    if request.attrs is not None and (not request.attrs or any(not a for a in request.attrs)):
        raise FaceganError(f"--attrs {','.join(request.attrs)!r} is not a list of attribute names.",
                           "Write e.g. --attrs Black_Hair,Blond_Hair,Brown_Hair,Male,Young.")


def import_models(inputs: Sequence[Path], out: Path, request: ImportRequest = ImportRequest(),
                  force: bool = False) -> dict[str, Any]:
    """Import the inputs into the run `out`; returns the result document."""
    _check_request(request)
    RunDir.check_new(out, force)
    paths = expand_inputs(inputs)
    check_outside_inputs(out, [("FILE", p) for p in paths])
    source, chosen = choose_source(paths, request)
    imported = source.convert(read_files(chosen, source), request)
    record = imported_record(imported, request)
    checkpoint = write_run(imported, record, out, force)
    family = registry.get_family(imported.family)
    return {"run": str(out), "checkpoint": str(out / CHECKPOINT_DIR / checkpoint.name), "family": imported.family,
            "kind": family.kind, "project": imported.project, "files": record["files"],
            "inferred": imported.inferred, "notes": imported.notes,
            "use": registry.KINDS[family.kind][1].format(path=out)}


def imported_record(imported: Imported, request: ImportRequest) -> dict[str, Any]:
    """config.json's `imported_from`: where the weights came from and what was read from them."""
    return {
        "project": imported.project, "source": imported.source, "files": [f.record() for f in imported.files],
        "inferred": imported.inferred, "input_fit": imported.input_fit, "notes": imported.notes,
        "request": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(request).items() if v is not None},
        "time": time.time(), "optimizer_state": "none (the files hold weights only; fine-tuning starts fresh optimisers)",
    }


def write_run(imported: Imported, record: dict[str, Any], out: Path, force: bool) -> Path:
    """The run directory, written staged (it appears complete or not at all)."""
    meta: dict[str, Any] = {"family": imported.family, "model": imported.model,
                            "imported_from": {"project": imported.project, "source": imported.source}}
    if imported.generator is not None:
        meta["generator"] = imported.generator
    if imported.input_fit is not None:
        meta["input_fit"] = imported.input_fit
    modules = {name: net.state_dict() for name, net in imported.networks.items()}
    config = {"facegan_version": __version__, "family": imported.family, "model": imported.model, "data": {},
              "train": {}, "imported_from": record}
    with staged_folder(out, force, RUN_KIND) as staging:
        (staging / "samples").mkdir()
        write_json(staging / "config.json", config)
        checkpoint = save_checkpoint(staging / CHECKPOINT_DIR, 0, modules, meta, state=None, keep=0)
        write_json(staging / "run.json", {"status": "finished", "step": 0, "time": time.time(), "imported": True})
    return checkpoint
