"""The k nearest training images of generated samples: the memorisation check seed 001 argued for.

Images are compared in a feature space; "pixel" is the squared L2 distance between images resized to a
common size, reported as the mean over pixels and channels with values in [0, 1] (0 means identical);
"inception" is the mean squared difference of the FID Inception network's pool3 features (pytorch-fid's
protocol, the metrics' network and weights), which finds training images that look alike rather than
align pixel for pixel. A feature space is a factory in `SPACES` (size, device, **options) -> function
from a uint8 N x H x W x 3 batch on the device to N x F float features.

The training set is streamed in batches: for each batch, the distances to all queries come from one
matrix product (|q|^2 + |t|^2 - 2 q.t, as torch.cdist does), the k best candidates of that batch are
re-measured exactly, and a running top-k is kept, so memory stays at one batch whatever the set size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facegan_cli.core.device import parity_mode
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import Progress

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def pixel_space(size: int, device: torch.device) -> FeatureFn:
    """Pixels in [0, 1], resized (antialiased bilinear) to size x size where they differ, flattened."""

    def features(batch: torch.Tensor) -> torch.Tensor:
        x = batch.permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return x.flatten(1)

    return features


def inception_space(size: int, device: torch.device, weights: Path | None = None) -> FeatureFn:
    """pool3 features of the FID Inception network; `weights` as the metrics' --inception-weights."""
    # Imported here: the metrics package (and its network) loads only when this space is asked for.
    from facegan_cli.core.weights import resolve
    from facegan_cli.metrics.features import pool3_feature_fn
    from facegan_cli.metrics.protocols import get_protocol

    return pool3_feature_fn(device, resolve("fid-inception", weights), get_protocol("pytorch-fid"))


SPACES: dict[str, Callable[..., FeatureFn]] = {"pixel": pixel_space, "inception": inception_space}


@dataclass
class Neighbours:
    """For each query, the k training rows nearest to it, nearest first."""

    indices: np.ndarray  # Q x k int64 rows of the training set
    distances: np.ndarray  # Q x k float64, same order
    space: str
    searched: int  # training images compared


def feature_space(space: str, size: int, device: torch.device, **options: Any) -> FeatureFn:
    if space not in SPACES:
        raise FaceganError(f"--space {space!r} is not a feature space.", f"Use one of: {', '.join(SPACES)}.")
    return SPACES[space](size, device, **options)


def _exact(q: torch.Tensor, t: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between each query and its candidate rows of t: Q x kk."""
    cols = [((q - t[cand[:, j]]) ** 2).mean(1) for j in range(cand.shape[1])]
    return torch.stack(cols, dim=1)


def nearest_neighbours(
    queries: np.ndarray,
    training: Iterable[tuple[np.ndarray, np.ndarray]],
    k: int = 5,
    space: str = "pixel",
    size: int | None = None,
    device: torch.device | str = "cpu",
    total: int | None = None,
    space_options: dict[str, Any] | None = None,
) -> Neighbours:
    """The k nearest training rows for each query image (uint8 Q x H x W x 3).

    `training` yields (uint8 N_i x H x W x 3 images, their N_i row numbers) batches; the row numbers are
    what `Neighbours.indices` reports, so a reader may skip unusable rows. `size` is the common side
    length images are compared at (default: the queries' height). `space_options` go to the space's
    factory (e.g. {"weights": path} for "inception").
    """
    device = torch.device(device)
    if k < 1:
        raise FaceganError(f"-k {k} must be at least 1.", "Use e.g. -k 5.")
    if queries.ndim != 4 or queries.shape[0] == 0:
        raise ValueError("queries must be a non-empty N x H x W x 3 uint8 array")
    if total is not None and total < k:
        raise FaceganError(
            f"-k {k} asks for more neighbours than the {total} training images.", f"Use -k {total} or less."
        )
    features = feature_space(space, int(size or queries.shape[1]), device, **(space_options or {}))
    best_d = torch.empty(queries.shape[0], 0, device=device)
    best_i = torch.empty(queries.shape[0], 0, dtype=torch.long, device=device)
    seen = 0
    # TF32 matmuls would blur the ranking of close neighbours; this is a measurement, keep float32 exact.
    with parity_mode(device), torch.no_grad(), Progress(total, "nearest neighbours", unit="img") as bar:
        q = features(torch.from_numpy(np.ascontiguousarray(queries)).to(device))
        q_sq = (q * q).sum(1, keepdim=True)
        for batch, rows in training:
            if batch.shape[0] == 0:
                continue
            t = features(torch.from_numpy(np.ascontiguousarray(batch)).to(device))
            row_ids = torch.as_tensor(np.asarray(rows, dtype=np.int64), device=device)
            approx = (q_sq + (t * t).sum(1)[None] - 2.0 * (q @ t.T)).clamp_(min=0)
            cand = approx.topk(min(k, t.shape[0]), dim=1, largest=False).indices
            exact = _exact(q, t, cand)
            merged_d = torch.cat([best_d, exact], dim=1)
            merged_i = torch.cat([best_i, row_ids[cand]], dim=1)
            keep = merged_d.topk(min(k, merged_d.shape[1]), dim=1, largest=False, sorted=True).indices
            best_d, best_i = merged_d.gather(1, keep), merged_i.gather(1, keep)
            seen += t.shape[0]
            bar.advance(t.shape[0])
    if seen == 0:
        raise FaceganError(
            "The training set holds no images to compare with.", "Pass a dataset with images to --data."
        )
    if seen < k:
        raise FaceganError(
            f"-k {k} asks for more neighbours than the {seen} training images hold.",
            f"Use -k {seen} or less.",
        )
    return Neighbours(
        indices=best_i.cpu().numpy().astype(np.int64),
        distances=best_d.double().cpu().numpy(),
        space=space,
        searched=seen,
    )
