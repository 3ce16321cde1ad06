"""DCGAN generators and discriminators for the three presets of specs/dcgan.md.

radford64  pytorch/examples dcgan/main.py (Radford et al.), 64x64, tanh output
heikka32   seed 001 ("Face synthesis with DCGANs"), 32x32, 1024-wide, k2 first/last layers
keras64    seed 003, as the Keras CelebA DCGAN example it paraphrases, 64x64, sigmoid output
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from facegan_cli.core.errors import UsageProblem
from facegan_cli.models.config import FamilyConfig, setting
from facegan_cli.models.registry import Family, Reference, get_family, register, typed_config


@dataclass(kw_only=True)
class DCGANConfig(FamilyConfig):
    """A DCGAN's settings (specs/dcgan.md). The conv presets have no `dropout`, keras64 none of the conv
    architecture's widths, kernel and first-layer BatchNorm; `depth` is recorded where --depth 4 chose it."""

    family: ClassVar[str] = "dcgan"
    preset: str
    arch: str  # conv (pytorch/examples, seed 001) or keras (seed 003)
    resolution: int
    z_dim: int
    g_width: int | None = setting(
        None, absent_if_none=True, arch=True, min=1,
        help="Filters of G's last hidden layer (default: the preset's).")
    width: int | None = setting(None, absent_if_none=True, arch=True, min=1,
                                help="Filters of D's first layer (heikka32: 128).")
    first_kernel: int | None = setting(None, absent_if_none=True)
    d_first_bn: bool | None = setting(
        None, absent_if_none=True, arch=True,
        help="BatchNorm on D's first layer (seed 001's literal reading; default: the preset's).")
    output: str  # tanh or sigmoid
    dropout: float | None = setting(None, absent_if_none=True)  # keras64's D
    lr: float = setting(help="Adam learning rate (preset: 2e-4; keras64: 1e-4). With --resume: from then on.",
                        positive=True)
    betas: list[float]
    batch: int = setting(help="Batch size (preset: 128; keras64: 32).", min=1)
    depth: int | None = setting(None, absent_if_none=True, arch=True,
                                help="heikka32/radford64: 4 = the 4-layer 512-wide variant (default: 5).")


PRESETS: dict[str, dict[str, Any]] = {
    "radford64": {
        "arch": "conv", "resolution": 64, "z_dim": 100, "g_width": 64, "width": 64, "first_kernel": 4,
        "d_first_bn": False, "output": "tanh", "lr": 2e-4, "betas": [0.5, 0.999], "batch": 128,
    },
    "heikka32": {
        "arch": "conv", "resolution": 32, "z_dim": 100, "g_width": 128, "width": 128, "first_kernel": 2,
        "d_first_bn": False, "output": "tanh", "lr": 2e-4, "betas": [0.5, 0.999], "batch": 128,
    },
    "keras64": {
        "arch": "keras", "resolution": 64, "z_dim": 128, "output": "sigmoid", "dropout": 0.2,
        "lr": 1e-4, "betas": [0.9, 0.999], "batch": 32,
    },
}


def _conv_plan(config: dict[str, Any]) -> tuple[int, int, int]:
    """(first spatial size, number of stride-2 stages, widest channels) of a conv-arch DCGAN."""
    k = int(config["first_kernel"])
    res = int(config["resolution"])
    stages = 0
    size = k
    while size < res:
        size *= 2
        stages += 1
    if size != res:
        raise ValueError(f"resolution {res} is not first_kernel {k} times a power of two")
    return k, stages, stages


class ConvGenerator(nn.Module):
    """z -> ConvT(k, s1, p0) -> [ConvT(k4 s2 p1) BN ReLU]* -> ConvT(k4 s2 p1) -> tanh."""

    def __init__(self, z_dim: int, resolution: int, g_width: int, first_kernel: int) -> None:
        super().__init__()
        k, stages, _ = _conv_plan({"first_kernel": first_kernel, "resolution": resolution})
        # Widths double from the last hidden layer (g_width) back to the first.
        widths = [g_width * 2 ** (stages - 1 - i) for i in range(stages)]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, widths[0], k, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], -1, 1, 1))


class ConvDiscriminator(nn.Module):
    """x -> Conv(k4 s2 p1) LReLU -> [Conv(k4 s2 p1) BN LReLU]* -> Conv(k, s1, p0) -> logit."""

    def __init__(self, resolution: int, width: int, first_kernel: int, d_first_bn: bool) -> None:
        super().__init__()
        k, stages, _ = _conv_plan({"first_kernel": first_kernel, "resolution": resolution})
        widths = [width * 2**i for i in range(stages)]
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 4, 2, 1, bias=False)]
        if d_first_bn:  # the literal reading of seed 001 ("BN between all convolutional layers")
            layers.append(nn.BatchNorm2d(widths[0]))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(widths[-1], 1, k, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


class KerasGenerator(nn.Module):
    """Dense(z -> 8x8x128) -> ConvT 128/256/512 (k4 s2 'same', LReLU 0.2) -> Conv(3, k5 'same') -> sigmoid."""

    def __init__(self, z_dim: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.dense = nn.Linear(z_dim, 8 * 8 * 128)
        self.main = nn.Sequential(
            nn.ConvTranspose2d(128, 128, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.ConvTranspose2d(128, 256, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.ConvTranspose2d(256, 512, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(512, 3, 5, 1, 2), nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # Keras reshapes channels-last (8, 8, 128); keeping that order keeps weights interchangeable.
        h = self.dense(z.view(z.shape[0], -1)).view(-1, 8, 8, 128).permute(0, 3, 1, 2)
        return self.main(h)


class KerasDiscriminator(nn.Module):
    """Conv 64/128/128 (k4 s2 'same', LReLU 0.2) -> Flatten -> Dropout(0.2) -> Dense(1) logit."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(128, 128, 4, 2, 1), nn.LeakyReLU(0.2, True),
        )
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(8 * 8 * 128, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.main(x).permute(0, 2, 3, 1).flatten(1)  # Keras' channels-last Flatten
        return self.dense(self.dropout(h)).view(-1)


def dcgan_init(module: nn.Module) -> None:
    """pytorch/examples' weights_init: conv N(0, 0.02); BN weight N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_generator(config: DCGANConfig | dict[str, Any]) -> nn.Module:
    c = typed_config("dcgan", config)
    if c.arch == "keras":
        net: nn.Module = KerasGenerator(c.z_dim)
    else:
        net = ConvGenerator(c.z_dim, c.resolution, c.g_width, c.first_kernel)
    dcgan_init(net)
    return net


def build_discriminator(config: DCGANConfig | dict[str, Any]) -> nn.Module:
    c = typed_config("dcgan", config)
    if c.arch == "keras":
        net: nn.Module = KerasDiscriminator(float(c.dropout))
    else:
        net = ConvDiscriminator(c.resolution, c.width, c.first_kernel, bool(c.d_first_bn))
    dcgan_init(net)
    return net


def apply_depth(config: dict[str, Any], depth: int | None) -> dict[str, Any]:
    """heikka32 `--depth 4`: the 4-layer variant with k4 throughout and 512 channels at the widest."""
    if depth is None or depth == 5:
        return config
    if depth != 4 or config["arch"] != "conv":
        raise ValueError("--depth supports 4 (and the default 5) for the convolutional presets")
    stages = 3
    resolution = int(config["resolution"])
    return {
        **config, "depth": 4, "first_kernel": resolution // 2**stages,
        "g_width": 512 // 2 ** (stages - 1), "width": 512 // 2 ** (stages - 1),
    }


def configure(config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A preset's configuration with the architecture options applied (--depth first, so explicit
    widths win over what it chose: `--depth 4 --width 256` does what it says)."""
    try:
        config = apply_depth(config, values.get("depth"))
    except ValueError as exc:
        raise UsageProblem(
            f"--depth {values.get('depth')} does not apply to preset {config['preset']} ({exc}).",
            "Leave --depth out, or use --depth 4 with heikka32 or radford64.",
        ) from exc
    given = get_family("dcgan").config.given(values, arch=True)
    config.update({k: v for k, v in given.items() if k != "depth"})
    return config


register(
    Family(
        name="dcgan",
        kind="generator",
        presets=PRESETS,
        default_preset="radford64",
        build_generator=build_generator,
        build_discriminator=build_discriminator,
        describe="DCGAN (Radford et al.; seeds 001 and 003)",
        training="facegan_cli.train.dcgan_trainer:TRAINING",
        configure_arch=configure,
        config=DCGANConfig,
        reference_counts={  # specs/dcgan.md
            "radford64": Reference({"generator": 3_576_704, "discriminator": 2_765_568}, source="pytorch/examples dcgan"),
            "heikka32": Reference({"generator": 11_429_632, "discriminator": 11_023_872}, source="seed 001"),
            "keras64": Reference({"generator": 3_979_651, "discriminator": 404_801},
                                 source="the Keras CelebA DCGAN example (seed 003)"),
        },
    )
)
