"""Layers shared by the progressive families: equalised-learning-rate conv/dense, pixel norm, minibatch stddev.

Equalised learning rate (Karras et al. 2018, sec. 4.1): weights are stored as N(0, 1) draws and scaled at
run time by gain / sqrt(fan_in), so Adam's per-parameter step sizes act equally on every layer. The
original code multiplies the weight (not the activations) by the constant; so do these layers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2.0)  # He's gain for (leaky) ReLU layers, as the original's default


class EqualizedConv2d(nn.Module):
    """Conv2d (stride 1, 'same' padding) with weights ~ N(0, 1) scaled by gain / sqrt(in * k * k); bias 0."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, gain: float = LRELU_GAIN) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        out, inp, k, _ = self.weight.shape
        return f"{inp}, {out}, kernel={k}, scale={self.scale:.5g}"


class EqualizedLinear(nn.Module):
    """Dense layer with weights ~ N(0, 1) scaled by gain / sqrt(in_features); bias 0."""

    def __init__(self, in_features: int, out_features: int, gain: float = LRELU_GAIN) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self) -> str:
        out, inp = self.weight.shape
        return f"{inp}, {out}, scale={self.scale:.5g}"


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors as float32 (for sums and blends that bf16 would round); wider ones as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x * rsqrt(mean of x^2 over channels + eps), per pixel (the seed's "epsilon = 10^8" is 1e-8)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Append one feature map: the stddev of each feature over a group, averaged to one scalar per group.

    As the original: groups of min(group_size, N) samples taken with stride N / G (sample i belongs to
    group i mod M), biased variance, sqrt(var + 1e-8), mean over channels and pixels, computed in fp32.
    The batch must divide into groups; the trainer checks that for every phase before training starts.
    """
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        raise ValueError(f"minibatch {n} is not a multiple of the stddev group size {g}")
    y = at_least_fp32(x).reshape(g, n // g, c, h, w)
    y = y - y.mean(dim=0, keepdim=True)
    y = torch.sqrt(y.square().mean(dim=0) + 1e-8)  # [M, C, H, W]
    y = y.mean(dim=(1, 2, 3)).to(x.dtype)  # [M]
    y = y.repeat(g).view(n, 1, 1, 1).expand(n, 1, h, w)  # sample i gets group i mod M
    return torch.cat([x, y], dim=1)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling (the original's upscale2d)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling (the original's downscale2d)."""
    return F.avg_pool2d(x, 2)
