"""Attribute editing with a trained StarGAN / CCA-GAN / StarGAN+SAGAN checkpoint (`facegan edit`).

The checkpoint alone rebuilds G and D (family, configuration and attribute names are in its metadata).
An input's own attributes, which the flip targets and the reconstruction start from, are given by the
user or predicted by D's attribute head (StarGAN's D is an attribute classifier: logit > 0 = present).
Inputs are fitted to the model's square the way the training data was cut: the short side resized to the
model's resolution, then a centre crop (StarGAN's CenterCrop 178 + Resize 128 on a 178x218 CelebA image
gives the same square). Faces are not detected or aligned here: align photos first with
`facegan prepare faces`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from facegan_cli.core.checkpoint import Checkpoint
from facegan_cli.core.errors import FaceganError
from facegan_cli.data.crops import center_crop, fit_square, resize_short_side
from facegan_cli.data.imageio import RejectedImage, open_rgb
from facegan_cli.models.loading import build_from, load_model, load_weights
from facegan_cli.models.registry import Family
from facegan_cli.models.stargan import instance_statistics


@dataclass
class AttributeEditor:
    G: nn.Module
    D: nn.Module | None  # None: an imported generator without its discriminator
    family: str
    attrs: list[str]
    resolution: int
    step: int
    path: Path
    device: torch.device

    def to_tensor(self, pixels: np.ndarray) -> torch.Tensor:
        """N x H x W x 3 uint8 -> N x 3 x H x W floats in [-1, 1] on the editor's device."""
        t = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float()
        return (t / 127.5 - 1.0).to(self.device)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """0/1 attributes by D's class head (logit > 0)."""
        if self.D is None:
            raise FaceganError(
                f"{self.path} holds no discriminator to predict the inputs' own attributes.",
                f"Give them all with --source ({','.join(f'{a}=0' for a in self.attrs)}, with 1 where present).",
            )
        _, logits = self.D(images)
        return (logits > 0).float()

    def translate(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """G(x, c) with per-image instance statistics (as yunjey's test()); floats in [-1, 1]."""
        with instance_statistics(self.G):
            return self.G(images, targets.to(self.device)).float()


def load_editor(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> AttributeEditor:
    """The attribute editor (G and D) of a run directory, its checkpoints/ folder or a checkpoint file."""
    return load_model(path, device, kind="editor")


def editor_loader(ckpt: Checkpoint, family: Family, device: torch.device) -> AttributeEditor:
    """The loader of the attribute-editing families: G (run with per-image statistics) and D (its attribute
    head predicts an input's own attributes), D in eval mode."""
    config = ckpt.meta["model"]
    G = load_weights(ckpt, "G", build_from(ckpt, family.build_generator, config, "G"), family.name)
    D = None
    if "D" in ckpt.modules or not ckpt.meta.get("imported_from"):  # an imported G may come without its D
        D = load_weights(ckpt, "D", build_from(ckpt, family.build_discriminator, config, "D"), family.name)
        D.to(device).eval()
    G.to(device)
    return AttributeEditor(G, D, family.name, list(config["attrs"]), int(config["resolution"]), ckpt.step, ckpt.path,
                           device)


def fit_face(path: str | os.PathLike[str], resolution: int, fit: dict[str, str] | None = None) -> np.ndarray:
    """An image file as the model's res x res x 3 uint8 input: short side resized, then centre-cropped, or as
    the model's `fit` says (data.crops.fit_square: an imported model fits inputs as its project does)."""
    try:
        image = open_rgb(path)
    except RejectedImage as exc:
        raise FaceganError(f"Cannot read {path}: {exc.reason}.", "Pass a JPEG/PNG image or a folder of them.") from exc
    if fit is not None:
        try:
            image = fit_square(image, resolution, fit)
        except RejectedImage as exc:
            raise FaceganError(f"Cannot use {path}: {exc.reason}.", "Crop it to a less elongated shape.") from exc
    elif image.size != (resolution, resolution):
        try:
            image = center_crop(resize_short_side(image, resolution, Image.LANCZOS), resolution)
        except RejectedImage as exc:  # a long thin image would be resized beyond the pixel limit
            raise FaceganError(f"Cannot use {path}: {exc.reason}.", "Crop it to a less elongated shape.") from exc
    return np.asarray(image, dtype=np.uint8)


def parse_assignments(items: list[str]) -> dict[str, int]:
    """['Blond_Hair=1', 'Male=0'] -> {'Blond_Hair': 1, 'Male': 0}."""
    out: dict[str, int] = {}
    for item in items:
        for part in (p.strip() for p in item.split(",") if p.strip()):
            name, sep, value = part.partition("=")
            if not sep or value.strip() not in ("0", "1"):
                raise FaceganError(f"{part!r} is not NAME=0 or NAME=1.", "Write e.g. --set Blond_Hair=1.")
            out[name.strip()] = int(value)
    return out


def describe_attrs(attrs: list[str], row: torch.Tensor) -> dict[str, Any]:
    return {name: int(v) for name, v in zip(attrs, row.tolist())}
