"""Outputs facegan owns, and the one rule for replacing them: `--force` replaces only what facegan wrote.

What facegan wrote is known by record, never guessed from names (core.ownership): every output folder
carries a marker listing each file facegan wrote into it, and every single-file output is listed in the
`.facegan-files.json` of its folder. `--force` replaces a folder only when it carries the marker of the
same kind AND every entry in it is listed there unchanged (same size and modification time; logs facegan
appends to: the recorded prefix intact); a single file only when its folder's record lists it with the same
size, modification time and SHA-256. Anything else is refused even with `--force`, naming the foreign or
changed entries. Links are never replaced.

Outputs appear under their names only once complete: they are written into a staging folder beside the
target and renamed. While one is made, `.NAME.facegan.lock` beside it is locked (core.lock.OutputLock), so
a second command writing the same output is refused at once; and the final rename never replaces what
appeared meanwhile unless `--force` allowed it and the record shows it is facegan's.

An output may never be, contain or lie inside one of the command's inputs: replacing it would destroy
the input, and reading it back would read the output.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from facegan_cli.core import distributed
from facegan_cli.core.atomic import make_temp_dir
from facegan_cli.core.distributed import DistInfo
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.lock import OutputLock
from facegan_cli.core.ownership import (
    FILES_RECORD,
    LOCK_NAME,
    MARKER,
    foreign_entries,
    read_marker,
    record_everything,
    record_file,
    recorded_file,
    remove_recorded,
    write_marker,
)

__all__ = [
    "LOCK_NAME", "MARKER", "FILES_RECORD", "read_marker", "write_marker", "check_new_folder", "refuse_unowned",
    "staged_folder", "shared_staged_folder", "check_new_file", "new_file", "refuse_file_parent", "make_out_dir",
    "check_outside_inputs",
]


def _shown(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def refuse_unowned(folder: Path, kind: str, option: str = "--out") -> None:
    """Raise unless `folder` is a facegan output of `kind` whose every entry its record lists unchanged."""
    what = kind.replace("-", " ")
    marker = read_marker(folder)
    if marker is None:
        raise FaceganError(
            f"{option} {folder} is not empty and was not created by facegan (it has no {MARKER}); refusing to "
            "replace it even with --force, so none of its files is lost.",
            f"Choose another {option}, or move the folder away yourself if you really mean to replace it.",
        )
    if marker["kind"] != kind:
        raise FaceganError(
            f"{option} {folder} is a facegan {marker['kind'].replace('-', ' ')} output, not a {what}; "
            "refusing to replace it even with --force.",
            f"Choose another {option}.",
        )
    if not isinstance(marker.get("files"), dict):
        raise FaceganError(
            f"{option} {folder} is a facegan {what} made by an older facegan that did not record which files "
            "it wrote; refusing to replace it even with --force, so no file of yours in it is lost.",
            f"Move the folder away yourself if you no longer need it, or choose another {option}.",
        )
    foreign = foreign_entries(folder)
    if foreign:
        raise FaceganError(
            f"{option} {folder} is a facegan {what} but holds entries facegan did not write there or that "
            f"changed since ({_shown(foreign)}); refusing to replace it even with --force, so none of them is "
            "lost.",
            f"Move those entries out of {folder}, or choose another {option}.",
        )


def _refuse_link(path: Path, option: str, what: str) -> None:
    if path.is_symlink():
        # Replacing would follow the link and delete what it points at, or replace the link itself.
        raise FaceganError(
            f"{option} {path} is a symbolic link (to {os.path.realpath(path)}); facegan writes outputs only as "
            f"real {what}s and never replaces a link.",
            f"Pass the {what} the link points at, or choose another {option}.",
        )


def check_new_folder(path: str | os.PathLike[str], force: bool, kind: str, option: str = "--out") -> Path:
    """Check that `path` may become a new output folder of `kind`: absent or empty, or (with --force) ours."""
    path = Path(path)
    _refuse_link(path, option, "folder")
    refuse_file_parent(path, option)
    if path.exists() and not path.is_dir():
        raise FaceganError(
            f"{option} {path} is an existing file, not a folder.", f"Choose a folder name for {option}."
        )
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise FaceganError(
                f"{option} folder {path} already exists and is not empty.",
                "Pass --force to replace it (only if facegan wrote it), or choose another folder.",
            )
        refuse_unowned(path, kind, option)
    return path


def _staging_pattern(target: Path) -> re.Pattern[str]:
    """The names of the staging folders make_temp_dir makes for `target` (tempfile's 8 random characters)."""
    return re.compile(rf"^\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.partial$")


def _clean_stale_staging(target: Path) -> None:
    """Remove staging folders of `target` left by a killed command (call holding `target`'s OutputLock, so none
    is a live writer's). Only folders that hold facegan's marker, or exactly one file named like the target
    (a single-file staging), are removed: anything else is left alone."""
    pattern = _staging_pattern(target)
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if not pattern.match(entry.name) or entry.is_symlink() or not entry.is_dir():
            continue
        inside = [p.name for p in entry.iterdir()]
        if read_marker(entry) is not None or inside in ([target.name], []):
            shutil.rmtree(entry, ignore_errors=True)


def _replace_folder(staging: Path, target: Path, force: bool, kind: str, option: str) -> None:
    """Give `staging` the name `target`: never over something that appeared meanwhile unless --force allowed
    it and the record shows it is facegan's."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        check_new_folder(target, force, kind, option)  # raises: a link or a file appeared there
    if target.is_dir():
        if any(target.iterdir()):
            if not force:
                raise FaceganError(
                    f"{option} {target} appeared while this command worked (another program wrote it); its "
                    "files are left as they are and this command's output was discarded.",
                    "Run the command again with another --out, or with --force if that folder is facegan's.",
                )
            refuse_unowned(target, kind, option)
            remove_recorded(target)
        with contextlib.suppress(OSError):
            target.rmdir()  # empty now; if not, os.replace below refuses rather than mixing two outputs
    try:
        os.replace(staging, target)
    except OSError as exc:
        raise FaceganError(
            f"Cannot move the finished output into {option} {target} ({exc.strerror or exc}).",
            f"Check that {target} is an empty folder you can write to, then run the command again.",
        ) from exc


@contextmanager
def staged_folder(target: str | os.PathLike[str], force: bool, kind: str, option: str = "--out") -> Iterator[Path]:
    """Yield a marked, empty staging folder beside `target`; on success every file in it is recorded as
    facegan's and it replaces `target`.

    The folder appears under its real name only once complete, so an interrupted run never leaves a
    folder that looks finished; `target` is locked meanwhile, so two commands never write it at once.
    """
    target = check_new_folder(target, force, kind, option)
    target.parent.mkdir(parents=True, exist_ok=True)
    with OutputLock(target, kind.replace("-", " ")):
        _clean_stale_staging(target)
        staging = make_temp_dir(target)
        try:
            write_marker(staging, kind)
            yield staging
            record_everything(staging)
            _replace_folder(staging, target, force, kind, option)
        finally:
            if staging.exists():
                shutil.rmtree(staging)


@contextmanager
def shared_staged_folder(
    target: str | os.PathLike[str], force: bool, kind: str, info: DistInfo, option: str = "--out"
) -> Iterator[Path]:
    """`staged_folder` for the ranks of a torchrun command that write one folder together: rank 0 makes the
    staging folder and names it to the others, every rank writes its files into it, and rank 0 gives it
    its real name only after all of them have finished (a barrier), so the folder still appears once and
    complete. One process: exactly `staged_folder`."""
    if not info.is_main:
        staging = Path(distributed.broadcast_object(info, None))
        yield staging
        distributed.barrier(info)
        return
    with staged_folder(target, force, kind, option) as staging:
        distributed.broadcast_object(info, str(staging))
        yield staging
        distributed.barrier(info)


def check_new_file(path: str | os.PathLike[str], force: bool, option: str = "--out") -> Path:
    """Check that `path` may become a new single-file output: absent, or (with --force) a file facegan's record
    says it wrote and that is unchanged since. Never a folder, never a link."""
    path = Path(path)
    _refuse_link(path, option, "file")
    if path.is_dir():
        raise FaceganError(
            f"{option} {path} is an existing folder, not a file.", f"Choose a file name for {option}."
        )
    if path.exists() or path.is_symlink():
        if not force:
            raise FaceganError(
                f"{option} {path} already exists.",
                "Pass --force to replace it (only if facegan wrote it), or choose another path.",
            )
        if recorded_file(path) is None:
            raise FaceganError(
                f"{option} {path} already exists and facegan's record ({path.parent / FILES_RECORD}) does not "
                "list it as a file facegan wrote (or it changed since); refusing to replace it even with "
                "--force, so it is not lost.",
                f"Choose another {option}, or move the file away yourself if you really mean to replace it.",
            )
    return path


@contextmanager
def new_file(path: str | os.PathLike[str], force: bool, kind: str, option: str = "--out") -> Iterator[Path]:
    """Yield a path with `path`'s file name inside a staging folder beside it; on success the file written
    there takes `path`'s place (checked again first: never over a file that is not facegan's, and without
    --force never over one that appeared meanwhile) and is recorded as facegan's."""
    path = check_new_file(path, force, option)
    make_out_dir(path.parent, option)
    with OutputLock(path, "output file"):
        _clean_stale_staging(path)
        staging = make_temp_dir(path)
        try:
            written = staging / path.name
            yield written
            if not written.is_file():
                raise RuntimeError(f"nothing was written to {written}")
            check_new_file(path, force, option)
            if force or not hasattr(os, "link"):
                os.replace(written, path)
            else:
                try:
                    os.link(written, path)  # fails if a file appeared meanwhile: never replaced without --force
                except FileExistsError:
                    check_new_file(path, False, option)
                except OSError:  # a file system without hard links: the check above is the guard
                    os.replace(written, path)
            record_file(path, kind)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def refuse_file_parent(path: Path, option: str = "--out") -> None:
    """Name the file that stands where a folder of `path`'s parents must be (found before any work)."""
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise FaceganError(
            f"Cannot create {option} {path}: {blocker} is a file, not a folder.",
            f"Choose an {option} in a folder you can write to.",
        )


def make_out_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Create an output folder (and its parents): a parent that is a file, or a folder the user may not
    write, is the user's error to fix, not a crash."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker is not None else (exc.strerror or str(exc))
        raise FaceganError(
            f"Cannot create {option} {path}: {reason}.",
            f"Choose an {option} in a folder you can write to.",
        ) from exc
    return path


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_outside_inputs(
    out: str | os.PathLike[str], inputs: Iterable[tuple[str, str | os.PathLike[str] | None]], option: str = "--out"
) -> None:
    """Refuse an output that is, contains or lies inside one of the inputs (`(option, path)` pairs)."""
    out_real = Path(os.path.realpath(out))
    for input_option, input_path in inputs:
        if input_path is None or str(input_path) == "-":
            continue
        in_real = Path(os.path.realpath(input_path))
        if _inside(out_real, in_real) or _inside(in_real, out_real):
            relation = (
                "is" if out_real == in_real else "lies inside" if _inside(out_real, in_real) else "contains"
            )
            raise FaceganError(
                f"{option} {out} {relation} the input {input_option} {input_path}: writing there could "
                "destroy the input or read the output back as input.",
                f"Choose an {option} outside {input_path}.",
            )
