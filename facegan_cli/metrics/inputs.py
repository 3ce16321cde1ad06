"""What a metric reads: folders and zips of images, prepared datasets, generator checkpoints, stats files.

Every image input is an `ImageSource` that yields uint8 batches, one progress bar per pass:

- `native=True` (the Inception metrics): every image at its stored size, each resized later by the
  protocol, as the reference packages do with files; mixed sizes are fine.
- `native=False` (SWD, MS-SSIM, which compare pixels): square images of one size, decoded and fitted by
  `data.sources.fit_square` (the folder's first image decides the size, as everywhere in facegan).

Folders and zips are read through the project's one decode-and-reject path (data.imageio.open_rgb, the
same as prepare and training): grayscale, alpha, palette, CMYK and 16-bit images are converted to RGB
with EXIF orientation applied; corrupt, truncated, zero-byte and non-image files, FIFOs, devices, broken
symlinks and decompression bombs (above `facegan --max-pixels`) are skipped and counted (`rejects`),
or stop the command with `strict`. Two deliberate
differences from the references' file handling, both invisible on ordinary RGB JPEG/PNG folders: folders
are read recursively with every image suffix in any case (pytorch-fid and torch-fidelity read only the
top level, some lower-case suffixes), and EXIF rotation and 16-bit scaling are applied (the references'
PIL `convert("RGB")` ignores the first and clips the second). Decoding runs in
worker processes while the main process runs the network. Generated samples are quantised to uint8
exactly as writing them to PNG would, so a checkpoint scores what its saved samples would.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.parallel import default_workers, ordered_map
from facegan_cli.core.progress import Progress, warn
from facegan_cli.data.grid import to_uint8
from facegan_cli.data.imageio import describe_rejects, display_name, guarded, open_rgb
from facegan_cli.data.sources import DecodedImageSet, PreparedImageSet, fit_square, open_image_set
from facegan_cli.latent.latents import draw_latents
from facegan_cli.metrics.stats import GaussianStats, load_stats
from facegan_cli.models.loading import LoadedGenerator, load_generator

# A batch: one N x H x W x 3 uint8 array, or (native decoding of a folder) a list of H x W x 3 arrays.
Batch = np.ndarray | list[np.ndarray]


class ImageSource(abc.ABC):
    """A finite, ordered set of images a metric reads in batches."""

    kind = "abstract"

    def __init__(self, label: str) -> None:
        self.label = label
        self.rejects: list[tuple[str, str]] = []
        self.used = 0  # images yielded by the last pass

    @abc.abstractmethod
    def __len__(self) -> int:
        """Images the source holds (before any are rejected)."""

    @property
    def fingerprint(self) -> str | None:
        """Identifies the pixels (for the feature cache); None when they are not reproducible."""
        return None

    @property
    def resolution(self) -> int | None:
        return None

    @abc.abstractmethod
    def batches(self, batch_size: int, native: bool = True, description: str = "images") -> Iterator[Batch]:
        """Every usable image once, in order, `batch_size` at a time."""

    def take(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(square images of `rows`, the rows that were usable), for random access (MS-SSIM pairs)."""
        raise FaceganError(
            f"{self.label} cannot be read at random.", "Pass a folder, zip or prepared dataset."
        )

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.label,
            "count": len(self),
            "used": self.used,
            "rejected": len(self.rejects),
            "fingerprint": self.fingerprint,
        }


def _decode(task: tuple[str, str | None, int | None]) -> np.ndarray:
    location, member, side = task
    image = open_rgb(location, member=member)
    return np.asarray(image, dtype=np.uint8) if side is None else fit_square(image, side)


class DecodedSource(ImageSource):
    """A folder or zip of images (data.sources lists and fingerprints it; decoding is done here)."""

    def __init__(self, images: DecodedImageSet, workers: int | None, strict: bool) -> None:
        super().__init__(str(images.path))
        self.images = images
        self.kind = images.kind
        self.workers = workers if workers is not None else default_workers()
        self.strict = strict

    def __len__(self) -> int:
        return len(self.images)

    @property
    def fingerprint(self) -> str:
        return self.images.fingerprint

    @property
    def resolution(self) -> int:
        return self.images.resolution

    def _source_name(self, row: int) -> str:
        return f"{self.images.path}/{self.images.entries[row]}"

    def _tasks(self, rows: Sequence[int], native: bool) -> list[tuple[str, str | None, int | None]]:
        side = None if native else self.resolution
        path, entries = str(self.images.path), self.images.entries
        if self.kind == "zip":
            return [(path, entries[r], side) for r in rows]
        return [(str(Path(path) / entries[r]), None, side) for r in rows]

    def _reject(self, row: int, reason: str) -> None:
        source = self._source_name(row)
        if self.strict:
            raise FaceganError(
                f"{display_name(source)} cannot be used: {reason} (--strict stops at the first unusable image).",
                "Fix or remove that file, or run without --strict to skip such files and count them.",
            )
        if (source, reason) not in self.rejects:  # random access (take) may meet a file twice
            self.rejects.append((source, reason))

    def _decoded(self, rows: Sequence[int], native: bool, workers: int) -> Iterator[tuple[int, np.ndarray]]:
        results = ordered_map(functools.partial(guarded, _decode), self._tasks(rows, native), workers)
        for row, (ok, payload) in zip(rows, results, strict=True):
            if ok:
                yield row, payload
            else:
                self._reject(row, payload)

    def batches(self, batch_size: int, native: bool = True, description: str = "images") -> Iterator[Batch]:
        self.rejects, self.used = [], 0
        rows = range(len(self))
        workers = self.workers if len(rows) > 1 else 1
        pending: list[np.ndarray] = []
        with Progress(len(rows), f"{description} {self.images.path.name}", unit="img") as bar:
            for _, image in self._decoded(rows, native, workers):
                pending.append(image)
                if len(pending) == batch_size:
                    yield pending if native else np.stack(pending)
                    self.used += len(pending)
                    bar.advance(len(pending))
                    pending = []
            if pending:
                yield pending if native else np.stack(pending)
                self.used += len(pending)
        self._finish()

    def _finish(self) -> None:
        # Named relative to the input, whose path starts the line: short enough to list the first few.
        prefix = f"{self.images.path}/"
        named = [(source.removeprefix(prefix), reason) for source, reason in self.rejects]
        if self.rejects:
            warn(
                f"{display_name(self.label)}: skipped {len(self.rejects)} unusable file(s) of {len(self)}: "
                f"{describe_rejects(named)}"
            )
        if self.used == 0:
            raise FaceganError(
                f"No usable image among the {len(self)} files in {display_name(self.label)}"
                + (f" (first problem: {describe_rejects(named, shown=1)})." if self.rejects else "."),
                "Check that the path points at the images (JPEG, PNG, ...), and that they are not damaged.",
            )

    def take(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        workers = self.workers if len(rows) >= 64 else 1
        kept, images = [], []
        for row, image in self._decoded(list(rows), native=False, workers=workers):
            kept.append(row)
            images.append(image)
        side = self.resolution
        stacked = np.stack(images) if images else np.zeros((0, side, side, 3), np.uint8)
        return stacked, np.asarray(kept, dtype=np.int64)


class PreparedSource(ImageSource):
    """A prepared dataset (split and resolution chosen), sliced from its memory map."""

    kind = "prepared"

    def __init__(self, images: PreparedImageSet) -> None:
        super().__init__(str(images.path))
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    @property
    def fingerprint(self) -> str:
        return self.images.fingerprint

    @property
    def resolution(self) -> int:
        return self.images.resolution

    def batches(self, batch_size: int, native: bool = True, description: str = "images") -> Iterator[Batch]:
        self.used = 0
        n = len(self)
        with Progress(n, f"{description} {self.images.path.name}", unit="img") as bar:
            for start in range(0, n, batch_size):
                images, _ = self.images.load_with_indices(np.arange(start, min(start + batch_size, n)))
                yield images
                self.used += len(images)
                bar.advance(len(images))

    def take(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        return self.images.load_with_indices(np.asarray(rows, dtype=np.int64))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "split": self.images.split, "resolution": self.resolution}


class GeneratorSource(ImageSource):
    """`n` samples of a generator checkpoint from latents drawn with `seed`, generated batch by batch."""

    kind = "generator"

    def __init__(self, generator: LoadedGenerator, n: int, seed: int) -> None:
        super().__init__(str(generator.path))
        if n < 1:
            raise FaceganError(
                f"--n {n}: a generator input needs at least one sample.", "Use e.g. --n 50000."
            )
        self.generator, self.n, self.seed = generator, n, seed

    def __len__(self) -> int:
        return self.n

    @property
    def resolution(self) -> int:
        return self.generator.resolution

    def batches(self, batch_size: int, native: bool = True, description: str = "images") -> Iterator[Batch]:
        self.used = 0
        z = draw_latents(self.n, self.generator.z_dim, self.seed)
        for images in self.generator.batches(z, batch_size, f"{description} (generating)"):
            pixels = to_uint8(images, self.generator.value_range)
            yield pixels
            self.used += len(pixels)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "family": self.generator.family,
            "step": self.generator.step,
            "weights": self.generator.weights,
            "seed": self.seed,
        }


class StatsInput:
    """A stats .npz: only a mean and a covariance, usable by FID alone."""

    kind = "stats"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        self.stats: GaussianStats = load_stats(path)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.label, "count": self.stats.n, "meta": self.stats.meta}


Input = ImageSource | StatsInput


def open_source(
    path: str | Path,
    split: str | None = None,
    resolution: int | None = None,
    workers: int | None = None,
    strict: bool = False,
    allow_stats: bool = False,
) -> Input:
    """A folder, zip, prepared dataset or (with `allow_stats`) a stats .npz."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        if not allow_stats:
            raise FaceganError(
                f"{path} is a statistics file: it holds only a mean and a covariance, which this metric cannot use.",
                "Pass the images themselves (a folder, zip or prepared dataset); stats files work with `metrics fid`.",
            )
        return StatsInput(path)
    images = open_image_set(path, split, resolution, workers)
    if isinstance(images, PreparedImageSet):
        return PreparedSource(images)
    if not isinstance(images, DecodedImageSet):
        raise FaceganError(
            f"{path} is not an image set facegan can read.", "Pass a folder, zip or prepared dataset."
        )
    return DecodedSource(images, workers, strict)


def open_generator(ckpt: str | Path, n: int, seed: int, device: torch.device) -> GeneratorSource:
    return GeneratorSource(load_generator(ckpt, device), n, seed)


def resolve_inputs(
    paths: Sequence[Path],
    ckpt: Path | None,
    *,
    wanted: tuple[int, int],
    n: int,
    seed: int,
    device: torch.device,
    split: str | None = None,
    workers: int | None = None,
    strict: bool = False,
    allow_stats: bool = False,
) -> list[Input]:
    """The inputs of a metric: the positional paths, then the --ckpt samples; between wanted[0] and [1]."""
    total = len(paths) + (ckpt is not None)
    low, high = wanted
    if not low <= total <= high:
        need = f"{low}" if low == high else f"{low} or {high}"
        raise FaceganError(
            f"This metric compares {need} input(s) but got {total} "
            f"({', '.join([*map(str, paths), *([f'--ckpt {ckpt}'] if ckpt else [])]) or 'none'}).",
            "Give folders, zips, prepared datasets (with --split) or .npz stats as arguments, and a generator "
            "checkpoint with --ckpt.",
        )
    inputs: list[Input] = [open_source(p, split, None, workers, strict, allow_stats) for p in paths]
    if ckpt is not None:
        inputs.append(open_generator(ckpt, n, seed, device))
    return inputs
