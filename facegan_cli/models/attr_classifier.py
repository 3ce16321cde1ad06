"""A small CNN attribute classifier, the judge of attribute edits (`facegan train attr-classifier`).

StarGAN's own evaluation measures how often a translated image shows the target attribute with a
classifier trained on the same data. facegan's is deliberately plain and fast: stages of
Conv3x3 -> BatchNorm -> ReLU -> Conv4x4 stride 2 -> BatchNorm -> ReLU, the width doubling per stage up to
8x the first (`width`, default 32), until the map is 4x4; then global average pooling, dropout and one
linear layer with a logit per attribute (independent sigmoids: CelebA rows may have no hair colour).
Inputs are images in [-1, 1] at the classifier's resolution; a logit > 0 means "present".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from facegan_cli.core.checkpoint import Checkpoint
from facegan_cli.models.config import FamilyConfig, setting
from facegan_cli.models.loading import load_model, load_network
from facegan_cli.models.registry import Family, Reference, register, typed_config
from facegan_cli.models.stargan import STARGAN_ATTRS

CLASSIFIER_FAMILY = "attr-classifier"
@dataclass(kw_only=True)
class ClassifierConfig(FamilyConfig):
    """The classifier's settings (facegan's own: no reference implementation). Its record names no preset;
    `eval_split` defaults to None."""

    family: ClassVar[str] = CLASSIFIER_FAMILY
    resolution: int = setting(
        help="Input size, a power of two of at least 8 (default: train: the data's, at most 128, inputs of other sizes "
        "are resized; models summary: 128).", arch=True)
    width: int = setting(help="First stage's channels (default: 32).", min=1, arch=True)
    max_width_factor: int
    dropout: float
    lr: float = setting(help="Adam learning rate (cosine decay to 0; default: 1e-3). With --resume: from then on.",
                        positive=True)
    weight_decay: float
    batch: int = setting(help="Batch size (default: 64).", min=1)
    steps: int  # the run's length (0: in epochs), for the cosine decay
    attrs: list[str]  # --attrs (parsed by the trainer)
    # The held-out split the finished run is measured on (decided by training; bookkeeping, so a classifier
    # checkpoint written by a script without it still loads).
    eval_split: str | None = setting(None, help="Explicit held-out split instead.")


CLASSIFIER_DEFAULTS: dict[str, Any] = {
    "resolution": 128, "width": 32, "max_width_factor": 8, "dropout": 0.2, "lr": 1e-3, "weight_decay": 1e-4,
    "batch": 64, "steps": 3000,
}


def stage_count(resolution: int) -> int:
    """Stride-2 stages that take `resolution` down to 4x4 (at least one)."""
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"resolution {resolution} is not a power of two of at least 8")
    return max(1, resolution.bit_length() - 3)


class AttributeClassifier(nn.Module):
    """images B x 3 x R x R in [-1, 1] -> logits B x len(attrs)."""

    def __init__(self, n_attrs: int, resolution: int = 128, width: int = 32, max_width_factor: int = 8,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.resolution = resolution
        layers: list[nn.Module] = []
        ch_in, ch = 3, width
        for i in range(stage_count(resolution)):
            ch = width * min(2**i, max_width_factor)
            layers += [
                nn.Conv2d(ch_in, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
                nn.Conv2d(ch, ch, 4, 2, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
            ]
            ch_in = ch
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(ch, n_attrs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).mean(dim=(2, 3))
        return self.head(self.dropout(h))


def build_classifier(config: ClassifierConfig | dict[str, Any]) -> AttributeClassifier:
    c = typed_config(CLASSIFIER_FAMILY, config)
    return AttributeClassifier(len(c.attrs), c.resolution, c.width, c.max_width_factor, c.dropout)


@dataclass
class LoadedClassifier:
    net: AttributeClassifier
    attrs: list[str]
    resolution: int
    step: int
    path: Path
    device: torch.device

    @torch.no_grad()
    def logits(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Logits for float images in [-1, 1] (any square size: resized to the classifier's first)."""
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(self.device, torch.float32)
            if x.shape[-1] != self.resolution:
                x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", antialias=True,
                                  align_corners=False)
            out.append(self.net(x).float())
        if not out:
            return torch.zeros(0, len(self.attrs), device=self.device)
        return torch.cat(out)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """0/1 attributes (logit > 0), B x len(attrs)."""
        return (self.logits(images) > 0).float()


def load_classifier(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> LoadedClassifier:
    """The attribute classifier of a run directory, its checkpoints/ folder or a checkpoint file."""
    return load_model(path, device, kind="classifier")


def classifier_loader(ckpt: Checkpoint, family: Family, device: torch.device) -> LoadedClassifier:
    config = ckpt.meta["model"]
    net = load_network(ckpt, "C", build_classifier, config, family.name, device)
    return LoadedClassifier(net, list(config["attrs"]), int(config["resolution"]), ckpt.step, ckpt.path, device)


register(Family(
    name=CLASSIFIER_FAMILY,
    kind="classifier",
    presets={"default": {**CLASSIFIER_DEFAULTS, "attrs": list(STARGAN_ATTRS)}},
    default_preset="default",
    describe="Attribute classifier (the judge of attribute edits, StarGAN's evaluation protocol)",
    training="facegan_cli.train.classifier_trainer:TRAINING",
    loader=classifier_loader,
    config=ClassifierConfig,
    networks=lambda config: {"classifier": build_classifier(config)},
    # No reference implementation: facegan's own architecture (models/attr_classifier.py) at its default 128x128,
    # width 32 and 5 attributes, counted when it was written; a change to it must change this on purpose.
    reference_counts={"default": Reference({"classifier": 3_423_205}, source="facegan (no reference implementation)")},
))
