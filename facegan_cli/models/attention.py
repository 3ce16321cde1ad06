"""Self-attention blocks of the attribute editors (specs/ccagan.md).

CrossChannelAttention  seed 000's CCA module: the tokens are image rows, each row's pixels flattened
                       across the query/key channels (the paper's N = W * C/8), so the attention map is
                       H x H; the value rows are mixed with it, projected back to C channels and added to
                       the input with a learnable gamma that starts at 0 (the module starts as identity).
SelfAttention          SAGAN's block in its official form (Zhang et al. 2019): pixels are tokens, keys and
                       values max-pooled 2x2, C/8 query/key and C/2 value channels, no biases, gamma = 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cca_channels(channels: int) -> tuple[int, int]:
    """(query/key channels, value channels) of a CCA module on `channels` inputs: max(1, C//8), max(1, C//2)."""
    return max(1, channels // 8), max(1, channels // 2)


class CrossChannelAttention(nn.Module):
    """out = gamma * proj(delta) + x, delta_j = sum_i softmax_i(q_j . k_i) v_i over image rows i, j."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        cq, cv = cca_channels(channels)
        self.query = nn.Conv2d(channels, cq, 1)
        self.key = nn.Conv2d(channels, cq, 1)
        self.value = nn.Conv2d(channels, cv, 1)
        self.proj = nn.Conv2d(cv, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))
        self.channels = channels

    @staticmethod
    def rows(t: torch.Tensor) -> torch.Tensor:
        """B x C x H x W -> B x H x (C * W): one token per image row, its pixels across the channels."""
        b, c, h, w = t.shape
        return t.permute(0, 2, 1, 3).reshape(b, h, c * w)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The B x H x H map alpha[b, j, i] = softmax over key rows i of q_j . k_i (no 1/sqrt(d), eq. 2)."""
        q, k = self.rows(self.query(x)), self.rows(self.key(x))
        energy = torch.bmm(q, k.transpose(1, 2))
        return F.softmax(energy.float(), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        alpha = self.attention(x)
        v = self.value(x)
        cv = v.shape[1]
        delta = torch.bmm(alpha.to(v.dtype), self.rows(v))  # B x H x (Cv * W)
        delta = delta.view(b, h, cv, w).permute(0, 2, 1, 3)
        return self.gamma * self.proj(delta.contiguous(memory_format=_format_of(x))) + x


class SelfAttention(nn.Module):
    """SAGAN's non-local block: out = gamma * proj(attn @ g) + x, keys/values 2x2 max-pooled."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        cq, cv = max(1, channels // 8), max(1, channels // 2)
        self.theta = nn.Conv2d(channels, cq, 1, bias=False)
        self.phi = nn.Conv2d(channels, cq, 1, bias=False)
        self.g = nn.Conv2d(channels, cv, 1, bias=False)
        self.proj = nn.Conv2d(cv, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """B x (H*W) x (H*W/4): each pixel's softmax weights over the pooled key positions."""
        theta = self.theta(x).flatten(2).transpose(1, 2)  # B x N x Cq
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # B x Cq x N/4
        return F.softmax(torch.bmm(theta, phi).float(), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        attn = self.attention(x)
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # B x Cv x N/4
        out = torch.bmm(g, attn.to(g.dtype).transpose(1, 2)).view(b, g.shape[1], h, w)
        return self.gamma * self.proj(out.contiguous(memory_format=_format_of(x))) + x


def _format_of(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
