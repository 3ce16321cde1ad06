"""The template family: the smallest complete model family, to copy when you add one.

A family is two files, this model module and its trainer (facegan_cli/train/template_trainer.py), linked by
the registry entry at the bottom. To add yours:
  1. copy both files (models/NAME.py, train/NAME_trainer.py) and rename "template" everywhere in them;
  2. declare your settings in the config class (each is an option, a preset key and a config.json field at
     once), replace the networks below by yours, and the presets by your reference's settings (one preset
     per paper or implementation you reproduce);
  3. declare your reference's parameter counts in `reference_counts` (the family contract,
     tests/models/test_family_contract.py, builds every declared configuration and compares);
  4. write the update step in the trainer, and a `tiny` setting there so the contract trains it in seconds.
Nothing else changes: modules under models/ are discovered, `facegan train NAME`, `facegan models summary
NAME`, sampling, metrics and `--resume` come from the registry entry. Run `pytest -m unit tests` while
you work and `pytest tests/models/test_family_contract.py -k NAME` when the family trains.

The networks here are a plain DCGAN-like pair (a linear layer to 4x4, then upsample + 3x3 convolutions;
strided convolutions down to 4x4, then a linear logit), chosen for being short, not for quality.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from facegan_cli.models.config import FamilyConfig, setting
from facegan_cli.models.registry import Family, Reference, register, typed_config


@dataclass(kw_only=True)
class TemplateConfig(FamilyConfig):
    """Every setting of the family, declared once (models/config.py). A field with `help` is an option of
    `facegan train template` (`arch=True`: of `facegan models summary template` too); config.json's "model"
    record and the checkpoint's metadata are written from these fields and read back through them, so add a
    setting here and it reaches the command line, the record and --resume with no other edit (give it a
    default, and runs made before it existed read back with that default)."""

    family: ClassVar[str] = "template"
    preset: str
    resolution: int = setting(help="Image side: a power of two, 8 or more (preset: 32).", min=8, arch=True)
    z_dim: int = setting(help="Latent size (preset: 64).", min=1, arch=True)
    width: int = setting(help="Filters at the highest resolution; doubled at each lower one, up to 8x (preset: "
                         "32).", min=1, arch=True)
    batch: int = setting(help="Batch size (preset: 64).", min=1)
    lr: float = setting(help="Adam learning rate (preset: 2e-4). With --resume: from then on.", positive=True)
    betas: list[float]  # no help: a preset value only, not an option


# One preset per configuration you reproduce; each must give every field without a default (checked when
# the family registers).
PRESETS: dict[str, dict[str, Any]] = {
    "small": {"resolution": 32, "z_dim": 64, "width": 32, "batch": 64, "lr": 2e-4, "betas": [0.5, 0.999]},
}


def _widths(config: TemplateConfig) -> list[int]:
    """Filters per block, from 4x4 up to the image side (the same list G walks up and D walks down)."""
    resolution, width = config.resolution, config.width
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"resolution {resolution} is not a power of two of at least 8")
    blocks = int(math.log2(resolution)) - 2  # 4x4 -> resolution in `blocks` doublings
    return [width * min(2 ** (blocks - i), 8) for i in range(blocks + 1)]


class TemplateGenerator(nn.Module):
    """z (B x z_dim) -> images (B x 3 x res x res) in [-1, 1]."""

    def __init__(self, config: TemplateConfig | dict[str, Any]) -> None:
        super().__init__()
        config = typed_config("template", config)  # a record (checkpoint metadata) is checked here
        widths = _widths(config)
        self.first = widths[0]
        self.project = nn.Linear(config.z_dim, widths[0] * 16)
        blocks: list[nn.Module] = []
        for inner, outer in zip(widths, widths[1:]):
            blocks += [nn.Upsample(scale_factor=2), nn.Conv2d(inner, outer, 3, padding=1), nn.BatchNorm2d(outer),
                       nn.ReLU(True)]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.project(z.flatten(1))).view(-1, self.first, 4, 4)
        return torch.tanh(self.to_rgb(self.blocks(x)))


class TemplateDiscriminator(nn.Module):
    """images -> one logit per image (B)."""

    def __init__(self, config: TemplateConfig | dict[str, Any]) -> None:
        super().__init__()
        widths = _widths(typed_config("template", config))[::-1]  # from the image side down to 4x4
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1), nn.LeakyReLU(0.2, True)]
        for inner, outer in zip(widths, widths[1:]):
            layers += [nn.Conv2d(inner, outer, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.logit = nn.Linear(widths[-1] * 16, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(images).flatten(1)).squeeze(1)


register(
    Family(
        name="template",
        kind="generator",  # what its checkpoints are used as: sampling, latent tools, metrics --ckpt
        presets=PRESETS,
        default_preset="small",
        build_generator=TemplateGenerator,
        build_discriminator=TemplateDiscriminator,
        describe="the minimal example family to copy when adding one (models/template.py + "
        "train/template_trainer.py)",
        training="facegan_cli.train.template_trainer:TRAINING",
        config=TemplateConfig,
        # A real family's numbers come from its reference implementation or paper; the template has none,
        # so these are its own, pinned so that a change to the networks is made on purpose.
        reference_counts={
            "small": Reference({"generator": 654_851, "discriminator": 693_569}, source="facegan's template"),
        },
    )
)
