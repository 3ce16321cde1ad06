"""What a loaded image translator offers, whatever its family (every family of kind "translator").

A translator maps images of domain A to domain B (`a2b`) and/or back (`b2a`). `facegan translate`,
`facegan eval translation`, `facegan explain`, the metrics' translated inputs
(models.generated_sources.TranslatorSource) and `facegan export` use only this interface, so a new
translator family (the CycleGAN baseline, its latent VAE variant, pix2pix, ...) needs nothing but a loader
that returns one of these. What a model has is DECLARED, and the commands read the declarations instead of
naming families:

  generators     direction -> the network that translates it ({"a2b": "G_A", "b2a": "G_B"} for a cycle model,
                 {"a2b": "G"} for a one-way pix2pix); `directions` are its keys, the first the default
  reconstructs   it translates back too (a cycle): `translate --grid` shows the reconstruction and `eval
                 translation` reports the reconstruction error
  conditional_d  its discriminator judges (input, output) pairs, not outputs alone (pix2pix): judged_real and
                 `explain` give it the input with the image
  stochastic     it has a test-time mode that keeps sampling (dropout on, batch statistics: junyanz's test.py
                 without --eval), which `translate --stochastic` turns on

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
from typing import Any, ClassVar

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
    min_size = 0  # the smallest --size it takes (0: size_multiple); other sides are padded to size_multiple
    # The declarations (see the module docstring); a family's translator overrides what differs.
    reconstructs: ClassVar[bool] = True
    conditional_d: ClassVar[bool] = False
    stochastic: ClassVar[bool] = False

    @property
    def generators(self) -> dict[str, str]:
        """Direction -> the network that translates it (default: a cycle model's G_A and G_B)."""
        return {"a2b": "G_A", "b2a": "G_B"}

    @property
    def directions(self) -> tuple[str, ...]:
        """The directions it translates, the default first."""
        return tuple(self.generators)

    def check_direction(self, direction: str | None) -> str:
        """`direction` (None: the default one), checked to be one this translator has."""
        if direction is None:
            return self.directions[0]
        check_direction(direction)
        if direction not in self.directions:
            raise UsageProblem(
                f"--direction {direction}: {self.path} ({self.family}) translates only {', '.join(self.directions)}.",
                f"Use --direction {self.directions[0]} (or leave --direction out).",
            )
        return direction

    def set_stochastic(self, on: bool) -> None:
        """Run as junyanz's test.py without --eval (dropout on, batch statistics) when `on`; families that
        declare `stochastic` override this."""
        if on:
            raise UsageProblem(f"{self.path} ({self.family}) has no stochastic test mode (no dropout, no batch "
                               "normalisation): its translations are deterministic.", "Leave --stochastic out.")

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
        smallest = self.min_size or self.size_multiple
        if size < smallest:
            raise UsageProblem(f"--size {size} is smaller than {smallest}, the smallest side this "
                               "translator's networks take.", f"Use e.g. --size {self.resolution}.")
        return size

    @abc.abstractmethod
    def translate(self, images: torch.Tensor, direction: str) -> torch.Tensor:
        """G(x) for a2b, F(y) for b2a."""

    def reconstruct(self, translated: torch.Tensor, direction: str) -> torch.Tensor:
        """The way back: F(G(x)) from G(x) for a2b (the cycle), G(F(y)) from F(y) for b2a (`reconstructs`
        translators only)."""
        return self.translate(translated, "b2a" if direction == "a2b" else "a2b")

    @abc.abstractmethod
    def judged_real(self, images: torch.Tensor, domain: str, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """Bool per image (per pack of images for packed discriminators): does the discriminator of `domain`
        call it real? Without any input noise (the held-out 'adversarial accuracy'). A `conditional_d`
        translator needs the `inputs` the images are (true or made) translations of."""

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
