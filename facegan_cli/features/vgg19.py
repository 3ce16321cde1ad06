"""VGG19's convolutional part (torchvision's `vgg19().features`), frozen, with named taps: the network of
neural style transfer, Latent Features Transfer and CycleGAN+NST.

API (used by facegan_cli.transfer and the CycleGAN+NST variant):

    from facegan_cli.features.vgg19 import VGG19Extractor
    vgg = VGG19Extractor(weights=None, device="cpu", pool="avg")   # weights: None = the verified official file
    feats = vgg(images, ["relu1_1", "conv3_2"])  # images: float N x 3 x H x W in [0, 1] (or uint8), on the device
    feats["conv3_2"]                              # N x 256 x H/4 x W/4, differentiable w.r.t. `images`

- Taps, in network order (torchvision `features` index in brackets): conv1_1 [0], relu1_1 [1], conv1_2 [2],
  relu1_2 [3], pool1 [4], conv2_1 [5] ... relu5_4 [35], pool5 [36]; `TAP_INDEX` maps every name to its
  index and `TAP_CHANNELS` to its channel count. `layer_tap("conv3_2", "post_relu")` is "relu3_2":
  style-transfer code names layers by their convolution and picks the activation side (Gatys's r-layers
  are post-ReLU, the PyTorch tutorial's conv_i pre-ReLU).
- `pool`: "max" (torchvision, the PyTorch tutorial, Gatys's notebook default) or "avg" (every 2x2 max
  pool replaced by a 2x2 average pool, as the Gatys et al. paper and seed 004 use). Pools hold no
  weights, so both read the same file; `input_name` tells their features apart.
- Input: RGB in [0, 1] (uint8 is divided by 255), normalised with ImageNet's mean [0.485, 0.456, 0.406]
  and std [0.229, 0.224, 0.225] (`normalize`), as torchvision's weights expect.
- The forward pass stops after the deepest tap asked for; ReLUs are not in-place, so a conv tap keeps its
  pre-activation values while the pass goes on.
- Weights: `vgg19-dcbb9e9d.pth` (torchvision's IMAGENET1K_V1) through core.weights: the cache, torch hub's
  cache or a download, SHA-256 verified; with no file and no network the error names the file, its URL and
  `facegan weights import vgg19 FILE`, and no other weights are ever used. `weights=PATH` (the commands'
  `--vgg-weights`) takes a local file: under the official name it is verified, under another name it is
  the user's own network (used as given, its SHA-256 reported). The classifier's keys in the file are
  ignored; every `features.N` key must be there with torchvision's shape.
- `build_vgg19(path, pool)` is the frozen CPU network alone, for code that manages its own device.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from facegan_cli.core import weights as W
from facegan_cli.core.errors import FaceganError
from facegan_cli.features.base import FrozenExtractor, TappedNetwork, load_frozen
from facegan_cli.features.names import ACTIVATIONS as ACTIVATIONS  # where callers import them from
from facegan_cli.features.names import POOLS as POOLS

AtTap = Callable[[str, torch.Tensor], torch.Tensor]  # (tap, its features) -> what the pass goes on with
# Convolutions per block and their width (VGG19, configuration "E" of Simonyan & Zisserman).
BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURES_PARAMETERS = 20_024_384  # torchvision vgg19().features


def tap_layout(blocks: tuple[tuple[int, int], ...]) -> tuple[tuple[str, ...], dict[str, int], dict[str, int]]:
    """The taps of a VGG's `features` (conv/relu per convolution, a pool per block), in module order: names,
    name -> index, name -> channels. Shared with VGG16 (features.vgg16), which has other block lengths."""
    names: list[str] = []
    channels: dict[str, int] = {}
    for block, (convs, width) in enumerate(blocks, start=1):
        for i in range(1, convs + 1):
            for kind in ("conv", "relu"):
                names.append(f"{kind}{block}_{i}")
                channels[names[-1]] = width
        names.append(f"pool{block}")
        channels[names[-1]] = width
    return tuple(names), {name: i for i, name in enumerate(names)}, channels


TAPS, TAP_INDEX, TAP_CHANNELS = tap_layout(BLOCKS)
CONV_LAYERS = tuple(name for name in TAPS if name.startswith("conv"))


def layer_tap(layer: str, act: str = "post_relu") -> str:
    """The tap of a convolution layer name ("conv3_2") on one side of its ReLU ("relu3_2" post-ReLU); any
    other tap name is returned as it is. ValueError for an unknown name or activation side."""
    if act not in ACTIVATIONS:
        raise ValueError(f"activation side {act!r} is not one of {', '.join(ACTIVATIONS)}")
    if layer in CONV_LAYERS:
        return layer if act == "pre_relu" else "relu" + layer[4:]
    if layer in TAP_INDEX:
        return layer
    raise ValueError(f"{layer!r} is not a VGG19 layer (conv1_1 ... conv5_4, relu1_1 ... relu5_4, pool1 ... pool5)")


class VGGFeatures(TappedNetwork):
    """torchvision's VGG `features` of the configuration BLOCKS (same module indices, so its state dict loads as
    it is), with taps; VGG19 here, VGG16 in features.vgg16."""

    BLOCKS: tuple[tuple[int, int], ...] = BLOCKS
    TAPS = TAPS

    def __init__(self, pool: str = "max") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool {pool!r} is not one of {', '.join(POOLS)}")
        self.pool = pool
        layers: list[nn.Module] = []
        cin = 3
        for convs, width in self.BLOCKS:
            for _ in range(convs):
                layers += [nn.Conv2d(cin, width, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                cin = width
            layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, taps: Sequence[str] = ("relu5_1",), at_tap: AtTap | None = None,
                ) -> dict[str, torch.Tensor]:
        """{tap: features} of `taps`; `at_tap(tap, features)`, where given, replaces a tap's features by what it
        returns, and the pass goes on from that (style transfer puts its loss layers there, as the tutorial does)."""
        last = self.deepest(taps)
        wanted = set(taps)
        out: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if self.TAPS[index] in wanted:
                if at_tap is not None:
                    x = at_tap(self.TAPS[index], x)
                out[self.TAPS[index]] = x
            if index == last:
                break
        return {tap: out[tap] for tap in taps}


class VGG19(VGGFeatures):
    """VGG19 (configuration "E"): torchvision's `vgg19().features`."""


_FIX = (
    "Pass torchvision's vgg19-dcbb9e9d.pth (the state dict of torchvision.models.vgg19, IMAGENET1K_V1) or a "
    "network saved in that format; other VGG variants (vgg16, vgg19_bn, Caffe conversions) do not fit."
)


def build_vgg19(path: str | os.PathLike[str], pool: str = "max") -> VGG19:
    """VGG19's features holding the weights of `path` (torchvision's file format), frozen, on the CPU."""
    return load_frozen(
        functools.partial(VGG19, pool), path, W.get("vgg19"), "VGG19's convolutional layers", _FIX,
        skip=("classifier.",),  # the fully connected head is never used
    )


class VGG19Extractor(FrozenExtractor):
    """VGG19 frozen on a device: `extractor(images in [0, 1], taps)` -> {tap: N x C x h x w}."""

    weights_key = "vgg19"
    taps = TAP_CHANNELS

    def __init__(
        self,
        weights: W.Resolved | str | os.PathLike[str] | None = None,
        device: torch.device | str = "cpu",
        pool: str = "max",
        batch_size: int = 16,
        fast: bool = False,
        channels_last: bool = True,
    ) -> None:
        if pool not in POOLS:
            raise FaceganError(f"--pool {pool!r} is not a VGG19 pooling.", f"Use one of: {', '.join(POOLS)}.")
        super().__init__(weights, device, batch_size, fast, channels_last)
        self.pool = pool
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    @property
    def input_name(self) -> str:
        return f"imagenet-{self.pool}pool"

    @property
    def label(self) -> str:
        return f"vgg19 {self.pool} pool"

    def build(self, path: Path) -> VGG19:
        return build_vgg19(path, self.pool)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images
        return (x - self._mean) / self._std

    def check_layers(self, layers: Sequence[str], act: str = "post_relu") -> list[str]:
        """The taps of layer names (see `layer_tap`); a FaceganError names an unknown one."""
        try:
            return [layer_tap(layer, act) for layer in layers]
        except ValueError as exc:
            raise FaceganError(f"Unknown VGG19 layer: {exc}.", "Name layers like conv3_2 or relu4_1.") from None


def recorded_extractor(
    weights: str | os.PathLike[str] | None, device: torch.device | str, pool: str, recorded: str | None,
    trained: str, fix: str,
) -> VGG19Extractor:
    """The VGG19 a run trained with: its weights must have the SHA-256 the run `recorded` (`trained` says
    what was trained with them, `fix` where the right file is). Weights that do not fit fail now, before
    any step or output."""
    extractor = VGG19Extractor(weights, device, pool=pool)
    if recorded and extractor.weights.sha256 != recorded:
        raise FaceganError(
            f"The VGG19 weights {extractor.weights.path} (SHA-256 {extractor.weights.sha256[:12]}...) are not the ones "
            f"{trained} (SHA-256 {str(recorded)[:12]}...): its features would not mean the same.",
            fix,
        )
    _ = extractor.model
    return extractor
