"""Image sources made by a trained model, in the one hierarchy of `facegan_cli.data.sources`.

`GeneratorSource`: `n` samples of a generator checkpoint from latents drawn with `seed`, generated batch
by batch and quantised to uint8 exactly as writing them to PNG would, so a checkpoint scores what its
saved samples would. `TranslatorSource`: the translations of an image source through a translator
checkpoint in one direction, quantised the same way. `checkpoint_source` makes either from a --ckpt.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.seeding import draw_latents
from facegan_cli.core.weights import sha256_of
from facegan_cli.data.device_data import resize_uint8
from facegan_cli.data.domains import open_domain
from facegan_cli.data.grid import to_uint8
from facegan_cli.data.sources import Batch, ImageSource
from facegan_cli.models.loading import LoadedGenerator, load_model
from facegan_cli.models.translation import Translator, to_model_input


class ModelSource(ImageSource):
    """The `n` images a loaded model (generator or translator) makes: streamed, not read at random."""

    def __init__(self, model: LoadedGenerator | Translator, n: int) -> None:
        super().__init__(model.path)
        self.model, self.n = model, n

    def __len__(self) -> int:
        return self.n

    @property
    def resolution(self) -> int:
        return self.model.resolution

    def _start(self, rows: Sequence[int] | None) -> np.ndarray:
        """A new pass over `rows` (default: all), in their order."""
        self.used = 0
        return np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "family": self.model.family, "step": self.model.step}


class GeneratorSource(ModelSource):
    """`n` samples of a generator from latents drawn with `seed`."""

    kind = "generator"

    def __init__(self, generator: LoadedGenerator, n: int, seed: int) -> None:
        if n < 1:
            raise UsageProblem(f"--n {n}: a generator input needs at least one sample.", "Use e.g. --n 50000.")
        super().__init__(generator, n)
        self.generator, self.seed = generator, seed
        self._fingerprint: str | None = None

    def stream(
        self, batch_size: int, native: bool = True, description: str = "images", rows: Sequence[int] | None = None
    ) -> Iterator[tuple[Batch, np.ndarray]]:
        # Every latent is drawn and the rows picked from them, so sample i is the same whoever draws it.
        wanted = self._start(rows)
        z = draw_latents(self.n, self.generator.z_dim, self.seed)[torch.from_numpy(wanted)]
        for images in self.generator.batches(z, batch_size, f"{description} (generating)"):
            pixels = to_uint8(images, self.generator.value_range)
            yield pixels, wanted[self.used : self.used + len(pixels)]
            self.used += len(pixels)

    @property
    def fingerprint(self) -> str | None:
        """Identifies the samples: the run, the checkpoint file's SHA-256, the module the weights came from,
        the seed, the count and the device type (a GPU's samples differ from the CPU's in the last bits), so
        the features of a checkpoint's samples are cached like a real set's. None for a generator that is no
        checkpoint file (the sampling function of a run in training)."""
        path = Path(self.generator.path)
        if not path.is_file():
            return None
        if self._fingerprint is None:
            key = json.dumps(["generator", str(path.resolve().parent.parent), sha256_of(path), self.generator.weights,
                              self.seed, self.n, self.generator.device.type])
            self._fingerprint = "generated:" + hashlib.sha256(key.encode()).hexdigest()
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "weights": self.generator.weights, "seed": self.seed}


class TranslatorSource(ModelSource):
    """The first `n` images of `source` translated in `direction` (a2b or b2a), at the translator's size,
    batch by batch (inputs fitted as `facegan translate` fits them)."""

    kind = "translator"

    def __init__(self, translator: Translator, source: ImageSource, direction: str | None, n: int | None = None
                 ) -> None:
        direction = translator.check_direction(direction)  # None: its default
        if n is not None and n < 1:
            raise UsageProblem(f"--n {n}: translations need at least one image.", "Leave --n out to translate all.")
        super().__init__(translator, len(source) if n is None else min(n, len(source)))
        self.translator, self.source, self.direction = translator, source, direction

    def stream(
        self, batch_size: int, native: bool = True, description: str = "images", rows: Sequence[int] | None = None
    ) -> Iterator[tuple[Batch, np.ndarray]]:
        wanted = self._start(rows)
        side = self.resolution
        for pixels, kept in self.source.stream(batch_size, False, f"{description} (translating)", wanted):
            pixels = np.asarray(pixels)
            if pixels.shape[1] != side:
                t = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2)
                pixels = resize_uint8(t, side).permute(0, 2, 3, 1).numpy()
            x = to_model_input(pixels, self.translator.device)
            with torch.no_grad():
                out = self.translator.translate(x, self.direction)
            yield to_uint8(out, self.translator.value_range), kept
            self.used += len(kept)
        self.rejects = self.source.rejects

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "direction": self.direction, "source": self.source.describe()}


def checkpoint_source(
    ckpt: str | os.PathLike[str],
    device: torch.device,
    *,
    n: int,
    seed: int,
    translate: str | os.PathLike[str] | None = None,
    direction: str | None = None,
    split: str | None = None,
    workers: int | None = None,
    strict: bool = False,
) -> ImageSource:
    """A --ckpt as a metric input: a generator's `n` samples from `seed`, or (with `translate`, the images to
    translate: a folder, zip or prepared dataset) a translator's translations of them in `direction`."""
    model = load_model(ckpt, device, kind=("generator", "translator"))
    if isinstance(model, Translator):
        if translate is None:
            raise FaceganError(
                f"{model.path} is a {model.family} checkpoint, an image translator: it makes images only from "
                "images.",
                "Name the images to translate with --translate SOURCE (and --direction a2b|b2a).",
            )
        return TranslatorSource(model, open_domain(Path(translate), split, model.resolution, workers, strict),
                                direction, n)
    if translate is not None:
        raise FaceganError(f"--translate was given, but {model.path} is a generator, which translates nothing.",
                           "Leave --translate out, or pass a translator checkpoint (cycle-gan) as --ckpt.")
    return GeneratorSource(model, n, seed)
