"""The metrics facegan computes, by name: what features each reads, and the one place each is computed.

stylegan2-ada registers its metrics by name (metric_main.py) and torch-fidelity computes IS, FID, KID and
precision/recall from one featurisation; this module does both for facegan. A `MetricSpec` declares:

- `need`: the features it reads from each input: an extractor ("inception": the FID Inception network at
  the command's --protocol and weights; "pixels": the uint8 images themselves) and its taps (pool3 "2048"
  or another --dims layer, the unbiased logits for IS); SWD's Laplacian pyramid and MS-SSIM's pairs are
  computed from pixels by their own modules (metrics.swd, metrics.msssim);
- how many inputs it compares, which direction is better, and whether it can run while training.

`FeatureStore` holds the feature sets of one command: every metric of a `metrics report` asks it, and it
runs the extractor once per (input, extractor, protocol, weights) for the union of the taps planned for
that input, through the content-keyed feature cache (real sets and, keyed by run, checkpoint SHA-256,
seed and count, a generator's samples).

The value functions below (`fid_value`, `kid_values`, `is_values`, `pr_values`) are the only callers of the
estimators: `facegan metrics`, `metrics report`, `eval translation`, `eval attributes` and `train --eval`
all reach the Frechet distance and the KID estimator through them.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.core import distributed
from facegan_cli.core.distributed import DistInfo
from facegan_cli.core.errors import UsageProblem
from facegan_cli.core.progress import log
from facegan_cli.core.weights import facegan_home
from facegan_cli.data.sources import ImageSource
from facegan_cli.features.base import FrozenExtractor
from facegan_cli.metrics import swd as swd_mod
from facegan_cli.metrics.features import FeatureSet, extract
from facegan_cli.metrics.frechet import frechet_distance
from facegan_cli.metrics.inception_score import inception_score
from facegan_cli.metrics.kid import kernel_inception_distance
from facegan_cli.metrics.prdc import precision_recall_density_coverage
from facegan_cli.metrics.stats import FeatureCache, GaussianStats
from facegan_cli.models.generated_sources import ModelSource

POOL3 = "2048"
LOGITS = "logits_unbiased"


@dataclass(frozen=True)
class Options:
    """Every metric's own settings, with the single commands' defaults (torch-fidelity's, ProGAN's)."""

    dims: int = 2048
    matrix_sqrt: str = "eig"
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    kid_seed: int = 2020
    splits: int = 10
    is_seed: int = 2020
    shuffle: bool = True
    k_pr: int = 3
    k_dc: int = 5
    pairs: int = 10_000


@dataclass(frozen=True)
class Need:
    """The features a metric reads from each of its inputs."""

    extractor: str  # "inception" or "pixels"
    taps: tuple[str, ...] = ()
    protocol: str = "session"  # "session": the command's --protocol; else the metric's own (pixels)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    summary: str
    inputs: int  # 2: compares the inputs (first = real/reference); 1: scores the last input
    need: Callable[[Options], Need]
    key: str  # the headline value's name in the values of a result
    higher_is_better: bool
    in_training: bool  # computed by `train --eval` (MS-SSIM measures diversity, not progress: no)
    stats_ok: bool = False  # a stats .npz (mean and covariance) is enough


def _inception(*taps: str) -> Callable[[Options], Need]:
    return lambda _: Need("inception", taps)


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("fid", "Frechet Inception Distance", 2, lambda o: Need("inception", (str(o.dims),)), "fid",
                   False, True, stats_ok=True),
        MetricSpec("kid", "Kernel Inception Distance", 2, lambda o: Need("inception", (str(o.dims),)), "kid_mean",
                   False, True),
        MetricSpec("is", "Inception Score", 1, _inception(LOGITS), "is_mean", True, True),
        MetricSpec("pr", "precision / recall / density / coverage", 2, _inception(POOL3), "precision", True, True),
        MetricSpec("swd", "sliced Wasserstein distance (ProGAN)", 2, lambda _: Need("pixels", (), "progan-swd"),
                   "swd_avg", False, True),
        MetricSpec("msssim", "MS-SSIM diversity", 1, lambda _: Need("pixels", (), "pytorch-msssim"), "msssim",
                   False, False),
    )
}
TRAINING_METRICS = tuple(name for name, spec in METRICS.items() if spec.in_training)


def parse_names(text: str, allowed: Sequence[str] = tuple(METRICS), option: str = "--metrics") -> tuple[str, ...]:
    """'fid,kid' -> ("fid", "kid"), in the order given, without repeats; UsageProblem names what is not one."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in str(text).split(",") if part.strip()))
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise UsageProblem(
            f"{option} {text!r}: {', '.join(unknown) or 'no metric'} is not a metric facegan computes here.",
            f"Choose from {', '.join(allowed)} (comma-separated).",
        )
    return names


def inception_taps(names: Sequence[str], options: Options) -> list[str]:
    """The union of the Inception taps the metrics `names` read, in order."""
    taps: list[str] = []
    for name in names:
        need = METRICS[name].need(options)
        if need.extractor == "inception":
            taps += [t for t in need.taps if t not in taps]
    return taps


# --- the one place each estimator is called ---------------------------------------------------------------


def fid_value(s1: GaussianStats, s2: GaussianStats, method: str = "eig", device: torch.device | str = "cpu") -> float:
    """The FID of two Gaussian fits."""
    return frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma, method, device)


def kid_values(
    f1: np.ndarray, f2: np.ndarray, options: Options = Options(), device: torch.device | str = "cpu"
) -> tuple[float, float, int]:
    """(mean, std, subset size used) of the KID of two feature sets."""
    return kernel_inception_distance(
        f1, f2, options.kid_subsets, options.kid_subset_size, options.kid_seed, device=device
    )


def is_values(logits: np.ndarray, options: Options = Options()) -> tuple[float, float]:
    """(mean, std) of the Inception Score of unbiased logits."""
    return inception_score(logits, options.splits, options.shuffle, options.is_seed)


def pr_values(real: np.ndarray, fake: np.ndarray, options: Options = Options(), device: torch.device | str = "cpu"
              ) -> dict[str, float]:
    """Precision, recall, density and coverage of `fake` against `real`."""
    return precision_recall_density_coverage(real, fake, options.k_pr, options.k_dc, device)


def swd_values(
    sources: Sequence[ImageSource], limit: int, seed: int, batch_size: int, device: torch.device,
    dist: DistInfo | None = None,
) -> dict[str, Any]:
    """SWD (metrics.swd) of the first `limit` images of two sources of one size; under torchrun each rank
    streams its whole batches of both and the descriptors are gathered, so every rank gets one process's
    number."""
    info = dist or DistInfo()
    shares = [distributed.shard(min(len(source), limit), batch_size, info) for source in sources]

    def stream(source: ImageSource, share: range) -> Iterator[np.ndarray]:
        taken = 0
        rows = {"rows": share} if info.enabled else {}
        for batch in source.batches(batch_size, native=False, description="swd", **rows):
            if taken >= limit:
                break
            batch = np.asarray(batch)[: limit - taken]
            taken += len(batch)
            yield batch

    return swd_mod.swd(
        stream(sources[0], shares[0]), stream(sources[1], shares[1]), sources[0].resolution, seed, device,
        skip=(shares[0].start, shares[1].start),
        gather=functools.partial(distributed.all_gather_rows, info) if info.enabled else None,
    )


# --- features computed once per input -----------------------------------------------------------------------


def generated_cache_root() -> Path:
    """Where the features of models' samples are cached: beside the real sets', in a folder of their own
    (keyed by run, checkpoint SHA-256, seed and count through the source's fingerprint)."""
    return facegan_home() / "features" / "generated"


@dataclass
class FeatureStore:
    """The feature sets of one command's inputs (see the module docstring).

    `plan(source, taps)` announces what will be asked of a source, so that the first request computes all of
    it in one pass; `get(source, taps)` answers from memory when it can. `passes` counts the extractor passes
    per input label (what `metrics report --json` shows, and the tests check).
    """

    extractor: Callable[[], FrozenExtractor]
    cache: bool = True
    dist: DistInfo | None = None
    passes: dict[str, int] = field(default_factory=dict)
    # Held weakly: a source gone out of use takes its entries with it (eval commands make one per batch).
    _planned: weakref.WeakKeyDictionary[ImageSource, list[str]] = field(default_factory=weakref.WeakKeyDictionary)
    _held: weakref.WeakKeyDictionary[ImageSource, dict[tuple[str, ...], FeatureSet]] = field(
        default_factory=weakref.WeakKeyDictionary)

    def plan(self, source: ImageSource, taps: Sequence[str]) -> None:
        planned = self._planned.setdefault(source, [])
        planned += [t for t in taps if t not in planned]

    def _cache_for(self, source: ImageSource) -> FeatureCache | None:
        if not self.cache:
            return None
        return FeatureCache(generated_cache_root()) if isinstance(source, ModelSource) else FeatureCache()

    def get(self, source: ImageSource, taps: Sequence[str]) -> FeatureSet:
        extractor = self.extractor()
        key = tuple(extractor.identity)
        held = self._held.get(source, {}).get(key)
        if held is not None and all(t in held.taps for t in taps):
            return FeatureSet({t: held.taps[t] for t in taps}, held.source, held.cached)
        planned = self._planned.get(source, [])
        wanted = list(dict.fromkeys([*taps, *planned, *(held.taps if held else [])]))
        found = extract(source, extractor, wanted, self._cache_for(source), self.dist)
        if found.cached:
            log(f"{source.label}: features from the cache")
        else:
            self.passes[source.label] = self.passes.get(source.label, 0) + 1
        self._held.setdefault(source, {})[key] = found
        return FeatureSet({t: found.taps[t] for t in taps}, found.source, found.cached)
