"""Where sampling and latent tools write: one image file, or a folder of files, never overwriting by accident.

Folders (sample folders, Turing sheets) go through core.outputs: written into a marked staging folder and
moved into place once complete, and replaced by `--force` only when they carry facegan's marker of the
same kind and hold nothing else, so a folder of the user's own 0000.png files is never deleted.
"""

from __future__ import annotations

import os
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
