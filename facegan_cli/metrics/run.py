"""One function per `facegan metrics` command: resolve the inputs, get features, compute, document.

Each returns the result document the CLI prints (`--json` prints it as it is): the metric, its value(s),
the protocol that produced them, sample counts, feature dims, the weights' SHA-256, the inputs, seconds
and the warnings that change how the number should be read.

Under torchrun every command runs on all ranks (`_one_process_group`): each rank generates, decodes and
featurises its share of whole batches, the features are gathered on every rank in row order, and every
rank computes the same number from them; the CLI prints rank 0's document only, and only rank 0 writes
files (the stats .npz, the feature cache).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from facegan_cli.core import distributed
from facegan_cli.core import weights as W
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.outputs import check_new_file, new_file
from facegan_cli.core.progress import Progress, log, set_quiet, warn
from facegan_cli.data.sources import ImageSource
from facegan_cli.features.inception import FEATURE_DIMS, InceptionExtractor
from facegan_cli.metrics import kid as kid_mod
from facegan_cli.metrics import msssim as msssim_mod
from facegan_cli.metrics import swd as swd_mod
from facegan_cli.metrics.features import FeatureSet, extract
from facegan_cli.metrics.frechet import frechet_distance
from facegan_cli.metrics.inception_score import inception_score
from facegan_cli.metrics.inputs import Input, StatsInput, resolve_inputs
from facegan_cli.metrics.prdc import precision_recall_density_coverage
from facegan_cli.metrics.protocols import get_protocol
from facegan_cli.metrics.settings import Settings as Settings  # where callers import it from
from facegan_cli.metrics.stats import FeatureCache, GaussianStats, gaussian_stats, save_stats
from facegan_cli.models.generated_sources import GeneratorSource

POOL_DIMS = (64, 192, 768, 2048)
Result = TypeVar("Result")



class Session:
    """One command's device, protocol, weights and warnings (weights and network resolved on first use)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = time.perf_counter()
        self.warnings: list[str] = []
        self.dist = distributed.current()  # several ranks only inside a command's `_one_process_group`
        self.device = distributed.rank_device(self.dist, resolve_device(settings.device))
        self.protocol = get_protocol(settings.protocol)
        self._extractor: InceptionExtractor | None = None

    @property
    def batch_size(self) -> int:
        if self.settings.batch_size is not None:
            return self.settings.batch_size
        return 50 if self.device.type == "cpu" else 250

    @property
    def workers(self) -> int | None:
        """Decoding processes. On the CPU the network already keeps every core busy, and decoding beside
        it only makes its threads wait for each other: decode in the main process between batches."""
        if self.settings.workers is not None:
            return self.settings.workers
        return 1 if self.device.type == "cpu" else None

    def warn(self, message: str) -> None:
        if self.dist.is_main:  # every rank finds the same; one says it
            warn(message)
        self.warnings.append(message)

    def inputs(self, paths: list[Path], ckpt: Path | None, wanted: tuple[int, int], allow_stats: bool = False) -> list[Input]:
        s = self.settings
        return resolve_inputs(
            paths, ckpt, wanted=wanted, n=s.n, seed=s.seed, device=self.device, split=s.split,
            workers=self.workers, strict=s.strict, allow_stats=allow_stats, translate=s.translate,
            direction=s.direction,
        )

    @property
    def extractor(self) -> InceptionExtractor:
        if self._extractor is None:
            resolved = W.resolve("fid-inception", self.settings.inception_weights)
            if not resolved.verified:
                self.warn(
                    f"{resolved.path} is not the official FID Inception file (SHA-256 {resolved.sha256[:12]}...): "
                    "its numbers are comparable only with numbers from the same file"
                )
            self._extractor = InceptionExtractor(
                resolved, self.protocol, self.device, self.batch_size, self.settings.fast
            )
        return self._extractor

    def features(self, source: ImageSource, taps: list[str]) -> FeatureSet:
        cache = FeatureCache() if self.settings.cache else None
        found = extract(source, self.extractor, taps, cache, self.dist)
        if found.cached:
            log(f"{source.label}: features from the cache")
        return found

    @property
    def weights_sha256(self) -> str | None:
        """The SHA-256 of the weights in use, or None while no network was needed."""
        return None if self._extractor is None else self._extractor.weights.sha256

    def document(self, metric: str, value: float, values: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return self.finish({"metric": metric, "value": value, "values": values, **fields})

    def finish(self, doc: dict[str, Any], started: float | None = None) -> dict[str, Any]:
        """`doc` with what every result document ends with: the protocol and the weights when a network was
        used, the device, the seconds since `started` (default: since the session began) and the warnings."""
        if self._extractor is not None:
            w = self._extractor.weights
            doc.setdefault("protocol", self.protocol.name)
            doc.update(weights_sha256=w.sha256, weights_path=str(w.path), weights_verified=w.verified)
        doc["device"] = str(self.device)
        doc["seconds"] = round(time.perf_counter() - (self.started if started is None else started), 3)
        doc["warnings"] = self.warnings
        return doc


def _one_process_group(compute: Callable[..., Result]) -> Callable[..., Result]:
    """Run a metric command in the process group torchrun describes (a no-op without torchrun), leaving it
    cleanly at the end; ranks other than 0 show no progress (their warnings still show)."""

    @functools.wraps(compute)
    def run(settings: Settings, *args: Any, **kwargs: Any) -> Result:
        with distributed.process_group(resolve_device(settings.device)) as info:
            if not info.is_main:
                set_quiet(True)
            return compute(settings, *args, **kwargs)

    return run


def _input_doc(item: Input, found: FeatureSet | None = None) -> dict[str, Any]:
    doc = found.source if found is not None else item.describe()
    if found is not None:
        doc = {**doc, "cached": found.cached}
    return doc


def _tap_for(dims: int) -> str:
    if dims not in POOL_DIMS:
        raise UsageProblem(f"--dims {dims} is not an Inception feature layer.", f"Use one of: {', '.join(map(str, POOL_DIMS))}.")
    return str(dims)


def _check_stats(session: Session, item: StatsInput, dims: int) -> None:
    meta = item.stats.meta
    if item.stats.dims != dims:
        raise FaceganError(
            f"{item.label} holds {item.stats.dims}-dimensional statistics but the FID uses {dims} dimensions.",
            f"Pass --dims {item.stats.dims}, or compute the statistics again with --dims {dims}.",
        )
    protocol = meta.get("protocol")
    if protocol is not None and protocol != session.protocol.name:
        raise FaceganError(
            f"{item.label} was computed with the {protocol} protocol, not {session.protocol.name}: the two "
            "numbers would mix resizing filters and differ by whole FID points.",
            f"Pass --protocol {protocol}, or compute the statistics again with --protocol {session.protocol.name}.",
        )
    sha = meta.get("weights_sha256")
    current = session.weights_sha256
    if sha is not None and current is not None and sha != current:
        session.warn(f"{item.label} was computed with other Inception weights (SHA-256 {sha[:12]}...)")


def _stats_of(session: Session, item: Input, dims: int) -> tuple[GaussianStats, dict[str, Any]]:
    if isinstance(item, StatsInput):
        _check_stats(session, item, dims)
        return item.stats, _input_doc(item)
    found = session.features(item, [_tap_for(dims)])
    stats = gaussian_stats(found.taps[_tap_for(dims)], session.device)
    if stats.n is not None and stats.n < dims:
        session.warn(
            f"{item.label}: {stats.n} samples for {dims}-dimensional features; the covariance is rank-deficient "
            f"and the FID unreliable (biased upwards). Use at least {dims} samples; papers use 10k-50k"
        )
    return stats, _input_doc(item, found)


@_one_process_group
def compute_fid(
    settings: Settings, paths: list[Path], ckpt: Path | None = None, dims: int | None = None, matrix_sqrt: str = "eig"
) -> dict[str, Any]:
    session = Session(settings)
    inputs = session.inputs(paths, ckpt, (2, 2), allow_stats=True)
    if dims is None:
        stats_dims = {i.stats.dims for i in inputs if isinstance(i, StatsInput)}
        dims = stats_dims.pop() if len(stats_dims) == 1 else 2048
    _tap_for(dims)
    # Images first, so that stats files are checked against the weights actually used.
    order = sorted(range(2), key=lambda i: isinstance(inputs[i], StatsInput))
    done = {i: _stats_of(session, inputs[i], dims) for i in order}
    (s1, d1), (s2, d2) = done[0], done[1]
    value = frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma, matrix_sqrt, session.device)
    extra: dict[str, Any] = {"protocol": session.protocol.name}
    if session.weights_sha256 is None:  # two stats files: the network never ran; say what they recorded
        extra["weights_sha256"] = s1.meta.get("weights_sha256") or s2.meta.get("weights_sha256")
    return session.document(
        "fid", value, {"fid": value}, n1=s1.n, n2=s2.n, dims=dims, matrix_sqrt=matrix_sqrt, inputs=[d1, d2],
        **extra,
    )


def _features_of_all(session: Session, inputs: list[Input], tap: str) -> list[FeatureSet]:
    return [session.features(item, [tap]) for item in inputs if isinstance(item, ImageSource)]


@_one_process_group
def compute_kid(
    settings: Settings,
    paths: list[Path],
    ckpt: Path | None = None,
    dims: int = 2048,
    subsets: int = 100,
    subset_size: int = 1000,
    kid_seed: int = 2020,
) -> dict[str, Any]:
    kid_mod.check_subsets(subsets, subset_size)  # before minutes of feature extraction, not after
    session = Session(settings)
    inputs = session.inputs(paths, ckpt, (2, 2))
    tap = _tap_for(dims)
    f1, f2 = _features_of_all(session, inputs, tap)
    mean, std, m = kid_mod.kernel_inception_distance(
        f1.taps[tap], f2.taps[tap], subsets, subset_size, kid_seed, device=session.device
    )
    if m < subset_size:
        session.warn(f"KID subsets hold {m} samples (fewer than --subset-size {subset_size}): not comparable with published KIDs")
    return session.document(
        "kid", mean, {"kid_mean": mean, "kid_std": std}, std=std, n1=f1.n, n2=f2.n, dims=dims,
        subsets=subsets, subset_size=m, seed=kid_seed, inputs=[_input_doc(i, f) for i, f in zip(inputs, (f1, f2))],
    )


@_one_process_group
def compute_is(
    settings: Settings, paths: list[Path], ckpt: Path | None = None, splits: int = 10, is_seed: int = 2020,
    shuffle: bool = True,
) -> dict[str, Any]:
    session = Session(settings)
    inputs = session.inputs(paths, ckpt, (1, 1))
    (found,) = _features_of_all(session, inputs, "logits_unbiased")
    mean, std = inception_score(found.taps["logits_unbiased"], splits, shuffle, is_seed)
    return session.document(
        "is", mean, {"is_mean": mean, "is_std": std}, std=std, n1=found.n, dims=FEATURE_DIMS["logits_unbiased"],
        splits=splits, seed=is_seed if shuffle else None, inputs=[_input_doc(inputs[0], found)],
    )


@_one_process_group
def compute_pr(
    settings: Settings, paths: list[Path], ckpt: Path | None = None, k_pr: int = 3, k_dc: int = 5
) -> dict[str, Any]:
    session = Session(settings)
    inputs = session.inputs(paths, ckpt, (2, 2))
    real, fake = _features_of_all(session, inputs, "2048")
    values = precision_recall_density_coverage(real.taps["2048"], fake.taps["2048"], k_pr, k_dc, session.device)
    return session.document(
        "pr", values["precision"], values, n1=real.n, n2=fake.n, dims=2048, k_pr=k_pr, k_dc=k_dc,
        inputs=[_input_doc(i, f) for i, f in zip(inputs, (real, fake))],
    )


@_one_process_group
def compute_stats(settings: Settings, path: Path, out: Path, dims: int = 2048, force: bool = False) -> dict[str, Any]:
    session = Session(settings)
    check_new_file(out, force)
    if out.suffix.lower() != ".npz":
        raise FaceganError(f"--out {out} does not end in .npz.", "Name the statistics file like real.npz.")
    (source,) = session.inputs([path], None, (1, 1))
    stats, doc = _stats_of(session, source, dims)
    stats.meta = {
        "protocol": session.protocol.name, "weights_sha256": session.weights_sha256, "source": doc,
        "facegan": "metrics stats",
    }
    if session.dist.is_main:
        with new_file(out, force, "fid-statistics") as tmp:
            save_stats(stats, tmp)
    return session.document("stats", float(stats.n or 0), {"n": stats.n}, n1=stats.n, dims=dims, out=str(out), inputs=[doc])


def _square_size(inputs: list[ImageSource]) -> int:
    sizes = {i.resolution for i in inputs}
    if len(sizes) != 1 or None in sizes:
        raise FaceganError(
            f"These inputs hold images of different sizes ({', '.join(f'{i.label}: {i.resolution}' for i in inputs)}).",
            "Compare images of one size: prepare both sets at the same --size, or resize one folder first.",
        )
    return int(sizes.pop())  # type: ignore[arg-type]


@_one_process_group
def compute_swd(settings: Settings, paths: list[Path], ckpt: Path | None = None) -> dict[str, Any]:
    session = Session(settings)
    inputs = session.inputs(paths, ckpt, (2, 2))
    sources = [i for i in inputs if isinstance(i, ImageSource)]
    size = _square_size(sources)
    limit = settings.n
    info = session.dist
    # Under torchrun: each rank's whole batches of the first `limit` images of each set.
    shares = [distributed.shard(min(len(source), limit), session.batch_size, info) for source in sources]

    def stream(source: ImageSource, share: range) -> Any:
        taken = 0
        rows = {"rows": share} if info.enabled else {}
        for batch in source.batches(session.batch_size, native=False, description="swd", **rows):
            if taken >= limit:
                break
            batch = np.asarray(batch)[: limit - taken]
            taken += len(batch)
            yield batch

    result = swd_mod.swd(
        stream(sources[0], shares[0]), stream(sources[1], shares[1]), size, settings.seed, session.device,
        skip=(shares[0].start, shares[1].start),
        gather=functools.partial(distributed.all_gather_rows, info) if info.enabled else None,
    )
    values = {f"swd_{res}": v for res, v in zip(result["levels"], result["per_level"])}
    values["swd_avg"] = result["average"]
    return session.document(
        "swd", result["average"], values, protocol="progan-swd", n1=result["images"], n2=result["images"],
        levels=result["levels"], seed=settings.seed, inputs=[i.describe() for i in sources],
    )


@_one_process_group
def compute_msssim(settings: Settings, paths: list[Path], ckpt: Path | None = None, pairs: int = 10_000) -> dict[str, Any]:
    session = Session(settings)
    if pairs < 1:
        raise UsageProblem(f"--pairs {pairs} must be at least 1.", "Use the default 10000.")
    if ckpt is not None:
        # Generated pairs are consecutive samples (MMagic's halves of each batch): 2 x pairs latents.
        session.settings.n = 2 * pairs
    (source,) = [i for i in session.inputs(paths, ckpt, (1, 1)) if isinstance(i, ImageSource)]
    side = source.resolution or 0
    if side < msssim_mod.min_side():
        session.warn(
            f"{side}x{side} images are below pytorch-msssim's {msssim_mod.min_side()} px minimum: the coarse scales "
            "skip smoothing and the value is comparable only with facegan's at this size"
        )
    scores: list[np.ndarray] = [np.zeros(0)]
    info = session.dist
    if isinstance(source, GeneratorSource):
        batch_size = max(2, session.batch_size - session.batch_size % 2)  # even: a batch holds whole pairs
        share = {"rows": distributed.shard(len(source), batch_size, info)} if info.enabled else {}
        for batch in source.batches(batch_size, native=False, description="ms-ssim", **share):
            batch = np.asarray(batch)
            scores.append(msssim_mod.pair_scores(batch[0::2], batch[1::2], session.device))
    else:
        if len(source) < 2:
            raise FaceganError(f"{source.label} holds {len(source)} image(s); MS-SSIM compares pairs.", "Give more images.")
        rows = msssim_mod.random_pairs(len(source), pairs, settings.seed)
        chunk = max(1, session.batch_size)
        mine = distributed.shard(pairs, chunk, info)  # whole chunks of the pairs all ranks drew alike
        with Progress(len(mine), f"ms-ssim {Path(source.label).name}", unit="pair") as bar:
            for start in range(mine.start, mine.stop, chunk):
                part = rows[start : start + chunk]
                images, kept = source.take(np.unique(part))  # each image decoded once per chunk
                lookup = {int(r): k for k, r in enumerate(kept)}
                usable = [(lookup[a], lookup[b]) for a, b in part if a in lookup and b in lookup]
                if usable:
                    ia, ib = np.asarray(usable).T
                    scores.append(msssim_mod.pair_scores(images[ia], images[ib], session.device))
                bar.advance(len(part))
        if source.rejects:
            session.warn(f"{source.label}: {len(source.rejects)} unusable file(s); pairs holding one were skipped")
    values = distributed.all_gather_rows(info, np.concatenate(scores))
    if values.size == 0:
        raise FaceganError(f"No image pair of {source.label} could be compared.", "Check the images.")
    mean = float(values.mean())
    return session.document(
        "msssim", mean, {"msssim": mean, "msssim_std": float(values.std())}, protocol="pytorch-msssim",
        pairs=int(values.size), n1=len(source), seed=settings.seed, inputs=[source.describe()],
    )

