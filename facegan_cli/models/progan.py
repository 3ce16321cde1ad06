"""Progressive GAN networks (Karras et al. 2018; specs/progan.md) for target resolutions 4..1024.

Both networks are built once for the target resolution, every stage included, as the original does; a
*phase* (`set_phase`) says which stages run: the newest stage's resolution, whether it is fading in, and
the fade weight alpha. Outside a fade the output comes from the newest stage's toRGB alone. During a fade
G's output is lerp(upsample(toRGB_old(x_old)), toRGB_new(x_new), alpha), and D blends its newest stage
with fromRGB_old of the 2x-downsampled input the same way, so at alpha = 0 a freshly grown network
computes exactly what the smaller one did.

`path()` returns a module holding only the parameters the current phase trains: DDP (which insists on a
gradient for every parameter it wraps) and torch.compile wrap that, one per phase.

Presets: `v2` = the original code's v2 single-GPU configuration (default), `paper` = the paper's (v1)
numbers; they differ in phase length, minibatch per resolution, the 1024 learning rate and the minibatch
stddev group.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from facegan_cli.core.errors import UsageProblem
from facegan_cli.core.options import Opt
from facegan_cli.models.config import FamilyConfig, setting
from facegan_cli.models.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    at_least_fp32,
    downsample2x,
    minibatch_stddev,
    pixel_norm,
    upsample2x,
)
from facegan_cli.models.registry import Family, Reference, register, typed_config

MIN_RESOLUTION, MAX_RESOLUTION = 4, 1024

@dataclass(kw_only=True)
class ProGANConfig(FamilyConfig):
    """ProGAN's settings (the original code's names). A checkpoint's record adds `grown`, the phase its
    networks had grown to ({"resolution", "fading", "alpha"}); config.json has none."""

    family: ClassVar[str] = "progan"
    preset: str
    resolution: int = setting(
        help="Target resolution, a power of two from 4 to 1024 (default: train: the dataset's largest level; models "
        "summary: the preset's 1024).", arch=True)
    z_dim: int  # follows --max-channels, as the original's nf(0)
    fmap_base: int
    fmap_max: int  # --max-channels
    lr: float = setting(help="Adam learning rate at every resolution (preset: 1e-3; v2 uses 1.5e-3 at 1024). With "
                        "--resume: from then on.", positive=True)
    betas: list[float]
    adam_eps: float
    gp_lambda: float
    drift: float
    ema: float = setting(help="Decay of the generator's moving average used for samples (default: 0.999).")
    output: str
    value_range: list[float]
    phase_kimg: float = setting(
        help="Thousands of real images per fade-in and per stabilisation phase (v2: 600; paper: 800).", positive=True)
    mbstd_group: int = setting(
        help="Minibatch stddev group size (v2: 4; paper: 16, i.e. the whole minibatch); 1 = off.", min=1)
    batch_sizes: dict[str, int]  # by resolution (--batch sets one for all)
    lr_by_resolution: dict[str, float]
    grown: dict[str, Any] | None = setting(None, absent_if_none=True)


_COMMON: dict[str, Any] = {
    "resolution": 1024, "z_dim": 512, "fmap_base": 8192, "fmap_max": 512,
    "lr": 1e-3, "betas": [0.0, 0.99], "adam_eps": 1e-8, "gp_lambda": 10.0, "drift": 0.001, "ema": 0.999,
    "output": "linear", "value_range": [-1.0, 1.0],
}

PRESETS: dict[str, dict[str, Any]] = {
    # The original code's v2 single-GPU preset (config.py: "preset-v2-1gpu").
    "v2": {
        **_COMMON, "phase_kimg": 600, "mbstd_group": 4,
        "batch_sizes": {"4": 128, "8": 128, "16": 128, "32": 64, "64": 32, "128": 16, "256": 8, "512": 4,
                        "1024": 4},
        "lr_by_resolution": {"1024": 1.5e-3},
    },
    # The paper (v1): 800k images per phase, minibatch 16 shrinking at 256+ for memory, one stddev over
    # the whole minibatch (group 16 >= every minibatch).
    "paper": {
        **_COMMON, "phase_kimg": 800, "mbstd_group": 16,
        "batch_sizes": {"4": 16, "8": 16, "16": 16, "32": 16, "64": 16, "128": 16, "256": 14, "512": 6,
                        "1024": 3},
        "lr_by_resolution": {},
    },
}


def channels(resolution: int, fmap_base: int = 8192, fmap_max: int = 512) -> int:
    """Feature maps at a resolution: min(fmap_base / 2^(log2(res) - 1), fmap_max) (512 up to 32, 16 at 1024)."""
    return max(1, min(fmap_base * 2 // resolution, fmap_max))


def stage_count(resolution: int) -> int:
    """Stages of a network for `resolution`: 4x4 is stage 0, each doubling adds one."""
    return int(math.log2(resolution)) - 1


def check_resolution(resolution: int) -> None:
    if resolution < MIN_RESOLUTION or resolution > MAX_RESOLUTION or resolution & (resolution - 1):
        raise ValueError(f"resolution {resolution} is not a power of two from {MIN_RESOLUTION} to {MAX_RESOLUTION}")


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def _fade(old: torch.Tensor, new: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """lerp(old, new, alpha) in fp32: exactly `old` at alpha = 0 and exactly `new` at alpha = 1."""
    old, new = at_least_fp32(old), at_least_fp32(new)
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.to(old.dtype)
    return torch.lerp(old, new.to(old.dtype), alpha)


class GeneratorInput(nn.Module):
    """z -> pixel norm -> dense to 4x4xC -> LReLU -> PN -> conv3x3 -> LReLU -> PN (the 4x4 stage)."""

    def __init__(self, z_dim: int, width: int) -> None:
        super().__init__()
        self.width = width
        # gain sqrt(2)/4 for the dense layer, as the original (matching its Theano predecessor); one bias per
        # output unit, which is what the spec's parameter count (23,079,187) holds.
        self.dense = EqualizedLinear(z_dim, 16 * width, gain=math.sqrt(2) / 4)
        self.conv = EqualizedConv2d(width, width, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(pixel_norm(z)).view(-1, self.width, 4, 4)
        x = pixel_norm(_lrelu(x))
        return pixel_norm(_lrelu(self.conv(x)))


class GeneratorBlock(nn.Module):
    """Nearest 2x upsample, then two conv3x3, each followed by LReLU(0.2) and pixel norm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(_lrelu(self.conv0(upsample2x(x))))
        return pixel_norm(_lrelu(self.conv1(x)))


class DiscriminatorBlock(nn.Module):
    """Two conv3x3 + LReLU(0.2) (the second changes the width to the next stage's), then 2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _lrelu(self.conv0(x))
        return downsample2x(_lrelu(self.conv1(x)))


class DiscriminatorOutput(nn.Module):
    """The 4x4 stage: minibatch stddev (+1 map), conv3x3, conv 4x4 (a dense layer over 4x4xC), dense -> 1."""

    def __init__(self, width: int, mbstd_group: int) -> None:
        super().__init__()
        self.mbstd_group = mbstd_group
        extra = 1 if mbstd_group > 1 else 0
        self.conv = EqualizedConv2d(width + extra, width, 3)
        self.dense0 = EqualizedLinear(width * 16, width)
        self.dense1 = EqualizedLinear(width, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd_group > 1:
            x = minibatch_stddev(x, self.mbstd_group)
        x = _lrelu(self.conv(x))
        x = _lrelu(self.dense0(x.flatten(1)))
        return self.dense1(x).view(-1)


class FromRGB(nn.Module):
    """conv1x1 3 -> C, then LReLU."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(3, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _lrelu(self.conv(x))


def _generate(
    z: torch.Tensor, blocks: Sequence[nn.Module], rgb_new: nn.Module, rgb_old: nn.Module | None,
    alpha: torch.Tensor | float,
) -> torch.Tensor:
    x = blocks[0](z)
    for block in blocks[1:-1]:
        x = block(x)
    if rgb_old is None:
        if len(blocks) > 1:
            x = blocks[-1](x)
        return rgb_new(x)
    return _fade(upsample2x(rgb_old(x)), rgb_new(blocks[-1](x)), alpha)


def _judge(
    x: torch.Tensor, blocks: Sequence[nn.Module], rgb_new: nn.Module, rgb_old: nn.Module | None,
    alpha: torch.Tensor | float,
) -> torch.Tensor:
    """`blocks` run from the newest stage down to the 4x4 output stage (blocks[-1])."""
    h = rgb_new(x)
    rest = blocks
    if rgb_old is not None:
        h = _fade(rgb_old(downsample2x(x)), blocks[0](h), alpha).to(h.dtype)
        rest = blocks[1:]
    for block in rest:
        h = block(h)
    return h


class _Phased(nn.Module, abc.ABC):
    """The phase (newest stage, fading or not, alpha) shared by both networks."""

    def _init_phase(self, resolution: int) -> None:
        self.resolution = resolution
        self.set_phase(resolution)

    def set_phase(self, resolution: int, fading: bool = False, alpha: float = 1.0) -> None:
        """Run up to `resolution`; with `fading`, blend its stage in with weight `alpha` (default alpha 1)."""
        check_resolution(resolution)
        if resolution > self.resolution:
            raise ValueError(f"phase resolution {resolution} is above the network's {self.resolution}")
        if fading and resolution == MIN_RESOLUTION:
            raise ValueError("the 4x4 stage has nothing to fade from")
        self.stage = stage_count(resolution) - 1
        self.fading = bool(fading)
        self.alpha = float(alpha)
        # The layers this phase runs, looked up once here rather than at every forward.
        self._route = self._active()

    @abc.abstractmethod
    def _active(self) -> tuple[list[nn.Module], nn.Module, nn.Module | None]:
        """(stages in the order they run, the newest RGB layer, the previous RGB layer while fading)."""

    @property
    def output_resolution(self) -> int:
        return 4 * 2**self.stage

    def phase(self) -> dict[str, Any]:
        return {"resolution": self.output_resolution, "fading": self.fading, "alpha": self.alpha}


class ProGenerator(_Phased):
    """Latent (z_dim, N(0, I)) -> image at the current phase's resolution, linear output in about [-1, 1]."""

    def __init__(self, resolution: int, z_dim: int = 512, fmap_base: int = 8192, fmap_max: int = 512) -> None:
        super().__init__()
        check_resolution(resolution)
        self.z_dim = z_dim
        widths = [channels(4 * 2**k, fmap_base, fmap_max) for k in range(stage_count(resolution))]
        self.blocks = nn.ModuleList([GeneratorInput(z_dim, widths[0])])
        self.blocks.extend(GeneratorBlock(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(w, 3, 1, gain=1.0) for w in widths)
        self._init_phase(resolution)

    def _active(self) -> tuple[list[nn.Module], nn.Module, nn.Module | None]:
        k = self.stage
        return list(self.blocks[: k + 1]), self.to_rgb[k], self.to_rgb[k - 1] if self.fading else None

    def forward(self, z: torch.Tensor, alpha: torch.Tensor | float | None = None) -> torch.Tensor:
        return _generate(z.view(z.shape[0], -1), *self._route, self.alpha if alpha is None else alpha)

    def path(self) -> GeneratorPath:
        return GeneratorPath(self)

    def path_parameters(self) -> int:
        """Parameters on the full-resolution path: every stage and the final toRGB (how the paper counts)."""
        return sum(p.numel() for p in self.blocks.parameters()) + sum(p.numel() for p in self.to_rgb[-1].parameters())


class GeneratorPath(nn.Module):
    """The stages and toRGB layers one phase of a ProGenerator runs (shared parameters, nothing else)."""

    def __init__(self, net: ProGenerator) -> None:
        super().__init__()
        blocks, self.rgb_new, self.rgb_old = net._route
        self.blocks = nn.ModuleList(blocks)

    def forward(self, z: torch.Tensor, alpha: torch.Tensor | float = 1.0) -> torch.Tensor:
        return _generate(z.view(z.shape[0], -1), self.blocks, self.rgb_new, self.rgb_old, alpha)


class ProDiscriminator(_Phased):
    """Image at the current phase's resolution -> one unbounded score per image (WGAN critic)."""

    def __init__(self, resolution: int, fmap_base: int = 8192, fmap_max: int = 512, mbstd_group: int = 4) -> None:
        super().__init__()
        check_resolution(resolution)
        widths = [channels(4 * 2**k, fmap_base, fmap_max) for k in range(stage_count(resolution))]
        # blocks[k] works at resolution 4 * 2^k; blocks[0] is the 4x4 output stage.
        self.blocks = nn.ModuleList([DiscriminatorOutput(widths[0], mbstd_group)])
        self.blocks.extend(DiscriminatorBlock(b, a) for a, b in zip(widths[:-1], widths[1:]))
        self.from_rgb = nn.ModuleList(FromRGB(w) for w in widths)
        self._init_phase(resolution)

    def _active(self) -> tuple[list[nn.Module], nn.Module, nn.Module | None]:
        k = self.stage
        return list(self.blocks[k::-1]), self.from_rgb[k], self.from_rgb[k - 1] if self.fading else None

    def forward(self, x: torch.Tensor, alpha: torch.Tensor | float | None = None) -> torch.Tensor:
        return _judge(x, *self._route, self.alpha if alpha is None else alpha)

    def path(self) -> DiscriminatorPath:
        return DiscriminatorPath(self)

    def path_parameters(self) -> int:
        """Parameters on the full-resolution path: every stage and the first fromRGB."""
        return sum(p.numel() for p in self.blocks.parameters()) + sum(
            p.numel() for p in self.from_rgb[-1].parameters()
        )


class DiscriminatorPath(nn.Module):
    """The stages and fromRGB layers one phase of a ProDiscriminator runs (shared parameters)."""

    def __init__(self, net: ProDiscriminator) -> None:
        super().__init__()
        blocks, self.rgb_new, self.rgb_old = net._route
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, alpha: torch.Tensor | float = 1.0) -> torch.Tensor:
        return _judge(x, self.blocks, self.rgb_new, self.rgb_old, alpha)


def _phase_from(config: ProGANConfig) -> tuple[int, bool, float]:
    grown = config.grown or {}
    return (
        int(grown.get("resolution", config.resolution)),
        bool(grown.get("fading", False)),
        float(grown.get("alpha", 1.0)),
    )


def build_generator(config: ProGANConfig | dict[str, Any]) -> nn.Module:
    """The generator of `config`, at the phase its "grown" entry names (a checkpoint's), else fully grown."""
    c = typed_config("progan", config)
    net = ProGenerator(c.resolution, c.z_dim, c.fmap_base, c.fmap_max)
    net.set_phase(*_phase_from(c))
    return net


def build_discriminator(config: ProGANConfig | dict[str, Any]) -> nn.Module:
    c = typed_config("progan", config)
    net = ProDiscriminator(c.resolution, c.fmap_base, c.fmap_max, c.mbstd_group)
    net.set_phase(*_phase_from(c))
    return net


def apply_overrides(config: dict[str, Any], resolution: int | None = None, max_channels: int | None = None) -> dict[str, Any]:
    """Target resolution and channel cap; the latent size follows the cap as in the original (nf(0))."""
    out = dict(config)
    if resolution is not None:
        check_resolution(int(resolution))
        out["resolution"] = int(resolution)
    if max_channels is not None:
        if max_channels < 1:
            raise ValueError(f"max channels {max_channels} must be at least 1")
        out["fmap_max"] = int(max_channels)
        out["z_dim"] = min(int(out["fmap_base"]), int(max_channels))
    return out


MAX_CHANNELS = Opt("max_channels", ("--max-channels",), int, None,
                   "Cap on feature maps per layer (default 512; small values for quick tries and tests).", min=1)
ARCH_OPTIONS = (*ProGANConfig.options(arch=True), MAX_CHANNELS)  # --max-channels sets fmap_max and z_dim


def configure(config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A preset's configuration at --resolution with --max-channels."""
    try:
        return apply_overrides(config, values.get("resolution"), values.get("max_channels"))
    except ValueError as exc:
        raise UsageProblem(
            f"--resolution {values.get('resolution')} / --max-channels {values.get('max_channels')}: {exc}.",
            "Use a power of two from 4 to 1024, e.g. --resolution 256.",
        ) from exc


register(
    Family(
        name="progan",
        kind="generator",
        presets=PRESETS,
        default_preset="v2",
        build_generator=build_generator,
        build_discriminator=build_discriminator,
        describe="Progressive GAN (Karras et al. 2018; seed 002)",
        training="facegan_cli.train.progan_trainer:TRAINING",
        arch_options=ARCH_OPTIONS,
        configure_arch=configure,
        config=ProGANConfig,
        reference_counts={  # specs/progan.md: the full-resolution path, as the paper counts it
            "v2": Reference({"generator": 23_079_187, "discriminator": 23_077_137}, source="Karras et al. 2018, 1024x1024"),
            "v2 at 256": Reference({"generator": 23_044_675, "discriminator": 23_042_625}, preset="v2",
                                   options={"resolution": 256}, source="Karras et al. 2018 (ProGAN), 256x256"),
        },
    )
)
