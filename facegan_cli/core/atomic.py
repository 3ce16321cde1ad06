"""Atomic file writes: a reader sees either the old file or the complete new one, never a half.

Temporary files are named `.NAME.*.partial` next to the target, so a write killed half-way leaves only a
file that no reader takes for the real one (and `clean_partials` removes on the next run). mkstemp and
mkdtemp create 0600/0700 entries; facegan outputs are shared in groups, so the final file and folder get
the permissions the process's umask gives, as any `open()` or `mkdir` would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_PARTIAL = re.compile(r"^\..+\.partial$")


def current_umask() -> int:
    """The process umask, read without changing it where Linux tells (/proc), else by the swap idiom."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """The mode open() or mkdir() would give a new file (0666) or folder (0777) under the umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


def make_temp_file(target: Path) -> Path:
    """An empty `.NAME.*.partial` file beside `target`, with umask permissions (not mkstemp's 0600)."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        os.fchmod(fd, default_mode())
    finally:
        os.close(fd)
    return Path(name)


def make_temp_dir(target: Path) -> Path:
    """An empty `.NAME.*.partial` folder beside `target`, with umask permissions (not mkdtemp's 0700)."""
    path = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    os.chmod(path, default_mode(directory=True))
    return path


def is_partial_name(name: str) -> bool:
    """True for the temporary names atomic writes use (`.NAME.*.partial`)."""
    return bool(_PARTIAL.match(name))


def clean_partials(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the `.*.partial` files a killed atomic write left in `folder`; returns what was removed.

    Call it only while holding the folder's lock: a partial file of a live writer would go too.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if is_partial_name(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success it is fsynced and renamed over `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_file(target)
    try:
        yield tmp
        # The writer may have replaced the file (safetensors creates its own, 0600): set the mode again.
        os.chmod(tmp, default_mode())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(target: str | os.PathLike[str], payload: Any) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_text(target: str | os.PathLike[str], text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
