"""Where sampling and latent tools write: one image file, or a folder of files.

Both go through core.outputs (`new_file`, `staged_folder`): written under a temporary name, moved into
place once complete, recorded as facegan's, and replaced by `--force` only when facegan's record lists
them unchanged, so a user's own file of the same name is never lost.
"""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when `path` names an image file (a grid), False when it names a folder."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
