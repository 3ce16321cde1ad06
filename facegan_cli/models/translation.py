"""What a loaded image translator offers, whatever its family (every family of kind "translator").

A translator maps images of domain A to domain B (`a2b`) and back (`b2a`). `facegan translate`,
`facegan eval translation` and the metrics' translated inputs (models.sources.TranslatorSource) use only
this interface, so a new translator family (the CycleGAN baseline, its latent VAE variant, ...) needs
nothing but a loader that returns one of these.

Images are float tensors N x 3 x H x W in [-1, 1] on the translator's device; outputs are float32 in
[-1, 1]. Inputs are fitted to `input_size(...)` by the caller (fully convolutional translators take any
sides that are multiples of `size_multiple`, which apply.whole_image pads to; translators with dense layers
only `resolution`).
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.data.domains import DIRECTIONS as DIRECTIONS  # where callers import them from
from facegan_cli.data.domains import SOURCE_DOMAIN as SOURCE_DOMAIN
from facegan_cli.data.domains import TARGET_DOMAIN as TARGET_DOMAIN
from facegan_cli.data.imageio import check_side_option
from facegan_cli.models.loading import load_model


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise FaceganError(f"--direction {direction!r} is not a direction.", "Use a2b or b2a.")
    return direction


def downsampling_multiple(*nets: torch.nn.Module) -> int:
    """The side multiple fully convolutional `nets` take: 2 ** (their stride-2 layers on the longest path),
    i.e. the product of the strides of their convolutions and poolings (ResNet G: 4; a 256 U-Net: 256)."""
    multiple = 1
    for net in nets:
        factor = 1
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d)):
                stride = module.stride if isinstance(module.stride, int) else module.stride[0]
                factor *= int(stride or 1)
        multiple = max(multiple, factor)
    return multiple


def to_model_input(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """N x H x W x 3 uint8 -> N x 3 x H x W float in [-1, 1] on `device` (Normalize(0.5, 0.5) of ToTensor)."""
    t = torch.from_numpy(np.ascontiguousarray(pixels)).to(device).permute(0, 3, 1, 2).float()
    return t / 127.5 - 1.0


@dataclass
class Translator(abc.ABC):
    """A trained translator in inference mode (see the module docstring)."""

    family: str
    config: dict[str, Any]
    resolution: int  # the square it was trained on
    step: int
    path: Path
    device: torch.device

    value_range = (-1.0, 1.0)
    size_multiple = 4  # sides its networks take are multiples of this (0: only `resolution`, dense layers)

    def input_size(self, size: int | None) -> int:
        """The side inputs are scaled to (the short side; the square of a translator with dense layers):
        `size` when given and allowed, else `resolution`. Fully convolutional translators take any side, padded
        to `size_multiple` and cropped back (apply.whole_image)."""
        if size is None or size == self.resolution:
            return self.resolution
        check_side_option(size, "--size")  # before any image of that size is made
        if not self.size_multiple:
            raise UsageProblem(
                f"{self.path} ({self.family}) translates only {self.resolution}x{self.resolution} images, not "
                f"{size}x{size}.",
                "Leave --size out.",
            )
        if size < self.size_multiple:
            raise UsageProblem(f"--size {size} is smaller than {self.size_multiple}, the smallest side this "
                               "translator's networks take.", f"Use e.g. --size {self.resolution}.")
        return size

    @abc.abstractmethod
    def translate(self, images: torch.Tensor, direction: str) -> torch.Tensor:
        """G(x) for a2b, F(y) for b2a."""

    def reconstruct(self, translated: torch.Tensor, direction: str) -> torch.Tensor:
        """The way back: F(G(x)) from G(x) for a2b (the cycle), G(F(y)) from F(y) for b2a."""
        return self.translate(translated, "b2a" if direction == "a2b" else "a2b")

    @abc.abstractmethod
    def judged_real(self, images: torch.Tensor, domain: str) -> torch.Tensor:
        """Bool per image (per pack of images for packed discriminators): does the discriminator of `domain`
        call it real? Without any input noise (the held-out 'adversarial accuracy')."""

    @property
    def pack(self) -> int:
        """Images the discriminators judge together (PacGAN); judged_real returns one answer per pack."""
        return 1

    def batches(self, images: torch.Tensor, direction: str, batch_size: int) -> torch.Tensor:
        """translate() batch by batch, without gradients; float32 on the translator's device."""
        with torch.no_grad():
            parts = [self.translate(images[i : i + batch_size].to(self.device), direction)
                     for i in range(0, images.shape[0], batch_size)]
        return torch.cat(parts) if parts else images.new_zeros((0, *images.shape[1:]))


def load_translator(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Translator:
    """The translator of a run directory, its checkpoints/ folder or a checkpoint file (any translator family;
    a checkpoint of another kind is refused with the command that uses it)."""
    return load_model(path, device, kind="translator")
