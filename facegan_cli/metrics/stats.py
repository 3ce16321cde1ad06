"""Feature statistics: Gaussian fits, `.npz` files in pytorch-fid's format, and the feature cache.

A stats file holds `mu` (dims,) and `sigma` (dims, dims) in float64, written with
`np.savez_compressed` as pytorch-fid's `--save-stats` does, so pytorch-fid and clean-fid read ours and we
read theirs. facegan adds one more array, `facegan_meta` (a JSON string: protocol, dims, sample count,
weights SHA-256, source), which the other tools ignore and which lets facegan refuse to compare
statistics of different protocols or layers.

The feature cache lives under $FACEGAN_HOME/features. An entry is keyed by the content fingerprint of
the image set (data.sources), the protocol and the weights' SHA-256, and holds the float32 features of
each Inception tap computed so far plus the rejects of the decode, so a second run on the same real set
costs a fingerprint instead of a featurisation.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.core.atomic import atomic_path
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import open_regular, require_file
from facegan_cli.core.weights import facegan_home

META_KEY = "facegan_meta"
CACHE_VERSION = 1


@dataclass
class GaussianStats:
    """Mean and covariance of N feature vectors (float64), and where they came from."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dims(self) -> int:
        return int(self.mu.shape[0])


def gaussian_stats(features: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> GaussianStats:
    """np.mean / np.cov(rowvar=False) of N x D features, computed in float64 on `device`."""
    x = features if isinstance(features, torch.Tensor) else torch.from_numpy(np.asarray(features))
    x = x.to(device=torch.device(device), dtype=torch.float64)
    n = x.shape[0]
    if n < 2:
        raise FaceganError(
            f"A covariance needs at least 2 samples; got {n}.", "Give more images (thousands for a meaningful FID)."
        )
    mu = x.mean(0)
    centred = x - mu
    sigma = centred.T @ centred / (n - 1)
    return GaussianStats(mu.cpu().numpy(), sigma.cpu().numpy(), n)


def save_stats(stats: GaussianStats, path: str | os.PathLike[str]) -> Path:
    """Write pytorch-fid's .npz (mu, sigma) plus facegan's metadata, atomically."""
    path = Path(path)
    meta = json.dumps({**stats.meta, "n": stats.n, "dims": stats.dims})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, mu=stats.mu, sigma=stats.sigma, **{META_KEY: np.array(meta)})
    return path


def load_stats(path: str | os.PathLike[str]) -> GaussianStats:
    """Read a stats .npz from facegan, pytorch-fid or clean-fid (any file with `mu` and `sigma`)."""
    path = require_file(path, "Statistics file", "Write one with `facegan metrics stats SRC --out FILE.npz`.")
    try:
        with open_regular(path, "Statistics file") as fh, np.load(fh, allow_pickle=False) as data:
            names = set(data.files)
            if not {"mu", "sigma"} <= names:
                raise FaceganError(
                    f"{path} holds {', '.join(sorted(names)) or 'no arrays'}, not the mu and sigma of FID statistics.",
                    "Pass a .npz written by `facegan metrics stats` or pytorch-fid's --save-stats.",
                )
            mu = np.asarray(data["mu"], dtype=np.float64)
            sigma = np.asarray(data["sigma"], dtype=np.float64)
            meta = json.loads(str(data[META_KEY])) if META_KEY in names else {}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FaceganError(f"{path} is not a readable .npz file ({exc}).", "Re-create it with `facegan metrics stats`.") from exc
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise FaceganError(
            f"{path}: mu has shape {mu.shape} and sigma {sigma.shape}; expected (D,) and (D, D).",
            "Re-create the file with `facegan metrics stats`.",
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise FaceganError(f"{path} contains NaN or infinite values.", "Re-create it with `facegan metrics stats`.")
    return GaussianStats(mu, sigma, meta.get("n"), meta)


class FeatureCache:
    """Features of image sets on disk, keyed by (content fingerprint, protocol, weights SHA-256)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else facegan_home() / "features"

    def _path(self, fingerprint: str, protocol: str, weights_sha256: str) -> Path:
        key = json.dumps([CACHE_VERSION, fingerprint, protocol, weights_sha256])
        return self.root / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"

    def load(self, fingerprint: str, protocol: str, weights_sha256: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(features by tap, metadata) of an entry; empty when there is none or it cannot be read."""
        path = self._path(fingerprint, protocol, weights_sha256)
        if not path.is_file():
            return {}, {}
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data[META_KEY]))
                taps = {name: np.asarray(data[name]) for name in data.files if name != META_KEY}
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile):
            return {}, {}  # a damaged entry is recomputed and overwritten, never trusted
        return taps, meta

    def store(
        self, fingerprint: str, protocol: str, weights_sha256: str, taps: dict[str, np.ndarray], meta: dict[str, Any]
    ) -> Path:
        path = self._path(fingerprint, protocol, weights_sha256)
        payload = {name: np.ascontiguousarray(values, dtype=np.float32) for name, values in taps.items()}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **payload, **{META_KEY: np.array(json.dumps(meta))})
        return path
