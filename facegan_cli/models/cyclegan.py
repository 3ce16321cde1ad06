"""CycleGAN (Zhu et al. 2017) as junyanz/pytorch-CycleGAN-and-pix2pix, and seed 004's changes (specs/cyclegan.md).

G = ResnetGenerator: ReflPad3, Conv7(3->ngf), IN, ReLU; two stride-2 Conv3 downsamplings; n_blocks residual
blocks [ReflPad1, Conv3, IN, ReLU, ReflPad1, Conv3, IN] + skip; two ConvTranspose3 (s2, p1, op1)
upsamplings; ReflPad3, Conv7(ngf->3), Tanh. InstanceNorm without affine parameters or running statistics,
so every conv has a bias; no dropout. D = the 70x70 PatchGAN (NLayerDiscriminator, n_layers 3): Conv4 s2
(no norm), LReLU 0.2; two Conv4 s2 + IN + LReLU; Conv4 s1 + IN + LReLU; Conv4 s1 to one channel.
Weights N(0, 0.02), biases 0 (junyanz's init_weights 'normal').

The module trees and their state-dict keys are junyanz's (`model.N...`, `conv_block.N...`), so a baseline
facegan network and a junyanz one load each other's weights.

Seed 004's options, each composable and off in the baseline:
  upsample  deconv (junyanz) | nearest | bilinear: resize-convolution, Upsample x2 -> ReflectionPad2d(1) ->
            Conv3 (stride 1), as junyanz's docs/qa.md trainer; the parameter count does not change.
  padding   zero (junyanz: the stride-2 downsampling convs pad with zeros) | reflect (ReflectionPad2d(1)
            before them, and the resize-convolutions reflect-pad too). The 7x7 convs and the residual
            blocks reflect-pad in both; D keeps zero padding (spec DEFAULT).
  pack      PacGAN: D reads `pack` images stacked along the channels (3 * pack input channels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from facegan_cli.core.checkpoint import Checkpoint
from facegan_cli.core.errors import FaceganError
from facegan_cli.features.vgg19 import POOLS
from facegan_cli.models.config import FamilyConfig, checked, setting
from facegan_cli.models.loading import load_network
from facegan_cli.models.registry import Family, Reference, get_family, register, typed_config
from facegan_cli.models.translation import Translator, downsampling_multiple

GAN_MODES = ("lsgan", "vanilla", "wgangp")
UPSAMPLES = ("deconv", "nearest", "bilinear")
PADDINGS = ("zero", "reflect")
IDENTITY_MODES = ("cyclegan", "thesis", "nst")

@dataclass(kw_only=True)
class CycleGANConfig(FamilyConfig):
    """CycleGAN's settings, in the order of junyanz's defaults (the baseline) and seed 004's options. `pack`
    defaults to 1 (runs from before PacGAN have none)."""

    family: ClassVar[str] = "cycle-gan"
    preset: str
    ngf: int = setting(help="G's first-layer filters (64).", min=1, arch=True)
    ndf: int = setting(help="D's first-layer filters (64).", min=1, arch=True)
    n_blocks: int = setting(
        help="Residual blocks of G: 9 (junyanz256, for 256 px and up) or 6 (thesis64, for 128 px and below).", min=0,
        arch=True)
    n_layers_d: int = setting(
        help="D's stride-2 convs: 3 = the 70x70 PatchGAN; 2 = 34x34 (a local D at 64 px).", min=1, arch=True)
    upsample: str = setting(
        help="G's upsampling: deconv (transposed conv, junyanz) or resize-convolution nearest|bilinear (seed 004; no "
        "checkerboard artifacts).", choices=UPSAMPLES, arch=True)
    padding: str = setting(
        help="Padding of G's stride-2 and resize convs: zero (junyanz) or reflect (seed 004).", choices=PADDINGS,
        arch=True)
    pack: int = setting(1, help="PacGAN: images D judges together, stacked on its channels (1 = off; seed 004: 2). The "
                        "batch must be a multiple of it.", min=1, arch=True)
    init_gain: float = setting(help="Std of the N(0, std) initial weights (0.02).", positive=True)
    gan_mode: str = setting(help="Adversarial loss: lsgan (J's and seed 004's), vanilla or wgangp.", choices=GAN_MODES)
    lambda_gp: float = setting(help="wgangp: gradient penalty weight (10; 0 = J's cycle_gan_model, which has none).",
                               non_negative=True)
    lambda_a: float = setting(help="Cycle loss weight A -> B -> A (10).", non_negative=True)
    lambda_b: float = setting(help="Cycle loss weight B -> A -> B (10).", non_negative=True)
    lambda_identity: float = setting(
        help="Identity loss weight relative to the cycle weights (J: 0.5, i.e. 5; 0 = off).", non_negative=True)
    identity_mode: str = setting(
        help="cyclegan: |G_A(B) - B| and |G_B(A) - A| (J, the paper; default); thesis: |G_A(A) - A| and |G_B(B) - B| "
        "as seed 004's equation writes it; nst: CycleGAN+NST, VGG19 content of the input (conv3_2) and style of the "
        "other domain's real image (conv1_1..conv5_1) instead.", choices=IDENTITY_MODES)
    lambda_tv: float = setting(help="Total variation loss weight on G_A(A) and G_B(B) (J: 0; thesis64: 0.1, our "
                               "DEFAULT: the thesis gives none).", non_negative=True)
    d_noise_std: float = setting(
        help="White noise on D's inputs, its std falling linearly to 0 over the n_epochs + n_epochs_decay epochs (J: "
        "0; thesis64: 0.1, our DEFAULT: the thesis gives none).", non_negative=True)
    pool_size: int = setting(help="History buffer of fakes per domain (50; 0 = off).", min=0)
    lr: float = setting(help="Adam learning rate of both optimisers (2e-4). With --resume: from then on (the linear "
                        "decay applies to it).", positive=True)
    betas: list[float]
    n_epochs: int = setting(help="Epochs at the initial rate (J: 100); an epoch is one pass over the larger domain.",
                            min=0)
    n_epochs_decay: int = setting(help="Epochs of linear decay after them (J: 100).", min=0)
    batch: int = setting(help="Batch size (J: 1).", min=1)
    lambda_content: float | None = setting(
        help="nst: content weight (default: calibrated so the term is 0.5 on the first sample images at "
        "initialisation; the thesis gives none).", non_negative=True)
    lambda_style: float | None = setting(help="nst: style weight (default: calibrated likewise).", non_negative=True)
    vgg_pool: str = setting(help="nst: VGG19's pooling, avg (the thesis, default) or max.", choices=POOLS)
    output: str
    resolution: int = setting(help="Image (crop) size, a multiple of 4 (junyanz256: 256; thesis64: 64).", arch=True)
    load_size: int = setting(help="Images are resized to this before the random crop of --resolution (J: 286 for "
                             "256).", min=4)
    # nst: the VGG19 file given (None: the cached one) and its SHA-256, recorded when training starts.
    vgg_weights: str | None = setting(
        None, absent_if_none=True, type=Path,
        help="nst: a local VGG19 file instead of the cached vgg19-dcbb9e9d.pth (verified under that name; under "
        "another, used as given and its SHA-256 recorded).")
    vgg_sha256: str | None = setting(None, absent_if_none=True)
    data_resolution: int = setting(derived=True)  # the size the data is held at on the device


# junyanz's defaults (train_options.py, base_options.py, cycle_gan_model.py): the baseline.
_JUNYANZ: dict[str, Any] = {
    "ngf": 64, "ndf": 64, "n_blocks": 9, "n_layers_d": 3, "upsample": "deconv", "padding": "zero", "pack": 1,
    "init_gain": 0.02, "gan_mode": "lsgan", "lambda_gp": 10.0, "lambda_a": 10.0, "lambda_b": 10.0,
    "lambda_identity": 0.5, "identity_mode": "cyclegan", "lambda_tv": 0.0, "d_noise_std": 0.0, "pool_size": 50,
    "lr": 2e-4, "betas": [0.5, 0.999], "n_epochs": 100, "n_epochs_decay": 100, "batch": 1,
    # CycleGAN+NST (identity_mode nst): VGG19 content (conv3_2) and style (conv1_1..conv5_1) terms, post-ReLU,
    # average pooling (T:697); None weights: calibrated at the start of training (spec DEFAULT).
    "lambda_content": None, "lambda_style": None, "vgg_pool": "avg", "output": "tanh",
}
PRESETS: dict[str, dict[str, Any]] = {
    # junyanz's CycleGAN: Resize 286 (bicubic) -> RandomCrop 256 -> flip; 9 blocks; batch 1; 200 epochs.
    "junyanz256": {**_JUNYANZ, "resolution": 256, "load_size": 286},
    # Seed 004 at 64x64 (T:685-704): 6 blocks, nearest resize-convolution, reflection padding, annealed white
    # noise on D's inputs (sigma 0.1 -> 0, DEFAULT), TV loss (0.1, DEFAULT); LSGAN and the 50-image pool as J.
    "thesis64": {**_JUNYANZ, "resolution": 64, "load_size": 64, "n_blocks": 6, "upsample": "nearest",
                 "padding": "reflect", "d_noise_std": 0.1, "lambda_tv": 0.1},
}


NORMS = ("instance", "batch")  # junyanz's get_norm_layer: CycleGAN's default, pix2pix's


def _norm(channels: int, norm: str = "instance") -> nn.Module:
    # junyanz's get_norm_layer: 'instance' has no affine parameters and no running statistics; 'batch' both.
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """x + [ReflPad1, Conv3, norm, ReLU, (Dropout 0.5,) ReflPad1, Conv3, norm](x); the convs have a bias only
    before instance norm (junyanz's use_bias)."""

    def __init__(self, dim: int, norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        bias = norm == "instance"
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=bias), _norm(dim, norm), nn.ReLU(True),
            *([nn.Dropout(0.5)] if dropout else []),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=bias), _norm(dim, norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """junyanz's ResnetGenerator (CycleGAN: instance norm, no dropout; pix2pix's resnet option: batch norm and
    dropout) with seed 004's upsampling and padding options."""

    def __init__(
        self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9, upsample: str = "deconv",
        padding: str = "zero", norm: str = "instance", dropout: bool = False,
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample {upsample!r} is not one of {UPSAMPLES}")
        if padding not in PADDINGS:
            raise ValueError(f"padding {padding!r} is not one of {PADDINGS}")
        if n_blocks < 0:
            raise ValueError(f"n_blocks {n_blocks} is negative")
        bias = norm == "instance"  # junyanz's use_bias: no conv bias before a batch norm
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=bias),
                                   _norm(ngf, norm), nn.ReLU(True)]
        for i in range(2):
            cin, cout = ngf * 2**i, ngf * 2 ** (i + 1)
            if padding == "reflect":
                layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride=2, padding=0, bias=bias)]
            else:
                layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=bias)]
            layers += [_norm(cout, norm), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for i in range(2):
            cin, cout = ngf * 2 ** (2 - i), ngf * 2 ** (1 - i)
            if upsample == "deconv":
                layers += [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=bias)]
            else:
                # Resize-convolution (Odena et al. 2016): no uneven overlap, so no checkerboard.
                layers += [nn.Upsample(scale_factor=2, mode=upsample, **({} if upsample == "nearest" else
                                                                          {"align_corners": False}))]
                if padding == "reflect":
                    layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride=1, padding=0, bias=bias)]
                else:
                    layers += [nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=bias)]
            layers += [_norm(cout, norm), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """junyanz's PatchGAN: n_layers stride-2 convs (the first without norm), one stride-1 conv, a 1-channel
    stride-1 conv; 4x4 kernels, padding 1, LeakyReLU 0.2, no sigmoid (70x70 receptive field for 3 layers).
    The normalised convs have a bias only before instance norm (junyanz's use_bias)."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers {n_layers} must be at least 1")
        bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=bias), _norm(ndf * mult, norm),
                       nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias), _norm(ndf * mult, norm),
                   nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """junyanz's init_weights('normal', gain): conv and linear weights N(0, gain), their biases 0,
    BatchNorm weights N(1, gain) and biases 0; in module order (nn.Module.apply: children first)."""

    def init(m: nn.Module) -> None:
        name = type(m).__name__
        if getattr(m, "weight", None) is not None and ("Conv" in name or "Linear" in name):
            nn.init.normal_(m.weight, 0.0, gain)
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias, 0.0)
        elif "BatchNorm2d" in name:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.constant_(m.bias, 0.0)

    with torch.no_grad():
        net.apply(init)
    return net


def build_generator(config: CycleGANConfig | dict[str, Any]) -> ResnetGenerator:
    c = typed_config("cycle-gan", config)
    return ResnetGenerator(3, 3, c.ngf, c.n_blocks, c.upsample, c.padding)


def build_discriminator(config: CycleGANConfig | dict[str, Any]) -> NLayerDiscriminator:
    c = typed_config("cycle-gan", config)
    return NLayerDiscriminator(3 * c.pack, c.ndf, c.n_layers_d)


def pack_images(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN: B x 3 x H x W -> B/m x 3m x H x W, consecutive images stacked along the channels (the
    TF original's concat on the last, channel, axis of NHWC)."""
    if m == 1:
        return x
    b, c, h, w = x.shape
    if b % m:
        raise ValueError(f"a batch of {b} images does not pack into groups of {m}")
    return x.reshape(b // m, c * m, h, w)


def check_config(config: dict[str, Any]) -> None:
    """ValueError for a configuration junyanz's networks cannot be built or trained with."""
    for key, allowed in (("upsample", UPSAMPLES), ("padding", PADDINGS), ("gan_mode", GAN_MODES),
                         ("identity_mode", IDENTITY_MODES)):
        if config.get(key) not in allowed:
            raise ValueError(f"{key} {config.get(key)!r} is not one of: {', '.join(allowed)}")
    res = int(config["resolution"])
    if res % 4 or res < 16:
        raise ValueError(f"resolution {res} is not a multiple of 4 of at least 16 (G halves it twice)")
    # D's n stride-2 convs then two 4x4 stride-1 convs (padding 1) each take one pixel off.
    side = res
    for _ in range(int(config["n_layers_d"])):
        side = (side + 2 - 4) // 2 + 1
    if side - 2 < 1:
        raise ValueError(f"resolution {res} is too small for a {config['n_layers_d']}-layer PatchGAN")


def configure_arch(config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A preset's configuration with the architecture options given applied."""
    out = {**config, **get_family("cycle-gan").config.given(values, arch=True)}
    if values.get("resolution") is not None:
        out["load_size"] = max(int(out["load_size"]), int(values["resolution"]))
    return checked(check_config, out, "CycleGAN", "built")


class CycleGANTranslator(Translator):
    """G_A (A -> B), G_B (B -> A) and the discriminators D_A (judges B) and D_B (judges A) of a checkpoint."""

    def __init__(self, nets: dict[str, nn.Module], family: str, config: dict[str, Any], step: int, path: Any,
                 device: torch.device) -> None:
        super().__init__(family, config, int(config["resolution"]), step, path, device)
        self.nets = nets

    @property
    def pack(self) -> int:
        return int(self.config.get("pack", 1))

    @property
    def size_multiple(self) -> int:  # type: ignore[override]
        # From the generators' strides (two stride-2 convs: 4), not from the family's name.
        return downsampling_multiple(*(net for name, net in self.nets.items() if name.startswith("G")))

    def _net(self, name: str, use: str) -> nn.Module:
        # An imported one-direction model has one generator, an import without D files no discriminators.
        if name not in self.nets:
            raise FaceganError(
                f"{self.path} holds no {name} (it holds {', '.join(sorted(self.nets))}), so it cannot {use}.",
                "Use the direction (or command) its networks serve, or import the missing files too.",
            )
        return self.nets[name]

    def translate(self, images: torch.Tensor, direction: str) -> torch.Tensor:
        net = self._net("G_A" if direction == "a2b" else "G_B", f"translate {direction}")
        with torch.no_grad():
            return net(images.to(self.device, torch.float32)).float()

    def judged_real(self, images: torch.Tensor, domain: str, inputs: torch.Tensor | None = None) -> torch.Tensor:
        net = self._net("D_B" if domain == "A" else "D_A", f"judge domain {domain}")
        m = self.pack
        usable = images.shape[0] - images.shape[0] % m
        if usable == 0:
            return torch.zeros(0, dtype=torch.bool)
        with torch.no_grad():
            scores = net(pack_images(images[:usable].to(self.device, torch.float32), m)).float()
        return real_decision(scores.flatten(1).mean(1), str(self.config["gan_mode"]))


def real_decision(mean_scores: torch.Tensor, gan_mode: str) -> torch.Tensor:
    """Per image: does a mean patch score say 'real'? LSGAN's targets are 1 and 0, so > 0.5; vanilla's
    scores are logits, so sigmoid > 0.5, i.e. > 0; a WGAN critic has no threshold, so its sign."""
    return mean_scores > (0.5 if gan_mode == "lsgan" else 0.0)


def translator_loader(ckpt: Checkpoint, family: Family, device: torch.device) -> CycleGANTranslator:
    """The loader of the cycle-gan family: both generators and both discriminators, eval mode (an imported
    model may lack some: a one-direction generator, no discriminators; a trained run has all four)."""
    config = ckpt.meta["model"]
    wanted = (("G_A", build_generator), ("G_B", build_generator), ("D_A", build_discriminator),
              ("D_B", build_discriminator))
    present = [(name, builder) for name, builder in wanted if name in ckpt.modules]
    if not ckpt.meta.get("imported_from") or not any(name.startswith("G") for name, _ in present):
        present = list(wanted)  # a trained checkpoint must hold all four: a missing one is named by load_network
    nets = {name: load_network(ckpt, name, builder, config, family.name, device) for name, builder in present}
    return CycleGANTranslator(nets, family.name, dict(config), ckpt.step, ckpt.path, device)


register(Family(
    name="cycle-gan",
    kind="translator",
    presets=PRESETS,
    default_preset="junyanz256",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    describe="CycleGAN (Zhu et al. 2017; junyanz) and seed 004's variants: unpaired photo <-> painting",
    training="facegan_cli.train.cyclegan_trainer:TRAINING",
    loader=translator_loader,
    configure_arch=configure_arch,
    config=CycleGANConfig,
    reference_counts={  # specs/cyclegan.md: junyanz's resnet_9blocks / resnet_6blocks and basic / n_layers D
        "junyanz256": Reference({"generator": 11_378_179, "discriminator": 2_764_737}, source="junyanz"),
        "junyanz256 6 blocks, pack 2": Reference(
            {"generator": 7_837_699, "discriminator": 2_767_809}, preset="junyanz256",
            options={"n_blocks": 6, "pack": 2}, source="junyanz resnet_6blocks; PacGAN's D of 2 images"),
        "thesis64 2-layer D": Reference({"generator": 7_837_699, "discriminator": 662_977}, preset="thesis64",
                                        options={"n_layers_d": 2}, source="junyanz resnet_6blocks, n_layers_D 2"),
    },
))
