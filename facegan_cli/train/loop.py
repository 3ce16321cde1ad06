"""The generic training loop every family shares.

It owns the run directory, the data (named streams, see train/streams.py), checkpoints (atomic, last K
kept), exact resume, SIGINT/SIGTERM handling, NaN/inf detection, metrics.jsonl, sample grids at fixed
latents, progress, TensorBoard and DDP. A family plugs in through a `Trainer` (train/trainer.py) and
never touches this file; nothing here names a family.

Two kinds of run share it. A fixed run reads its streams at one resolution with one batch size and
orders data by step. A phased run (a trainer whose `phase()` returns phases, as progressive growing does) changes dataset
level and batch size as it goes: the loop counts images seen, stops after `kimg` thousand of them,
orders data by images seen, keeps the current level on the device, tells the trainer when a phase
begins, and writes a sample grid at the end of every phase.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from facegan_cli.core import distributed
from facegan_cli.core.checkpoint import (
    Checkpoint,
    list_checkpoints,
    load_checkpoint,
    newest_header,
    newest_readable,
    save_checkpoint,
    state_path_of,
)
from facegan_cli.core.device import Precision, configure_backends, resolve_device
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.files import not_regular, special_kind
from facegan_cli.core.outputs import check_outside_inputs
from facegan_cli.core.progress import Progress, log
from facegan_cli.core.rundir import MetricsLog, RunDir
from facegan_cli.core.seeding import rng_state, seed_everything, set_rng_state
from facegan_cli.core.signals import StopFlag
from facegan_cli.data.grid import save_grid
from facegan_cli.metrics.in_training import DEFAULT_N, TrainingEvaluator, keep_best, prune_best
from facegan_cli.models import registry
from facegan_cli.train.streams import StreamSet, normalize_data_config
from facegan_cli.train.trainer import Phase, TrainContext, Trainer

TrainerFactory = Callable[[dict[str, Any]], Trainer]


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
    eval: str | None = None  # metrics computed while training, e.g. "fid,kid" (metrics/in_training.py)
    eval_every: int | None = None  # steps between evaluations (None: ckpt_every); the last step is one too
    eval_ref: str | None = None  # their reference: a dataset, an image folder or zip, or a stats .npz
    eval_n: int = DEFAULT_N  # samples per evaluation
    eval_weights: str | None = None  # FID Inception weights (None: the official file)


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


@dataclass
class ResumeChanges:
    """What `--resume` may change, each applied and recorded in config.json's "changes" (the CLI refuses
    every other option on resume: an exact resume continues the run with its own settings)."""

    train: dict[str, Any] = field(default_factory=dict)  # LoopSettings fields: length, logging, checkpoints
    model: dict[str, Any] = field(default_factory=dict)  # trainer settings, e.g. learning rates
    data: dict[str, str] = field(default_factory=dict)  # stream -> the same dataset at a new place
    # The folder that held every stream (--data ROOT of two-domain families), moved: each stream is read from
    # the same place relative to it as it was relative to the old one (e.g. ROOT/trainA).
    data_root: str | None = None
    data_changed_ok: bool = False  # continue although the data changed since the run started

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.train, **self.model}
        for stream, path in self.data.items():
            out["data" if stream == "images" else f"data.{stream}"] = path
        return out


def _moved_streams(data: dict[str, dict[str, Any]], root: str) -> dict[str, str]:
    """Each stream's path under the new `root`, at the place it had under the folder that held them all."""
    paths = {stream: os.path.abspath(record["path"]) for stream, record in data.items()}
    old_root = os.path.commonpath(list(paths.values())) if len(paths) > 1 else os.path.dirname(*paths.values())
    return {stream: os.path.join(os.path.abspath(root), os.path.relpath(path, old_root)) for stream, path in paths.items()}


def _resume_config(resume: Path, changes: ResumeChanges) -> tuple[RunDir, dict[str, Any]]:
    run = RunDir.open(resume, lock=False)  # locked by rank 0 once the process group is known
    for path, what in ((run.metrics_path, "The metrics log"), (run.path / "run.json", "The run status")):
        kind = special_kind(path)  # a FIFO here would block the resume when it is read or appended to
        if kind is not None:
            raise not_regular(path, what, kind)
    config = run.config()
    for key, value in changes.train.items():
        config["train"][key] = value
    if "steps" in changes.train and "epochs" not in changes.train:
        config["train"]["epochs"] = None  # --steps replaces an --epochs length
    config["model"].update(changes.model)
    config["data"] = normalize_data_config(config["data"])
    if changes.data_root is not None:
        changes.data.update(_moved_streams(config["data"], changes.data_root))
    for stream, path in changes.data.items():
        if stream not in config["data"]:
            raise FaceganError(f"{resume} has no data stream {stream!r}.", "Name the run's own data options.")
        config["data"][stream]["path"] = os.path.abspath(path)
    return run, config


class _Loop:
    def __init__(
        self, config: dict[str, Any], run: RunDir, factory: TrainerFactory, device_spec: str,
        changes: ResumeChanges | None = None,
    ) -> None:
        self.config = config
        self.run = run
        self.changes = changes or ResumeChanges()
        self.settings = LoopSettings(**config["train"])
        device = resolve_device(device_spec)
        self.dist = distributed.init_from_env(device)
        device = distributed.rank_device(self.dist, device)
        self.device = device
        configure_backends(device)
        self.precision = Precision(device, amp=self.settings.amp, channels_last=self.settings.channels_last)
        seed_everything(self.settings.seed + self.dist.rank)  # ranks draw different noise
        self.trainer = factory(config["model"])
        self.trainer.family = config["family"]  # the family this run trains (one trainer may serve several)
        self.trainer.setup(TrainContext(device, self.precision, self.dist.world_size, self.dist.rank))
        self.evaluator = self._evaluator() if self.settings.eval else None
        self.saved_step = 0  # the newest checkpoint's step (checkpoints/best stays consistent with it)
        self.data = StreamSet(
            self.trainer.streams(), config["data"], self.settings.seed, device, self.trainer.value_range,
            self.changes.data_changed_ok,
        )
        distributed.broadcast_modules(self.dist, self.trainer.modules)
        if self.settings.compile:
            self.trainer.wrap_networks(torch.compile)
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.trainer.wrap_networks(lambda m: DistributedDataParallel(m, device_ids=ids))
        self.phase: Phase | None = self.trainer.phase(0)
        if self.phase is not None:
            self._init_phased()
            return
        self.global_batch = self.trainer.batch_size
        if self.global_batch % self.dist.world_size:
            raise FaceganError(
                f"Batch size {self.global_batch} does not divide among {self.dist.world_size} processes.",
                "Pass a --batch that is a multiple of --nproc_per_node.",
            )

    # --- phased runs -----------------------------------------------------------------------------------

    def _init_phased(self) -> None:
        if not self.settings.kimg or self.settings.kimg <= 0:
            raise FaceganError(
                f"A {self.trainer.family} run is measured in images, and no positive length was given.",
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

    def _all_phases(self) -> list[Phase]:
        """Every phase of the trainer's plan, in order, up to its open-ended last one.

        All of them, not only those this run's --kimg reaches: the data must hold every level the plan
        reads (a run may be lengthened on resume), and the fingerprint is the largest level's.
        """
        phase = self.trainer.phase(0)
        assert phase is not None
        found = [phase]
        while phase.end is not None:
            phase = self.trainer.phase(phase.end)
            assert phase is not None and phase.index > found[-1].index, "phases must advance"
            found.append(phase)
        return found

    def enter_phase(self, phase: Phase) -> None:
        """Make `phase` current: its dataset level on the device, the trainer grown and re-wired for it."""
        self.phase = phase
        self.global_batch = phase.batch_size
        self.data.enter(phase.resolution)
        self.trainer.enter_phase(phase)
        log(f"phase {phase.index}: {phase.name}, batch {phase.batch_size}")

    # --- data -------------------------------------------------------------------------------------------

    def load_data(self) -> None:
        if self.phase is not None:
            self.data.load_levels([p.resolution for p in self.phases], max(p.batch_size for p in self.phases))
            return
        self.data.load(int(self.config["model"]["resolution"]), self.global_batch)
        if self.settings.epochs:
            self.settings.steps = max(1, round(self.settings.epochs * self.data.steps_per_epoch))
            self.config["train"]["steps"] = self.settings.steps
        self.trainer.set_epoch_length(self.data.steps_per_epoch)
        self.trainer.set_run_length(self.settings.steps)
        self.trainer.set_sample_inputs(self.data.first_rows(self.settings.n_samples))

    def restore(self) -> tuple[int, int]:
        """Load the newest checkpoint that can be read (a damaged newest one is skipped, with a warning);
        returns (step, images seen)."""
        newest = list_checkpoints(self.run.checkpoints)
        if "fine_tune" in self.config and newest and not state_path_of(newest[-1]).exists():
            return self._start_from_imported(newest[-1])
        ckpt, state = newest_readable(self.run.checkpoints, _resumable_state)
        images_seen = int(state.get("images_seen", ckpt.step * self.global_batch))
        if self.phase is not None:
            # Grow and re-wire first: entering a phase resets the optimisers, whose saved state follows.
            phase = self.trainer.phase(images_seen)
            assert phase is not None
            self.enter_phase(phase)
        for name, module in self.trainer.modules.items():
            try:
                module.load_state_dict(ckpt.modules[name])
            except (KeyError, RuntimeError) as exc:
                found = "no such weights" if isinstance(exc, KeyError) else str(exc).strip().splitlines()[0]
                raise FaceganError(
                    f"The {name} weights of {ckpt.path} do not fit the network {self.run.config_path} describes "
                    f"({found}).",
                    "config.json or the checkpoint was edited; restore the model section facegan wrote (each "
                    "checkpoint's metadata keeps it), or start a new run with --out.",
                ) from exc
        for name, opt in self.trainer.optimizers.items():
            # A learning rate changed on resume: the freshly built optimiser holds the new rate, the saved
            # state the old one; keep the moments and step counts, take the new rate.
            fresh_lr = [group["lr"] for group in opt.param_groups]
            opt.load_state_dict(state["optimizers"][name])
            if self.changes.model:
                for group, lr in zip(opt.param_groups, fresh_lr, strict=True):
                    group["lr"] = lr
        rngs = state["rng_by_rank"]
        if len(rngs) != self.dist.world_size:
            raise FaceganError(
                f"{self.run.path} was saved by {len(rngs)} process(es) and is resumed by {self.dist.world_size}; "
                "an exact resume needs the same number.",
                f"Resume with --nproc_per_node={len(rngs)}.",
            )
        set_rng_state(rngs[self.dist.rank])
        # runs saved before the training "recipe" was renamed "trainer" keep their state under "recipe"
        self.trainer.load_extra_state(state.get("trainer", state.get("recipe", {})))
        self.saved_step = ckpt.step
        if self.dist.is_main:
            self.run.truncate_metrics(ckpt.step)
            if self.evaluator is not None:  # the best so far is that of the evaluations kept
                self.evaluator.restore(self.run.metric_records())
                prune_best(self.run.best, ckpt.step, resumed=True)
        log(f"resumed {self.run.path} at step {ckpt.step}")
        return ckpt.step, images_seen

    def _start_from_imported(self, weights: Path) -> tuple[int, int]:
        """Fine-tuning an imported run: its weights (networks the files did not have keep their fresh
        initialisation, recorded), fresh optimisers, the RNG as seeded; returns (its step, 0 images seen)."""
        ckpt = load_checkpoint(weights)
        fresh = []
        for name, module in self.trainer.modules.items():
            if name not in ckpt.modules:
                fresh.append(name)
                continue
            try:
                module.load_state_dict(ckpt.modules[name])
            except RuntimeError as exc:
                raise FaceganError(
                    f"The imported {name} weights of {ckpt.path} do not fit the network this fine-tuning configures "
                    f"({' '.join(line.strip() for line in str(exc).strip().splitlines()[:2])}).",
                    "Leave the architecture options (widths, blocks, --attrs, --resolution where it shapes a layer) "
                    "as imported.",
                ) from exc
        self.config["fine_tune"].update(step=ckpt.step, imported_networks=sorted(set(self.trainer.modules) - set(fresh)),
                                        initialised_networks=fresh)
        self.saved_step = ckpt.step
        log(f"fine-tuning the imported {self.run.path} from step {ckpt.step} (fresh optimisers"
            + (f"; {', '.join(fresh)} freshly initialised)" if fresh else ")"))
        return ckpt.step, 0

    def save(self, step: int, images_seen: int) -> Path | None:
        distributed.sync_buffers(self.dist, self.trainer.modules)
        bad = _nonfinite_tensors(self.trainer)
        if distributed.broadcast_flag(self.dist, bool(bad)):
            self._diverged(step, f"weights or buffers became NaN or infinite ({', '.join(bad[:3]) or 'on another rank'})")
        rngs = distributed.gather_objects(self.dist, rng_state())
        if not self.dist.is_main:
            return None
        state = {
            "step": step,
            "images_seen": images_seen,
            "optimizers": {n: o.state_dict() for n, o in self.trainer.optimizers.items()},
            "rng_by_rank": rngs,
            "trainer": self.trainer.extra_state(),
        }
        modules = {n: m.state_dict() for n, m in self.trainer.modules.items()}
        meta = self.trainer.meta()
        imported = self.config.get("imported_from")
        if isinstance(imported, dict):  # a fine-tuned import keeps its origin and how its inputs are fitted
            meta["imported_from"] = {"project": imported.get("project"), "source": imported.get("source")}
            if imported.get("input_fit") is not None:
                meta["input_fit"] = imported["input_fit"]
        path = save_checkpoint(self.run.checkpoints, step, modules, meta, state, keep=self.settings.keep)
        self.saved_step = step
        if self.evaluator is not None:
            prune_best(self.run.best, step)
        self.run.record(path, state_path_of(path))
        return path

    # --- metrics while training (--eval) ---------------------------------------------------------------

    def _evaluator(self) -> TrainingEvaluator:
        if self.trainer.z_dim <= 0:
            raise FaceganError(
                f"--eval scores samples drawn from latents, and the {self.trainer.family} family draws none.",
                "Leave --eval out; evaluate this family with its own commands (see `facegan metrics --help`).",
            )
        s = self.settings
        return TrainingEvaluator(s.eval or "", s.eval_ref, s.eval_n, s.seed, self.device, self.dist, s.eval_weights)

    def evaluate(self, step: int, images: int, metrics: MetricsLog | None, board: Any) -> None:
        """The --eval metrics of the generator now; every rank samples and featurises its share, rank 0
        writes the line and keeps the generator in checkpoints/best when it is the best so far."""
        assert self.evaluator is not None
        distributed.sync_buffers(self.dist, self.trainer.modules)  # every rank samples rank 0's generator
        resolution = self.phase.resolution if self.phase is not None else int(self.config["model"]["resolution"])
        record, best = self.evaluator.evaluate(
            self.trainer.sample, self.trainer.z_dim, self.trainer.value_range, resolution, step, images / 1000
        )
        if metrics is None:
            return
        metrics.write(record)
        if board is not None:
            for key in self.evaluator.keys:
                board.add_scalar(f"eval/{key}", record[key], step)
        log(f"step {step}: " + ", ".join(f"{k} {record[k]:.4g}" for k in self.evaluator.keys)
            + (" (best so far)" if best else ""))
        if best:
            key = self.trainer.generator_key
            generator = {key: self.trainer.modules[key].state_dict()}  # what sampling and metrics load
            self.run.record(keep_best(self.run.best, step, generator, self.trainer.meta(), self.saved_step))

    def grid(self, step: int, z: torch.Tensor, name: str | None = None) -> Path | None:
        if not self.dist.is_main:
            return None
        images = self.trainer.sample(z)
        path = self.run.samples / (name or f"step-{step:09d}.png")
        written = save_grid(images, path, self.trainer.value_range, nrow=self.trainer.grid_columns)
        self.run.record(written)
        return written

    def _next_phase(self, step: int, images_seen: int, z: torch.Tensor) -> None:
        """At a phase boundary: a sample grid of the phase that ended, then enter the next one.

        This happens before the step's checkpoint, so a checkpoint written at a boundary already holds
        the new phase's (reset) optimisers, as a resumed run rebuilds them.
        """
        assert self.phase is not None
        upcoming = self.trainer.phase(images_seen)
        assert upcoming is not None
        if upcoming.index == self.phase.index:
            return
        ended = self.phase
        self.grid(step, z, name=f"phase-{ended.index:02d}-{ended.name}.png")
        self.enter_phase(upcoming)

    def train(self, start: int, images_start: int) -> TrainResult:
        s = self.settings
        phased = self.phase is not None
        fixed_z = torch.randn(s.n_samples, self.trainer.z_dim, generator=torch.Generator().manual_seed(s.seed))
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
        with StopFlag() as stop, Progress(total, f"train {self.trainer.family}", unit, start=done) as bar:
            while (images < self.total_images) if phased else (step < s.steps):
                self.trainer.begin_step(images)
                trained = self.phase
                batch = self.global_batch
                losses = self.trainer.train_step(
                    self.data.batch(step, images, batch, s.mirror, self.dist.rank, world), step
                )
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
                        epoch = step / self.data.steps_per_epoch
                        where: dict[str, Any] = {}
                    else:
                        epoch = images / self.data.primary.count
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
                if self.evaluator is not None and (step % (s.eval_every or s.ckpt_every) == 0 or finished):
                    self.evaluate(step, images, metrics, board)  # before the step's checkpoint: see prune_best
                if at_ckpt or stop_now:
                    last_ckpt = self.save(step, images) or last_ckpt
                bar.advance(batch if phased else 1)
                if stop_now:
                    status = "stopped"
                    log(f"{stop.signal_name or 'stop'} received: saved step {step}; continue with "
                        f"`facegan train {self.trainer.family} --resume {self.run.path}`")
                    break
        if metrics is not None:
            metrics.close()
        if board is not None:
            board.close()
        distributed.sync_buffers(self.dist, self.trainer.modules)
        checksums = distributed.gather_objects(self.dist, _weights_checksum(self.trainer))
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
        if bad:
            values = ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
            self._diverged(step, f"a loss became NaN or infinite (last values: {values})")

    def _diverged(self, step: int, what: str) -> None:
        """Stop a diverged run: run.json says failed, and the message says which checkpoint is left."""
        if self.dist.is_main:
            self.run.set_status("failed", step=step, reason=f"diverged: {what}")
        kept = list_checkpoints(self.run.checkpoints)
        if kept:
            where = (f"The last good checkpoint, {kept[-1].name}, was kept in {self.run.checkpoints}.")
            fix = (f"Lower the learning rate and resume from it: `facegan train {self.trainer.family} --resume "
                   f"{self.run.path} --lr ...`; or change the seed and start over.")
        else:
            where = "No checkpoint had been written yet, so nothing of this run can be resumed."
            fix = "Lower the learning rate or change the seed and start a new run (--force replaces this one)."
        raise FaceganError(
            f"Training of {self.run.path} diverged at or before step {step}: {what}. {where}", fix
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

        board = SummaryWriter(str(self.run.tensorboard))
        self.run.record(self.run.tensorboard)  # its event files are recorded as logs with every record
        return board


def _weights_checksum(trainer: Trainer) -> str:
    """A hash of every module's parameters and buffers, to compare ranks."""
    digest = hashlib.sha256()
    for name, module in sorted(trainer.modules.items()):
        for key, tensor in sorted(module.state_dict().items()):
            digest.update(f"{name}.{key}".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _resumable_state(ckpt: Checkpoint) -> dict[str, Any]:
    """The training state of `ckpt`, checked to hold what a resume reads (raises FaceganError otherwise)."""
    state = ckpt.load_state()
    missing = [key for key in ("optimizers", "rng_by_rank") if not isinstance(state.get(key), dict | list)]
    if missing:
        raise FaceganError(f"The training state of {ckpt.path.name} lacks {', '.join(missing)}.", "")
    return state


def _nonfinite_tensors(trainer: Trainer) -> list[str]:
    """Names of parameters and buffers holding NaN or inf (a diverged run can poison BatchNorm statistics
    while its losses still look finite)."""
    bad = []
    for name, module in trainer.modules.items():
        for key, tensor in module.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                bad.append(f"{name}.{key}")
    return bad


def run_training(
    factory: TrainerFactory,
    family: str,
    model_config: dict[str, Any],
    data: dict[str, Any],
    settings: LoopSettings,
    out: Path | None,
    resume: Path | None = None,
    force: bool = False,
    device: str = "auto",
    changes: ResumeChanges | None = None,
    finetune: bool = False,
) -> TrainResult:
    """Train a family from scratch into `out`, or continue the run in `resume` exactly where it stopped
    (applying and recording `changes`: a longer run, new learning rates, the dataset at a new place).
    finetune: `resume` is an imported run (weights, no training state): train it on `data` with `model_config`
    and `settings`, the optimisers fresh, recorded in config.json's "fine_tune"."""
    changes = changes or ResumeChanges()
    if resume is not None:
        run, config = _resume_config(resume, changes)
        if finetune:
            config.update(model=model_config, train=asdict(settings), fine_tune={
                "time": time.time(), "optimizer_state": "fresh: the imported files hold weights only",
                "data": "the data given when fine-tuning started"})
            config["data"] = {name: {**cfg, "path": os.path.abspath(cfg["path"])}
                              for name, cfg in normalize_data_config(data).items()}
        if config["family"] != family:
            raise FaceganError(
                f"{resume} is a {config['family']} run, not {family}.", f"Use `facegan train {config['family']}`."
            )
        entry = registry.families().get(family)
        if entry is not None:  # checked against the family's settings: an unknown or missing key names the file
            config["model"] = entry.record(config["model"], str(run.config_path))
    else:
        if out is None:
            raise FaceganError("No output directory given.", "Pass --out RUN_DIR.")
        # Paths absolute: the run must find its data from anywhere (and resume where it was moved to).
        data = {name: {**cfg, "path": os.path.abspath(cfg["path"])} for name, cfg in normalize_data_config(data).items()}
        for name in ("eval_ref", "eval_weights"):
            if getattr(settings, name) is not None:
                setattr(settings, name, os.path.abspath(getattr(settings, name)))
        check_outside_inputs(
            out, [("--data" if name == "images" else f"the {name} data", cfg["path"]) for name, cfg in data.items()]
        )
        RunDir.check_new(out, force)  # before the data is loaded: a refused --out fails at once
        config = {"family": family, "model": model_config, "data": data, "train": asdict(settings)}
        run = RunDir(out)
    if resume is not None:
        _check_model_size(config, run)
        try:
            loop = _Loop(config, run, factory, device, changes)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            # The settings came from config.json, which a user may have edited: say so, not "bug".
            raise FaceganError(
                f"The run configuration {run.config_path} cannot be used to continue the run "
                f"({type(exc).__name__}: {exc}).",
                "Restore the settings facegan wrote there (each checkpoint's metadata keeps the model section), "
                "or start a new run with --out.",
            ) from exc
    else:
        loop = _Loop(config, run, factory, device, changes)
    clean = True
    try:
        if resume is None:
            loop.load_data()
            config["device"] = str(loop.device)
            config["world_size"] = loop.dist.world_size
            if loop.dist.is_main:
                run = loop.run = RunDir.create(out, config, force=force)  # type: ignore[arg-type]
            distributed.barrier(loop.dist)
            if not loop.dist.is_main:
                loop.run = RunDir(out)  # type: ignore[arg-type]
            if loop.phase is not None:
                loop.enter_phase(loop.phase)
            start, images = 0, 0
        else:
            if loop.dist.is_main:
                before = run.effective_status()
                run = loop.run = RunDir.open(resume)  # locked: a second resume of this run is refused
                if before.get("stale"):
                    log(f"{resume} was left 'running' by process {before.get('pid', '?')}, which no longer exists; "
                        "resuming from its newest complete checkpoint")
            loop.load_data()
            start, images = loop.restore()
            _check_length(loop, changes, start, images)
            _record_changes(config, changes, loop.data.changed, start)
            if loop.dist.is_main:
                run.update_config(config)
                run.set_status("running", step=start)
        return loop.train(start, images)
    except FaceganError:
        clean = False
        raise
    except BaseException as exc:
        clean = False
        # Whatever stopped the run (a full disk, a bug, a second Ctrl-C), run.json must not say "running".
        if loop.dist.is_main and loop.run.lock is not None:
            _mark_failed(loop.run, exc)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise FaceganError(
                f"The disk holding {loop.run.path} is full ({exc.strerror}: {exc.filename or ''}); training "
                "stopped. Its newest complete checkpoint was kept (a half-written one never looks complete).",
                f"Free some space, then continue with `facegan train {family} --resume {loop.run.path}`.",
            ) from exc
        raise
    finally:
        loop.run.release()
        distributed.shutdown(loop.dist, clean)


# Networks up to this many parameters (1 GiB of float32) are built from a configuration even when its
# newest checkpoint holds fewer values (a progressive run's checkpoint holds its grown levels only).
MODEL_VALUES_FLOOR = 1 << 28


def _check_model_size(config: dict[str, Any], run: RunDir) -> None:
    """Refuse, before anything is allocated, a config.json model section whose networks could not be those
    of the run's checkpoints: each network is built on the meta device (no memory) and may not have more
    parameters than the newest checkpoint stores values (or MODEL_VALUES_FLOOR). An edited `ngf=100000`
    would otherwise ask for hundreds of GB before the weights were ever compared."""
    from facegan_cli.models import registry  # train -> models is the arrow's direction

    header = newest_header(run.checkpoints)
    family = registry.families().get(config["family"])
    if header is None or family is None:
        return  # no checkpoint to compare with: the resume stops with its own message
    weights, stored, meta = header
    try:
        with torch.device("meta"):
            networks = family.build_networks(config["model"])
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise FaceganError(
            f"The model section of {run.config_path} cannot be built ({type(exc).__name__}: {exc}).",
            "Restore the settings facegan wrote there (the checkpoints' metadata keeps them), or start a new run.",
        ) from exc
    except Exception:
        return  # a family whose builder cannot run on the meta device: the weights are compared at load
    limit = max(stored, MODEL_VALUES_FLOOR)
    for name, network in networks.items():
        count = sum(t.numel() for t in (*network.parameters(), *network.buffers()))
        if count > limit:
            saved = meta.get("model") if isinstance(meta.get("model"), dict) else {}
            changed = [f"{k}={config['model'][k]!r} (checkpoint: {saved[k]!r})" for k in config["model"]
                       if k in saved and saved[k] != config["model"][k]]
            raise FaceganError(
                f"The model section of {run.config_path} describes a {name} of {count:,} parameters, more than the "
                f"{stored:,} values the run's newest checkpoint {weights.name} holds"
                + (f"; it differs from the checkpoint in {', '.join(changed[:4])}" if changed else "")
                + ". The file was edited, and the network was not built.",
                "Restore those settings to the checkpoint's values (or the file facegan wrote), or start a new run "
                "with --out.",
            )


def _check_length(loop: _Loop, changes: ResumeChanges, start: int, images: int) -> None:
    """A resume that asks for a run shorter than the run already is: a usage error (exit 2), like the
    other options a resume cannot honour."""
    if loop.phase is None and "steps" in changes.train and loop.settings.steps < start:
        raise UsageProblem(
            f"--steps {loop.settings.steps} is shorter than the run: {loop.run.path} is already at step {start}, "
            "and a resume only continues a run.",
            f"Pass --steps {start} or more (or leave --steps out), or start a new run with --out.",
        )
    if loop.phase is not None and "kimg" in changes.train and loop.total_images < images:
        raise UsageProblem(
            f"--kimg {loop.settings.kimg:g} is shorter than the run: {loop.run.path} has already seen "
            f"{images / 1000:g} kimg, and a resume only continues a run.",
            f"Pass --kimg {images / 1000:g} or more (or leave --kimg out), or start a new run with --out.",
        )


def _record_changes(
    config: dict[str, Any], changes: ResumeChanges, data_changed: dict[str, Any], step: int
) -> None:
    """Append what this resume changed to config["changes"], so config.json says what ran and from when."""
    applied = changes.summary()
    if data_changed:
        applied["data_changed"] = data_changed if set(data_changed) != {"images"} else data_changed["images"]
    if applied:
        config.setdefault("changes", []).append({"step": step, "time": time.time(), "set": applied})
        log(f"resumed with changes at step {step}: " + ", ".join(f"{k}={v}" for k, v in changes.summary().items()))


def _mark_failed(run: RunDir, exc: BaseException) -> None:
    # The step a resume would continue from (the newest complete checkpoint's; 0 when none was written),
    # never null: run.json of a fresh run says no step until then.
    kept = list_checkpoints(run.checkpoints)
    step = status_step if isinstance(status_step := run.status().get("step"), int) else 0
    if kept:
        step = max(step, int(kept[-1].name[5:14]))
    if isinstance(exc, KeyboardInterrupt):
        run.set_status("stopped", step=step, reason="interrupted (second Ctrl-C)")
        return
    try:
        run.set_status("failed", step=step, reason=f"{type(exc).__name__}: {exc}")
    except OSError:
        pass  # the disk may be full: the lock's release still tells that the run is no longer running
