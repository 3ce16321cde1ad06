"""Johnson et al.'s fast style transfer (2016, "Perceptual losses for real-time style transfer and
super-resolution"), as pytorch/examples' fast_neural_style has it: `facegan train fast-style`, `facegan
transfer fast`.

One feed-forward network per style image turns a photo into a painting in one pass. The network is
pytorch/examples' TransformerNet (1,679,235 parameters): three reflection-padded convolutions (9x9 to 32
maps, then 3x3 stride 2 to 64 and 128) each followed by an InstanceNorm with affine parameters and a ReLU,
five residual blocks at 128 maps (conv, IN, ReLU, conv, IN, plus the input), two nearest-neighbour x2
upsamplings each followed by a reflection-padded 3x3 convolution, IN and ReLU, and a 9x9 convolution to RGB.
It is fully convolutional: any input size (with sides divisible by 4 the output has the input's size; else
the nearest-upsampled maps are a few pixels smaller, as in the reference). Pixels go in and come out on the
0-255 scale, without normalisation and without a final activation (the caller clamps).

facegan lays the same layers out in three Sequentials (`head`, `residuals`, `tail`); `from_examples_state_dict`
maps a state dict saved by pytorch/examples (their `train` writes `torch.save(transformer.state_dict())` to
a `.model` file; their released candy.pth, mosaic.pth, udnie.pth and rain_princess.pth are the same format,
saved by an older PyTorch whose InstanceNorm kept `running_mean`/`running_var` buffers, which their `stylize`
deletes with the regex `in\\d+\\.running_(mean|var)$`: so does this) to facegan's names; `facegan import` (interop/examples_fast_style.py) turns such a file into a facegan run that
`facegan transfer fast --ckpt` uses.

Training (train/fast_style_trainer.py) is their perceptual loss on a frozen VGG16 (features/vgg16.py):
content = content_weight * MSE(relu2_2 of the output, relu2_2 of the input), style = style_weight * sum over
relu1_2, relu2_2, relu3_3, relu4_3 of MSE(Gram(output), Gram(style image)) with Gram = F F^T / (C H W),
both sides normalised as their `normalize_batch` does (0-255 -> /255 -> ImageNet mean and std).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from facegan_cli.core.checkpoint import Checkpoint
from facegan_cli.models.config import FamilyConfig, setting
from facegan_cli.models.loading import load_model, load_network
from facegan_cli.models.registry import Family, Reference, register, typed_config

FAMILY = "fast-style"
NETWORK = "T"  # the checkpoint module that holds the transformation network
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")  # pytorch/examples' Vgg16 outputs
CONTENT_LAYER = "relu2_2"
PARAMETERS = 1_679_235  # pytorch/examples' TransformerNet


@dataclass(kw_only=True)
class FastStyleConfig(FamilyConfig):
    """The transformation network's training: the perceptual loss's weights and layers, the data's size, and
    (derived when training starts) the style image and the VGG16 file with their SHA-256."""

    family: ClassVar[str] = FAMILY
    preset: str
    resolution: int = setting(help="Side of the training crops: short side resized, centre crop (examples 256).",
                              min=16)
    batch: int = setting(help="Content images per step (4).", min=1)
    lr: float = setting(help="Adam learning rate (1e-3). With --resume: from then on.", positive=True)
    content_weight: float = setting(help="Weight of the relu2_2 content loss (examples 1e5).", non_negative=True)
    style_weight: float = setting(help="Weight of the style loss (examples 1e10, faces 5e9).", non_negative=True)
    n_epochs: int = setting(help="Epochs when neither --steps nor --epochs is given (examples 2, faces 4).", min=1)
    style_size: int | None = setting(
        help="Resize the style image to this square first, as their --style-size (examples: its own size; "
        "faces 256).", min=16)
    content_layer: str
    style_layers: list[str]
    style_image: str = setting(derived=True, type=Path, flag="--style-image",
                               help="The style image (any image file): its Gram matrices are the style target.")
    style_sha256: str = setting(derived=True)
    vgg_weights: str | None = setting(
        derived=True, type=Path,
        help="A local VGG16 file instead of the cached vgg16-397923af.pth (verified under that name; your own "
        "network in torchvision's format under another, its SHA-256 recorded).")
    vgg_sha256: str = setting(derived=True)
    heldout: dict[str, str] | None = setting(derived=True)  # the held-out content images of the sample grids


_BASE: dict[str, Any] = {"content_layer": CONTENT_LAYER, "style_layers": list(STYLE_LAYERS), "batch": 4, "lr": 1e-3,
                         "content_weight": 1e5}
PRESETS: dict[str, dict[str, Any]] = {
    # pytorch/examples' `neural_style.py train` defaults (COCO 2014 in their README).
    "examples": {**_BASE, "resolution": 256, "style_weight": 1e10, "n_epochs": 2, "style_size": None},
    # Portraits (DEFAULT, see README): the style image at the crops' own scale (256), so that its strokes are as
    # large relative to a face as they are in the painting relative to its frame, rather than the tiny
    # texture a 1000+ px painting's full-size Gram gives; half their style weight, so eyes, mouth and the
    # face's outline survive; 4 epochs, since face sets (CelebA-HQ's 30k) are smaller than COCO's 83k.
    "faces": {**_BASE, "resolution": 256, "style_weight": 5e9, "n_epochs": 4, "style_size": 256},
}


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """A convolution on a reflection-padded input (padding kernel // 2): the reference's ConvLayer."""
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride))


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True)


class Residual(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))), 3x3 convolutions at a constant width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, 3), _norm(channels), nn.ReLU(),
                                  _conv(channels, channels, 3), _norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """0-255 RGB N x 3 x H x W -> stylised RGB on (about) the same scale, unclamped (see the module docstring)."""

    def __init__(self, config: FastStyleConfig | dict[str, Any] | None = None) -> None:
        super().__init__()
        if config is not None:
            typed_config(FAMILY, config)  # a record is checked (the network itself has no settings)
        self.head = nn.Sequential(
            _conv(3, 32, 9), _norm(32), nn.ReLU(),
            _conv(32, 64, 3, 2), _norm(64), nn.ReLU(),
            _conv(64, 128, 3, 2), _norm(128), nn.ReLU(),
        )
        self.residuals = nn.Sequential(*(Residual(128) for _ in range(5)))
        self.tail = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(128, 64, 3), _norm(64), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(64, 32, 3), _norm(32), nn.ReLU(),
            _conv(32, 3, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.residuals(self.head(x)))


# --- pytorch/examples' files ---------------------------------------------------------------------------------

# Their module prefix -> facegan's (the parameters under each: conv2d.weight/.bias become .1.weight/.bias of
# the padded convolution, an InstanceNorm's weight/bias stay).
_EXAMPLES_PREFIXES: dict[str, str] = {
    "conv1.conv2d": "head.0.1", "in1": "head.1", "conv2.conv2d": "head.3.1", "in2": "head.4",
    "conv3.conv2d": "head.6.1", "in3": "head.7",
    **{f"res{i + 1}.{theirs}": f"residuals.{i}.body.{ours}" for i in range(5)
       for theirs, ours in (("conv1.conv2d", "0.1"), ("in1", "1"), ("conv2.conv2d", "3.1"), ("in2", "4"))},
    "deconv1.conv2d": "tail.1.1", "in4": "tail.2", "deconv2.conv2d": "tail.5.1", "in5": "tail.6",
    "deconv3.conv2d": "tail.8.1",
}
# Their stylize's regex: InstanceNorm running statistics that PyTorch < 0.4 saved and that no norm uses.
LEGACY_KEY = re.compile(r"in\d+\.running_(mean|var)$")


class ForeignWeights(ValueError):
    """A state dict that is not pytorch/examples' TransformerNet (the message says what does not fit)."""


def from_examples_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """pytorch/examples' TransformerNet state dict -> (facegan's TransformerNet state dict, what was inferred:
    the source format and the legacy keys dropped). ForeignWeights names a missing key, an extra key or a shape
    that does not fit (every key and shape is checked, nothing is loaded partially)."""
    dropped = sorted(k for k in state if LEGACY_KEY.search(k))
    kept = {k: v for k, v in state.items() if k not in set(dropped)}
    shapes = _shapes()
    mapped: dict[str, torch.Tensor] = {}
    extra: list[str] = []
    for key, tensor in kept.items():
        prefix, _, param = key.rpartition(".")
        ours = _EXAMPLES_PREFIXES.get(prefix)
        name = f"{ours}.{param}" if ours is not None else None
        if name is None or name not in shapes:
            extra.append(key)
            continue
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != tuple(shapes[name]):
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ForeignWeights(f"{key} is {shape}, TransformerNet's is {tuple(shapes[name])}")
        mapped[name] = tensor.detach().float().clone()
    if extra:
        raise ForeignWeights(f"{len(extra)} key(s) TransformerNet does not have ({', '.join(extra[:3])})")
    ours_to_theirs = {f"{v}.{p}": f"{k}.{p}" for k, v in _EXAMPLES_PREFIXES.items() for p in ("weight", "bias")}
    missing = [ours_to_theirs.get(k, k) for k in shapes if k not in mapped]
    if missing:
        raise ForeignWeights(f"{len(missing)} key(s) of TransformerNet are missing ({', '.join(missing[:3])})")
    inferred = {"format": "pytorch/examples fast_neural_style TransformerNet state dict",
                "legacy_keys_dropped": dropped, "parameters": sum(t.numel() for t in mapped.values())}
    return mapped, inferred


@functools.cache
def _shapes() -> dict[str, torch.Size]:
    """TransformerNet's parameter names and shapes (built once, on the meta device: no memory)."""
    with torch.device("meta"):
        return {k: v.shape for k, v in TransformerNet().state_dict().items()}


def examples_config() -> dict[str, Any]:
    """The "model" record of a run made from their file: their training settings (the examples preset), the
    style and VGG16 unknown (recorded as such)."""
    config = {"preset": "examples", **PRESETS["examples"], "style_image": "", "style_sha256": "",
              "vgg_weights": None, "vgg_sha256": "", "heldout": None}
    return typed_config(FAMILY, config).to_record()


# --- a trained network, loaded ---------------------------------------------------------------------------------


@dataclass
class LoadedStylizer:
    """A trained (or imported) transformation network in eval mode on its device."""

    module: TransformerNet
    config: dict[str, Any]
    step: int
    path: Path
    device: torch.device

    value_range = (0.0, 255.0)

    @torch.inference_mode()
    def stylize(self, images: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W float 0-255 (on any device) -> the network's output on its device, unclamped."""
        return self.module(images.to(self.device, torch.float32))


def to_pixels(output: torch.Tensor) -> torch.Tensor:
    """The network's output -> N x H x W x 3 uint8 on the CPU as their save_image makes it: clamp to 0-255,
    then truncate (numpy's astype("uint8"))."""
    return output.clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()


def fast_style_loader(ckpt: Checkpoint, family: Family, device: torch.device) -> LoadedStylizer:
    config = ckpt.meta["model"]
    module = load_network(ckpt, NETWORK, TransformerNet, config, family.name, device)
    return LoadedStylizer(module, dict(config), ckpt.step, ckpt.path, device)


def load_stylizer(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> LoadedStylizer:
    """The network of a fast-style run directory, its checkpoints/ folder or a checkpoint file."""
    return load_model(path, device, kind="stylizer")


register(Family(
    name=FAMILY,
    kind="stylizer",
    presets=PRESETS,
    default_preset="faces",
    describe="Johnson et al.'s fast style transfer (pytorch/examples' fast_neural_style): one feed-forward "
    "network per style image, trained with VGG16's perceptual loss",
    training="facegan_cli.train.fast_style_trainer:TRAINING",
    loader=fast_style_loader,
    networks=lambda config: {"transformer": TransformerNet(config)},
    config=FastStyleConfig,
    reference_counts={
        "examples": Reference({"transformer": PARAMETERS},
                              source="pytorch/examples fast_neural_style/neural_style/transformer_net.py"),
        "faces": Reference({"transformer": PARAMETERS}, source="the same network"),
    },
))
