"""Shared helpers of the training tests: a tiny image folder and a tiny DCGAN command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TINY_DCGAN = ["--preset", "radford64", "--width", "8", "--g-width", "8", "--batch", "8", "--device", "cpu",
              "--no-tensorboard", "--quiet"]


def write_image_folder(root: Path, n: int = 32, size: int = 64, seed: int = 0) -> Path:
    """Smooth random colour images (a blurred noise field), PNG, so training has real structure to fit."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        low = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        img = Image.fromarray(low).resize((size, size), Image.BILINEAR)
        img.save(root / f"{i:04d}.png")
    return root
