"""Inception Score (Salimans et al. 2016) as torch-fidelity computes it.

The 1008 logits of the FID Inception network without the fc bias ("logits_unbiased"), in float64,
shuffled by `np.random.RandomState(seed).permutation` (torch-fidelity: seed 2020), cut into `splits`
chunks at i N // splits; for each chunk exp(mean_x KL(p(y|x) || p(y))) with p(y) the chunk's mean
prediction. The mean and (population) standard deviation over chunks are reported.
"""

from __future__ import annotations

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError


def inception_score(
    logits: np.ndarray, splits: int = 10, shuffle: bool = True, seed: int = 2020
) -> tuple[float, float]:
    """(mean, std) of the Inception Score of N x C logits over `splits` chunks."""
    n = len(logits)
    if splits < 1 or n < splits:
        raise FaceganError(
            f"The Inception Score splits {n} samples into {splits} chunks; each needs at least one sample.",
            f"Give at least {max(splits, 1)} images, or fewer --splits.",
        )
    x = torch.from_numpy(np.asarray(logits)).double()
    if shuffle:
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    p, log_p = x.softmax(dim=1), x.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        chunk = slice(i * n // splits, (i + 1) * n // splits)
        marginal = p[chunk].mean(dim=0, keepdim=True)
        kl = (p[chunk] * (log_p[chunk] - marginal.log())).sum(dim=1)
        scores.append(float(kl.mean().exp()))
    return float(np.mean(scores)), float(np.std(scores))
