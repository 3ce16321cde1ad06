"""The Frechet distance between two Gaussians, |mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)), in float64.

Only the trace of the matrix square root is needed, and it is the sum of the square roots of the
eigenvalues of S1 S2. That product is not symmetric, but it is similar to the symmetric positive
semi-definite L^T S2 L for any factor S1 = L L^T, so the eigenvalues come from a symmetric solver:

- `eig` (default): L from a Cholesky factorisation of S1 (milliseconds), or from its eigendecomposition
  when S1 is singular (fewer samples than dimensions); then `eigvalsh`. Tiny negative eigenvalues are
  rounding noise and count as zero, as pytorch-fid's and torch-fidelity's real parts do.
- `scipy`: pytorch-fid's (and clean-fid's) own algorithm: `scipy.linalg.sqrtm(S1 S2)`, 1e-6 I added to
  both covariances when the result is not finite, failure when the imaginary part of the diagonal exceeds
  1e-3. Seconds to minutes at 2048 dimensions; here for users who want that code path bit for bit.

Both give the references' numbers to far better than 1e-3 (tests/metrics/test_metrics_frechet.py).
"""

from __future__ import annotations

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import warn
from facegan_cli.metrics.settings import METHODS as METHODS  # where callers import it from


def _as64(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    return t.to(device=device, dtype=torch.float64)


def _trace_sqrt_product_eig(s1: torch.Tensor, s2: torch.Tensor) -> float:
    factor, info = torch.linalg.cholesky_ex(s1)
    if int(info) != 0:
        # Singular S1 (n <= dims): its symmetric square root is a factor too.
        w, v = torch.linalg.eigh(s1)
        factor = v * w.clamp(min=0).sqrt()
    m = factor.T @ s2 @ factor
    m = (m + m.T) * 0.5  # exactly symmetric, so the solver sees no rounding asymmetry
    eigenvalues = torch.linalg.eigvalsh(m)
    return float(eigenvalues.clamp(min=0).sqrt().sum())


def _trace_sqrt_product_scipy(s1: np.ndarray, s2: np.ndarray, eps: float = 1e-6) -> float:
    from scipy import linalg

    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        warn(f"the covariance product is singular; adding {eps} to the diagonals, as pytorch-fid does")
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise FaceganError(
                f"The matrix square root has an imaginary component of {np.max(np.abs(covmean.imag)):.3g}: the "
                "covariances are too degenerate for a Frechet distance.",
                "Use more samples (at least as many as feature dimensions), or --matrix-sqrt eig.",
            )
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(
    mu1: np.ndarray | torch.Tensor,
    sigma1: np.ndarray | torch.Tensor,
    mu2: np.ndarray | torch.Tensor,
    sigma2: np.ndarray | torch.Tensor,
    method: str = "eig",
    device: torch.device | str = "cpu",
) -> float:
    """The Frechet distance of N(mu1, sigma1) and N(mu2, sigma2), computed in float64."""
    if method not in METHODS:
        raise FaceganError(f"--matrix-sqrt {method!r} is not a method.", f"Use one of: {', '.join(METHODS)}.")
    device = torch.device(device)
    m1, m2 = _as64(mu1, device).reshape(-1), _as64(mu2, device).reshape(-1)
    s1, s2 = _as64(sigma1, device), _as64(sigma2, device)
    if m1.shape != m2.shape or s1.shape != s2.shape or s1.shape != (m1.numel(), m1.numel()):
        raise FaceganError(
            f"The two statistics do not match: means of {m1.numel()} and {m2.numel()} dimensions, covariances "
            f"{tuple(s1.shape)} and {tuple(s2.shape)}.",
            "Compare statistics of the same feature layer (--dims) computed with the same network.",
        )
    diff = m1 - m2
    base = float(diff @ diff) + float(torch.trace(s1)) + float(torch.trace(s2))
    if method == "scipy":
        tr_covmean = _trace_sqrt_product_scipy(s1.cpu().numpy(), s2.cpu().numpy())
    else:
        tr_covmean = _trace_sqrt_product_eig(s1, s2)
    return base - 2.0 * tr_covmean
