"""Latent Features Transfer's translator (seed 004 §3.1, §4.2.1): `facegan train feature-translator`.

The latent features z(x) of an image are VGG19 activations (average pooling, post-ReLU by DEFAULT):
content conv3_2 (T:580; `content_layer` conv4_2 is the thesis's ablation) and style conv1_1, conv2_1,
conv3_1, conv4_1, conv5_1. "For every feature, the same network" (T:697): channel counts differ, so there is
one translator per feature, all built from one template: three stride-1 convolutions C -> C, each followed
by an InstanceNorm, with a LeakyReLU after the first two norms. Values the thesis leaves open (DEFAULT):
kernel 3 with zero padding 1, width C, slope 0.2, and the last InstanceNorm affine (`last_norm_affine`;
without it the output is forced to zero mean and unit variance per map, which cannot match non-negative
post-ReLU targets). Parameters with the last norm not affine: 110,784 / 442,752 / 1,770,240 / 7,079,424 /
7,079,424 for conv1_1..conv5_1 and 1,770,240 for conv3_2, 18,252,864 in all (+3,456 when affine).

`translator` "dense" is the thesis's cheaper "dense layer" variant (T §4.3.4), which it does not specify:
facegan's DEFAULT reading is the same template with 1x1 convolutions, i.e. one fully connected layer across
channels applied at every position (9x fewer weights and operations).

The module also keeps the per-pixel mean image of the source and of the target domain over the training
images it saw (buffers, so they travel in the checkpoint): the "mean image of the domain" that synthesis
may start from (T:753).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from facegan_cli.core.checkpoint import Checkpoint
from facegan_cli.core.errors import FaceganError
from facegan_cli.features.vgg19 import ACTIVATIONS, POOLS, TAP_CHANNELS, layer_tap
from facegan_cli.models.config import FamilyConfig, setting
from facegan_cli.models.loading import load_model, load_network
from facegan_cli.models.registry import Family, Reference, register, typed_config

FAMILY = "feature-translator"
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
STYLE_LAYER_WEIGHTS = (0.5, 1.0, 1.5, 3.0, 4.0)  # T:697
CONTENT_LAYERS = ("conv3_2", "conv4_2")
TRANSLATORS = ("conv", "dense")
DIRECTIONS = ("a2b", "b2a")

OPTIMIZERS = ("adam", "sgd")


@dataclass(kw_only=True)
class FeatureTranslatorConfig(FamilyConfig):
    """The translators' settings, the VGG19 features they translate, their training, and (derived when training
    starts) the VGG19 file, its SHA-256 and the held-out pairs."""

    family: ClassVar[str] = FAMILY
    preset: str
    resolution: int = setting(help="Image size the pairs are read at (64).", min=32)
    direction: str = setting(help="a2b: A features -> B features (default); b2a: the reverse.", choices=DIRECTIONS)
    content_layer: str = setting(help="Content feature: conv3_2 (thesis) or conv4_2 (its ablation).",
                                 choices=CONTENT_LAYERS, arch=True)
    style_layers: list[str]
    style_layer_weights: list[float]  # --style-layer-weights (a comma-separated list, parsed by the trainer)
    alpha: float = setting(help="Style weight alpha (1e-5: style/content = 1e-5, T:725).", non_negative=True)
    beta: float = setting(help="Content weight beta (1).", non_negative=True)
    translator: str = setting(help="conv (3x3 convolutions, the thesis's) or dense (1x1: one fully connected layer "
                              "across channels at every position).", choices=TRANSLATORS, arch=True)
    slope: float
    last_norm_affine: bool = setting(
        help="Learnable scale and shift in each translator's last InstanceNorm (default: on).", arch=True)
    act: str = setting(help="Features after (post_relu, default) or before (pre_relu) each ReLU.", choices=ACTIVATIONS)
    pool: str = setting(help="VGG19 pooling: avg (thesis, default) or max.", choices=POOLS)
    batch: int = setting(help="Pairs per step (8).", min=1)
    n_epochs: int = setting(help="Epochs at the initial rate (500).", min=0)
    n_epochs_decay: int = setting(help="Epochs of linear decay to 0 after them (100).", min=0)
    sample_steps: int = setting(20, help="Adam steps of the synthesis in each sample grid (20).", min=0)
    optimizer: str = setting(help="adam (adam64) or sgd (thesis64).", choices=OPTIMIZERS)
    lr: float = setting(help="Learning rate (adam64 1e-3, thesis64 2). With --resume: from then on.", positive=True)
    vgg_weights: str | None = setting(
        derived=True, type=Path,
        help="A local VGG19 file instead of the cached vgg19-dcbb9e9d.pth (verified under that name; your own "
        "network in torchvision's format under another, its SHA-256 recorded).")
    vgg_sha256: str = setting(derived=True)
    heldout: dict[str, str] | None = setting(derived=True)  # the held-out pairs' folders (a test split), or None


_BASE: dict[str, Any] = {
    "resolution": 64, "direction": "a2b", "content_layer": "conv3_2", "style_layers": list(STYLE_LAYERS),
    "style_layer_weights": list(STYLE_LAYER_WEIGHTS), "alpha": 1e-5, "beta": 1.0, "translator": "conv",
    "slope": 0.2, "last_norm_affine": True, "act": "post_relu", "pool": "avg", "batch": 8, "n_epochs": 500,
    "n_epochs_decay": 100, "sample_steps": 20,
}
PRESETS: dict[str, dict[str, Any]] = {
    # Adam on the translators' weights (DEFAULT, recommended: the thesis names no optimiser).
    "adam64": {**_BASE, "optimizer": "adam", "lr": 1e-3},
    # The thesis's learning rate of 2, read as plain SGD (T:697). With the 1/2-sum content loss as written it
    # diverges within a few steps (the loss grows about 1e4 times per step at 32 px); kept to reproduce it.
    "thesis64": {**_BASE, "optimizer": "sgd", "lr": 2.0},
}


class Translator(nn.Module):
    """One feature's translator: 3 x [conv C -> C (stride 1) -> InstanceNorm], LeakyReLU after the first two."""

    def __init__(self, channels: int, kernel: int = 3, slope: float = 0.2, last_affine: bool = True) -> None:
        super().__init__()
        pad = kernel // 2
        self.net = nn.Sequential(
            nn.Conv2d(channels, channels, kernel, 1, pad), nn.InstanceNorm2d(channels), nn.LeakyReLU(slope),
            nn.Conv2d(channels, channels, kernel, 1, pad), nn.InstanceNorm2d(channels), nn.LeakyReLU(slope),
            nn.Conv2d(channels, channels, kernel, 1, pad), nn.InstanceNorm2d(channels, affine=last_affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def feature_keys(config: dict[str, Any]) -> dict[str, str]:
    """Translator name -> VGG19 conv layer: "content" and "style_conv1_1" ... (a layer may be both)."""
    keys = {"content": str(config["content_layer"])}
    keys.update({f"style_{layer}": str(layer) for layer in config["style_layers"]})
    return keys


class FeatureTranslator(nn.Module):
    """{translator name: features of the source domain} -> the same names, translated to the target domain."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        kernel = 3 if config["translator"] == "conv" else 1
        self.keys = feature_keys(config)
        self.translators = nn.ModuleDict({
            name: Translator(TAP_CHANNELS[layer_tap(layer)], kernel, float(config["slope"]),
                             bool(config["last_norm_affine"]))
            for name, layer in self.keys.items()
        })
        side = int(config["resolution"])
        self.register_buffer("mean_source", torch.zeros(3, side, side))
        self.register_buffer("mean_target", torch.zeros(3, side, side))
        self.register_buffer("mean_count", torch.zeros((), dtype=torch.float64))

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: net(features[name]) for name, net in self.translators.items()}

    @torch.no_grad()
    def update_means(self, source: torch.Tensor, target: torch.Tensor) -> None:
        """Fold a batch (N x 3 x R x R in [0, 1]) into the running per-pixel means of the two domains."""
        n = source.shape[0]
        total = self.mean_count + n
        for mean, batch in ((self.mean_source, source), (self.mean_target, target)):
            mean.add_((batch.float().sum(0) - n * mean) / total.float())
        self.mean_count.copy_(total)


def check_config(config: dict[str, Any]) -> None:
    """ValueError naming what a configuration gets wrong."""
    if config["translator"] not in TRANSLATORS:
        raise ValueError(f"translator {config['translator']!r} is not one of {', '.join(TRANSLATORS)}")
    if config["direction"] not in DIRECTIONS:
        raise ValueError(f"direction {config['direction']!r} is not one of {', '.join(DIRECTIONS)}")
    for layer in (config["content_layer"], *config["style_layers"]):
        layer_tap(layer)
    if len(config["style_layer_weights"]) != len(config["style_layers"]):
        raise ValueError(f"{len(config['style_layer_weights'])} style layer weights for "
                         f"{len(config['style_layers'])} style layers")
    if int(config["resolution"]) < 32:
        raise ValueError(f"resolution {config['resolution']} leaves conv5_1 under 2x2 (use 32 or more)")


def build_translator(config: FeatureTranslatorConfig | dict[str, Any]) -> FeatureTranslator:
    record = typed_config(FAMILY, config).to_record()  # checked: no unknown or missing setting
    check_config(record)
    return FeatureTranslator(record)


@dataclass
class LoadedFeatureTranslator:
    """A trained translator in eval mode, with its configuration (layers, weights, VGG19 identity)."""

    module: FeatureTranslator
    config: dict[str, Any]
    step: int
    path: Path
    device: torch.device

    @property
    def resolution(self) -> int:
        return int(self.config["resolution"])

    @property
    def direction(self) -> str:
        return str(self.config["direction"])

    @torch.no_grad()
    def translate(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.module(features)

    def mean_image(self, domain: str = "target") -> torch.Tensor:
        """The training images' per-pixel mean of the source or target domain, 1 x 3 x R x R in [0, 1]."""
        if float(self.module.mean_count) <= 0:
            raise FaceganError(f"{self.path} holds no mean image (it saw no training images).",
                               "Use --init input, input+noise or noise, or a checkpoint of a run that trained.")
        mean = self.module.mean_target if domain == "target" else self.module.mean_source
        return mean[None].clone()


def feature_translator_loader(ckpt: Checkpoint, family: Family, device: torch.device) -> LoadedFeatureTranslator:
    config = ckpt.meta["model"]
    module = load_network(ckpt, "T", build_translator, config, family.name, device)
    return LoadedFeatureTranslator(module, dict(config), ckpt.step, ckpt.path, device)


def load_feature_translator(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> LoadedFeatureTranslator:
    """The feature translator of a run directory, its checkpoints/ folder or a checkpoint file."""
    return load_model(path, device, kind="feature-translator")


def _networks(config: dict[str, Any]) -> dict[str, nn.Module]:
    model = build_translator(config)
    found: dict[str, nn.Module] = {"translators": model}
    found.update({f"T_{name}": net for name, net in model.translators.items()})
    return found


register(Family(
    name=FAMILY,
    kind="feature-translator",
    presets=PRESETS,
    default_preset="adam64",
    describe="Latent Features Transfer (seed 004): per-feature VGG19 translators trained on paired images",
    training="facegan_cli.train.feature_translator_trainer:TRAINING",
    loader=feature_translator_loader,
    networks=_networks,
    config=FeatureTranslatorConfig,
    reference_counts={  # specs/transfer.md: 18,252,864, +3,456 with the last InstanceNorm's affine (the default)
        "adam64": Reference({"translators": 18_252_864 + 3_456, "T_style_conv1_1": 110_784 + 128,
                             "T_content": 1_770_240 + 512}, source="specs/transfer.md"),
        "adam64 without the last affine": Reference({"translators": 18_252_864}, preset="adam64",
                                                    options={"last_norm_affine": False}, source="specs/transfer.md"),
    },
))
