"""StarGAN (yunjey/stargan) and the two attention variants seed 000 compares (specs/ccagan.md).

stargan        yunjey/stargan's G and D exactly: G = conv7x7 64, two stride-2 downs, 6 residual blocks,
               two stride-2 ups, conv7x7 3 + tanh, InstanceNorm (affine, running stats), no conv biases;
               D = PatchGAN of 6 stride-2 convs with LeakyReLU(0.01), a 3x3 source head and a class head.
ccagan         seed 000: a cross-channel self-attention (CCA) module before every convolution of G and
               before D's first convolution (`cca_placement`: all | encoder | none).
stargan-sagan  the seed's baseline: SAGAN self-attention in G after the first up-sampling layer and in D
               after its second convolution.

G takes (image, target labels) and tiles the labels over every pixel as extra input channels; D returns
(source logits per patch, class logits).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from facegan_cli.core.errors import FaceganError
from facegan_cli.models.attention import CrossChannelAttention, SelfAttention
from facegan_cli.models.config import FamilyConfig, setting
from facegan_cli.models.registry import Family, Reference, register

STARGAN_ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
CCA_PLACEMENTS = ("all", "encoder", "none")
LOSSES = ("wgan-gp", "bce")

_COMMON: dict[str, Any] = {
    "resolution": 128, "attrs": STARGAN_ATTRS, "g_width": 64, "d_width": 64, "g_repeat": 6, "d_repeat": 6,
    "output": "tanh", "loss": "wgan-gp", "lambda_cls": 1.0, "lambda_gp": 10.0, "n_critic": 5,
    "lr": 1e-4, "d_lr": 1e-4, "betas": [0.5, 0.999], "decay_fraction": 0.5, "decay_steps": None,
    "attention": "none", "cca_placement": "none",
}

@dataclass(kw_only=True)
class StarGANConfig(FamilyConfig):
    """The settings of stargan, ccagan and stargan-sagan (one class per family, the same fields). `epochs` is
    recorded where the preset gives the length in epochs (ccagan); `steps` is the run's length in steps (None:
    in epochs), decided when training starts."""

    family: ClassVar[str] = "stargan"
    preset: str
    resolution: int = setting(help="Image size (default: the data's, at most 128; smaller data is never upsampled).",
                              min=1)
    attrs: list[str]  # --attrs (parsed by the trainer)
    g_width: int = setting(help="G's first conv width (64).", min=1)
    d_width: int = setting(help="D's first conv width (64).", min=1)
    g_repeat: int = setting(help="G's residual blocks (6).", min=0)
    d_repeat: int = setting(help="D's stride-2 convs (6; fewer when the resolution needs it).", min=1)
    output: str
    loss: str = setting(help=f"Adversarial loss: {', '.join(LOSSES)} (default wgan-gp; bce = log-likelihood, no "
                        "penalty).")
    lambda_cls: float = setting(help="Attribute loss weight (1).", non_negative=True)
    lambda_gp: float = setting(help="Gradient penalty weight (10).", non_negative=True)
    n_critic: int = setting(help="D updates per G update (5).", min=1)
    lr: float = setting(help="G's Adam learning rate (1e-4). With --resume: from then on.", positive=True)
    d_lr: float = setting(help="D's Adam learning rate (1e-4). With --resume: from then on.", positive=True)
    betas: list[float]
    decay_fraction: float
    decay_steps: int | None = setting(
        help="Steps over which the rate decays linearly to 0 at the end (default: half the run).", min=0)
    attention: str  # none, cca or sagan
    cca_placement: str = setting(
        help="ccagan: CCA modules before every G conv + D's first (all), G's first three + D's (encoder), or none.")
    lambda_rec: float = setting(help="Reconstruction loss weight (stargan: 10; ccagan: 1); 0 = the ablation.",
                                non_negative=True)
    batch: int = setting(help="Batch size (stargan: 16; ccagan: 32).", min=1)
    epochs: float | None = setting(None, absent_if_none=True)
    steps: int | None = setting(derived=True)


@dataclass(kw_only=True)
class CCAGANConfig(StarGANConfig):
    family: ClassVar[str] = "ccagan"


@dataclass(kw_only=True)
class StarGANSAGANConfig(StarGANConfig):
    family: ClassVar[str] = "stargan-sagan"


STARGAN_PRESETS: dict[str, dict[str, Any]] = {
    # yunjey/stargan main.py CelebA defaults: batch 16, 200k iterations, linear decay over the last 100k.
    "yunjey": {**_COMMON, "lambda_rec": 10.0, "batch": 16, "steps": 200_000},
}
CCAGAN_PRESETS: dict[str, dict[str, Any]] = {
    # seed 000: lambda_rec 1, batch 32, 20 epochs (10 fixed, 10 decaying to 0).
    "paper": {**_COMMON, "lambda_rec": 1.0, "batch": 32, "epochs": 20, "attention": "cca", "cca_placement": "all"},
}
SAGAN_PRESETS: dict[str, dict[str, Any]] = {
    "yunjey": {**_COMMON, "lambda_rec": 10.0, "batch": 16, "steps": 200_000, "attention": "sagan"},
}


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=True)


def _cca(channels: int, on: bool) -> list[nn.Module]:
    return [CrossChannelAttention(channels)] if on else []


class ResidualBlock(nn.Module):
    """x + IN(conv3x3(ReLU(IN(conv3x3(x))))), with a CCA module before each conv when asked."""

    def __init__(self, channels: int, cca: bool = False) -> None:
        super().__init__()
        self.main = nn.Sequential(
            *_cca(channels, cca), nn.Conv2d(channels, channels, 3, 1, 1, bias=False), _norm(channels),
            nn.ReLU(inplace=True),
            *_cca(channels, cca), nn.Conv2d(channels, channels, 3, 1, 1, bias=False), _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class StarGenerator(nn.Module):
    """G(x, c): image and target labels -> translated image in [-1, 1]."""

    def __init__(
        self, c_dim: int, width: int = 64, repeat: int = 6, attention: str = "none", cca_placement: str = "none"
    ) -> None:
        super().__init__()
        cca_all = attention == "cca" and cca_placement == "all"
        cca_enc = attention == "cca" and cca_placement in ("all", "encoder")
        self.c_dim = c_dim
        layers: list[nn.Module] = [
            *_cca(3 + c_dim, cca_enc), nn.Conv2d(3 + c_dim, width, 7, 1, 3, bias=False), _norm(width),
            nn.ReLU(inplace=True),
        ]
        ch = width
        for _ in range(2):
            layers += [*_cca(ch, cca_enc), nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), _norm(ch * 2),
                       nn.ReLU(inplace=True)]
            ch *= 2
        layers += [ResidualBlock(ch, cca_all) for _ in range(repeat)]
        for i in range(2):
            layers += [*_cca(ch, cca_all), nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), _norm(ch // 2),
                       nn.ReLU(inplace=True)]
            ch //= 2
            if i == 0 and attention == "sagan":
                layers.append(SelfAttention(ch))  # SAGAN baseline: after the first up-sampling layer
        layers += [*_cca(ch, cca_all), nn.Conv2d(ch, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c = c.to(x.dtype).view(c.shape[0], c.shape[1], 1, 1).expand(-1, -1, x.shape[2], x.shape[3])
        h = torch.cat([x, c], dim=1)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            h = h.contiguous(memory_format=torch.channels_last)
        return self.main(h)


class StarDiscriminator(nn.Module):
    """PatchGAN D(x) -> (source logits B x 1 x H/64 x W/64 at 128, class logits B x c)."""

    def __init__(
        self, resolution: int, c_dim: int, width: int = 64, repeat: int = 6, attention: str = "none",
        cca_placement: str = "none",
    ) -> None:
        super().__init__()
        kernel = resolution // 2**repeat
        if repeat < 1 or kernel < 1 or resolution % 2**repeat:
            raise ValueError(
                f"resolution {resolution} is not divisible by 2**{repeat}: choose fewer discriminator layers"
            )
        layers: list[nn.Module] = [*_cca(3, attention == "cca" and cca_placement in ("all", "encoder"))]
        layers += [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.01)]
        ch = width
        for i in range(1, repeat):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            ch *= 2
            if i == 1 and attention == "sagan":
                layers.append(SelfAttention(ch))  # SAGAN baseline: after D's second convolution
        self.main = nn.Sequential(*layers)
        self.src = nn.Conv2d(ch, 1, 3, 1, 1, bias=False)
        self.cls = nn.Conv2d(ch, c_dim, kernel, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.src(h), self.cls(h).view(h.shape[0], -1)


def _typed(config: StarGANConfig | dict[str, Any]) -> StarGANConfig:
    """The configuration as StarGAN's settings (any of the three families': they have the same fields)."""
    return StarGANConfig.coerce(config)


def build_generator(config: StarGANConfig | dict[str, Any]) -> nn.Module:
    c = _typed(config)
    return StarGenerator(len(c.attrs), c.g_width, c.g_repeat, c.attention, c.cca_placement)


def build_discriminator(config: StarGANConfig | dict[str, Any]) -> nn.Module:
    c = _typed(config)
    return StarDiscriminator(c.resolution, len(c.attrs), c.d_width, c.d_repeat, c.attention, c.cca_placement)


def attention_modules(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (CrossChannelAttention, SelfAttention))]


def create_labels(c_org: torch.Tensor, attrs: Sequence[str], hair_colours: Sequence[str] = HAIR_COLOURS) -> list[torch.Tensor]:
    """yunjey's create_labels: one target per attribute; a hair colour is set and the others cleared,
    any other attribute is flipped. Returns len(attrs) tensors shaped like c_org."""
    hair = [i for i, name in enumerate(attrs) if name in hair_colours]
    targets = []
    for i in range(len(attrs)):
        c = c_org.clone()
        if i in hair:
            c[:, hair] = 0
            c[:, i] = 1
        else:
            c[:, i] = 1 - c[:, i]
        targets.append(c)
    return targets


def apply_edits(
    c_org: torch.Tensor, attrs: Sequence[str], set_values: dict[str, int], flips: Sequence[str],
    hair_colours: Sequence[str] = HAIR_COLOURS,
) -> torch.Tensor:
    """Targets from explicit edits: `--set Name=0|1` and `--flip Name`; setting a hair colour to 1 clears the
    other hair colours (they are mutually exclusive)."""
    index = {name: i for i, name in enumerate(attrs)}
    for name in [*set_values, *flips]:
        if name not in index:
            raise FaceganError(
                f"Attribute {name!r} is not one this model was trained on ({', '.join(attrs)}).",
                "Use one of those names (case matters, as in CelebA's list_attr_celeba.txt).",
            )
    c = c_org.clone()
    hair = [index[n] for n in attrs if n in hair_colours]
    for name in flips:
        c[:, index[name]] = 1 - c[:, index[name]]
    for name, value in set_values.items():
        if value not in (0, 1):
            raise FaceganError(f"--set {name}={value}: values are 0 or 1.", f"Write --set {name}=1 or {name}=0.")
        if value == 1 and name in hair_colours:
            c[:, hair] = 0
        c[:, index[name]] = float(value)
    return c


@contextlib.contextmanager
def instance_statistics(net: nn.Module) -> Iterator[nn.Module]:
    """Run `net` as yunjey's test() does (training-mode InstanceNorm: each image's own statistics) under
    no_grad, leaving its running statistics and mode exactly as they were."""
    was_training = net.training
    saved = [b.detach().clone() for b in net.buffers()]
    net.train()
    try:
        with torch.no_grad():
            yield net
    finally:
        with torch.no_grad():
            for buf, old in zip(net.buffers(), saved):
                buf.copy_(old)
        net.train(was_training)


def auto_d_repeat(resolution: int) -> int:
    """yunjey's 6 stride-2 D layers, fewer when the resolution is too small for them."""
    repeat = 6
    while repeat > 1 and (resolution % 2**repeat or resolution < 2**repeat):
        repeat -= 1
    return repeat


# specs/ccagan.md: the sizes at 128x128 with 5 attributes (yunjey/stargan's default), G and D.
for _name, _presets, _default, _describe, _counts, _config in (
    ("stargan", STARGAN_PRESETS, "yunjey", "StarGAN (Choi et al. 2018; yunjey/stargan): multi-attribute editing",
     (8_430_528, 44_762_048), StarGANConfig),
    ("ccagan", CCAGAN_PRESETS, "paper", "CCA-GAN (seed 000): StarGAN with cross-channel self-attention",
     (9_553_296, 44_762_067), CCAGANConfig),
    ("stargan-sagan", SAGAN_PRESETS, "yunjey", "StarGAN + SAGAN self-attention (seed 000's baseline)",
     (8_451_009, 44_782_529), StarGANSAGANConfig),
):
    register(Family(
        name=_name, kind="editor", presets=_presets, default_preset=_default, build_generator=build_generator,
        build_discriminator=build_discriminator, describe=_describe, config=_config,
        training=f"facegan_cli.train.stargan_trainer:TRAINING_{_name.upper().replace('-', '_')}",
        reference_counts={_default: Reference({"generator": _counts[0], "discriminator": _counts[1]},
                                              source="specs/ccagan.md (yunjey/stargan at 128x128, 5 attributes)")},
    ))
