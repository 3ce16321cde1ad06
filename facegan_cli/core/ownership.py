"""What facegan wrote, by record: the one source `--force` trusts before it replaces anything.

Names prove nothing (a user's `samples/my_notes.png` looks like a sample grid), so facegan records every
file it writes, when it writes it, and later replaces only what the record lists unchanged:

- An output folder (run, prepared dataset, export, sample/edit/translate/transfer folder, Turing sheet)
  holds `.facegan-output.json`, the marker: its kind and `files`, one entry per file or sub-folder facegan
  wrote there, keyed by the POSIX path relative to the folder (folders end with "/"):
    {"size": N, "mtime_ns": T}             a finished file: unchanged means the same size and mtime
    {"size": N, "append": true, "sha256"}  a log facegan appends to (metrics.jsonl, TensorBoard events, a
                                           prepare's partial arrays): unchanged means at least N bytes, the
                                           first N hashing to sha256 when one is recorded
    {"dir": true}                          a folder facegan made
- A single-file output (a grid, a figure, latents, a zip export, statistics, a Turing key) is listed in
  `.facegan-files.json` in its own folder, with its size, mtime and SHA-256 (files over HASH_LIMIT: size
  and mtime); that folder is the user's and the record claims nothing but the files it names.

The marker, the lock file and the files record themselves are facegan's bookkeeping, never foreign.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from facegan_cli import __version__
from facegan_cli.core.atomic import is_partial_name, write_json

MARKER = ".facegan-output.json"
LOCK_NAME = ".facegan.lock"  # core.lock's file: part of every locked output, never foreign
FILES_RECORD = ".facegan-files.json"
BOOKKEEPING = frozenset({MARKER, LOCK_NAME, FILES_RECORD})

try:
    import fcntl
except ImportError:  # Windows: records are then updated without the cross-process guard
    fcntl = None  # type: ignore[assignment]


# ----- the marker of an output folder ---------------------------------------------------------------


def write_marker(folder: str | os.PathLike[str], kind: str) -> None:
    """Mark `folder` as a facegan output of `kind` with an empty record (before any content is written)."""
    write_json(Path(folder) / MARKER, {"facegan": __version__, "kind": kind, "created": time.time(), "files": {}})


def read_marker(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker of `folder`, or None when it has none (or a damaged one: then it is not ours)."""
    payload = _read_json_file(Path(folder) / MARKER)
    return payload if payload is not None and isinstance(payload.get("kind"), str) else None


def _read_json_file(path: Path) -> dict[str, Any] | None:
    try:
        # lstat, not is_file(): a link or a FIFO in place of the record is not facegan's, and is never opened.
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _hash_prefix(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    left = size
    with open(path, "rb") as fh:
        while left > 0:
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def _entry_of(path: Path, append: bool = False, hashed: bool = True) -> dict[str, Any] | None:
    """The record entry describing `path` as it is now (None: gone, or a link/FIFO facegan never writes)."""
    try:
        info = path.lstat()
    except OSError:
        return None
    if stat.S_ISDIR(info.st_mode):
        return {"dir": True}
    if not stat.S_ISREG(info.st_mode):
        return None
    if append:
        entry: dict[str, Any] = {"size": info.st_size, "append": True}
        if hashed:
            entry["sha256"] = _hash_prefix(path, info.st_size)
        return entry
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _unchanged(path: Path, entry: Any) -> bool:
    """True when `path` still is what its record `entry` says facegan wrote."""
    if not isinstance(entry, dict):
        return False
    try:
        info = path.lstat()
    except OSError:
        return False
    if entry.get("dir") is True:
        return stat.S_ISDIR(info.st_mode)
    if not stat.S_ISREG(info.st_mode) or not isinstance(entry.get("size"), int):
        return False
    if entry.get("append") is True:
        if info.st_size < entry["size"]:
            return False
        digest = entry.get("sha256")
        return digest is None or (isinstance(digest, str) and _hash_prefix(path, entry["size"]) == digest)
    return info.st_size == entry["size"] and info.st_mtime_ns == entry.get("mtime_ns")


def walk(folder: Path) -> Iterator[tuple[str, Path]]:
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


def _relative(folder: Path, path: Path) -> str:
    rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(folder)).as_posix()
    return rel + "/" if path.is_dir() and not path.is_symlink() else rel


def record(
    folder: str | os.PathLike[str], written: Iterable[str | os.PathLike[str]] = (),
    appended: Iterable[str | os.PathLike[str]] = (), hashed: bool = True,
) -> None:
    """Add to `folder`'s marker the files facegan just wrote (`written`: finished files or folders;
    `appended`: files it goes on appending to, hashed unless `hashed` is False), with the sub-folders that
    lead to them; entries whose files are gone are dropped. Only the folder's writer calls this (it holds
    the folder's lock), so read-modify-write is safe."""
    folder = Path(folder)
    marker = read_marker(folder)
    if marker is None:
        return  # not a facegan output (an older run being resumed has its marker rewritten by its writer)
    files = marker.get("files") if isinstance(marker.get("files"), dict) else {}
    for paths, append in ((written, False), (appended, True)):
        for path in paths:
            path = Path(path) if Path(path).is_absolute() else folder / path
            entry = _entry_of(path, append=append, hashed=hashed)
            if entry is None:
                continue
            rel = _relative(folder, path)
            files[rel] = entry
            for parent in Path(rel.rstrip("/")).parents:
                if str(parent) != ".":
                    files[parent.as_posix() + "/"] = {"dir": True}
    files = {rel: e for rel, e in files.items() if (folder / rel.rstrip("/")).exists()}
    write_json(folder / MARKER, {**marker, "files": dict(sorted(files.items()))})


def record_everything(folder: str | os.PathLike[str]) -> None:
    """Record every entry under `folder`: only for a staging folder that facegan made empty and alone wrote."""
    folder = Path(folder)
    entries = [path for rel, path in walk(folder) if rel not in BOOKKEEPING and not path.is_symlink()]
    record(folder, written=entries)


def foreign_entries(folder: str | os.PathLike[str]) -> list[str]:
    """Entries of `folder` its marker does not list as facegan wrote them (links are always foreign)."""
    folder = Path(folder)
    marker = read_marker(folder) or {}
    files = marker.get("files") if isinstance(marker.get("files"), dict) else {}
    foreign = []
    for rel, path in walk(folder):
        if rel in BOOKKEEPING and not path.is_symlink():
            continue
        if path.is_symlink() or not _unchanged(path, files.get(rel)):
            foreign.append(rel)
    return foreign


def remove_recorded(folder: str | os.PathLike[str]) -> None:
    """Delete what `folder`'s record lists unchanged (deepest first), keeping the folder, its lock and anything
    else. Call only after `foreign_entries` came back empty, while holding the folder's lock."""
    folder = Path(folder)
    marker = read_marker(folder) or {}
    files = marker.get("files") if isinstance(marker.get("files"), dict) else {}
    for rel, path in sorted(walk(folder), key=lambda e: e[0].rstrip("/").count("/"), reverse=True):
        if rel == LOCK_NAME or path.is_symlink():
            continue
        if rel == MARKER or _unchanged(path, files.get(rel)) or is_partial_name(Path(rel.rstrip("/")).name):
            if rel.endswith("/"):
                with contextlib.suppress(OSError):  # not empty: something foreign inside, which stays
                    path.rmdir()
            else:
                path.unlink(missing_ok=True)


# ----- single files: the record in their folder ------------------------------------------------------


@contextlib.contextmanager
def _folder_guard(folder: Path) -> Iterator[None]:
    """Hold an exclusive flock on `folder` itself while its files record is read and rewritten, so two
    facegan processes writing files into one folder never lose each other's entries."""
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# Single files up to this size are also recorded by SHA-256; larger ones (a zip export of a whole dataset)
# by size and mtime alone, so that recording and checking them does not read gigabytes.
HASH_LIMIT = 256 << 20


def _file_entry(path: Path) -> dict[str, Any] | None:
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        return None
    entry: dict[str, Any] = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "written": time.time()}
    if info.st_size <= HASH_LIMIT:
        entry["sha256"] = _hash_prefix(path, info.st_size)
    return entry


def record_file(path: str | os.PathLike[str], kind: str) -> None:
    """List `path` (just written by facegan) in its folder's files record, so `--force` may replace it later.
    Entries of files that are gone or changed are dropped on the way."""
    path = Path(path)
    folder = path.parent
    with _folder_guard(folder):
        payload = _read_json_file(folder / FILES_RECORD) or {}
        files = payload.get("files") if isinstance(payload.get("files"), dict) else {}
        files = {name: e for name, e in files.items() if name != path.name and _file_unchanged(folder / name, e)}
        entry = _file_entry(path)
        if entry is not None:
            files[path.name] = {**entry, "kind": kind}
        write_json(folder / FILES_RECORD, {"facegan": __version__, "files": dict(sorted(files.items()))})


def _file_unchanged(path: Path, entry: Any) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("size"), int):
        return False
    try:
        info = path.lstat()
    except OSError:
        return False
    if not (stat.S_ISREG(info.st_mode) and info.st_size == entry["size"] and info.st_mtime_ns == entry.get("mtime_ns")):
        return False
    if info.st_size > HASH_LIMIT:
        return True
    return _hash_prefix(path, info.st_size) == entry.get("sha256")


def recorded_file(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The record of single file `path` when facegan wrote it and it is unchanged since; else None."""
    path = Path(path)
    payload = _read_json_file(path.parent / FILES_RECORD) or {}
    files = payload.get("files") if isinstance(payload.get("files"), dict) else {}
    entry = files.get(path.name)
    return entry if _file_unchanged(path, entry) else None
