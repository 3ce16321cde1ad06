"""Image sources made by a trained model, in the one hierarchy of `facegan_cli.data.sources`.

`GeneratorSource`: `n` samples of a generator checkpoint from latents drawn with `seed`, generated batch
by batch and quantised to uint8 exactly as writing them to PNG would, so a checkpoint scores what its
saved samples would. (Translator sources, images -> images, will join it here.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.seeding import draw_latents
from facegan_cli.data.grid import to_uint8
from facegan_cli.data.sources import Batch, ImageSource
from facegan_cli.models.loading import LoadedGenerator


class GeneratorSource(ImageSource):
    """`n` samples of a generator from latents drawn with `seed`: streamed, not read at random."""

    kind = "generator"

    def __init__(self, generator: LoadedGenerator, n: int, seed: int) -> None:
        super().__init__(generator.path)
        if n < 1:
            raise FaceganError(f"--n {n}: a generator input needs at least one sample.", "Use e.g. --n 50000.")
        self.generator, self.n, self.seed = generator, n, seed

    def __len__(self) -> int:
        return self.n

    @property
    def resolution(self) -> int:
        return self.generator.resolution

    def stream(
        self, batch_size: int, native: bool = True, description: str = "images", rows: Sequence[int] | None = None
    ) -> Iterator[tuple[Batch, np.ndarray]]:
        self.used = 0
        # Every latent is drawn and the rows picked from them, so sample i is the same whoever draws it.
        wanted = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        z = draw_latents(self.n, self.generator.z_dim, self.seed)[torch.from_numpy(wanted)]
        for images in self.generator.batches(z, batch_size, f"{description} (generating)"):
            pixels = to_uint8(images, self.generator.value_range)
            yield pixels, wanted[self.used : self.used + len(pixels)]
            self.used += len(pixels)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "family": self.generator.family,
            "step": self.generator.step,
            "weights": self.generator.weights,
            "seed": self.seed,
        }
