"""Where facegan keeps what it caches (weights, feature statistics, help and declaration snapshots).

Kept apart from core.weights, which imports urllib and hashlib, so that start-up code (the root's --help
snapshot) can find the folder for the price of `os`.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The user's cache folder: $XDG_CACHE_HOME (the XDG base directory rule: only an absolute path counts),
    else ~/.cache."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"


def facegan_home() -> Path:
    """$FACEGAN_HOME, else $XDG_CACHE_HOME/facegan, else ~/.cache/facegan."""
    home = os.environ.get("FACEGAN_HOME")
    return Path(home).expanduser() if home else cache_root() / "facegan"
