"""VGG16's convolutional part (torchvision's `vgg16().features`), frozen, with named taps: the loss network of
Johnson et al.'s fast style transfer (pytorch/examples' fast_neural_style, models/fast_style.py).

    from facegan_cli.features.vgg16 import VGG16Extractor
    vgg = VGG16Extractor(weights=None, device="cpu")      # None: the verified official vgg16-397923af.pth
    feats = vgg(images, ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])  # images in [0, 1], N x 3 x H x W

Everything but the layer list is VGG19's (features.vgg19): the same tap names in module order (conv1_1 [0],
relu1_1 [1], conv1_2 [2], relu1_2 [3], pool1 [4], ... relu4_3 [22], pool4 [23], ... pool5 [30]), the same
ImageNet normalisation of [0, 1] inputs, a pass that stops after the deepest tap asked for, weights through
core.weights (`vgg16-397923af.pth`, torchvision's IMAGENET1K_V1: the cache, torch hub's cache or a download,
SHA-256 verified; `weights=PATH` for a local file, verified under the official name and used as given under
another). pytorch/examples' Vgg16 slices the same modules at indices 4, 9, 16 and 23, i.e. after relu1_2,
relu2_2, relu3_3 and relu4_3.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from facegan_cli.core import weights as W
from facegan_cli.core.errors import FaceganError
from facegan_cli.features.base import load_frozen
from facegan_cli.features.vgg19 import VGG19Extractor, VGGFeatures, tap_layout

# Convolutions per block and their width (VGG16, configuration "D" of Simonyan & Zisserman).
BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
TAPS, TAP_INDEX, TAP_CHANNELS = tap_layout(BLOCKS)
FEATURES_PARAMETERS = 14_714_688  # torchvision vgg16().features

_FIX = (
    "Pass torchvision's vgg16-397923af.pth (the state dict of torchvision.models.vgg16, IMAGENET1K_V1) or a "
    "network saved in that format; other VGG variants (vgg19, vgg16_bn, Caffe conversions) do not fit."
)


class VGG16(VGGFeatures):
    """torchvision's VGG16 `features` (configuration "D"), with taps."""

    BLOCKS = BLOCKS
    TAPS = TAPS


def build_vgg16(path: str | os.PathLike[str], pool: str = "max") -> VGG16:
    """VGG16's features holding the weights of `path` (torchvision's file format), frozen, on the CPU."""
    return load_frozen(functools.partial(VGG16, pool), path, W.get("vgg16"), "VGG16's convolutional layers", _FIX,
                       skip=("classifier.",))


class VGG16Extractor(VGG19Extractor):
    """VGG16 frozen on a device: `extractor(images in [0, 1], taps)` -> {tap: N x C x h x w}."""

    weights_key = "vgg16"
    taps = TAP_CHANNELS

    @property
    def label(self) -> str:
        return f"vgg16 {self.pool} pool"

    def build(self, path: Path) -> VGG16:
        return build_vgg16(path, self.pool)

    def check_layers(self, layers: Sequence[str], act: str = "post_relu") -> list[str]:
        unknown = [layer for layer in layers if layer not in TAP_INDEX]
        if unknown:
            raise FaceganError(f"Unknown VGG16 layer(s): {', '.join(unknown)}.", "Name layers like relu2_2 or relu4_3.")
        return list(layers)
