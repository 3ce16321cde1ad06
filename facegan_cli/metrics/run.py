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

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from facegan_cli.core import distributed
from facegan_cli.core import weights as W
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.outputs import check_new_file, new_file
from facegan_cli.core.progress import Progress, set_quiet, warn
from facegan_cli.data.sources import ImageSource, PreparedSource
from facegan_cli.features.inception import FEATURE_DIMS, InceptionExtractor
from facegan_cli.metrics import kid as kid_mod
from facegan_cli.metrics import msssim as msssim_mod
from facegan_cli.metrics import registry
from facegan_cli.metrics.features import FeatureSet
from facegan_cli.metrics.inputs import Input, StatsInput, at_resolution, resolve_inputs
from facegan_cli.metrics.protocols import get_protocol
from facegan_cli.metrics.registry import FeatureStore, Options
from facegan_cli.metrics.settings import Settings as Settings  # where callers import it from
from facegan_cli.metrics.stats import GaussianStats, gaussian_stats, save_stats
from facegan_cli.models.generated_sources import GeneratorSource, ModelSource

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
        # Every feature set of this command, each input featurised once (metrics.registry).
        self.store = FeatureStore(lambda: self.extractor, settings.cache, self.dist)

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

    def inputs(
        self, paths: list[Path], ckpt: Path | None, wanted: tuple[int, int], allow_stats: bool = False,
        n: int | None = None,
    ) -> list[Input]:
        """The command's inputs; `n` replaces --n for the --ckpt samples (MS-SSIM's 2 x pairs)."""
        s = self.settings
        return resolve_inputs(
            paths, ckpt, wanted=wanted, n=s.n if n is None else n, seed=s.seed, device=self.device, split=s.split,
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
        return self.store.get(source, taps)

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


def _part(metric: str, value: float, values: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """One metric's result, before `Session.finish` adds what every document ends with."""
    return {"metric": metric, "value": value, "values": values, **fields}


def _stats_dims(inputs: list[Input]) -> int:
    """The FID's default layer: that of the stats files given (when they agree), else pool3."""
    stats_dims = {i.stats.dims for i in inputs if isinstance(i, StatsInput)}
    return stats_dims.pop() if len(stats_dims) == 1 else 2048


def _fid(session: Session, inputs: list[Input], o: Options) -> dict[str, Any]:
    _tap_for(o.dims)
    # Images first, so that stats files are checked against the weights actually used.
    order = sorted(range(2), key=lambda i: isinstance(inputs[i], StatsInput))
    done = {i: _stats_of(session, inputs[i], o.dims) for i in order}
    (s1, d1), (s2, d2) = done[0], done[1]
    value = registry.fid_value(s1, s2, o.matrix_sqrt, session.device)
    extra: dict[str, Any] = {"protocol": session.protocol.name}
    if session.weights_sha256 is None:  # two stats files: the network never ran; say what they recorded
        extra["weights_sha256"] = s1.meta.get("weights_sha256") or s2.meta.get("weights_sha256")
    return _part("fid", value, {"fid": value}, n1=s1.n, n2=s2.n, dims=o.dims, matrix_sqrt=o.matrix_sqrt,
                 inputs=[d1, d2], **extra)


def _features_of_all(session: Session, inputs: list[Input], tap: str) -> list[FeatureSet]:
    return [session.features(item, [tap]) for item in inputs if isinstance(item, ImageSource)]


def _kid(session: Session, inputs: list[Input], o: Options) -> dict[str, Any]:
    tap = _tap_for(o.dims)
    f1, f2 = _features_of_all(session, inputs, tap)
    mean, std, m = registry.kid_values(f1.taps[tap], f2.taps[tap], o, session.device)
    if m < o.kid_subset_size:
        session.warn(f"KID subsets hold {m} samples (fewer than --subset-size {o.kid_subset_size}): not comparable "
                     "with published KIDs")
    return _part(
        "kid", mean, {"kid_mean": mean, "kid_std": std}, std=std, n1=f1.n, n2=f2.n, dims=o.dims,
        subsets=o.kid_subsets, subset_size=m, seed=o.kid_seed,
        inputs=[_input_doc(i, f) for i, f in zip(inputs, (f1, f2))],
    )


def _is(session: Session, item: Input, o: Options) -> dict[str, Any]:
    (found,) = _features_of_all(session, [item], registry.LOGITS)
    mean, std = registry.is_values(found.taps[registry.LOGITS], o)
    return _part(
        "is", mean, {"is_mean": mean, "is_std": std}, std=std, n1=found.n, dims=FEATURE_DIMS[registry.LOGITS],
        splits=o.splits, seed=o.is_seed if o.shuffle else None, inputs=[_input_doc(item, found)],
    )


def _pr(session: Session, inputs: list[Input], o: Options) -> dict[str, Any]:
    real, fake = _features_of_all(session, inputs, registry.POOL3)
    values = registry.pr_values(real.taps[registry.POOL3], fake.taps[registry.POOL3], o, session.device)
    return _part(
        "pr", values["precision"], values, n1=real.n, n2=fake.n, dims=2048, k_pr=o.k_pr, k_dc=o.k_dc,
        inputs=[_input_doc(i, f) for i, f in zip(inputs, (real, fake))],
    )


@_one_process_group
def compute_fid(
    settings: Settings, paths: list[Path], ckpt: Path | None = None, dims: int | None = None, matrix_sqrt: str = "eig"
) -> dict[str, Any]:
    session = Session(settings)
    inputs = session.inputs(paths, ckpt, (2, 2), allow_stats=True)
    options = Options(dims=_stats_dims(inputs) if dims is None else dims, matrix_sqrt=matrix_sqrt)
    return session.finish(_fid(session, inputs, options))


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
    options = Options(dims=dims, kid_subsets=subsets, kid_subset_size=subset_size, kid_seed=kid_seed)
    return session.finish(_kid(session, inputs, options))


@_one_process_group
def compute_is(
    settings: Settings, paths: list[Path], ckpt: Path | None = None, splits: int = 10, is_seed: int = 2020,
    shuffle: bool = True,
) -> dict[str, Any]:
    session = Session(settings)
    (item,) = session.inputs(paths, ckpt, (1, 1))
    return session.finish(_is(session, item, Options(splits=splits, is_seed=is_seed, shuffle=shuffle)))


@_one_process_group
def compute_pr(
    settings: Settings, paths: list[Path], ckpt: Path | None = None, k_pr: int = 3, k_dc: int = 5
) -> dict[str, Any]:
    session = Session(settings)
    inputs = session.inputs(paths, ckpt, (2, 2))
    return session.finish(_pr(session, inputs, Options(k_pr=k_pr, k_dc=k_dc)))


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


def _swd_sources(session: Session, inputs: list[Input], resolution: int | None) -> list[ImageSource]:
    """SWD's two sources at one resolution: --resolution, or else a model's own (a prepared dataset gives
    the level of that size, so a ProGAN stopped below the dataset's top resolution is scored at its own);
    a model is always sampled at its own resolution."""
    sources = [i for i in inputs if isinstance(i, ImageSource)]
    models = [s for s in sources if isinstance(s, ModelSource)]
    target = resolution if resolution is not None else (models[0].resolution if models else None)
    if target is None:
        return sources
    out = []
    for source in sources:
        if resolution is None and not isinstance(source, PreparedSource | ModelSource):
            out.append(source)  # a folder is fitted only when asked to (--resolution): else the sizes must agree
        else:
            out.append(at_resolution(source, target))
    return out


def _swd(session: Session, sources: list[ImageSource]) -> dict[str, Any]:
    size = _square_size(sources)
    seed = session.settings.seed
    result = registry.swd_values(sources, session.settings.n, seed, session.batch_size, session.device, session.dist)
    values = {f"swd_{res}": v for res, v in zip(result["levels"], result["per_level"])}
    values["swd_avg"] = result["average"]
    return _part(
        "swd", result["average"], values, protocol="progan-swd", n1=result["images"], n2=result["images"],
        resolution=size, levels=result["levels"], seed=seed, inputs=[i.describe() for i in sources],
    )


@_one_process_group
def compute_swd(
    settings: Settings, paths: list[Path], ckpt: Path | None = None, resolution: int | None = None
) -> dict[str, Any]:
    session = Session(settings)
    inputs = session.inputs(paths, ckpt, (2, 2))
    return session.finish(_swd(session, _swd_sources(session, inputs, resolution)))


def _check_pairs(pairs: int) -> None:
    if pairs < 1:
        raise UsageProblem(f"--pairs {pairs} must be at least 1.", "Use the default 10000.")


def _msssim_input(session: Session, paths: list[Path], ckpt: Path | None, pairs: int) -> ImageSource:
    """The one input MS-SSIM scores; a --ckpt gives 2 x pairs samples: consecutive samples are the pairs
    (MMagic's halves of each batch)."""
    n = 2 * pairs if ckpt is not None else None
    (source,) = [i for i in session.inputs(paths, ckpt, (1, 1), n=n) if isinstance(i, ImageSource)]
    return source


def _msssim(session: Session, source: ImageSource, pairs: int) -> dict[str, Any]:
    seed = session.settings.seed
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
        rows = msssim_mod.random_pairs(len(source), pairs, seed)
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
    return _part(
        "msssim", mean, {"msssim": mean, "msssim_std": float(values.std())}, protocol="pytorch-msssim",
        pairs=int(values.size), n1=len(source), seed=seed, inputs=[source.describe()],
    )


@_one_process_group
def compute_msssim(settings: Settings, paths: list[Path], ckpt: Path | None = None, pairs: int = 10_000) -> dict[str, Any]:
    _check_pairs(pairs)
    session = Session(settings)
    return session.finish(_msssim(session, _msssim_input(session, paths, ckpt, pairs), pairs))


# --- `facegan metrics report`: several metrics over one featurisation of each input ---------------------------


def _uses(spec: registry.MetricSpec, inputs: list[Input]) -> list[Input]:
    """The inputs a metric reads: both for a comparison, the last one (the --ckpt samples, or the second
    path) for a one-input metric."""
    return inputs if spec.inputs == 2 else inputs[-1:]


def _check_report(names: tuple[str, ...], inputs: list[Input]) -> None:
    for name in names:
        spec = registry.METRICS[name]
        if spec.inputs > len(inputs):
            raise FaceganError(
                f"{name} compares two inputs, and the report got one ({inputs[0].label}).",
                "Give the reference images too (REF, or the real set and --ckpt), or drop it from --metrics.",
            )
        stats = [i for i in _uses(spec, inputs) if isinstance(i, StatsInput)]
        if stats and not spec.stats_ok:
            raise FaceganError(
                f"{stats[0].label} is a statistics file (a mean and a covariance), and {name} needs the images.",
                "Pass the images themselves (a folder, zip or prepared dataset), or report fid alone with it.",
            )


@dataclass
class _Report:
    """What one metric of a report reads: the session (and its feature store), the inputs, the options."""

    session: Session
    inputs: list[Input]
    options: Options
    ckpt: Path | None
    resolution: int | None


def _report_msssim(r: _Report) -> dict[str, Any]:
    # A --ckpt's pairs are 2 x pairs samples of their own, as the single command makes them.
    source = _msssim_input(r.session, [], r.ckpt, r.options.pairs) if r.ckpt is not None else r.inputs[-1]
    assert isinstance(source, ImageSource)
    return _msssim(r.session, source, r.options.pairs)


# How `metrics report` computes each registered metric: the single commands' own functions.
REPORT_PARTS: dict[str, Callable[[_Report], dict[str, Any]]] = {
    "fid": lambda r: _fid(r.session, r.inputs, r.options),
    "kid": lambda r: _kid(r.session, r.inputs, r.options),
    "is": lambda r: _is(r.session, r.inputs[-1], r.options),
    "pr": lambda r: _pr(r.session, r.inputs, r.options),
    "swd": lambda r: _swd(r.session, _swd_sources(r.session, r.inputs, r.resolution)),
    "msssim": _report_msssim,
}


@_one_process_group
def compute_report(
    settings: Settings,
    paths: list[Path],
    ckpt: Path | None = None,
    metrics: str = "fid,kid,is,pr",
    options: Options | None = None,
    resolution: int | None = None,
) -> dict[str, Any]:
    """Every metric of `metrics` (registry names) on the inputs, each input featurised once for all of them.

    Each metric's part is what its single command computes from the same features (the same functions run),
    so every value equals the single command's with the same options to the last digit.
    """
    names = registry.parse_names(metrics)
    o = options or Options()
    if "kid" in names:
        kid_mod.check_subsets(o.kid_subsets, o.kid_subset_size)
    if "msssim" in names:
        _check_pairs(o.pairs)
    session = Session(settings)
    pairwise = any(registry.METRICS[name].inputs == 2 for name in names)
    inputs = session.inputs(paths, ckpt, (2, 2) if pairwise else (1, 2), allow_stats="fid" in names)
    _check_report(names, inputs)
    if "fid" in names and options is None:
        o = dataclasses.replace(o, dims=_stats_dims(inputs))
    for name in names:  # every Inception tap of an input comes out of one pass
        need = registry.METRICS[name].need(o)
        if need.extractor == "inception":
            for item in _uses(registry.METRICS[name], inputs):
                if isinstance(item, ImageSource):
                    session.store.plan(item, need.taps)
    parts: dict[str, dict[str, Any]] = {}
    for name in names:
        started = time.perf_counter()
        part = REPORT_PARTS[name](_Report(session, inputs, o, ckpt, resolution))
        if registry.METRICS[name].need(o).extractor == "inception":
            part.setdefault("protocol", session.protocol.name)
        part["seconds"] = round(time.perf_counter() - started, 3)
        parts[name] = part
    values = {f"{name}.{key}": value for name, part in parts.items() for key, value in part["values"].items()}
    return session.finish({
        "metric": "report", "metrics": list(names), "values": values, "results": parts,
        "inputs": [item.describe() for item in inputs], "feature_passes": dict(session.store.passes),
    })
