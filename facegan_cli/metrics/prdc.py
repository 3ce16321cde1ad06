"""Precision / recall (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al. 2020).

The same definitions as the `prdc` package, on Inception pool3 features:
- the radius of a sample is the distance to its k-th nearest neighbour in its own set (the sample itself
  counts as the first, as in `prdc`);
- precision: share of fakes inside the radius of some real sample; recall: share of reals inside the
  radius of some fake (k = 3 for both);
- density: mean over fakes of (number of real radii that contain it) / k; coverage: share of reals whose
  nearest fake lies inside their radius (k = 5 for both).
Euclidean distances are computed in float64 on the device, block by block, so memory stays at one
block of rows however large the sets (prdc holds whole N x N matrices).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError

_BLOCK_ENTRIES = 16_000_000  # distances per block (128 MB of float64)


def _blocks(a: torch.Tensor, b: torch.Tensor, same: bool) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, distances from a block of rows of a to all of b)."""
    b_sq = (b * b).sum(1)
    rows = max(1, _BLOCK_ENTRIES // max(1, b.shape[0]))
    for start in range(0, a.shape[0], rows):
        block = a[start : start + rows]
        d2 = (block * block).sum(1, keepdim=True) + b_sq[None] - 2.0 * (block @ b.T)
        d = d2.clamp_(min=0).sqrt_()
        if same:  # a sample's distance to itself is exactly 0, as sklearn sets it
            idx = torch.arange(block.shape[0], device=a.device)
            d[idx, start + idx] = 0.0
        yield start, d


def _radii(x: torch.Tensor, ks: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """Distance of every row of x to its k-th neighbour in x (itself counted first), for each k."""
    kmax = max(ks) + 1
    if x.shape[0] < kmax:
        raise FaceganError(
            f"Nearest-neighbour radii with k = {max(ks)} need at least {kmax} samples per set; got {x.shape[0]}.",
            "Give more images, or a smaller -k.",
        )
    parts = [d.topk(kmax, dim=1, largest=False).values for _, d in _blocks(x, x, same=True)]
    nearest = torch.cat(parts)
    return {k: nearest[:, k] for k in ks}


def precision_recall_density_coverage(
    real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5, device: torch.device | str = "cpu"
) -> dict[str, float]:
    """{'precision', 'recall', 'density', 'coverage'} of fake features against real features."""
    device = torch.device(device)
    r = torch.from_numpy(np.asarray(real)).to(device, torch.float64)
    f = torch.from_numpy(np.asarray(fake)).to(device, torch.float64)
    ks = tuple(sorted({k_pr, k_dc}))
    real_radii, fake_radii = _radii(r, ks), _radii(f, (k_pr,))
    r_pr, r_dc, f_pr = real_radii[k_pr], real_radii[k_dc], fake_radii[k_pr]
    inside_any = torch.zeros(f.shape[0], dtype=torch.bool, device=device)
    inside_count = torch.zeros(f.shape[0], dtype=torch.float64, device=device)
    recalled = torch.zeros(r.shape[0], dtype=torch.bool, device=device)
    covered = torch.zeros(r.shape[0], dtype=torch.bool, device=device)
    for start, d in _blocks(r, f, same=False):
        rows = slice(start, start + d.shape[0])
        inside_any |= (d < r_pr[rows, None]).any(0)
        inside_count += (d < r_dc[rows, None]).sum(0)
        recalled[rows] = (d < f_pr[None]).any(1)
        covered[rows] = d.min(1).values < r_dc[rows]
    return {
        "precision": float(inside_any.double().mean()),
        "recall": float(recalled.double().mean()),
        "density": float(inside_count.mean() / k_dc),
        "coverage": float(covered.double().mean()),
    }
