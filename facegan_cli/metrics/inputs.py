"""What a metric reads: its positional paths, `--ckpt` samples and stats files, resolved into sources.

Image inputs are sources of the one hierarchy of `facegan_cli.data.sources` (folders, zips, prepared
datasets) and of `facegan_cli.models.generated_sources` (a generator checkpoint's samples, a translator's
translations); they read files through the project's one decode-and-reject path, skip and count unusable
images (`rejects`), or stop the command with `strict`. Two deliberate differences from the references' file handling, both
invisible on ordinary RGB JPEG/PNG folders: folders are read recursively with every image suffix in any
case (pytorch-fid and torch-fidelity read only the top level, some lower-case suffixes), and EXIF
rotation and 16-bit scaling are applied (the references' PIL `convert("RGB")` ignores the first and
clips the second). A stats .npz (`StatsInput`) holds only a mean and a covariance, usable by FID alone.
`-` reads image paths from stdin, one a line (`ls fakes/*.png | facegan metrics fid - real/`), through the
same reader as every other command's `-` (data.sources.open_image_list).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from facegan_cli.core.errors import FaceganError
from facegan_cli.data.sources import (
    DecodedSource,
    ImageSource,
    PreparedSource,
    open_image_list,
    open_image_set,
)
from facegan_cli.metrics.stats import GaussianStats, load_stats
from facegan_cli.models.generated_sources import checkpoint_source


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
    """A folder, zip, prepared dataset, `-` (image paths on stdin) or (with `allow_stats`) a stats .npz."""
    if os.fspath(path) == "-":
        return open_image_list("-", "INPUT", resolution=resolution, workers=workers, strict=strict)
    path = Path(path)
    if path.suffix.lower() == ".npz":
        if not allow_stats:
            raise FaceganError(
                f"{path} is a statistics file: it holds only a mean and a covariance, which this metric cannot use.",
                "Pass the images themselves (a folder, zip or prepared dataset); stats files work with `metrics fid`.",
            )
        return StatsInput(path)
    return open_image_set(path, split, resolution, workers, strict)


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
    translate: Path | None = None,
    direction: str | None = None,
    resolution: int | None = None,
) -> list[Input]:
    """The inputs of a metric: the positional paths, then the --ckpt samples (a generator's, or a translator's
    translations of `translate` in `direction`); between wanted[0] and [1]."""
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
    inputs: list[Input] = [open_source(p, split, resolution, workers, strict, allow_stats) for p in paths]
    if ckpt is not None:
        inputs.append(checkpoint_source(ckpt, device, n=n, seed=seed, translate=translate, direction=direction,
                                        split=split, workers=workers, strict=strict))
    elif translate is not None:
        raise FaceganError(f"--translate {translate} needs the translator that translates it.",
                           "Pass the translator's run as --ckpt.")
    return inputs


def at_resolution(source: ImageSource, resolution: int) -> ImageSource:
    """`source` read as resolution x resolution squares: a prepared dataset's level of that size (a
    `--levels` dataset holds every level), or a folder's, zip's or list's images fitted to it; a model's
    samples cannot be resized here (a FaceganError says so)."""
    if source.resolution == resolution:
        return source
    if isinstance(source, PreparedSource):
        return PreparedSource(source.dataset, source.split or "all", resolution)
    if isinstance(source, DecodedSource):
        fitted = copy.copy(source)
        fitted._resolution = resolution
        fitted._fingerprint = None  # the resolution is part of a decoded source's identity
        fitted.rejects = []
        return fitted
    raise FaceganError(
        f"{source.label} makes {source.resolution}x{source.resolution} images, not {resolution}x{resolution}.",
        f"Pass --resolution {source.resolution} (the model's own), or leave --resolution out.",
    )
