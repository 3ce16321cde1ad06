"""Rebuild a trained model from a checkpoint file alone, through its family's loader.

A facegan checkpoint carries `family` and `model` (the resolved configuration) in its metadata, so no run
directory or config.json is needed: `load_model` finds the family in the registry and calls the loader the
family names, which returns the model of its kind (a LoadedGenerator for generators: which of its modules
holds the sampling weights is in the metadata's `generator`, "G_ema" where the family keeps an EMA copy).
Nothing here names a family.
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

from facegan_cli.core.checkpoint import Checkpoint, load_checkpoint
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.progress import Progress
from facegan_cli.data.crops import input_fit_problem
from facegan_cli.data.grid import to_uint8
from facegan_cli.models import registry

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
            raise UsageProblem(f"--batch-size {batch_size} must be at least 1.", "Use e.g. --batch-size 64.")
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


def family_of(ckpt: Checkpoint) -> tuple[registry.Family, dict[str, Any]]:
    """The registered family and model configuration a checkpoint's metadata names."""
    family, config = ckpt.meta.get("family"), ckpt.meta.get("model")
    if not isinstance(family, str) or not isinstance(config, dict):
        raise FaceganError(
            f"{ckpt.path} is not a facegan model checkpoint: its metadata names no model family and "
            "configuration.",
            "Pass a checkpoint written by `facegan train ...`.",
        )
    found = registry.families()
    if family not in found:
        raise FaceganError(
            f"{ckpt.path} is a checkpoint of the model family {family!r}, which this facegan does not know.",
            f"Upgrade facegan, or install the package that adds {family}; known families: {', '.join(sorted(found))}.",
        )
    # Checked against the family's settings (an unknown or missing key names the file), defaults filled in.
    config = ckpt.meta["model"] = found[family].record(config, f"the metadata of {ckpt.path}")
    return found[family], config


def load_model(
    path: str | os.PathLike[str], device: torch.device | str = "cpu", kind: str | tuple[str, ...] | None = None
) -> Any:
    """Load a run directory, its checkpoints/ folder or a checkpoint file through its family's loader.

    With `kind` (one kind, or the kinds a command can use), a checkpoint of another kind is refused with
    the command that does use it.
    """
    device = torch.device(device)
    ckpt = load_checkpoint(path)
    family, _config = family_of(ckpt)
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and family.kind not in kinds:
        wanted = " or ".join(registry.KINDS[k][0] for k in kinds)
        raise FaceganError(
            f"{ckpt.path} is a {family.name} checkpoint, {family.kind_text}, not {wanted}, so it cannot be used here.",
            f"Use it with `{registry.KINDS[family.kind][1].format(path=ckpt.path)}`.",
        )
    if not family.checkpoint_loader:
        raise FaceganError(f"The {family.name} family gives no checkpoint loader.", "This is a facegan bug.")
    model = registry.resolve_reference(family.checkpoint_loader)(ckpt, family, device)
    fit = ckpt.meta.get("input_fit")
    if fit is not None and hasattr(model, "__dict__"):
        # How its inputs are fitted, where it is not facegan's default (an imported model's project's way).
        problem = input_fit_problem(fit)
        if problem:
            raise FaceganError(f"Checkpoint {ckpt.path} has invalid facegan metadata: {problem}.",
                               "It was edited; import the model again, or use a checkpoint facegan wrote.")
        model.input_fit = fit
    return model


def load_generator(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> LoadedGenerator:
    """Load the sampling generator of a run directory, its checkpoints/ folder or a checkpoint file."""
    return load_model(path, device, kind="generator")


def load_weights(ckpt: Checkpoint, name: str, module: nn.Module, family: str) -> nn.Module:
    """`module` with the checkpoint's `name` weights, or a FaceganError naming what does not fit."""
    if name not in ckpt.modules:
        raise FaceganError(
            f"Checkpoint {ckpt.path} holds no {name} weights (it holds {', '.join(sorted(ckpt.modules)) or 'none'}).",
            "The file is damaged or was not written by `facegan train`; use another checkpoint of the run.",
        )
    try:
        module.load_state_dict(ckpt.modules[name], strict=True)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise FaceganError(
            f"The {name} weights in {ckpt.path} do not fit the {family} model its metadata describes ({first_line}).",
            "The file was edited or written by another program; use a checkpoint written by `facegan train`.",
        ) from exc
    return module


def _built(ckpt: Checkpoint, builder: Any, config: dict[str, Any]) -> nn.Module:
    try:
        return builder(config)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise FaceganError(
            f"The model configuration stored in {ckpt.path} cannot be built ({type(exc).__name__}: {exc}).",
            "The checkpoint may come from a newer facegan, or its metadata was edited; upgrade facegan or use a "
            "checkpoint it wrote.",
        ) from exc


def _shape_mismatch(expected: dict[str, torch.Tensor], stored: dict[str, torch.Tensor]) -> str:
    """The first difference between a network's state dict and a checkpoint's weights ("" when none)."""
    for key, tensor in expected.items():
        if key not in stored:
            return f"{key} is missing"
        if tuple(tensor.shape) != tuple(stored[key].shape):
            return f"{key} is {tuple(stored[key].shape)} in the file but {tuple(tensor.shape)} in the model"
    extra = sorted(set(stored) - set(expected))
    return f"{extra[0]} is not part of the model" if extra else ""


def build_from(ckpt: Checkpoint, builder: Any, config: dict[str, Any], name: str | None = None) -> nn.Module:
    """builder(config), with a configuration that cannot be built reported as the checkpoint's problem.

    The network is first built on the meta device (no memory) and checked against the checkpoint's `name`
    weights, shape by shape, before it is built for real: a metadata value that was edited (an `ngf` of
    100000 would ask for hundreds of GB) is refused here, naming the first tensor that does not fit.
    """
    try:
        with torch.device("meta"):
            probe = builder(config)
    except (KeyError, ValueError, TypeError, AttributeError):
        probe = _built(ckpt, builder, config)  # the same error, reported as the configuration's
    except Exception:  # a builder that cannot run on the meta device: the weights are checked at load instead
        probe = None
    if probe is not None and name is not None and name in ckpt.modules:
        mismatch = _shape_mismatch(probe.state_dict(), ckpt.modules[name])
        if mismatch:
            raise FaceganError(
                f"The {name} weights in {ckpt.path} do not fit the {ckpt.meta.get('family')} model its metadata "
                f"describes ({mismatch}), so the network was not built.",
                "The file was edited or written by another program; use a checkpoint written by `facegan train`.",
            )
    return _built(ckpt, builder, config)


def load_network(
    ckpt: Checkpoint, name: str, builder: Any, config: dict[str, Any], family: str, device: torch.device
) -> nn.Module:
    """The checkpoint's `name` module, built from `config` by `builder`, on `device` in eval mode."""
    return load_weights(ckpt, name, build_from(ckpt, builder, config, name), family).to(device).eval()


def generator_loader(ckpt: Checkpoint, family: registry.Family, device: torch.device) -> LoadedGenerator:
    """The loader of generator families: the sampling weights ("G_ema" where kept, else "G") in eval mode."""
    config = ckpt.meta["model"]
    if "z_dim" not in config:
        raise FaceganError(
            f"The model configuration stored in {ckpt.path} has no z_dim, so latents cannot be drawn for it.",
            "Pass a checkpoint written by `facegan train ...`.",
        )
    weights = str(ckpt.meta.get("generator") or ("G_ema" if "G_ema" in ckpt.modules else "G"))
    module = load_network(ckpt, weights, family.build_generator, config, family.name, device)
    return LoadedGenerator(
        module=module,
        family=family.name,
        config=dict(config),
        z_dim=int(config["z_dim"]),
        value_range=value_range_of(ckpt.meta, config),
        # A progressive family's checkpoint may be mid-growth: its generator says what it outputs now.
        resolution=int(getattr(module, "output_resolution", None) or config.get("resolution", 0)),
        step=ckpt.step,
        path=ckpt.path,
        weights=weights,
        device=device,
    )
