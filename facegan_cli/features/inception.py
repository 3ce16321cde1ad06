"""The FID Inception network: TensorFlow's 2015-12-05 Inception v3 in torchvision's module layout.

This is the network pytorch-fid calls FIDInceptionV3 and torch-fidelity calls inception-v3-compat: the
torchvision Inception v3 graph with a 1008-way fc, no auxiliary head, and the TensorFlow quirks of the
original FID code (average pooling that ignores padding in the A/C/E blocks, max pooling in the last E
block). Module names follow torchvision, so `pt_inception-2015-12-05-6726825d.pth` (a plain state dict)
loads as it is.

`FIDInception.forward` takes a batch already resized to 299x299 and scaled to [-1, 1]; it returns the
requested taps and stops after the last block that any of them needs. `InceptionExtractor` is the network
frozen on a device (features.base), fed through one protocol (metrics.protocols: the resizing and scaling
of each reference implementation).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from facegan_cli.core import weights as W
from facegan_cli.features.base import FrozenExtractor, TappedNetwork, load_frozen

# Feature taps a caller can ask for, in network order: spatially averaged activations after the first
# and second max pool (64, 192), before the auxiliary head (768), the final pool (2048), and the 1008
# logits with and without the fc bias (the Inception Score uses the unbiased ones, as torch-fidelity).
TAPS = ("64", "192", "768", "2048", "logits_unbiased", "logits")
FEATURE_DIMS = {"64": 64, "192": 192, "768": 768, "2048": 2048, "logits_unbiased": 1008, "logits": 1008}
INPUT_SIZE = 299


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm (TensorFlow's eps 1e-3), ReLU."""

    def __init__(self, cin: int, cout: int, **kwargs: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_no_pad(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool divides by the number of real pixels under the window, not by 9.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([a, b, c, d], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = layer(c)
        d = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([a, b, c, d], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = layer(b)
        return torch.cat([a, b, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """The E block; `max_pool` selects the FID graph's max pooling in the last one (Mixed_7c)."""

    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg_pool_no_pad(x)
        return torch.cat([a, b, c, self.branch_pool(pooled)], 1)


def _spatial_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


class FIDInception(TappedNetwork):
    """Inception v3 as used by FID; `forward(x, taps)` returns {tap: N x dims float32} for the taps."""

    TAPS = TAPS

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor, taps: Sequence[str] = ("2048",)) -> dict[str, torch.Tensor]:
        last = self.deepest(taps)
        out: dict[str, torch.Tensor] = {}
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        if "64" in taps:
            out["64"] = _spatial_mean(x)
        if last >= 1:
            x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), kernel_size=3, stride=2)
            if "192" in taps:
                out["192"] = _spatial_mean(x)
        if last >= 2:
            for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                          self.Mixed_6c, self.Mixed_6d, self.Mixed_6e):
                x = block(x)
            if "768" in taps:
                out["768"] = _spatial_mean(x)
        if last >= 3:
            pool3 = _spatial_mean(self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x))))
            out["2048"] = pool3
            if last >= 4:
                # torch-fidelity's "logits_unbiased": the fc product without its bias, then the bias added.
                unbiased = pool3.mm(self.fc.weight.T)
                out["logits_unbiased"] = unbiased
                out["logits"] = unbiased + self.fc.bias.unsqueeze(0)
        return {tap: out[tap].float() for tap in taps}


def build_inception(path: str | os.PathLike[str]) -> FIDInception:
    """The FID Inception network with the weights in `path`, frozen, on the CPU."""
    return load_frozen(
        FIDInception, path, W.get("fid-inception"), "the FID Inception network",
        "Pass pt_inception-2015-12-05-6726825d.pth (pytorch-fid) or weights-inception-2015-12-05-6726825d.pth "
        "(torch-fidelity); other Inception weights give other numbers.",
        # torchvision's Inception3 state dicts may carry an AuxLogits head the FID graph does not have.
        skip=("AuxLogits.",),
    )


def fuse_batchnorm(model: FIDInception) -> FIDInception:
    """Fold every eval-mode BatchNorm into the convolution before it, in place; returns the model.

    conv -> BN is one affine map per output channel, so it becomes one convolution with a bias: a memory
    pass fewer per layer (the CPU spends much of its time there). The folding is done in float64, so the
    features move by float32 rounding only (about 1e-7 relative).
    """
    for module in model.modules():
        if isinstance(module, BasicConv2d) and isinstance(module.bn, nn.BatchNorm2d):
            conv, bn = module.conv, module.bn
            with torch.no_grad():
                scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
                weight = (conv.weight.double() * scale.view(-1, 1, 1, 1)).to(conv.weight.dtype)
                bias = (bn.bias.double() - bn.running_mean.double() * scale).to(conv.weight.dtype)
            fused = nn.Conv2d(
                conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True,
                device="meta",
            )
            fused.weight, fused.bias = nn.Parameter(weight, requires_grad=False), nn.Parameter(bias, requires_grad=False)
            module.conv, module.bn = fused, nn.Identity()
    return model.requires_grad_(False)


class InputPath(Protocol):
    """How uint8 images become the network's 299x299 input: one of metrics.protocols' reference protocols."""

    name: str
    prepare: Callable[[torch.Tensor], torch.Tensor]  # uint8 N x 3 x H x W -> float32 N x 3 x 299 x 299


class InceptionExtractor(FrozenExtractor):
    """The FID Inception network (BatchNorm folded into the convolutions) on a device, fed through one
    protocol: `extractor(uint8 N x 3 x H x W on the device, taps)` -> {tap: N x dims float32}."""

    weights_key = "fid-inception"
    taps = FEATURE_DIMS

    def __init__(
        self,
        weights: W.Resolved | str | os.PathLike[str] | None,
        protocol: InputPath,
        device: torch.device | str = "cpu",
        batch_size: int = 50,
        fast: bool = False,
    ) -> None:
        super().__init__(weights, device, batch_size, fast)
        self.protocol = protocol

    @property
    def input_name(self) -> str:
        return self.protocol.name

    @property
    def label(self) -> str:
        return f"inception {self.protocol.name}"

    def build(self, path: Path) -> FIDInception:
        return fuse_batchnorm(build_inception(path))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return self.protocol.prepare(images)
