"""The translation toolkit the image-translation families share (cycle-gan, cycle-gan-vae, pix2pix, the
feature translator): junyanz's history buffer of fakes, his linear learning-rate rule by epoch, the
resize-and-random-crop of his `resize_and_crop` preprocessing on the device (one draw shared by the images
of a pair), the CycleGAN forward pass, and the trainer base of the two-way cycle families.

The GAN objectives (lsgan, vanilla, wgangp) are in train/gan_objectives.py with the other families' losses;
the paired data (which folders pair up, junyanz's aligned layout) in data/pairs.py.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.data.sources import open_image_set
from facegan_cli.train.trainer import Trainer

SAMPLE_ROWS = 8  # rows of a translating sample grid


# --- the history buffer ----------------------------------------------------------------------------------


class ImagePool:
    """J's ImagePool(size) (util/image_pool.py) on the device: a preallocated buffer, Python `random` for the
    choices (as J, and restored with the run's other generators on resume), and its content in checkpoints.
    Size 0 returns every query as it is (J's pix2pix default)."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.count = 0
        self.images: torch.Tensor | None = None

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach().float():
            if self.images is None:
                self.images = torch.empty((self.size, *image.shape), dtype=torch.float32, device=image.device)
            if self.count < self.size:
                self.images[self.count] = image
                self.count += 1
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                slot = random.randint(0, self.size - 1)
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> dict[str, Any]:
        stored = self.images[: self.count].cpu() if self.images is not None and self.count else torch.zeros(0)
        return {"size": self.size, "count": self.count, "images": stored}

    def load(self, state: dict[str, Any], device: torch.device) -> None:
        self.count = int(state["count"])
        stored = state["images"]
        if self.count:
            self.images = torch.empty((self.size, *stored.shape[1:]), dtype=torch.float32, device=device)
            self.images[: self.count] = stored.to(device)


# --- schedules and data ----------------------------------------------------------------------------------


def lr_factor(step: int, epoch_steps: int, n_epochs: int, n_epochs_decay: int) -> float:
    """J's 'linear' policy for the update after `step` updates: 1 for the first n_epochs epochs, then
    falling by 1 / (n_epochs_decay + 1) per epoch (epoch 0-based, J's epoch_count 1)."""
    epoch = step // max(1, epoch_steps)
    return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)


def resize_and_crop(images: Sequence[torch.Tensor], load: int, crop: int, random_crop: bool = True
                    ) -> list[torch.Tensor]:
    """J's Resize(load_size, bicubic) then RandomCrop(crop) (CenterCrop with random_crop False), on the
    device, of every tensor of `images` (N x C x H x W each) with ONE draw of offsets: the A and B images of a
    pair stay aligned (J's aligned dataset's get_params). Offsets come from the CPU generator (no device sync;
    saved in every checkpoint, so a resumed run crops as the straight one). Flips are the loop's, which paired
    streams (Images(order_of=...)) share."""
    resized = [x if x.shape[-1] == load else
               F.interpolate(x, size=(load, load), mode="bicubic", align_corners=False).clamp_(-1.0, 1.0)
               for x in images]
    if load == crop:
        return resized
    n = resized[0].shape[0]
    if random_crop:
        offsets = torch.randint(0, load - crop + 1, (n, 2)).tolist()
    else:
        offsets = [[(load - crop) // 2] * 2] * n
    return [torch.stack([x[i, :, y : y + crop, x0 : x0 + crop] for i, (y, x0) in enumerate(offsets)])
            for x in resized]


def crop_sizes(config: dict[str, Any], values: dict[str, Any], preset: dict[str, Any]) -> tuple[int, int]:
    """(crop, load) of a run cropping J's way: a crop size other than the preset's, without --load-size, keeps
    the preset's jitter ratio (J: 286/256, e.g. 143 for 128 crops); a load size below the crop is refused."""
    if config["resolution"] != preset["resolution"] and values.get("load_size") is None:
        config["load_size"] = round(int(config["resolution"]) * preset["load_size"] / preset["resolution"])
    crop, load = int(config["resolution"]), int(config["load_size"])
    if load < crop:
        raise UsageProblem(f"--load-size {load} is smaller than the {crop}x{crop} crops.",
                           f"Pass --load-size {crop} or more (junyanz: 286 for 256 crops).")
    return crop, load


def held_resolution(data: dict[str, dict[str, Any]], crop: int, load: int, preset: str,
                    fix: Callable[[int], str]) -> int:
    """The size the streams' data stays at on the device: the load size, or smaller when the images are (then
    upsampled per batch, as J's Resize does), never below the crop (a FaceganError naming the stream, with
    `fix(its size)`)."""
    sizes = {stream: open_image_set(cfg["path"], split=cfg["split"], half=cfg.get("half")).resolution
             for stream, cfg in data.items()}
    small = {s: r for s, r in sizes.items() if r < crop}
    if small:
        stream, res = next(iter(small.items()))
        raise FaceganError(
            f"The {stream} data at {data[stream]['path']} holds {res}x{res} images, smaller than the {crop}x{crop} "
            f"crops of this run (preset {preset}).", fix(res))
    return min(load, *sizes.values())


# --- the two-way cycle ------------------------------------------------------------------------------------


def cycle(
    G_A: nn.Module, G_B: nn.Module, real_A: torch.Tensor, real_B: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B = G_A(fake_A), in J's order (the order
    of the calls is the order of the random numbers a network may draw)."""
    fake_B = G_A(real_A)
    rec_A = G_B(fake_B)
    fake_A = G_B(real_B)
    return fake_B, rec_A, fake_A, G_A(fake_A)


class EpochScheduled(Trainer):
    """A translation trainer on J's linear rule by epoch (an epoch: one pass over the larger stream), with
    its optimisers' rate set from the step alone, so a resumed run has the rate the straight run had."""

    epoch_steps = 1

    @property
    def z_dim(self) -> int:
        return 0  # a translation model: the loop's latents are empty; grids translate fixed real images

    def set_epoch_length(self, steps: int) -> None:
        self.epoch_steps = int(steps)

    def lr_at(self, step: int) -> float:
        cfg = self.config
        return float(cfg["lr"]) * lr_factor(step, self.epoch_steps, int(cfg["n_epochs"]), int(cfg["n_epochs_decay"]))

    def _set_lr(self, step: int) -> None:
        lr = self.lr_at(step)
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "value_range": [-1.0, 1.0]}


class CycleTrainer(EpochScheduled):
    """junyanz's CycleGAN training, on images (cycle-gan) or on codes (cycle-gan-vae): G_A, G_B, D_A, D_B
    with one Adam per pair at J's linear decay by epoch, a history pool of fakes per domain (saved with
    the checkpoint), and fixed sample inputs of both domains."""

    generator_key = "G_A"
    grid_columns = 6

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.pool_A = ImagePool(int(config["pool_size"]))  # fakes of domain A (G_B's), for D_B
        self.pool_B = ImagePool(int(config["pool_size"]))  # fakes of domain B (G_A's), for D_A
        self.epoch_steps = 1
        self._sample: tuple[torch.Tensor, torch.Tensor] | None = None

    def set_networks(self, nets: dict[str, nn.Module]) -> None:
        """The four trained networks (what the step calls; DDP / compile may wrap them) and their optimisers."""
        self.nets: dict[str, nn.Module] = dict(nets)
        betas, lr = tuple(self.config["betas"]), float(self.config["lr"])
        self.optimizers = {
            "G": torch.optim.Adam(itertools.chain(nets["G_A"].parameters(), nets["G_B"].parameters()), lr=lr,
                                  betas=betas),
            "D": torch.optim.Adam(itertools.chain(nets["D_A"].parameters(), nets["D_B"].parameters()), lr=lr,
                                  betas=betas),
        }

    def wrap_networks(self, wrap: Any) -> None:
        self.nets = {name: wrap(net) for name, net in self.nets.items()}

    def extra_state(self) -> dict[str, Any]:
        # The history buffers: an exact resume continues with the fakes the straight run would hold.
        return {"pool_A": self.pool_A.state(), "pool_B": self.pool_B.state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for name, pool in (("pool_A", self.pool_A), ("pool_B", self.pool_B)):
            if name in state:
                pool.load(state[name], self.device)

    def sample_input(self, images: torch.Tensor) -> torch.Tensor:
        """A sample grid's input from the images of a stream (default: as they are)."""
        return images

    def set_sample_inputs(self, batch: dict[str, torch.Tensor]) -> None:
        k = min(SAMPLE_ROWS, batch["A"].shape[0], batch["B"].shape[0])
        self._sample = (self.sample_input(batch["A"][:k]).clone(), self.sample_input(batch["B"][:k]).clone())

    def sample_pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._sample is None:
            raise FaceganError("No sample images were handed to the trainer.", "This is a facegan bug.")
        return self._sample
