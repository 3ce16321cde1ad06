"""pix2pix (Isola et al. 2017) as junyanz/pytorch-CycleGAN-and-pix2pix: paired image-to-image translation.

G = junyanz's UnetGenerator (netG unet_256: 8 downsamplings, 256 px; unet_128: 7, 128 px): nested
UnetSkipConnectionBlocks, each Conv4 s2 down (LeakyReLU 0.2 and batch norm around it, except at the ends),
its inner block, ConvTranspose4 s2 up (ReLU before, batch norm after; Tanh at the outermost), the block's
input concatenated to its output (skip), Dropout(0.5) after the ngf*8 blocks between the innermost and the
four outer ones; convs without bias before batch norm. Or netG resnet_9blocks / resnet_6blocks: CycleGAN's
ResnetGenerator with batch norm and dropout. D = the 70x70 PatchGAN with batch norm, reading the input and
the (real or made) output concatenated on the channels (6 channels): D is conditional. Weights N(0, 0.02),
batch-norm scales N(1, 0.02) (junyanz's init 'normal').

The module trees and state-dict keys are junyanz's (`model.model.1.model.3...`), so his latest_net_G.pth
loads as it is (facegan import). At test time G runs as his `test.py --eval` (dropout off, batch-norm running
statistics; `translate` default) or, with `--stochastic`, as his test.py without --eval (dropout on, batch
statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from facegan_cli.core.checkpoint import Checkpoint
from facegan_cli.core.errors import FaceganError
from facegan_cli.models.config import FamilyConfig, checked, setting
from facegan_cli.models.cyclegan import (
    GAN_MODES,
    NORMS,
    NLayerDiscriminator,
    ResnetGenerator,
    _norm,
    real_decision,
)
from facegan_cli.models.loading import load_network
from facegan_cli.models.registry import Family, Reference, get_family, register, typed_config
from facegan_cli.models.translation import Translator

FAMILY = "pix2pix"
NETGS = {"unet_256": 8, "unet_128": 7, "resnet_9blocks": 9, "resnet_6blocks": 6}  # downsamplings / blocks
JUNYANZ_DIRECTIONS = {"AtoB": "a2b", "BtoA": "b2a"}  # his --direction, and the facegan direction it translates


@dataclass(kw_only=True)
class Pix2PixConfig(FamilyConfig):
    """pix2pix's settings, junyanz's defaults (train_options, base_options, pix2pix_model) as the preset."""

    family: ClassVar[str] = FAMILY
    preset: str
    netg: str = setting(help="G (junyanz's --netG): unet_256 (his default), unet_128, resnet_9blocks or "
                        "resnet_6blocks.", choices=tuple(NETGS), arch=True)
    ngf: int = setting(help="G's first-layer filters (64).", min=1, arch=True)
    ndf: int = setting(help="D's first-layer filters (64).", min=1, arch=True)
    n_layers_d: int = setting(help="D's stride-2 convs: 3 = the 70x70 PatchGAN (junyanz's basic).", min=1, arch=True)
    norm: str = setting(help="batch (junyanz's pix2pix) or instance.", choices=NORMS, arch=True)
    dropout: bool = setting(help="Dropout 0.5 in G (junyanz: on; --no-dropout his --no_dropout).")
    init_gain: float = setting(help="Std of the N(0, std) initial weights (0.02).", positive=True)
    gan_mode: str = setting(help="Adversarial loss: vanilla (junyanz's pix2pix), lsgan or wgangp.", choices=GAN_MODES)
    lambda_l1: float = setting(help="Weight of the L1 loss to the true target (100).", non_negative=True)
    pool_size: int = setting(help="History buffer of (input, fake) pairs for D (junyanz's pix2pix: 0 = off).", min=0)
    lr: float = setting(help="Adam learning rate of G and D (2e-4). With --resume: from then on (the linear decay "
                        "applies to it).", positive=True)
    betas: list[float]
    n_epochs: int = setting(help="Epochs at the initial rate (100).", min=0)
    n_epochs_decay: int = setting(help="Epochs of linear decay after them (100).", min=0)
    batch: int = setting(help="Batch size (junyanz: 1).", min=1)
    direction: str = setting(help="AtoB (learn A -> B, junyanz's default) or BtoA.", choices=tuple(JUNYANZ_DIRECTIONS))
    output: str
    resolution: int = setting(help="Crop size (256; unet_128: 128); a multiple of 2^downsamplings for a U-Net.",
                              arch=True)
    load_size: int = setting(help="Images are resized to this before the random crop of --resolution (286 for 256).",
                             min=4)
    data_resolution: int = setting(derived=True)  # the size the data is held at on the device


_JUNYANZ: dict[str, Any] = {
    "netg": "unet_256", "ngf": 64, "ndf": 64, "n_layers_d": 3, "norm": "batch", "dropout": True, "init_gain": 0.02,
    "gan_mode": "vanilla", "lambda_l1": 100.0, "pool_size": 0, "lr": 2e-4, "betas": [0.5, 0.999], "n_epochs": 100,
    "n_epochs_decay": 100, "batch": 1, "direction": "AtoB", "output": "tanh",
}
PRESETS: dict[str, dict[str, Any]] = {
    # junyanz's pix2pix: Resize 286 (bicubic) -> RandomCrop 256 -> flip, the same draw for A and B.
    "junyanz256": {**_JUNYANZ, "resolution": 256, "load_size": 286},
    # unet_128 at 128 px, the same jitter ratio (junyanz's --netG unet_128 --crop_size 128 --load_size 143).
    "junyanz128": {**_JUNYANZ, "netg": "unet_128", "resolution": 128, "load_size": 143},
}


class UnetSkipConnectionBlock(nn.Module):
    """x -> [x, up(inner(down(x)))] (the outermost block returns up(...) alone): junyanz's block and keys."""

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, submodule: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, norm: str = "batch", dropout: bool = False) -> None:
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        if outermost:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            layers = [downconv, submodule, nn.ReLU(True), up, nn.Tanh()]
        elif innermost:
            up = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), downconv, nn.ReLU(True), up, _norm(outer_nc, norm)]
        else:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), downconv, _norm(inner_nc, norm), submodule, nn.ReLU(True), up,
                      _norm(outer_nc, norm), *([nn.Dropout(0.5)] if dropout else [])]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """junyanz's UnetGenerator: built from the innermost block outwards (his order, so one seed gives his
    weights); an input side must be a multiple of 2^num_downs."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, num_downs: int = 8, ngf: int = 64, norm: str = "batch",
                 dropout: bool = True) -> None:
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_generator(config: Pix2PixConfig | dict[str, Any]) -> nn.Module:
    c = typed_config(FAMILY, config)
    if c.netg.startswith("unet"):
        return UnetGenerator(3, 3, NETGS[c.netg], c.ngf, c.norm, c.dropout)
    return ResnetGenerator(3, 3, c.ngf, NETGS[c.netg], norm=c.norm, dropout=c.dropout)


def build_discriminator(config: Pix2PixConfig | dict[str, Any]) -> NLayerDiscriminator:
    """The conditional PatchGAN: (input, output) stacked, 6 channels."""
    c = typed_config(FAMILY, config)
    return NLayerDiscriminator(6, c.ndf, c.n_layers_d, norm=c.norm)


def size_multiple(config: dict[str, Any]) -> int:
    """Input sides G takes: multiples of 2^downsamplings (U-Net: every skip must meet its twin), 4 for ResNets."""
    netg = str(config["netg"])
    return 2 ** NETGS[netg] if netg.startswith("unet") else 4


def check_config(config: dict[str, Any]) -> None:
    """ValueError for a configuration junyanz's networks cannot be built or trained with."""
    for key, allowed in (("netg", tuple(NETGS)), ("norm", NORMS), ("gan_mode", GAN_MODES),
                         ("direction", tuple(JUNYANZ_DIRECTIONS))):
        if config.get(key) not in allowed:
            raise ValueError(f"{key} {config.get(key)!r} is not one of: {', '.join(allowed)}")
    res, multiple = int(config["resolution"]), size_multiple(config)
    if res % multiple or res < multiple:
        raise ValueError(f"resolution {res} is not a multiple of {multiple} ({config['netg']} halves it "
                         f"{NETGS[config['netg']] if multiple > 4 else 2} times)")
    side = res  # D: n stride-2 convs, then two 4x4 stride-1 convs each take one pixel off
    for _ in range(int(config["n_layers_d"])):
        side = (side + 2 - 4) // 2 + 1
    if side - 2 < 1:
        raise ValueError(f"resolution {res} is too small for a {config['n_layers_d']}-layer PatchGAN")


def configure_arch(config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A preset's configuration with the architecture options given applied (unet_128 alone: 128 px)."""
    out = {**config, **get_family(FAMILY).config.given(values, arch=True)}
    if values.get("netg") == "unet_128" and values.get("resolution") is None:
        out["resolution"] = 128
    return checked(check_config, out, "pix2pix", "built")


class Pix2PixTranslator(Translator):
    """G (the trained direction only) and the conditional D of a checkpoint."""

    reconstructs = False
    conditional_d = True
    stochastic = True

    def __init__(self, nets: dict[str, nn.Module], family: str, config: dict[str, Any], step: int, path: Any,
                 device: torch.device) -> None:
        super().__init__(family, config, int(config["resolution"]), step, path, device)
        self.nets = nets
        self.size_multiple = size_multiple(config)
        self.min_size = self.size_multiple  # a U-Net's innermost level is 1x1 at its multiple

    @property
    def generators(self) -> dict[str, str]:
        return {JUNYANZ_DIRECTIONS[str(self.config["direction"])]: "G"}

    def set_stochastic(self, on: bool) -> None:
        # junyanz's test.py without --eval leaves the model in training mode: dropout samples, batch norm
        # normalises with the batch's statistics.
        self.nets["G"].train(on)

    def translate(self, images: torch.Tensor, direction: str) -> torch.Tensor:
        self.check_direction(direction)
        with torch.no_grad():
            return self.nets["G"](images.to(self.device, torch.float32)).float()

    def judged_real(self, images: torch.Tensor, domain: str, inputs: torch.Tensor | None = None) -> torch.Tensor:
        if "D" not in self.nets:
            raise FaceganError(f"{self.path} holds no discriminator D, so it cannot judge images.",
                               "Evaluate a trained run, or import the D file too.")
        if inputs is None:
            raise FaceganError("pix2pix's D judges (input, image) pairs and no inputs were given.",
                               "This is a facegan bug.")
        with torch.no_grad():
            pair = torch.cat([inputs.to(self.device, torch.float32), images.to(self.device, torch.float32)], 1)
            scores = self.nets["D"](pair).float()
        return real_decision(scores.flatten(1).mean(1), str(self.config["gan_mode"]))


def translator_loader(ckpt: Checkpoint, family: Family, device: torch.device) -> Pix2PixTranslator:
    """G and D, eval mode (an import of junyanz's latest_net_G.pth has G alone)."""
    config = ckpt.meta["model"]
    wanted = {"G": build_generator, "D": build_discriminator}
    names = [n for n in wanted if n in ckpt.modules] if ckpt.meta.get("imported_from") else list(wanted)
    nets = {name: load_network(ckpt, name, wanted[name], config, family.name, device) for name in names}
    return Pix2PixTranslator(nets, family.name, dict(config), ckpt.step, ckpt.path, device)


REFERENCE_COUNTS = {  # junyanz's define_G(..., norm 'batch') and define_D(6, 'basic', norm 'batch')
    "junyanz256": Reference({"generator": 54_413_955, "discriminator": 2_768_705}, source="junyanz unet_256"),
    "junyanz128": Reference({"generator": 41_828_995, "discriminator": 2_768_705}, source="junyanz unet_128"),
    "junyanz256 resnet_9blocks": Reference({"generator": 11_383_427, "discriminator": 2_768_705}, preset="junyanz256",
                                           options={"netg": "resnet_9blocks"}, source="junyanz resnet_9blocks, batch"),
}

register(Family(
    name=FAMILY, kind="translator", presets=PRESETS, default_preset="junyanz256", config=Pix2PixConfig,
    build_generator=build_generator, build_discriminator=build_discriminator, loader=translator_loader,
    configure_arch=configure_arch, training="facegan_cli.train.pix2pix_trainer:TRAINING",
    reference_counts=REFERENCE_COUNTS,
    describe="pix2pix (Isola et al. 2017; junyanz): paired image-to-image translation, U-Net G + conditional PatchGAN",
))
