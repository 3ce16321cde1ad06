"""Kernel Inception Distance (Binkowski et al. 2018) as torch-fidelity computes it.

Polynomial kernel k(x, y) = (x.y / d + 1)^3; for each of `subsets` subsets of m = min(subset_size, n1, n2)
rows drawn without replacement from both sets by `np.random.RandomState(seed)` (first set, then second,
per subset: torch-fidelity's order), the unbiased MMD^2

    (sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)) / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m^2;

the mean and (population) standard deviation over subsets are reported. The dot products run in float32
on the device, as torch-fidelity's numpy does (TF32 stays off); the kernel values and every sum are
float64, where torch-fidelity stays in float32. When both sets are small enough, the three Gram matrices
are computed once and each subset reads its rows from them instead of multiplying again.
"""

from __future__ import annotations

import numpy as np
import torch

from facegan_cli.core.device import parity_mode
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.progress import Progress

# Precompute the full kernel matrices when they hold at most this many entries in all (8 bytes each).
_FULL_KERNEL_MAX = 48_000_000


def _kernel(a: torch.Tensor, b: torch.Tensor, degree: int, gamma: float, coef0: float) -> torch.Tensor:
    return ((a @ b.T).double() * gamma + coef0) ** degree


def _mmd2_unbiased(kxx: torch.Tensor, kxy: torch.Tensor, kyy: torch.Tensor) -> float:
    m = kxx.shape[0]
    off_xx = kxx.sum() - kxx.diagonal().sum()
    off_yy = kyy.sum() - kyy.diagonal().sum()
    return float((off_xx + off_yy) / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def check_subsets(subsets: int, subset_size: int, prefix: str = "--") -> None:
    """UsageProblem naming the option when a KID setting cannot give a value (checked before any work);
    `prefix` spells the options as the command calls them (the eval commands' --kid-subsets)."""
    if subset_size < 2:
        # The unbiased MMD^2 divides by m (m - 1): a subset needs two samples of each set.
        raise UsageProblem(
            f"{prefix}subset-size {subset_size} is too small: KID's unbiased estimate needs at least 2 samples per "
            "subset.",
            f"Use the default {prefix}subset-size, or at least 2.",
        )
    if subsets < 1:
        raise UsageProblem(f"{prefix}subsets {subsets} must be at least 1.", f"Use the default {prefix}subsets 100.")


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    device: torch.device | str = "cpu",
) -> tuple[float, float, int]:
    """(mean, std, subset size actually used) of the unbiased polynomial-kernel MMD^2 over subsets."""
    n1, n2 = len(features1), len(features2)
    if features1.ndim != 2 or features2.ndim != 2 or features1.shape[1] != features2.shape[1]:
        raise FaceganError(
            f"KID needs two N x D feature arrays of the same D; got {features1.shape} and {features2.shape}.",
            "Compute both with the same --dims.",
        )
    check_subsets(subsets, subset_size)
    m = min(subset_size, n1, n2)
    if m < 2:
        raise FaceganError(f"KID needs at least 2 samples in each set; got {n1} and {n2}.", "Give more images.")
    gamma = 1.0 / features1.shape[1] if gamma is None else gamma
    device = torch.device(device)
    x = torch.from_numpy(np.asarray(features1)).to(device, torch.float32)
    y = torch.from_numpy(np.asarray(features2)).to(device, torch.float32)
    rng = np.random.RandomState(seed)
    full = n1 * n1 + n2 * n2 + n1 * n2 <= _FULL_KERNEL_MAX
    if full:
        with parity_mode(device):
            kxx_all, kyy_all = _kernel(x, x, degree, gamma, coef0), _kernel(y, y, degree, gamma, coef0)
            kxy_all = _kernel(x, y, degree, gamma, coef0)
    values = np.zeros(subsets)
    with parity_mode(device), Progress(subsets, "kid subsets", unit="subset") as bar:
        for i in range(subsets):
            ix = torch.from_numpy(rng.choice(n1, m, replace=False)).to(device)
            iy = torch.from_numpy(rng.choice(n2, m, replace=False)).to(device)
            if full:
                kxx = kxx_all[ix][:, ix]
                kyy = kyy_all[iy][:, iy]
                kxy = kxy_all[ix][:, iy]
            else:
                a, b = x[ix], y[iy]
                kxx, kyy = _kernel(a, a, degree, gamma, coef0), _kernel(b, b, degree, gamma, coef0)
                kxy = _kernel(a, b, degree, gamma, coef0)
            values[i] = _mmd2_unbiased(kxx, kxy, kyy)
            bar.advance()
    return float(values.mean()), float(values.std()), m
