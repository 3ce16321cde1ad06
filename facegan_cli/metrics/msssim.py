"""MS-SSIM between image pairs, the diversity measure of ProGAN and MMagic (lower = more diverse).

The arithmetic is pytorch-msssim's `ms_ssim` (Wang et al. 2003): 5 scales with weights
(0.0448, 0.2856, 0.3001, 0.2363, 0.1333), an 11-tap Gaussian window of sigma 1.5 applied separably
('valid', height then width), K = (0.01, 0.03) on data range 255, contrast-structure terms clamped at 0,
2x2 average pooling between scales (odd sides padded), per-channel values averaged at the end.

pytorch-msssim refuses images whose smaller side is 160 or less (the window would no longer fit at the
coarsest scale); facegan computes them anyway with the rule pytorch-msssim's own single-scale `ssim`
applies, no smoothing along a side shorter than the window, and warns that such a value is facegan's own.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11
WIN_SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0
# Pixels per image side of one ms_ssim pass (4 pairs of 1024x1024, 64 of 256x256): bounds its memory to
# about 2 GB in float32 whatever batch the caller hands over.
PASS_PIXELS = 4 * 1024 * 1024


def min_side() -> int:
    """The smallest side pytorch-msssim accepts (larger than (win - 1) * 2^4)."""
    return (WIN_SIZE - 1) * 2 ** (len(WEIGHTS) - 1) + 1


def _window(device: torch.device) -> torch.Tensor:
    coords = torch.arange(WIN_SIZE, dtype=torch.float32) - WIN_SIZE // 2
    g = torch.exp(-(coords**2) / (2 * WIN_SIGMA**2))
    return (g / g.sum()).to(device)


def _blur(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    if x.shape[2] >= WIN_SIZE:
        x = F.conv2d(x, win.view(1, 1, WIN_SIZE, 1).expand(c, 1, WIN_SIZE, 1), groups=c)
    if x.shape[3] >= WIN_SIZE:
        x = F.conv2d(x, win.view(1, 1, 1, WIN_SIZE).expand(c, 1, 1, WIN_SIZE), groups=c)
    return x


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel: (mean SSIM, mean contrast-structure) at one scale."""
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    mu1, mu2 = _blur(x, win), _blur(y, win)
    mu1_sq, mu2_sq, mu12 = mu1.pow(2), mu2.pow(2), mu1 * mu2
    s1 = _blur(x * x, win) - mu1_sq
    s2 = _blur(y * y, win) - mu2_sq
    s12 = _blur(x * y, win) - mu12
    cs_map = (2 * s12 + c2) / (s1 + s2 + c2)
    ssim_map = ((2 * mu12 + c1) / (mu1_sq + mu2_sq + c1)) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of each pair of float N x C x H x W images with values in [0, 255]: N values."""
    win = _window(x.device).to(x.dtype)
    weights = x.new_tensor(WEIGHTS)
    mcs = []
    for level in range(len(WEIGHTS)):
        ssim, cs = _ssim_terms(x, y, win)
        if level < len(WEIGHTS) - 1:
            mcs.append(torch.relu(cs))
            padding = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=padding)
            y = F.avg_pool2d(y, kernel_size=2, padding=padding)
    stacked = torch.stack([*mcs, torch.relu(ssim)], dim=0)  # levels x N x C
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Single-scale SSIM of each pair of float N x C x H x W images in [0, 255] (pytorch-msssim's `ssim`:
    the same window and constants, the map's mean per channel, then over channels): N values."""
    return _ssim_terms(x, y, _window(x.device).to(x.dtype))[0].mean(1)


def pairs_per_pass(height: int, width: int) -> int:
    """How many pairs of H x W images one ms_ssim call takes, so that its float32 maps stay bounded."""
    return max(1, PASS_PIXELS // max(1, height * width))


def pair_scores(a: np.ndarray, b: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """MS-SSIM of uint8 N x H x W x 3 arrays a[i] and b[i]: N float64 values.

    The pairs go through ms_ssim a few at a time (`pairs_per_pass`): each pass holds about a dozen float32
    maps of the whole batch, so 50 pairs of 1024x1024 images at once would need some 9 GB and send a CPU
    machine into swap; the values do not depend on the grouping (each pair is computed on its own).
    """
    device = torch.device(device)

    def prep(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float()

    step = pairs_per_pass(a.shape[1], a.shape[2])
    scores = []
    with torch.inference_mode():
        for start in range(0, len(a), step):
            part = slice(start, start + step)
            scores.append(ms_ssim(prep(a[part]), prep(b[part])).double().cpu().numpy())
    return np.concatenate(scores) if scores else np.zeros(0)


def random_pairs(n: int, pairs: int, seed: int) -> np.ndarray:
    """`pairs` x 2 rows of distinct images drawn uniformly from range(n) by RandomState(seed)."""
    rng = np.random.RandomState(seed)
    first = rng.randint(0, n, size=pairs)
    second = rng.randint(0, n - 1, size=pairs)
    second += second >= first  # skip the first image itself, keeping the draw uniform over the others
    return np.stack([first, second], axis=1)
