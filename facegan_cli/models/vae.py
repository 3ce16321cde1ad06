"""The VAE of seed 004's CycleGAN+VAE (T:644-657; specs/cyclegan.md 4): one VAE over both image domains.

The thesis gives no architecture; this one is the spec's DEFAULT. At 64x64:
  encoder  Conv4 s2 p1 3->32 (no BN), then 32->64->128->256 (BN), LeakyReLU 0.2 after each: 256 x 4 x 4,
           flattened, then two Linear heads to the mean and the log-variance of a 128-d code (1,739,872 params);
  decoder  Linear 128 -> 256*4*4, then 3 x [Upsample x2 nearest, Conv3 p1, BN, ReLU] 256->128->64->32 and
           Upsample x2, Conv3 -> 3, Tanh (916,995 params; 2,656,867 in all).
Other sizes (multiples of 16) change only the Linear layers (256 x (size/16)^2 features).

A trained VAE is also a generator: `facegan sample --ckpt VAE_RUN` decodes N(0, I) codes. With `per_domain`
the run holds one VAE per domain (E_A/G_A, E_B/G_B); sampling then uses domain A's decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from facegan_cli.models.config import FamilyConfig, setting
from facegan_cli.models.registry import Family, Reference, register, typed_config

RECONS = ("l1", "mse")


@dataclass(kw_only=True)
class VAEConfig(FamilyConfig):
    """The VAE's settings (our DEFAULTs: the thesis names no architecture)."""

    family: ClassVar[str] = "vae"
    preset: str
    resolution: int = setting(help="Image size, a multiple of 16 (64).", min=16, arch=True)
    z_dim: int = setting(help="Code size (128).", min=1, arch=True)
    width: int = setting(help="Encoder's first conv width; the decoder mirrors it (32).", min=1, arch=True)
    batch: int = setting(help="Images of each domain per step (32).", min=1)
    lr: float = setting(help="Adam learning rate (1e-3). With --resume: from then on.", positive=True)
    betas: list[float]
    recon: str = setting(help="Reconstruction loss: l1 (default) or mse, summed per image.", choices=RECONS)
    beta_kl: float = setting(help="Weight of the KL term (1).", non_negative=True)
    per_domain: bool = setting(help="One VAE per domain instead of one shared VAE (the thesis: shared).",
                               flag="--per-domain/--shared")
    output: str


VAE_DEFAULTS: dict[str, Any] = {
    "resolution": 64, "z_dim": 128, "width": 32, "batch": 32, "lr": 1e-3, "betas": [0.9, 0.999], "recon": "l1",
    "beta_kl": 1.0, "per_domain": False, "output": "tanh",
}
def _check(resolution: int) -> int:
    if resolution % 16 or resolution < 16:
        raise ValueError(f"VAE resolution {resolution} is not a multiple of 16")
    return resolution // 16


class Encoder(nn.Module):
    """Image -> (mean, log-variance) of its code."""

    def __init__(self, resolution: int = 64, z_dim: int = 128, width: int = 32) -> None:
        super().__init__()
        side = _check(resolution)
        layers: list[nn.Module] = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = width
        for _ in range(3):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.features = nn.Sequential(*layers)
        self.mu = nn.Linear(ch * side * side, z_dim)
        self.logvar = nn.Linear(ch * side * side, z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).flatten(1)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """Code -> image in [-1, 1]."""

    def __init__(self, resolution: int = 64, z_dim: int = 128, width: int = 32) -> None:
        super().__init__()
        self.side = _check(resolution)
        self.channels = width * 8
        self.z_dim = z_dim
        self.fc = nn.Linear(z_dim, self.channels * self.side * self.side)
        layers: list[nn.Module] = []
        ch = self.channels
        for _ in range(3):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch // 2, 3, 1, 1),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, 3, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, self.channels, self.side, self.side))


def build_encoder(config: VAEConfig | dict[str, Any]) -> Encoder:
    c = typed_config("vae", config)
    return Encoder(c.resolution, c.z_dim, c.width)


def build_decoder(config: VAEConfig | dict[str, Any]) -> Decoder:
    c = typed_config("vae", config)
    return Decoder(c.resolution, c.z_dim, c.width)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row: 1/2 sum(exp(logvar) + mu^2 - 1 - logvar)."""
    return 0.5 * (logvar.exp() + mu.square() - 1.0 - logvar).sum(dim=1)


register(Family(
    name="vae",
    kind="generator",
    presets={"thesis64": dict(VAE_DEFAULTS)},
    default_preset="thesis64",
    build_generator=build_decoder,
    describe="VAE over two image domains (seed 004's CycleGAN+VAE, stage 1); samples decode N(0, I) codes",
    training="facegan_cli.train.vae_trainer:TRAINING",
    config=VAEConfig,
    networks=lambda config: {"encoder": build_encoder(config), "decoder": build_decoder(config)},
    reference_counts={"thesis64": Reference({"encoder": 1_739_872, "decoder": 916_995}, source="specs/cyclegan.md")},
))
