"""Rebuild a trained generator from a checkpoint file alone, ready to turn latents into images.

A facegan checkpoint carries `family`, `model` (the resolved configuration) and `generator` (which of its
modules holds the weights to sample from: "G_ema" where the family keeps an EMA copy, else "G") in its
metadata, so no run directory or config.json is needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facegan_cli.core.checkpoint import load_checkpoint
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import Progress
from facegan_cli.data.grid import to_uint8
from facegan_cli.models import registry
from facegan_cli.models.attr_classifier import CLASSIFIER_FAMILY
from facegan_cli.models.editing import EDIT_FAMILIES

# The pixel range each output activation produces; families that train on [-1, 1] data use tanh or a
# linear head, so (-1, 1) is the fallback for names not listed.
_OUTPUT_RANGES: dict[str, tuple[float, float]] = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}


@dataclass
class LoadedGenerator:
    """A generator in eval mode on its device, with what is needed to interpret its output."""

    module: nn.Module
    family: str
    config: dict[str, Any]
    z_dim: int
    value_range: tuple[float, float]
    resolution: int
    step: int
    path: Path
    weights: str  # the checkpoint module the weights came from ("G_ema" or "G")
    device: torch.device

    def batches(
        self, z: torch.Tensor, batch_size: int = 64, description: str | None = None
    ) -> Iterator[torch.Tensor]:
        """Yield generated image batches (on the generator's device) for the rows of `z`, in order."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise FaceganError(
                f"Latents of shape {tuple(z.shape)} do not fit the generator of {self.path}, which takes "
                f"{self.z_dim}-d vectors.",
                "Use latents saved for this checkpoint's family and preset, or draw new ones with --seed.",
            )
        if batch_size < 1:
            raise FaceganError(f"--batch-size {batch_size} must be at least 1.", "Use e.g. --batch-size 64.")
        n = z.shape[0]
        with Progress(n, description or "generating", unit="img") as bar, torch.no_grad():
            for start in range(0, n, batch_size):
                chunk = z[start : start + batch_size].to(self.device, torch.float32)
                images = self.module(chunk).float()
                bar.advance(chunk.shape[0])
                yield images

    def generate(self, z: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """All images for the rows of `z` as one float tensor on the CPU (N x 3 x H x W, in value_range)."""
        if z.shape[0] == 0:
            return torch.empty(0, 3, self.resolution, self.resolution)
        return torch.cat([batch.cpu() for batch in self.batches(z, batch_size)])

    def pixels(self, z: torch.Tensor, batch_size: int = 64, description: str | None = None) -> np.ndarray:
        """All images for the rows of `z` as N x H x W x 3 uint8, converted batch by batch to save memory."""
        parts = [to_uint8(batch, self.value_range) for batch in self.batches(z, batch_size, description)]
        if not parts:
            return np.zeros((0, self.resolution, self.resolution, 3), dtype=np.uint8)
        return np.concatenate(parts)


def value_range_of(meta: dict[str, Any], config: dict[str, Any]) -> tuple[float, float]:
    """The pixel range of a generator's output, from explicit metadata or its output activation."""
    explicit = meta.get("value_range") or config.get("value_range")
    if explicit is not None:
        lo, hi = explicit
        return float(lo), float(hi)
    return _OUTPUT_RANGES.get(str(config.get("output", "tanh")), (-1.0, 1.0))


def load_generator(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> LoadedGenerator:
    """Load the sampling generator of a run directory, its checkpoints/ folder or a checkpoint file."""
    device = torch.device(device)
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    family, config = meta.get("family"), meta.get("model")
    if not isinstance(family, str) or not isinstance(config, dict):
        raise FaceganError(
            f"{ckpt.path} is not a facegan generator checkpoint: its metadata names no model family and "
            "configuration.",
            "Pass a checkpoint written by `facegan train ...`.",
        )
    if family in EDIT_FAMILIES:
        raise FaceganError(
            f"{ckpt.path} is a {family} checkpoint: an attribute editor translates images to target attributes "
            "and draws nothing from latents, so it cannot be sampled.",
            f"Edit images with it instead: facegan edit --ckpt {ckpt.path} --input FACES --out edited/ "
            "(or score it with `facegan eval attributes`).",
        )
    if family == CLASSIFIER_FAMILY:
        raise FaceganError(
            f"{ckpt.path} is an attribute classifier checkpoint, not a generator.",
            "Use it with `facegan eval attributes --classifier`.",
        )
    if "z_dim" not in config:
        raise FaceganError(
            f"The model configuration stored in {ckpt.path} has no z_dim, so latents cannot be drawn for it.",
            "Pass a checkpoint written by `facegan train ...`.",
        )
    weights = str(meta.get("generator") or ("G_ema" if "G_ema" in ckpt.modules else "G"))
    if weights not in ckpt.modules:
        raise FaceganError(
            f"Checkpoint {ckpt.path} names generator weights {weights!r} but holds only "
            f"{', '.join(sorted(ckpt.modules)) or 'no modules'}.",
            "The file is damaged or was not written by `facegan train`; use another checkpoint of the run.",
        )
    try:
        module = registry.build_generator(family, config)
    except (KeyError, ValueError, TypeError) as exc:
        raise FaceganError(
            f"The model configuration stored in {ckpt.path} cannot be built ({type(exc).__name__}: {exc}).",
            "The checkpoint may come from a newer facegan; upgrade facegan or use a checkpoint it wrote.",
        ) from exc
    try:
        module.load_state_dict(ckpt.modules[weights], strict=True)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise FaceganError(
            f"The {weights} weights in {ckpt.path} do not fit the {family} generator its metadata describes "
            f"({first_line}).",
            "The file was edited or written by another program; use a checkpoint written by `facegan train`.",
        ) from exc
    module.to(device).eval()
    return LoadedGenerator(
        module=module,
        family=family,
        config=dict(config),
        z_dim=int(config["z_dim"]),
        value_range=value_range_of(meta, config),
        # A progressive family's checkpoint may be mid-growth: its generator says what it outputs now.
        resolution=int(getattr(module, "output_resolution", None) or config.get("resolution", 0)),
        step=ckpt.step,
        path=ckpt.path,
        weights=weights,
        device=device,
    )
