"""Where sampling and latent tools write: one image file, or a folder of files, never overwriting by accident.

A folder is written into a hidden staging folder next to it and moved into place once complete, so an
interrupted run never leaves a folder that looks finished. `--force` replaces an existing folder only
when every entry in it is one this tool writes, so a mistyped --out cannot delete unrelated files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from facegan_cli.core.errors import FaceganError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when `path` names an image file (a grid), False when it names a folder."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def check_new_file(path: str | os.PathLike[str], force: bool, option: str = "--out") -> Path:
    """Refuse to replace an existing file without --force, and never replace a folder with a file."""
    path = Path(path)
    if path.is_dir():
        raise FaceganError(
            f"{option} {path} is an existing folder, not a file.", f"Choose a file name for {option}."
        )
    if path.exists() and not force:
        raise FaceganError(
            f"{option} {path} already exists.", "Pass --force to replace it, or choose another path."
        )
    return path


def check_new_folder(
    path: str | os.PathLike[str], force: bool, owned: Callable[[str], bool], option: str = "--out"
) -> Path:
    """Refuse to replace a non-empty folder without --force, or with foreign files in it even with --force."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FaceganError(
            f"{option} {path} is an existing file, not a folder.", f"Choose a folder name for {option}."
        )
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise FaceganError(
                f"{option} folder {path} already exists and is not empty.",
                "Pass --force to replace it, or choose another folder.",
            )
        foreign = sorted(
            entry.name for entry in path.iterdir() if not (entry.is_file() and owned(entry.name))
        )
        if foreign:
            raise FaceganError(
                f"{option} folder {path} holds files facegan did not write there ({', '.join(foreign[:5])}); "
                "refusing to delete it even with --force.",
                "Choose another folder.",
            )
    return path


@contextmanager
def staged_folder(
    target: str | os.PathLike[str], force: bool, owned: Callable[[str], bool]
) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces `target` (checked with `check_new_folder`)."""
    target = check_new_folder(target, force, owned)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
