"""The generic training loop every family shares.

It owns the run directory, data order, device-resident batches, checkpoints (atomic, last K kept),
exact resume, SIGINT/SIGTERM handling, NaN/inf detection, metrics.jsonl, sample grids at fixed latents,
progress, TensorBoard and DDP. A family plugs in through a `Recipe` (train/recipe.py) and never
touches this file.

Two kinds of run share it. A fixed run (DCGAN) reads one resolution with one batch size and orders data
by step (EpochOrder). A phased run (a recipe whose `phase()` returns phases: ProGAN) changes dataset
level and batch size as it goes: the loop counts images seen, stops after `kimg` thousand of them,
orders data by images seen (ImageStream), keeps the current level on the device, tells the recipe when
a phase begins, and writes a sample grid at the end of every phase.

A recipe whose `label_names()` lists dataset label columns (the attribute editors) gets those columns
of each batch's rows with its images: DeviceImages holds them on the device beside the pixels, and the
same EpochOrder indices select both, so resume stays exact.
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from facegan_cli.core.checkpoint import load_checkpoint, save_checkpoint
from facegan_cli.core.device import Precision, configure_backends, resolve_device
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import Progress, log
from facegan_cli.core.rundir import MetricsLog, RunDir
from facegan_cli.core.seeding import rng_state, seed_everything, set_rng_state
from facegan_cli.core.signals import StopFlag
from facegan_cli.data.device_data import DeviceImages, EpochOrder, ImageStream
from facegan_cli.data.grid import save_grid
from facegan_cli.data.levels import ImageLevels
from facegan_cli.data.sources import open_image_set
from facegan_cli.train import distributed
from facegan_cli.train.recipe import Phase, Recipe, TrainContext

RecipeFactory = Callable[[dict[str, Any]], Recipe]


@dataclass
class LoopSettings:
    """Settings of the generic loop (saved in config.json under "train")."""

    steps: int = 1000
    epochs: float | None = None  # when given, replaces steps once the dataset size is known
    seed: int = 0
    log_every: int = 50
    ckpt_every: int = 500
    sample_every: int = 500
    keep: int = 3
    n_samples: int = 64
    mirror: bool = False
    amp: bool = False
    channels_last: bool = True
    compile: bool = False
    tensorboard: bool | None = None  # None: on when the tensorboard package is installed
    kimg: float | None = None  # length of a phased run, in thousands of training images


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    status: str  # finished | stopped
    checkpoint: Path | None
    sample_grid: Path | None
    images_per_second: float
    rank: int = 0  # under torchrun only rank 0 reports
    kimg: float = 0.0  # thousands of training images seen
    phase: str | None = None  # the phase a phased run ended in

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def _resume_config(resume: Path, steps: int | None) -> tuple[RunDir, dict[str, Any]]:
    run = RunDir.open(resume)
    config = run.config()
    if steps is not None:
        config["train"]["steps"] = steps  # the one setting a user may change: train longer
    return run, config


class _Loop:
    def __init__(self, config: dict[str, Any], run: RunDir, factory: RecipeFactory, device_spec: str) -> None:
        self.config = config
        self.run = run
        self.settings = LoopSettings(**config["train"])
        device = resolve_device(device_spec)
        self.dist = distributed.init_from_env(device)
        if self.dist.enabled and device.type == "cuda":
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device
        configure_backends(device)
        self.precision = Precision(device, amp=self.settings.amp, channels_last=self.settings.channels_last)
        seed_everything(self.settings.seed + self.dist.rank)  # ranks draw different noise
        self.recipe = factory(config["model"])
        self.recipe.build(TrainContext(device, self.precision, self.dist.world_size, self.dist.rank))
        distributed.broadcast_modules(self.dist, self.recipe.modules)
        if self.settings.compile:
            self.recipe.wrap_networks(torch.compile)
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.recipe.wrap_networks(lambda m: DistributedDataParallel(m, device_ids=ids))
        self.phase: Phase | None = self.recipe.phase(0)
        if self.phase is not None:
            self._init_phased()
            return
        self.global_batch = self.recipe.batch_size
        if self.global_batch % self.dist.world_size:
            raise FaceganError(
                f"Batch size {self.global_batch} does not divide among {self.dist.world_size} processes.",
                "Pass a --batch that is a multiple of --nproc_per_node.",
            )

    # --- phased runs -----------------------------------------------------------------------------------

    def _init_phased(self) -> None:
        if not self.settings.kimg or self.settings.kimg <= 0:
            raise FaceganError(
                f"A {self.recipe.family} run is measured in images, and no positive length was given.",
                "Pass --kimg (thousands of training images).",
            )
        self.total_images = round(self.settings.kimg * 1000)
        self.phases = self._all_phases()
        for phase in self.phases:
            if phase.batch_size % self.dist.world_size:
                raise FaceganError(
                    f"The {phase.name} phase's batch size {phase.batch_size} does not divide among "
                    f"{self.dist.world_size} processes.",
                    "Pass a --batch that is a multiple of --nproc_per_node.",
                )
        self.global_batch = self.phases[0].batch_size
        self.images: DeviceImages | None = None  # type: ignore[assignment]

    def _all_phases(self) -> list[Phase]:
        """Every phase of the recipe's plan, in order, up to its open-ended last one.

        All of them, not only those this run's --kimg reaches: the data must hold every level the plan
        reads (a run may be lengthened on resume), and the fingerprint is the largest level's.
        """
        phase = self.recipe.phase(0)
        assert phase is not None
        found = [phase]
        while phase.end is not None:
            phase = self.recipe.phase(phase.end)
            assert phase is not None and phase.index > found[-1].index, "phases must advance"
            found.append(phase)
        return found

    def _load_levels(self) -> None:
        data_cfg = self.config["data"]
        levels = ImageLevels(data_cfg["path"], data_cfg.get("split"), [p.resolution for p in self.phases])
        self._check_fingerprint(data_cfg, levels.fingerprint)
        largest = max(p.batch_size for p in self.phases)
        if levels.count < largest:
            raise FaceganError(
                f"The dataset at {data_cfg['path']} has {levels.count} images, fewer than one batch ({largest}).",
                "Use a smaller --batch or more images.",
            )
        self.levels = levels
        self.stream = ImageStream(levels.count, self.settings.seed)

    def enter_phase(self, phase: Phase) -> None:
        """Make `phase` current: its dataset level on the device, the recipe grown and re-wired for it."""
        self.phase = phase
        self.global_batch = phase.batch_size
        if self.images is None or self.images.resolution != phase.resolution:
            self.images = None  # type: ignore[assignment]  # free the old level before loading the next
            self.images = DeviceImages(self.levels.array(phase.resolution), self.device, self.recipe.value_range)
        self.recipe.enter_phase(phase)
        log(f"phase {phase.index}: {phase.name}, batch {phase.batch_size}")

    # --- data -------------------------------------------------------------------------------------------

    def _check_fingerprint(self, data_cfg: dict[str, Any], fingerprint: str) -> None:
        if data_cfg.get("fingerprint") and data_cfg["fingerprint"] != fingerprint:
            raise FaceganError(
                f"The dataset at {data_cfg['path']} is not the one this run was trained on (its content "
                "fingerprint changed), so the run cannot continue exactly.",
                "Point the run at the original data, or start a new run.",
            )
        data_cfg["fingerprint"] = fingerprint

    def load_data(self) -> None:
        if self.phase is not None:
            self._load_levels()
            return
        data_cfg = self.config["data"]
        resolution = int(self.config["model"]["resolution"])
        try:
            image_set = open_image_set(data_cfg["path"], split=data_cfg.get("split"), resolution=resolution)
        except FaceganError:
            # A prepared set without this level (64x64 CelebA for the 32x32 heikka32 preset, as seed 001
            # did): take its own resolution and let DeviceImages downsample once, never upsample.
            image_set = open_image_set(data_cfg["path"], split=data_cfg.get("split"))
            if image_set.resolution < resolution:
                raise
        self._check_fingerprint(data_cfg, image_set.fingerprint)
        if len(image_set) < self.global_batch:
            raise FaceganError(
                f"The dataset at {data_cfg['path']} has {len(image_set)} images, fewer than one batch "
                f"({self.global_batch}).",
                "Use a smaller --batch or more images.",
            )
        columns = self._label_columns(image_set, data_cfg["path"])
        pixels, rows = image_set.load_with_indices()
        labels = None if columns is None else image_set.labels[rows][:, columns]  # type: ignore[index]
        self.images = DeviceImages(
            pixels, self.device, self.recipe.value_range, resolution=resolution, labels=labels
        )
        self.order = EpochOrder(self.images.count, self.global_batch, self.settings.seed)
        if self.settings.epochs:
            self.settings.steps = max(1, round(self.settings.epochs * self.order.steps_per_epoch))
            self.config["train"]["steps"] = self.settings.steps
        self.recipe.set_run_length(self.settings.steps)
        first = torch.arange(min(self.settings.n_samples, self.images.count))
        self.recipe.set_sample_inputs(*self.images.batch_with_labels(first))

    def _label_columns(self, image_set: Any, path: str) -> list[int] | None:
        """Indices of the label columns the recipe asks for, or None when it trains without labels."""
        wanted = self.recipe.label_names()
        if wanted is None:
            return None
        available = list(image_set.label_names) if image_set.labels is not None else []
        if not available:
            raise FaceganError(
                f"{self.recipe.family} trains on attribute labels and the dataset at {path} has none.",
                "Prepare CelebA with its attributes (`facegan prepare celeba --recipe celeba-128-attrs`), or "
                "give a folder a labels.csv / dataset.json.",
            )
        missing = [name for name in wanted if name not in available]
        if missing:
            raise FaceganError(
                f"The dataset at {path} has no label column {', '.join(missing)} (it has "
                f"{', '.join(available)}).",
                "Choose --attrs among those, or prepare the data again with these attributes.",
            )
        return [available.index(name) for name in wanted]

    def restore(self) -> tuple[int, int]:
        """Load the newest checkpoint; returns (step, images seen)."""
        ckpt = load_checkpoint(self.run.path)
        state = ckpt.load_state(map_location=self.device)
        images_seen = int(state.get("images_seen", ckpt.step * self.global_batch))
        if self.phase is not None:
            # Grow and re-wire first: entering a phase resets the optimisers, whose saved state follows.
            phase = self.recipe.phase(images_seen)
            assert phase is not None
            self.enter_phase(phase)
        for name, module in self.recipe.modules.items():
            module.load_state_dict(ckpt.modules[name])
        for name, opt in self.recipe.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        rngs = state["rng_by_rank"]
        if len(rngs) != self.dist.world_size:
            raise FaceganError(
                f"{self.run.path} was saved by {len(rngs)} process(es) and is resumed by {self.dist.world_size}; "
                "an exact resume needs the same number.",
                f"Resume with --nproc_per_node={len(rngs)}.",
            )
        set_rng_state(_rng_to_cpu(rngs[self.dist.rank]))
        self.recipe.load_extra_state(state.get("recipe", {}))
        if self.dist.is_main:
            self.run.truncate_metrics(ckpt.step)
        log(f"resumed {self.run.path} at step {ckpt.step}")
        return ckpt.step, images_seen

    def save(self, step: int, images_seen: int) -> Path | None:
        distributed.sync_buffers(self.dist, self.recipe.modules)
        rngs = distributed.gather_objects(self.dist, rng_state())
        if not self.dist.is_main:
            return None
        state = {
            "step": step,
            "images_seen": images_seen,
            "optimizers": {n: o.state_dict() for n, o in self.recipe.optimizers.items()},
            "rng_by_rank": rngs,
            "recipe": self.recipe.extra_state(),
        }
        modules = {n: m.state_dict() for n, m in self.recipe.modules.items()}
        return save_checkpoint(
            self.run.checkpoints, step, modules, self.recipe.meta(), state, keep=self.settings.keep
        )

    def grid(self, step: int, z: torch.Tensor, name: str | None = None) -> Path | None:
        if not self.dist.is_main:
            return None
        images = self.recipe.sample(z)
        path = self.run.samples / (name or f"step-{step:09d}.png")
        return save_grid(images, path, self.recipe.value_range, nrow=self.recipe.grid_columns)

    def _batch(self, step: int, images_seen: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's share of the next global batch and its labels (None for families without labels)
        (fixed runs: by step; phased runs: by images seen)."""
        rank, world, mirror = self.dist.rank, self.dist.world_size, self.settings.mirror
        if self.phase is None:
            idx = self.order.indices(step)[rank::world]
            flips = self.order.flips(step)[rank::world] if mirror else None
        else:
            idx = self.stream.indices(images_seen, self.global_batch)[rank::world]
            flips = self.stream.flips(images_seen, self.global_batch)[rank::world] if mirror else None
        return self.images.batch_with_labels(idx, flips)

    def _next_phase(self, step: int, images_seen: int, z: torch.Tensor) -> None:
        """At a phase boundary: a sample grid of the phase that ended, then enter the next one.

        This happens before the step's checkpoint, so a checkpoint written at a boundary already holds
        the new phase's (reset) optimisers, as a resumed run rebuilds them.
        """
        assert self.phase is not None
        upcoming = self.recipe.phase(images_seen)
        assert upcoming is not None
        if upcoming.index == self.phase.index:
            return
        ended = self.phase
        self.grid(step, z, name=f"phase-{ended.index:02d}-{ended.name}.png")
        self.enter_phase(upcoming)

    def train(self, start: int, images_start: int) -> TrainResult:
        s = self.settings
        phased = self.phase is not None
        fixed_z = torch.randn(s.n_samples, self.recipe.z_dim, generator=torch.Generator().manual_seed(s.seed))
        fixed_z = fixed_z.to(self.device)
        metrics = MetricsLog(self.run.metrics_path) if self.dist.is_main else None
        board = self._tensorboard()
        world = self.dist.world_size
        nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        step, images, last_ckpt, last_grid = start, images_start, None, None
        t_log, images_log = time.perf_counter(), images
        rate = 0.0
        status = "finished"
        total, unit, done = (self.total_images, "img", images) if phased else (s.steps, "step", start)
        with StopFlag() as stop, Progress(total, f"train {self.recipe.family}", unit, start=done) as bar:
            while (images < self.total_images) if phased else (step < s.steps):
                self.recipe.begin_step(images)
                trained = self.phase
                batch = self.global_batch
                real, labels = self._batch(step, images)
                losses = self.recipe.train_step(real, labels, step)
                nonfinite |= ~torch.isfinite(torch.stack([v.float() for v in losses.values()])).all()
                step += 1
                images += batch
                finished = images >= self.total_images if phased else step == s.steps
                if phased:
                    self._next_phase(step, images, fixed_z)
                at_log = step % s.log_every == 0 or finished
                at_ckpt = step % s.ckpt_every == 0 or finished
                stop_now = stop.requested if not self.dist.enabled else (
                    at_log and distributed.broadcast_flag(self.dist, stop.requested)
                )
                if at_log or at_ckpt or stop_now:
                    self._check_finite(nonfinite, losses, step)
                if at_log:
                    now = time.perf_counter()
                    rate = (images - images_log) / max(now - t_log, 1e-9)
                    t_log, images_log = now, images
                    if trained is None:
                        epoch = step / self.order.steps_per_epoch
                        where: dict[str, Any] = {}
                    else:
                        epoch = images / self.stream.count
                        where = {"resolution": trained.resolution, "phase": trained.index, "batch": batch}
                    record = {"step": step, "kimg": images / 1000, "epoch": epoch, **where,
                              "images_per_s": round(rate, 2), **{k: float(v) for k, v in losses.items()}}
                    if metrics is not None:
                        metrics.write(record)
                    if board is not None:
                        for key, value in record.items():
                            board.add_scalar(key, value, step)
                    bar.advance(0, info=" ".join(f"{k} {float(v):.3f}" for k, v in losses.items()))
                if step % s.sample_every == 0 or finished or stop_now:
                    last_grid = self.grid(step, fixed_z) or last_grid
                if at_ckpt or stop_now:
                    last_ckpt = self.save(step, images) or last_ckpt
                bar.advance(batch if phased else 1)
                if stop_now:
                    status = "stopped"
                    log(f"{stop.signal_name or 'stop'} received: saved step {step}; continue with "
                        f"`facegan train {self.recipe.family} --resume {self.run.path}`")
                    break
        if metrics is not None:
            metrics.close()
        if board is not None:
            board.close()
        distributed.sync_buffers(self.dist, self.recipe.modules)
        checksums = distributed.gather_objects(self.dist, _weights_checksum(self.recipe))
        if self.dist.is_main:
            # With DDP every rank must hold the same weights; recording each rank's checksum makes that visible.
            self.run.set_status(status, step=step, kimg=images / 1000, world_size=world, rank_checksums=checksums)
        if len(set(checksums)) > 1:
            raise FaceganError(
                f"The {world} processes of {self.run.path} ended with different weights ({checksums}).",
                "This should not happen with DDP; please report it with the command line you ran.",
            )
        return TrainResult(
            self.run.path, step, status, last_ckpt, last_grid, round(rate, 2), self.dist.rank,
            kimg=images / 1000, phase=self.phase.name if self.phase is not None else None,
        )

    def _check_finite(self, nonfinite: torch.Tensor, losses: dict[str, torch.Tensor], step: int) -> None:
        bad = distributed.broadcast_flag(self.dist, bool(nonfinite.item()))
        if not bad:
            return
        if self.dist.is_main:
            self.run.set_status("failed", step=step, reason="non-finite loss")
        values = ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
        raise FaceganError(
            f"Training of {self.run.path} diverged: a loss became NaN or infinite at or before step {step} "
            f"(last values: {values}). The last good checkpoint in {self.run.checkpoints} was kept.",
            "Lower the learning rate or change the seed, then resume from that checkpoint with --resume or start over.",
        )

    def _tensorboard(self) -> Any:
        wanted = self.settings.tensorboard
        available = importlib.util.find_spec("tensorboard") is not None
        if wanted is None:
            wanted = available
        if not wanted or not self.dist.is_main:
            return None
        if not available:
            raise FaceganError(
                "--tensorboard was asked for but the tensorboard package is not installed.",
                "Install it with `pip install 'facegan[tensorboard]'` or drop --tensorboard.",
            )
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.run.path / "tensorboard"))


def _weights_checksum(recipe: Recipe) -> str:
    """A hash of every module's parameters and buffers, to compare ranks."""
    digest = hashlib.sha256()
    for name, module in sorted(recipe.modules.items()):
        for key, tensor in sorted(module.state_dict().items()):
            digest.update(f"{name}.{key}".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _rng_to_cpu(state: dict[str, Any]) -> dict[str, Any]:
    out = dict(state)
    out["torch"] = state["torch"].cpu()
    if "cuda" in state:
        out["cuda"] = [s.cpu() for s in state["cuda"]]
    return out


def run_training(
    factory: RecipeFactory,
    family: str,
    model_config: dict[str, Any],
    data: dict[str, Any],
    settings: LoopSettings,
    out: Path | None,
    resume: Path | None = None,
    force: bool = False,
    device: str = "auto",
) -> TrainResult:
    """Train a family from scratch into `out`, or continue the run in `resume` exactly where it stopped."""
    if resume is not None:
        run, config = _resume_config(resume, settings.steps if settings.steps else None)
        config["train"]["epochs"] = settings.epochs or None
        if settings.kimg:
            config["train"]["kimg"] = settings.kimg  # a phased run is lengthened in images, not steps
        if config["family"] != family:
            raise FaceganError(
                f"{resume} is a {config['family']} run, not {family}.", f"Use `facegan train {config['family']}`."
            )
    else:
        if out is None:
            raise FaceganError("No output directory given.", "Pass --out RUN_DIR.")
        config = {"family": family, "model": model_config, "data": data, "train": asdict(settings)}
        run = RunDir(out)
    loop = _Loop(config, run, factory, device)
    try:
        if resume is None:
            loop.load_data()
            config["device"] = str(loop.device)
            config["world_size"] = loop.dist.world_size
            if loop.dist.is_main:
                loop.run = RunDir.create(out, config, force=force)  # type: ignore[arg-type]
            distributed.barrier(loop.dist)
            loop.run = RunDir(out)  # type: ignore[arg-type]
            if loop.phase is not None:
                loop.enter_phase(loop.phase)
            start, images = 0, 0
        else:
            loop.load_data()
            start, images = loop.restore()
            if loop.dist.is_main:
                run.update_config(config)
                run.set_status("running", step=start)
        return loop.train(start, images)
    finally:
        distributed.shutdown(loop.dist)
