"""Metrics of a generator while it trains: `facegan train ... --eval fid,kid,is,pr,swd --eval-every N --eval-ref REF`.

Every metric of the registry (metrics.registry) that measures progress can run here: fid, kid, is (of the
samples alone), pr (precision, with recall, density and coverage beside it) and swd (at the generator's
resolution of the moment: a growing ProGAN is compared with the reference's level of that size). The
values come from the functions `facegan metrics` uses, on one featurisation of the samples for all of
them.

The training loop calls `TrainingEvaluator.evaluate` at its evaluation steps, on every rank, with the
trainer's own sampling function (`Trainer.sample`: the EMA generator where the family keeps one, in eval
mode). What makes the numbers of one run comparable with each other:

- the same `eval_n` latents (drawn from the run's seed) at every evaluation, so the difference between
  two evaluations is the generator's, not the draw's; a resumed run draws them again, identically;
- the reference (REF: a prepared dataset, a folder or zip of images, or a `metrics stats` .npz) is
  featurised once: through the content-keyed feature cache of `facegan metrics` (so a resumed run, a
  second run and `metrics fid` on the same set reuse it), then kept in memory for the run;
- generation and feature extraction are sharded across the ranks exactly as `facegan metrics` shards
  them (metrics.features), so the number does not depend on the number of processes.

The first metric listed decides which checkpoint is the best (lower is better for fid, kid and swd, higher
for is and pr's precision); a resumed run takes up the best of the evaluations it kept.

Why 5,000 samples by default (`DEFAULT_N`): pool3 features have 2,048 dimensions, and with fewer samples
than that the covariance is rank-deficient and the FID is dominated by that deficit (`metrics fid` warns);
5,000 is the smallest round number comfortably above it (2.4 samples per dimension). FID computed from N
samples is biased upwards by an amount that shrinks like 1/N (Chong & Forsyth, "Effectively Unbiased FID",
CVPR 2020): with the same N and the same latents at every evaluation the bias is the same at every step,
so the curve and the choice of the best checkpoint are not affected by it, while each evaluation costs a
tenth of the 50,000 samples that published numbers use. Values at 5,000 are therefore higher than, and not
comparable with, published FID-50k numbers: score the best checkpoint with `facegan metrics fid --ckpt
RUN/checkpoints/best --n 50000` for those.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facegan_cli.core import weights as W
from facegan_cli.core.checkpoint import list_checkpoints, save_checkpoint
from facegan_cli.core.distributed import DistInfo
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.progress import warn
from facegan_cli.core.rundir import evaluation_lines as evaluation_lines  # where callers import it from
from facegan_cli.data.sources import ImageSource
from facegan_cli.features.inception import InceptionExtractor
from facegan_cli.metrics import registry
from facegan_cli.metrics.inputs import StatsInput, at_resolution, open_source
from facegan_cli.metrics.protocols import DEFAULT_PROTOCOL, get_protocol
from facegan_cli.metrics.registry import FeatureStore, Options
from facegan_cli.metrics.stats import GaussianStats, gaussian_stats
from facegan_cli.models.generated_sources import GeneratorSource
from facegan_cli.models.loading import LoadedGenerator

METRICS = registry.TRAINING_METRICS
DEFAULT_N = 5000
TAP = registry.POOL3  # pool3, as `facegan metrics fid` and `kid` by default
OPTIONS = Options()  # the `facegan metrics` commands' defaults (torch-fidelity's KID and IS settings)
# The metrics.jsonl field of each metric's headline value (the one the best checkpoint is chosen by).
RECORD_KEYS = {"fid": "fid", "kid": "kid", "is": "is", "pr": "precision", "swd": "swd"}


def parse_metrics(text: str) -> tuple[str, ...]:
    """'fid,kid' -> ("fid", "kid"); ValueError naming what is not a metric facegan computes while training."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in str(text).split(",") if part.strip()))
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise ValueError(
            f"{', '.join(unknown) or repr(text)} is not a metric computed while training; choose from {', '.join(METRICS)} "
            "(comma-separated, the first one decides the best checkpoint)"
        )
    return names


def check_metrics(text: str) -> None:
    """The --eval option's check (a ValueError becomes a usage error)."""
    parse_metrics(text)


class _Sampling(nn.Module):
    """A trainer's sampling function as the module a LoadedGenerator calls."""

    def __init__(self, sample: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self._sample = sample

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self._sample(z)


class TrainingEvaluator:
    """The --eval metrics of one training run (see the module docstring)."""

    def __init__(
        self,
        metrics: str,
        ref: str | Path | None,
        n: int,
        seed: int,
        device: torch.device,
        dist: DistInfo | None = None,
        weights: str | Path | None = None,
    ) -> None:
        try:
            self.metrics = parse_metrics(metrics)
        except ValueError as exc:
            raise FaceganError(f"--eval {metrics}: {exc}.", "Pass e.g. --eval fid or --eval fid,kid.") from exc
        if ref is None:
            raise FaceganError(
                f"--eval {','.join(self.metrics)} compares the generator with reference images, and no --eval-ref "
                "was given.",
                "Pass --eval-ref with a prepared dataset, a folder or zip of images, or a `facegan metrics stats` .npz.",
            )
        if n < 2:
            raise UsageProblem(f"--eval-n {n}: a covariance needs at least 2 samples.", f"Use the default {DEFAULT_N}.")
        self.n, self.seed, self.device = int(n), int(seed), device
        self.dist = dist or DistInfo()
        self.weights = None if weights is None else Path(weights)
        self.protocol = get_protocol(DEFAULT_PROTOCOL)
        self.batch_size = 50 if device.type == "cpu" else 250  # as `facegan metrics`
        # Opened now, so that a missing or unusable reference stops the run before it trains.
        self.ref = open_source(Path(ref), workers=1 if device.type == "cpu" else None, allow_stats=True)
        if isinstance(self.ref, StatsInput):
            self._check_stats(self.ref)
        self.best: float | None = None
        self._extractor: InceptionExtractor | None = None
        # The reference's features: through the feature cache, once per run (the samples' are never cached).
        self._store = FeatureStore(lambda: self.extractor, cache=True, dist=self.dist)
        self._ref_stats: GaussianStats | None = self.ref.stats if isinstance(self.ref, StatsInput) else None
        if self.n < 2048 and self.dist.is_main and ("fid" in self.metrics or "kid" in self.metrics):
            warn(f"--eval-n {self.n} is below the 2048 feature dimensions: the FIDs of this run are biased upwards "
                 "(comparable with each other, not with other numbers)")

    @property
    def key(self) -> str:
        """The metrics.jsonl field that decides the best checkpoint (the first metric's headline)."""
        return RECORD_KEYS[self.metrics[0]]

    @property
    def keys(self) -> list[str]:
        """The headline field of every metric evaluated, in order."""
        return [RECORD_KEYS[name] for name in self.metrics]

    @property
    def higher_is_better(self) -> bool:
        return registry.METRICS[self.metrics[0]].higher_is_better

    def _check_stats(self, item: StatsInput) -> None:
        needs_images = [name for name in self.metrics if name != "fid" and registry.METRICS[name].inputs == 2]
        if needs_images:
            raise FaceganError(
                f"--eval-ref {item.label} is a statistics file (a mean and a covariance); {', '.join(needs_images)} "
                "needs the reference images themselves.",
                f"Pass the images (a prepared dataset, a folder or a zip) as --eval-ref, or drop {needs_images[0]} "
                "from --eval.",
            )
        if item.stats.dims != int(TAP):
            raise FaceganError(
                f"--eval-ref {item.label} holds {item.stats.dims}-dimensional statistics; training evaluation uses the "
                f"{TAP}-dimensional pool3 features.",
                f"Compute them with `facegan metrics stats REF --out {item.path.name}` (default --dims {TAP}).",
            )
        protocol = item.stats.meta.get("protocol")
        if protocol is not None and protocol != self.protocol.name:
            raise FaceganError(
                f"--eval-ref {item.label} was computed with the {protocol} protocol; training evaluation uses "
                f"{self.protocol.name}.",
                f"Compute the statistics with `facegan metrics stats REF --out {item.path.name}` (default protocol).",
            )

    @property
    def extractor(self) -> InceptionExtractor:
        if self._extractor is None:
            resolved = W.resolve("fid-inception", self.weights)
            if not resolved.verified and self.dist.is_main:
                warn(f"{resolved.path} is not the official FID Inception file: this run's FIDs compare only with "
                     "numbers from the same file")
            self._extractor = InceptionExtractor(resolved, self.protocol, self.device, self.batch_size)
        return self._extractor

    def better(self, value: float, than: float | None) -> bool:
        return than is None or (value > than if self.higher_is_better else value < than)

    def restore(self, records: Iterable[dict[str, Any]]) -> None:
        """Take up the best value of the evaluations a resumed run kept (metrics.jsonl up to its checkpoint)."""
        self.best = None
        for record in evaluation_lines(records):
            if self.key in record and self.better(float(record[self.key]), self.best):
                self.best = float(record[self.key])

    def _reference(self) -> np.ndarray:
        """The reference's pool3 features, once per run (from the feature cache when it has them)."""
        assert isinstance(self.ref, ImageSource)
        return self._store.get(self.ref, [TAP]).taps[TAP]

    def evaluate(
        self, sample: Callable[[torch.Tensor], torch.Tensor], z_dim: int, value_range: tuple[float, float],
        resolution: int, step: int, kimg: float,
    ) -> tuple[dict[str, Any], bool]:
        """The metrics of the generator `sample` draws from (call on every rank): the metrics.jsonl record,
        and whether it is the best so far by the first metric."""
        started = time.perf_counter()
        generator = LoadedGenerator(
            module=_Sampling(sample), family="training", config={}, z_dim=z_dim, value_range=value_range,
            resolution=resolution, step=step, path=Path(f"step {step}"), weights="sample", device=self.device,
        )
        samples = GeneratorSource(generator, self.n, self.seed)
        record: dict[str, Any] = {"step": step, "kimg": kimg, "eval_n": self.n}
        taps = registry.inception_taps(self.metrics, OPTIONS)
        # One featurisation of this step's samples for every Inception metric (never cached: new weights).
        fake = FeatureStore(lambda: self.extractor, cache=False, dist=self.dist).get(samples, taps).taps if taps else {}
        if "fid" in self.metrics:
            if self._ref_stats is None:
                self._ref_stats = gaussian_stats(self._reference(), self.device)
            record["fid"] = registry.fid_value(self._ref_stats, gaussian_stats(fake[TAP], self.device), "eig",
                                               self.device)
        if "kid" in self.metrics:
            mean, std, _ = registry.kid_values(self._reference(), fake[TAP], OPTIONS, self.device)
            record.update(kid=mean, kid_std=std)
        if "is" in self.metrics:
            mean, std = registry.is_values(fake[registry.LOGITS], OPTIONS)
            record.update({"is": mean, "is_std": std})
        if "pr" in self.metrics:
            record.update(registry.pr_values(self._reference(), fake[TAP], OPTIONS, self.device))
        if "swd" in self.metrics:
            assert isinstance(self.ref, ImageSource)
            # The reference at the generator's resolution of the moment (a --levels dataset's level).
            ref = at_resolution(self.ref, resolution)
            swd = registry.swd_values([ref, samples], self.n, self.seed, self.batch_size, self.device, self.dist)
            record.update({"swd": swd["average"], **{f"swd_{r}": v for r, v in zip(swd["levels"], swd["per_level"])}})
        record["eval_seconds"] = round(time.perf_counter() - started, 3)
        value = float(record[self.key])
        improved = self.better(value, self.best)
        if improved:
            self.best = value
        return record, improved


def _step_of(path: Path) -> int:
    return int(path.name.split("-", 1)[1].split(".", 1)[0])  # ckpt-000001000.safetensors


def keep_best(
    best_dir: Path, step: int, modules: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any], saved_step: int
) -> Path:
    """Write the generator of `step` into checkpoints/best (where `facegan sample --ckpt RUN/checkpoints/best`
    finds it as the newest file), then prune the folder (see `prune_best`)."""
    path = save_checkpoint(best_dir, step, modules, meta, None, keep=0)
    prune_best(best_dir, saved_step)
    return path


def prune_best(best_dir: Path, saved_step: int, resumed: bool = False) -> None:
    """Keep in checkpoints/best the newest best and the newest one from no later than the run's newest
    regular checkpoint (`saved_step`): a run killed now resumes from that checkpoint, whose best is the
    latter. On resume (`resumed`) the bests from after `saved_step` belong to steps that are trained (and
    evaluated) again, and go."""
    found = [(_step_of(path), path) for path in list_checkpoints(best_dir)]
    if resumed:
        for step, path in found:
            if step > saved_step:
                path.unlink()
        found = [(step, path) for step, path in found if step <= saved_step]
    keep = {path for _, path in found[-1:]}  # the newest
    keep |= {path for _, path in [(step, path) for step, path in found if step <= saved_step][-1:]}
    for _, path in found:
        if path not in keep:
            path.unlink()
