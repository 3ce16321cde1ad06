"""The named data streams of a run: built from config["data"], held on the device, ordered and batched.

Every `Images` stream a trainer declares reads the data source of the same name in config["data"]
({"path", "split"}, plus the "fingerprint" and "probe" recorded when the run started). Each is decoded
once, moved to the device once, and ordered on its own: the first stream by the run's seed exactly as a
single-stream run always was, the i-th by seed + i, so streams of different sizes are independent. A
fixed run orders by step (EpochOrder, full batches), a phased run by images seen (ImageStream), and
under DDP each rank takes every world_size-th row of the global batch. `Labels` streams ride along
their image stream: the same rows, in the same order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import warn
from facegan_cli.data.device_data import DeviceImages, EpochOrder, ImageStream
from facegan_cli.data.levels import ImageLevels
from facegan_cli.data.sources import open_image_set
from facegan_cli.train.trainer import Images, Labels, Stream


def content_probe(pixels: np.ndarray) -> str:
    """A cheap identity of loaded training pixels: their shape and a hash of up to 64 evenly spaced rows.

    Recorded when a run starts and compared on resume, so a dataset edited in place is noticed even when
    its recorded fingerprint (a prepared dataset's manifest) did not change.
    """
    digest = hashlib.sha256(repr(tuple(pixels.shape)).encode())
    for row in np.unique(np.linspace(0, len(pixels) - 1, num=min(64, len(pixels))).astype(np.int64)):
        digest.update(np.ascontiguousarray(pixels[row]).tobytes())
    return "sha256:" + digest.hexdigest()[:32]


def normalize_data_config(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """config["data"] by stream name; runs of facegan 0.1 recorded their one source flat ({"path": ...})."""
    return {"images": data} if "path" in data else data


@dataclass
class _ImageSource:
    """One image stream's data on the device, its order, and the label columns that ride along."""

    name: str
    seed: int
    config: dict[str, Any]
    images: DeviceImages | None = None
    levels: ImageLevels | None = None
    order: EpochOrder | None = None
    stream: ImageStream | None = None
    labels: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def count(self) -> int:
        if self.levels is not None:
            return self.levels.count
        assert self.images is not None
        return self.images.count


class StreamSet:
    """The streams of one run (see the module docstring)."""

    def __init__(
        self,
        streams: dict[str, Stream],
        data: dict[str, dict[str, Any]],
        seed: int,
        device: torch.device,
        value_range: tuple[float, float],
        data_changed_ok: bool = False,
    ) -> None:
        self.streams = streams
        self.device = device
        self.value_range = value_range
        self.data_changed_ok = data_changed_ok
        self.changed: dict[str, Any] = {}  # what --data-changed-ok let through, by stream (for config.json)
        image_names = [name for name, spec in streams.items() if isinstance(spec, Images)]
        if not image_names:
            raise ValueError("a trainer must declare at least one Images stream")
        missing = [name for name in image_names if name not in data]
        if missing:
            raise FaceganError(
                f"The run's data names no source for the stream(s) {', '.join(missing)} (it has "
                f"{', '.join(data) or 'none'}).",
                "Give the data option of each stream (see `facegan train FAMILY --help`).",
            )
        self.sources = {name: _ImageSource(name, seed + i, data[name]) for i, name in enumerate(image_names)}
        for name, spec in streams.items():
            if isinstance(spec, Labels) and spec.of not in self.sources:
                raise ValueError(f"labels stream {name!r} rides along {spec.of!r}, which is not an image stream")
            if isinstance(spec, Images) and spec.order_of is not None and spec.order_of not in self.sources:
                raise ValueError(f"stream {name!r} follows the order of {spec.order_of!r}, which is not an image stream")

    @property
    def primary(self) -> _ImageSource:
        """The first image stream: its size defines an epoch."""
        return next(iter(self.sources.values()))

    # --- identity -------------------------------------------------------------------------------------

    def _check_identity(self, source: _ImageSource, fingerprint: str, pixels: np.ndarray) -> None:
        """Record the data's identity when a run starts; on resume, refuse data that changed since."""
        cfg = source.config
        probe = content_probe(pixels)
        changed = [
            what
            for what, key, now in (("content fingerprint", "fingerprint", fingerprint), ("sampled pixels", "probe", probe))
            if cfg.get(key) and cfg[key] != now
        ]
        if changed:
            if not self.data_changed_ok:
                raise FaceganError(
                    f"The dataset at {cfg['path']} is not the one this run was trained on (its "
                    f"{' and '.join(changed)} changed since the run started), so the run cannot continue exactly.",
                    "Point the run at the original data with its data option, start a new run, or pass "
                    "--data-changed-ok to continue on the changed data (recorded in config.json).",
                )
            warn(f"the dataset at {cfg['path']} changed since the run started ({' and '.join(changed)}); "
                 "continuing on it as --data-changed-ok asks")
            self.changed[source.name] = {"fingerprint": [cfg.get("fingerprint"), fingerprint],
                                         "probe": [cfg.get("probe"), probe]}
        cfg["fingerprint"] = fingerprint
        cfg["probe"] = probe

    # --- fixed runs -------------------------------------------------------------------------------------

    def load(self, resolution: int, batch: int) -> None:
        """Decode every image stream at `resolution`, move it to the device, and order it in `batch`es."""
        for source in self.sources.values():
            own = self.streams[source.name]
            held = (own.resolution if isinstance(own, Images) else None) or resolution  # a stream's own size
            image_set = self._open(source.config, held)
            pixels, rows = image_set.load_with_indices()
            self._check_identity(source, image_set.fingerprint, pixels)
            if len(pixels) < batch:
                raise FaceganError(
                    f"The dataset at {source.config['path']} has {len(pixels)} images, fewer than one batch "
                    f"({batch}).",
                    "Use a smaller --batch or more images.",
                )
            source.images = DeviceImages(pixels, self.device, self.value_range, resolution=held)
            source.order = EpochOrder(source.images.count, batch, source.seed)
            for name, spec in self.streams.items():
                if isinstance(spec, Labels) and spec.of == source.name:
                    columns = self._label_columns(image_set, spec, source.config["path"])
                    values = np.asarray(image_set.labels[rows][:, columns], dtype=np.float32)  # type: ignore[index]
                    source.labels[name] = torch.from_numpy(values.reshape(len(rows), -1)).to(self.device)
        self._share_orders()

    def _share_orders(self) -> None:
        """Paired streams (Images.order_of) take their leader's order, so row i of both stays one pair."""
        for name, spec in self.streams.items():
            if not (isinstance(spec, Images) and spec.order_of is not None):
                continue
            follower, leader = self.sources[name], self.sources[spec.order_of]
            if follower.count != leader.count:
                raise FaceganError(
                    f"The paired data of {name} ({follower.config['path']}) holds {follower.count} images and that "
                    f"of {spec.order_of} ({leader.config['path']}) {leader.count}, so they cannot be paired row by row.",
                    "Give two sources of the same images in the same order (e.g. `facegan prepare pairs`).",
                )
            follower.order, follower.stream = leader.order, leader.stream

    @staticmethod
    def _open(cfg: dict[str, Any], resolution: int) -> Any:
        half = cfg.get("half")  # one side of junyanz's aligned pairs (data.pairs)
        try:
            return open_image_set(cfg["path"], split=cfg.get("split"), resolution=resolution, half=half)
        except FaceganError:
            # A prepared set without this level (64x64 CelebA for the 32x32 heikka32 preset, as seed 001
            # did): take its own resolution and let DeviceImages downsample once, never upsample.
            image_set = open_image_set(cfg["path"], split=cfg.get("split"), half=half)
            if image_set.resolution < resolution:
                raise
            return image_set

    @staticmethod
    def _label_columns(image_set: Any, spec: Labels, path: str) -> list[int]:
        available = list(image_set.label_names) if image_set.labels is not None else []
        if not available:
            raise FaceganError(
                f"This family trains on attribute labels and the dataset at {path} has none.",
                "Prepare CelebA with its attributes (`facegan prepare celeba --recipe celeba-128-attrs`), or "
                "give a folder a labels.csv / dataset.json.",
            )
        missing = [name for name in spec.columns if name not in available]
        if missing:
            raise FaceganError(
                f"The dataset at {path} has no label column {', '.join(missing)} (it has "
                f"{', '.join(available)}).",
                "Choose --attrs among those, or prepare the data again with these attributes.",
            )
        return [available.index(name) for name in spec.columns]

    @property
    def steps_per_epoch(self) -> int:
        """Steps of one pass over the largest independently ordered stream (one stream: its size / batch;
        unpaired domains: the larger, as junyanz's unaligned data counts an epoch)."""
        orders = [source.order for source in self.sources.values() if source.order is not None]
        assert orders
        return max(order.steps_per_epoch for order in orders)

    # --- phased runs ------------------------------------------------------------------------------------

    def load_levels(self, resolutions: list[int], largest_batch: int) -> None:
        """Open every level a phased run reads; pixels reach the device one level at a time (`enter`)."""
        for source in self.sources.values():
            levels = ImageLevels(source.config["path"], source.config.get("split"), resolutions)
            self._check_identity(source, levels.fingerprint, levels.array(levels.top))
            if levels.count < largest_batch:
                raise FaceganError(
                    f"The dataset at {source.config['path']} has {levels.count} images, fewer than one batch "
                    f"({largest_batch}).",
                    "Use a smaller --batch or more images.",
                )
            source.levels = levels
            source.stream = ImageStream(levels.count, source.seed)
        self._share_orders()
        for spec in self.streams.values():
            if isinstance(spec, Labels):
                raise FaceganError("Label streams are not supported in phased runs.", "This is a facegan bug.")

    def enter(self, resolution: int) -> None:
        """Hold level `resolution` of every stream on the device (freeing the previous level first)."""
        for source in self.sources.values():
            if source.images is not None and source.images.resolution == resolution:
                continue
            assert source.levels is not None
            source.images = None  # free the old level before loading the next
            source.images = DeviceImages(source.levels.array(resolution), self.device, self.value_range)

    # --- batches ----------------------------------------------------------------------------------------

    def batch(
        self, step: int, images_seen: int, global_batch: int, mirror: bool, rank: int, world: int
    ) -> dict[str, torch.Tensor]:
        """This rank's share of the next global batch of every stream (fixed runs: by step; phased runs:
        by images seen)."""
        out: dict[str, torch.Tensor] = {}
        for source in self.sources.values():
            assert source.images is not None
            if source.stream is None:
                assert source.order is not None
                idx = source.order.indices(step)[rank::world]
                flips = source.order.flips(step)[rank::world] if mirror else None
            else:
                idx = source.stream.indices(images_seen, global_batch)[rank::world]
                flips = source.stream.flips(images_seen, global_batch)[rank::world] if mirror else None
            out[source.name] = source.images.batch(idx, flips)
            for name, labels in source.labels.items():
                out[name] = labels.index_select(0, idx.to(labels.device))
        return out

    def first_rows(self, n: int) -> dict[str, torch.Tensor]:
        """The first `n` rows of every stream, unflipped (fixed inputs of translating sample grids)."""
        out: dict[str, torch.Tensor] = {}
        for source in self.sources.values():
            assert source.images is not None
            rows = torch.arange(min(n, source.images.count))
            out[source.name] = source.images.batch(rows)
            for name, labels in source.labels.items():
                out[name] = labels.index_select(0, rows.to(labels.device))
        return out
