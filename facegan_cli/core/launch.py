"""What torchrun told this process, read from the environment without importing torch (the CLI's output
rules need it before any command decides whether it needs torch)."""

from __future__ import annotations

import os


def env_rank() -> int:
    """The rank torchrun gave this process (0 outside torchrun), known before any process group exists."""
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0
