"""CycleGAN+VAE (seed 004, T:644-657; specs/cyclegan.md 4): a CycleGAN between the codes of a frozen VAE.

z = mu(x) and w = mu(y) are the VAE encoder's means of an A and a B image. G_A and G_B are residual MLPs on
codes, z + [Linear 128->512, LReLU, Linear 512->512, LReLU, Linear 512->128](z) (394,368 parameters each);
D_A and D_B are MLPs on codes, Linear 128->512->256->1 with LReLU (197,633 each); LReLU slope 0.2 (DEFAULT).
At test time an image is translated as Dec(G_A(mu(x))). A checkpoint holds the frozen VAE too ("E"/"Dec",
or "E_A"/"Dec_A"/"E_B"/"Dec_B" for per-domain VAEs), so it translates without the VAE run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from facegan_cli.core.checkpoint import Checkpoint
from facegan_cli.models.config import FamilyConfig, setting
from facegan_cli.models.cyclegan import GAN_MODES, real_decision
from facegan_cli.models.loading import load_network
from facegan_cli.models.registry import Family, Reference, register, typed_config
from facegan_cli.models.translation import Translator
from facegan_cli.models.vae import build_decoder, build_encoder


@dataclass(kw_only=True)
class CycleGANVAEConfig(FamilyConfig):
    """The latent CycleGAN's settings; the VAE run given (--vae) decides the code size and the resolution."""

    family: ClassVar[str] = "cycle-gan-vae"
    preset: str
    hidden: int  # G's hidden width
    d_hidden: list[int]  # D's hidden widths
    slope: float  # LeakyReLU slope
    gan_mode: str = setting(help="lsgan (default), vanilla or wgangp (no penalty).", choices=GAN_MODES)
    lambda_a: float = setting(help="Cycle weight on codes A -> B -> A (10).", non_negative=True)
    lambda_b: float = setting(help="Cycle weight on codes B -> A -> B (10).", non_negative=True)
    lambda_identity: float = setting(
        help="Identity on codes relative to the cycle weights (0: the thesis names none).", non_negative=True)
    pool_size: int = setting(help="History buffer of codes per domain (50).", min=0)
    lr: float = setting(help="Adam learning rate of both optimisers (2e-4). With --resume: from then on.",
                        positive=True)
    betas: list[float]
    n_epochs: int = setting(help="Epochs at the initial rate (100).", min=0)
    n_epochs_decay: int = setting(help="Epochs of linear decay (100).", min=0)
    batch: int = setting(help="Batch size (J: 1).", min=1)
    init_gain: float
    z_dim: int = setting(help="Code size (vae: 128).", min=1, arch=True, train=False)  # training: the VAE's
    output: str
    vae: str = setting(derived=True)  # the VAE checkpoint read
    vae_step: int = setting(derived=True)
    vae_config: dict[str, Any] = setting(derived=True)  # its "model" record (the frozen encoder and decoder)
    resolution: int = setting(derived=True)  # the VAE's


PRESETS: dict[str, dict[str, Any]] = {
    # J's optimisers and schedule and LSGAN / pool 50 / cycle 10 on codes; no identity term (the thesis names
    # none for this variant; --lambda-identity adds J's on codes).
    "thesis64": {"hidden": 512, "d_hidden": [512, 256], "slope": 0.2, "gan_mode": "lsgan", "lambda_a": 10.0,
                 "lambda_b": 10.0, "lambda_identity": 0.0, "pool_size": 50, "lr": 2e-4, "betas": [0.5, 0.999],
                 "n_epochs": 100, "n_epochs_decay": 100, "batch": 1, "init_gain": 0.02, "z_dim": 128,
                 "output": "tanh"},
}


class LatentTranslator(nn.Module):
    """z + MLP(z): a residual map between the code spaces."""

    def __init__(self, z_dim: int = 128, hidden: int = 512, slope: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.LeakyReLU(slope, True), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(slope, True), nn.Linear(hidden, z_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.net(z)


class LatentDiscriminator(nn.Module):
    """Code -> one score."""

    def __init__(self, z_dim: int = 128, hidden: tuple[int, ...] = (512, 256), slope: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = z_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(slope, True)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def build_translator(config: CycleGANVAEConfig | dict[str, Any]) -> LatentTranslator:
    c = typed_config("cycle-gan-vae", config)
    return LatentTranslator(c.z_dim, c.hidden, c.slope)


def build_critic(config: CycleGANVAEConfig | dict[str, Any]) -> LatentDiscriminator:
    c = typed_config("cycle-gan-vae", config)
    return LatentDiscriminator(c.z_dim, tuple(c.d_hidden), c.slope)


def vae_module_names(vae_config: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Domain -> (encoder, decoder) module names in a cycle-gan-vae checkpoint."""
    if vae_config.get("per_domain"):
        return {"A": ("E_A", "Dec_A"), "B": ("E_B", "Dec_B")}
    return {"A": ("E", "Dec"), "B": ("E", "Dec")}


class LatentCycleTranslator(Translator):
    """Dec(G_A(mu(E(x)))) and Dec(G_B(mu(E(y)))); the discriminators judge codes."""

    size_multiple = 0  # dense layers: only the VAE's size

    def __init__(self, nets: dict[str, nn.Module], family: str, config: dict[str, Any], step: int, path: Any,
                 device: torch.device) -> None:
        super().__init__(family, config, int(config["vae_config"]["resolution"]), step, path, device)
        self.nets = nets
        self.names = vae_module_names(config["vae_config"])

    def encode(self, images: torch.Tensor, domain: str) -> torch.Tensor:
        with torch.no_grad():
            return self.nets[self.names[domain][0]](images.to(self.device, torch.float32))[0]

    def translate(self, images: torch.Tensor, direction: str) -> torch.Tensor:
        source, target = ("A", "B") if direction == "a2b" else ("B", "A")
        with torch.no_grad():
            code = self.nets["G_A" if direction == "a2b" else "G_B"](self.encode(images, source))
            return self.nets[self.names[target][1]](code).float()

    def judged_real(self, images: torch.Tensor, domain: str, inputs: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            scores = self.nets["D_B" if domain == "A" else "D_A"](self.encode(images, domain)).float()
        return real_decision(scores.flatten(1).mean(1), str(self.config["gan_mode"]))


def translator_loader(ckpt: Checkpoint, family: Family, device: torch.device) -> LatentCycleTranslator:
    config = ckpt.meta["model"]
    vae_config = config["vae_config"]
    builders: dict[str, Any] = {"G_A": (build_translator, config), "G_B": (build_translator, config),
                                "D_A": (build_critic, config), "D_B": (build_critic, config)}
    for enc, dec in vae_module_names(vae_config).values():
        builders[enc] = (build_encoder, vae_config)
        builders[dec] = (build_decoder, vae_config)
    nets = {name: load_network(ckpt, name, builder, cfg, family.name, device) for name, (builder, cfg) in builders.items()}
    return LatentCycleTranslator(nets, family.name, dict(config), ckpt.step, ckpt.path, device)


register(Family(
    name="cycle-gan-vae",
    kind="translator",
    presets=PRESETS,
    default_preset="thesis64",
    build_generator=build_translator,
    build_discriminator=build_critic,
    describe="CycleGAN+VAE (seed 004): a CycleGAN between the codes of a frozen VAE (`facegan train vae`)",
    training="facegan_cli.train.cyclegan_vae_trainer:TRAINING",
    loader=translator_loader,
    config=CycleGANVAEConfig,
    reference_counts={"thesis64": Reference({"generator": 394_368, "discriminator": 197_633},
                                            source="specs/cyclegan.md (latent G and D, 128-d codes)")},
))
