"""Inception features of an image source under one protocol, with the content-keyed feature cache.

The speed comes from doing the references' arithmetic with less around it: decoding in worker processes
overlapped with the network (data.pipeline), uint8 pixels sent to the device and resized there (the
references ship float32 tensors at full resolution), BatchNorm folded into the convolutions, channels_last
convolutions, TF32 off so float32 stays float32 (unless `fast`), and on CUDA the next batch queued
before the previous one's features are copied back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from facegan_cli.core.device import Precision, configure_backends, parity_mode
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import warn
from facegan_cli.core.weights import Resolved
from facegan_cli.metrics.inception import FEATURE_DIMS, INPUT_SIZE, build_inception, fuse_batchnorm
from facegan_cli.metrics.inputs import Batch, DecodedSource, ImageSource
from facegan_cli.metrics.protocols import Protocol
from facegan_cli.metrics.stats import FeatureCache


@dataclass
class FeatureSet:
    """Features of one source: float32 N x D per tap, and what the result documents say about it."""

    taps: dict[str, np.ndarray]
    source: dict[str, Any]
    cached: bool = False

    @property
    def n(self) -> int:
        return int(next(iter(self.taps.values())).shape[0])


class InceptionExtractor:
    """The FID Inception network on a device, fed through one protocol."""

    def __init__(
        self,
        weights: Resolved,
        protocol: Protocol,
        device: torch.device,
        batch_size: int = 50,
        fast: bool = False,
    ) -> None:
        if batch_size < 1:
            raise FaceganError(f"--batch-size {batch_size} must be at least 1.", "Use e.g. --batch-size 50.")
        self.weights, self.protocol, self.device = weights, protocol, device
        self.batch_size, self.fast = batch_size, fast
        self.precision = Precision(device, channels_last=True)
        self._model: torch.nn.Module | None = None

    @property
    def model(self) -> torch.nn.Module:
        """The network, built on first use: a run served from the feature cache never loads it."""
        if self._model is None:
            self._model = self.precision.module(fuse_batchnorm(build_inception(self.weights.path)))
        return self._model

    def _prepare(self, stacked: np.ndarray) -> torch.Tensor:
        # Contiguous NCHW before the resize, as the references have it, so the same kernels run.
        pixels = torch.from_numpy(stacked).to(self.device).permute(0, 3, 1, 2).contiguous()
        return self.protocol.prepare(pixels)

    def network_input(self, batch: Batch) -> torch.Tensor:
        """uint8 images (one array, or a list of any sizes) -> float32 N x 3 x 299 x 299 on the device."""
        if isinstance(batch, np.ndarray) or len({image.shape for image in batch}) == 1:
            return self.precision.tensor(self._prepare(np.asarray(batch)))
        # Mixed sizes: each size is resized as one group, then the rows go back to their order.
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(batch):
            groups.setdefault(image.shape, []).append(i)
        out = torch.empty(len(batch), 3, INPUT_SIZE, INPUT_SIZE, device=self.device)
        for rows in groups.values():
            index = torch.as_tensor(rows, device=self.device)
            out.index_copy_(0, index, self._prepare(np.stack([batch[i] for i in rows])))
        return self.precision.tensor(out)

    def features(self, source: ImageSource, taps: Sequence[str]) -> dict[str, np.ndarray]:
        """Every tap for every usable image of `source`, in order, as float32 arrays on the host."""
        parts: dict[str, list[torch.Tensor]] = {t: [] for t in taps}
        pending: dict[str, torch.Tensor] | None = None
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # one input shape throughout: let cuDNN pick its fastest
        if self.fast:
            configure_backends(self.device, parity=False)  # TF32 allowed: faster, no longer bit-faithful
        context = contextlib.nullcontext() if self.fast else parity_mode(self.device)
        with context, torch.inference_mode():
            for batch in source.batches(self.batch_size, native=True, description=f"inception {self.protocol.name}"):
                out = self.model(self.network_input(batch), taps)
                # Copy the previous batch back only now, so the device already works on this one.
                if pending is not None:
                    for t in taps:
                        parts[t].append(pending[t].cpu())
                pending = out
            if pending is not None:
                for t in taps:
                    parts[t].append(pending[t].cpu())
        if not parts[taps[0]]:
            raise FaceganError(f"{source.label} yielded no images.", "Check the input.")
        return {t: torch.cat(parts[t]).numpy() for t in taps}


def _replay(source: ImageSource, meta: dict[str, Any]) -> None:
    """Give a source the decode outcome stored with its cached features (rejects, usable count)."""
    source.rejects = [tuple(r) for r in meta.get("rejects", [])]  # type: ignore[misc]
    source.used = int(meta.get("used", 0))
    if source.rejects:
        if isinstance(source, DecodedSource) and source.strict:
            path, reason = source.rejects[0]
            raise FaceganError(
                f"{path} cannot be used: {reason} (--strict stops at the first unusable image).",
                "Fix or remove that file, or run without --strict to skip such files and count them.",
            )
        warn(f"{source.label}: skipped {len(source.rejects)} unusable file(s) (from the feature cache)")


def extract(
    source: ImageSource,
    extractor: InceptionExtractor,
    taps: Sequence[str],
    cache: FeatureCache | None = None,
) -> FeatureSet:
    """The features of `source` for `taps`: from the cache when its content was seen, else computed."""
    taps = list(dict.fromkeys(taps))
    unknown = [t for t in taps if t not in FEATURE_DIMS]
    if unknown:
        raise FaceganError(f"Unknown feature layer(s) {unknown}.", f"Use one of: {', '.join(FEATURE_DIMS)}.")
    fingerprint = source.fingerprint if cache is not None else None
    key = (fingerprint, extractor.protocol.name, extractor.weights.sha256)
    stored: dict[str, np.ndarray] = {}
    if cache is not None and fingerprint is not None:
        stored, meta = cache.load(*key)
        if stored and all(t in stored for t in taps):
            _replay(source, meta)
            return FeatureSet({t: stored[t] for t in taps}, source.describe(), cached=True)
    # Compute what was asked and what the entry already held, so the entry grows instead of splitting.
    wanted = list(dict.fromkeys([*taps, *stored]))
    computed = extractor.features(source, wanted)
    if cache is not None and fingerprint is not None:
        cache.store(*key, computed, {"used": source.used, "rejects": source.rejects, "label": source.label})
    return FeatureSet({t: computed[t] for t in taps}, source.describe())


def pool3_feature_fn(
    device: torch.device, weights: Resolved, protocol: Protocol
) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 N x H x W x 3 images on `device` -> N x 2048 pool3 features: a feature space for
    `latent nearest --space inception` (same network and protocol as the metrics)."""
    extractor = InceptionExtractor(weights, protocol, device)

    def features(batch: torch.Tensor) -> torch.Tensor:
        x = extractor.protocol.prepare(batch.permute(0, 3, 1, 2).contiguous())
        return extractor.model(extractor.precision.tensor(x), ("2048",))["2048"]

    return features
