"""Outputs facegan owns, and the one rule for replacing them: `--force` replaces only what facegan wrote.

Every output folder facegan creates (run directories, prepared datasets, exports, sample folders, Turing
sheets) holds a marker file, `.facegan-output.json`, naming the kind of output. `--force` replaces a
folder only when it carries the marker of the same kind AND every entry in it is one that kind writes;
anything else (a folder of the user's own PNGs, a project with a stray `config.json`) is refused even
with `--force`, with the reason. Single-file outputs that can carry a tag (zip exports: the archive
comment) are recognised the same way.

An output may never be, contain or lie inside one of the command's inputs: replacing it would destroy
the input, and reading it back would read the output.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facegan_cli import __version__
from facegan_cli.core import distributed
from facegan_cli.core.atomic import is_partial_name, make_temp_dir, write_json
from facegan_cli.core.distributed import DistInfo
from facegan_cli.core.errors import FaceganError

MARKER = ".facegan-output.json"
LOCK_NAME = ".facegan.lock"  # core.lock's file: part of every locked output, never foreign

# Decides whether an entry (its path relative to the output folder, POSIX style; folders end with "/")
# is one the output's kind writes.
Owned = Callable[[str], bool]


def write_marker(folder: str | os.PathLike[str], kind: str) -> None:
    """Mark `folder` as a facegan output of `kind` (done when the folder is created, before any content)."""
    write_json(Path(folder) / MARKER, {"facegan": __version__, "kind": kind, "created": time.time()})


def read_marker(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker of `folder`, or None when it has none (or a damaged one: then it is not ours)."""
    path = Path(folder) / MARKER
    try:
        if path.is_symlink() or not path.is_file():
            return None
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) and isinstance(payload.get("kind"), str) else None


def _walk(folder: Path) -> Iterator[tuple[str, Path]]:
    """Every entry under `folder` as (relative POSIX name, path); folders end with '/', links are not followed."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        rel_root = Path(root).relative_to(folder)
        for name in sorted(dirs):
            path = Path(root) / name
            if path.is_symlink():  # a link to a folder is listed as a file: never descended, never owned
                files.append(name)
                continue
            yield (rel_root / name).as_posix() + "/", path
        dirs[:] = sorted(d for d in dirs if not (Path(root) / d).is_symlink())
        for name in sorted(files):
            yield (rel_root / name).as_posix(), Path(root) / name


def foreign_entries(folder: str | os.PathLike[str], owned: Owned) -> list[str]:
    """Entries of `folder` that its kind does not write (links are always foreign)."""
    folder = Path(folder)
    foreign = []
    for rel, path in _walk(folder):
        name = Path(rel.rstrip("/")).name
        if rel in (MARKER, LOCK_NAME) and not path.is_symlink():
            continue
        if path.is_symlink() or not (owned(rel) or is_partial_name(name)):
            foreign.append(rel)
    return foreign


def refuse_unowned(folder: Path, kind: str, owned: Owned, option: str = "--out") -> None:
    """Raise unless `folder` is a facegan output of `kind` that holds only what that kind writes."""
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
    foreign = foreign_entries(folder, owned)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise FaceganError(
            f"{option} {folder} is a facegan {what} but also holds files facegan did not write there ({shown}); "
            "refusing to replace it even with --force, so none of them is lost.",
            f"Move those files out of {folder}, or choose another {option}.",
        )


def check_new_folder(
    path: str | os.PathLike[str], force: bool, kind: str, owned: Owned, option: str = "--out"
) -> Path:
    """Check that `path` may become a new output folder of `kind`: absent or empty, or (with --force) ours."""
    path = Path(path)
    if path.is_symlink():
        # Replacing would follow the link and delete what it points at, or fail half-way on the link itself.
        raise FaceganError(
            f"{option} {path} is a symbolic link (to {os.path.realpath(path)}); facegan writes outputs only into "
            "real folders.",
            f"Pass the folder the link points at, or choose another {option}.",
        )
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
        refuse_unowned(path, kind, owned, option)
    return path


def remove_owned(folder: str | os.PathLike[str], owned: Owned) -> None:
    """Delete the entries of `folder` its kind writes (deepest first), keeping the folder and its lock.

    Call only after `refuse_unowned` passed (and while holding the folder's lock): foreign entries, which
    that check refuses, are never touched here either.
    """
    folder = Path(folder)
    entries = [(rel, path) for rel, path in _walk(folder) if rel != LOCK_NAME]
    for rel, path in sorted(entries, key=lambda e: e[0].count("/"), reverse=True):
        name = Path(rel.rstrip("/")).name
        if path.is_symlink() or not (owned(rel) or is_partial_name(name) or rel == MARKER):
            continue
        if rel.endswith("/"):
            try:
                path.rmdir()
            except OSError:
                pass  # not empty: something foreign inside, which stays
        else:
            path.unlink(missing_ok=True)


@contextmanager
def staged_folder(
    target: str | os.PathLike[str], force: bool, kind: str, owned: Owned, option: str = "--out"
) -> Iterator[Path]:
    """Yield a marked, empty staging folder beside `target`; on success it replaces `target`.

    The folder appears under its real name only once complete, so an interrupted run never leaves a
    folder that looks finished.
    """
    target = check_new_folder(target, force, kind, owned, option)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = make_temp_dir(target)
    try:
        write_marker(staging, kind)
        yield staging
        if target.exists():
            if any(target.iterdir()):  # checked again: the folder may have changed while we worked
                refuse_unowned(target, kind, owned, option)
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


@contextmanager
def shared_staged_folder(
    target: str | os.PathLike[str], force: bool, kind: str, owned: Owned, info: DistInfo, option: str = "--out"
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
    with staged_folder(target, force, kind, owned, option) as staging:
        distributed.broadcast_object(info, str(staging))
        yield staging
        distributed.barrier(info)


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
