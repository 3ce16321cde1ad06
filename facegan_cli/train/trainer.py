"""What a model family gives the generic training loop: its data streams, networks, optimisers and step.

A trainer declares the data it trains on as NAMED STREAMS (`streams()`): an `Images` stream per image
source it reads ({"images"} for DCGAN, {"A", "B"} for unpaired translation), and `Labels` streams that
ride along an image stream (StarGAN's {"images", "labels"}: the label columns of the same rows, in the
same order). The loop builds every stream from the run's data (device-resident, deterministically and
independently ordered, sharded under DDP, fingerprinted into config.json) and calls
`train_step(batch, step)` with `batch[name]` for every stream. Sample grids that translate real images
rather than decode latents receive the first rows of every stream once, as a dict too.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from facegan_cli.core.device import Precision


@dataclass(frozen=True)
class Images:
    """An image stream: the run's data source of the same name (config["data"][name]).

    `resolution` None means the model configuration's "resolution" (phased runs: the phase's).
    `order_of` names another image stream whose order (rows and flips) this one follows, for paired
    data (row i of both is one pair; both sources must hold the same number of images).
    """

    resolution: int | None = None
    order_of: str | None = None


@dataclass(frozen=True)
class Labels:
    """Label columns (by name, in this order) of the rows of the image stream `of`: float B x len(columns)."""

    of: str
    columns: tuple[str, ...]


Stream = Images | Labels


@dataclass(frozen=True)
class Phase:
    """One stretch of a phased run (ProGAN's "4x4 stable", "8x8 fade-in", ...): what the loop must feed.

    The loop reads the dataset level `resolution`, draws `batch_size` images per step (the global batch,
    split among DDP ranks), and moves on when the images seen reach `end` (None: the last phase).
    """

    index: int
    resolution: int
    batch_size: int
    start: int  # images seen when the phase begins
    end: int | None
    name: str


@dataclass
class TrainContext:
    """Everything a trainer may need from the loop when it builds itself."""

    device: torch.device
    precision: Precision
    world_size: int = 1
    rank: int = 0


class Trainer(ABC):
    """Base class of a family's training trainer.

    The loop owns data, checkpoints, resume, logging, signals and DDP; a trainer owns networks (`modules`,
    all saved), optimisers and one update step. `train_step` returns losses as tensors so the loop decides
    when to synchronise with the device.
    """

    family: str = ""
    generator_key: str = "G"
    grid_columns: int | None = None  # images per row of the loop's sample grids (None: square-ish)

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.distributed = False

    def setup(self, ctx: TrainContext) -> None:
        """Called by the loop: remember the context, then `build`."""
        self.device = ctx.device
        self.precision = ctx.precision
        self.distributed = ctx.world_size > 1
        self.build(ctx)

    @abstractmethod
    def build(self, ctx: TrainContext) -> None:
        """Create `modules` and `optimizers` on ctx.device."""

    def streams(self) -> dict[str, Stream]:
        """The named data streams `train_step` receives (default: one image stream, "images")."""
        return {"images": Images()}

    @property
    def value_range(self) -> tuple[float, float]:
        return (0.0, 1.0) if self.config.get("output") == "sigmoid" else (-1.0, 1.0)

    @property
    def z_dim(self) -> int:
        return int(self.config.get("z_dim", 0))

    @property
    def batch_size(self) -> int:
        return int(self.config["batch"])

    @abstractmethod
    def wrap_networks(self, wrap: Any) -> None:
        """Replace the networks the step calls by wrapped ones (DDP, torch.compile) (`wrap(module) -> module`)."""

    @abstractmethod
    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """One update of every network from this rank's share of the batch of every stream; returns the
        losses to log, as device tensors."""

    def generator(self) -> nn.Module:
        return self.modules[self.generator_key]

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Images for a sample grid, without touching training state (eval mode, then back)."""
        net = self.generator()
        was_training = net.training
        net.eval()
        try:
            return net(z).float()
        finally:
            net.train(was_training)

    def meta(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild the trained model on its own."""
        return {"family": self.family, "model": self.config, "generator": self.generator_key}

    def phase(self, images_seen: int) -> Phase | None:
        """The phase a run is in after `images_seen` training images, for families whose data changes
        while they train (resolution, batch size). None (the default) means one fixed phase: the data at
        config["resolution"], `batch_size` images per step, ordered by step."""
        return None

    def enter_phase(self, phase: Phase) -> None:
        """Called when a phased run starts or resumes inside `phase`, and when the next phase begins
        (grow the networks, reset optimisers, re-wrap for DDP/compile). Must draw no random numbers, so
        that a run resumed at a phase boundary continues exactly."""
        return None

    def begin_step(self, images_seen: int) -> None:
        """Called before every training step with the images seen so far (per-image schedules: ProGAN's alpha)."""
        return None

    def set_run_length(self, steps: int) -> None:
        """Called with the run's total steps once the loop knows them (after --epochs is resolved, and on
        every resume), before the first step: for schedules tied to the end of training (lr decay)."""
        return None

    def set_epoch_length(self, steps: int) -> None:
        """Called with the steps of one epoch (one pass over the largest stream) once the data is loaded, on
        every start and resume, before the first step: for schedules counted in epochs."""
        return None

    def set_sample_inputs(self, batch: dict[str, torch.Tensor]) -> None:
        """The first rows of every stream (unflipped), handed over once before training, for families whose
        sample grids translate real images rather than decode latents."""
        return None

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None

    def frozen_in_g_step(self, module: nn.Module) -> contextlib.AbstractContextManager:
        """`module` (a D) without weight gradients during G's update: G's step needs only the gradient
        through D, and D's own would be discarded work. Not under DDP, which expects a gradient for every
        parameter it wraps."""
        return contextlib.nullcontext() if self.distributed else frozen(module)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No weight gradients for `module` inside the block."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
