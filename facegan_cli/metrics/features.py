"""Features of an image source through a frozen extractor (features/), with the content-keyed feature cache.

The speed comes from doing the references' arithmetic with less around it: decoding in worker processes
overlapped with the network (data.pipeline), uint8 pixels sent to the device and resized there (the
references ship float32 tensors at full resolution), BatchNorm folded into the convolutions, channels_last
convolutions, TF32 off so float32 stays float32 (unless `fast`), and on CUDA the next batch queued
before the previous one's features are copied back (features.base).

Under torchrun (`dist`) each rank decodes or generates and featurises its own share of whole batches
(core.distributed.shard: the very batches one process would compute), and every rank ends with all the
features in row order; rank 0 alone reads and writes the cache and tells the others what it found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facegan_cli.core import distributed
from facegan_cli.core.distributed import DistInfo
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import warn
from facegan_cli.data.sources import DecodedSource, ImageSource
from facegan_cli.features.base import FrozenExtractor
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


def _replay(source: ImageSource, meta: dict[str, Any]) -> None:
    """Give a source the decode outcome stored with its cached features (rejects, usable count)."""
    source.rejects = [tuple(r) for r in meta.get("rejects", [])]  # type: ignore[misc]
    source.used = int(meta.get("used", 0))
    if source.rejects:
        if isinstance(source, DecodedSource) and source.strict:
            path, reason = source.rejects[0]
            raise FaceganError(f"{path} cannot be used: {reason} ({source.strict_why[0]}).", source.strict_why[1])
        warn(f"{source.label}: skipped {len(source.rejects)} unusable file(s) (from the feature cache)")


def source_features(
    source: ImageSource, extractor: FrozenExtractor, taps: Sequence[str], dist: DistInfo | None = None
) -> dict[str, np.ndarray]:
    """Every tap for every usable image of `source`, in order (images at their stored sizes); under
    torchrun each rank computes its share and all of them are gathered on every rank."""
    info = dist or DistInfo()
    share = {"rows": distributed.shard(len(source), extractor.batch_size, info)} if info.enabled else {}
    batches = source.batches(extractor.batch_size, native=True, description=extractor.label, **share)
    found = extractor.features(batches, taps)
    if info.enabled:
        found = {tap: distributed.all_gather_rows(info, values) for tap, values in found.items()}
        outcomes = distributed.gather_objects(info, (source.used, source.rejects))
        source.used = sum(used for used, _ in outcomes)
        source.rejects = [reject for _, rejects in outcomes for reject in rejects]  # rank order = row order
    if not len(next(iter(found.values()))):
        raise FaceganError(f"{source.label} yielded no images.", "Check the input.")
    return found


def extract(
    source: ImageSource,
    extractor: FrozenExtractor,
    taps: Sequence[str],
    cache: FeatureCache | None = None,
    dist: DistInfo | None = None,
) -> FeatureSet:
    """The features of `source` for `taps`: from the cache when its content was seen, else computed
    (sharded across the ranks of `dist` under torchrun)."""
    info = dist or DistInfo()
    taps = extractor.check_taps(taps)
    fingerprint = source.fingerprint if cache is not None else None
    stored: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    if cache is not None and fingerprint is not None and info.is_main:
        stored, meta = cache.load(fingerprint, *extractor.identity)
    if distributed.broadcast_object(info, bool(stored) and all(t in stored for t in taps)):
        if info.enabled:
            meta = distributed.broadcast_object(info, meta if info.is_main else None)
            stored = {t: distributed.broadcast_rows(info, stored.get(t, np.zeros((0, extractor.taps[t]), np.float32)))
                      for t in taps}
        _replay(source, meta)
        return FeatureSet({t: stored[t] for t in taps}, source.describe(), cached=True)
    # Compute what was asked and what the entry already held, so the entry grows instead of splitting.
    wanted = distributed.broadcast_object(info, list(dict.fromkeys([*taps, *stored])))
    computed = source_features(source, extractor, wanted, info)
    if cache is not None and fingerprint is not None and info.is_main:
        meta = {"used": source.used, "rejects": source.rejects, "label": source.label}
        cache.store(fingerprint, *extractor.identity, computed, meta)
    return FeatureSet({t: computed[t] for t in taps}, source.describe())
