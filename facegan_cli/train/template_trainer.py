"""The template family's training: one trainer and its `facegan train template` command (copy with
models/template.py; see that module's docstring for the steps).

The generic loop (train/loop.py) owns the data, checkpoints, exact resume, Ctrl-C, the NaN stop, logging,
sample grids, DDP and --eval; a trainer owns only its networks, optimisers and one update step. This one is
the plain non-saturating GAN: D on a real and a fake batch, then G through D.
"""

from __future__ import annotations

from typing import Any

import torch

from facegan_cli.models.registry import build_discriminator, build_generator, get_family, resolve_config
from facegan_cli.train.gan_objectives import bce_fake, bce_real
from facegan_cli.train.spec import DATA_OPTION, RESUMABLE_LR, SPLIT_OPTION, TrainPlan, TrainSpec
from facegan_cli.train.trainer import TrainContext, Trainer


class TemplateTrainer(Trainer):
    family = "template"
    generator_key = "G"  # the network `facegan sample` draws from

    def build(self, ctx: TrainContext) -> None:
        """Networks and optimisers on the run's device. Everything in `modules` is saved in checkpoints and
        restored on resume; everything in `optimizers` too (with their state)."""
        cfg = self.config
        G = ctx.precision.module(build_generator(self.family, cfg))
        D = ctx.precision.module(build_discriminator(self.family, cfg))
        self.modules = {"G": G, "D": D}
        self.G, self.D = G, D  # what the step calls: wrap_networks may replace them (DDP, torch.compile)
        betas = tuple(cfg["betas"])
        self.optimizers = {
            "G": torch.optim.Adam(G.parameters(), lr=cfg["lr"], betas=betas),
            "D": torch.optim.Adam(D.parameters(), lr=cfg["lr"], betas=betas),
        }

    def wrap_networks(self, wrap: Any) -> None:
        self.G, self.D = wrap(self.G), wrap(self.D)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """One update from batch["images"] (the stream `streams()` declares: one image stream by default).
        Draw random numbers only from torch's generators on self.device: the loop saves and restores
        them, which is what makes --resume bit-exact. Return losses as tensors (no .item(): the loop
        synchronises only at logging steps)."""
        real = self.precision.tensor(batch["images"])
        z = torch.randn(real.shape[0], self.z_dim, device=self.device)

        self.optimizers["D"].zero_grad(set_to_none=True)
        with self.precision.autocast():
            fake = self.G(z)
            loss_d = bce_real(self.D(real).float()) + bce_fake(self.D(fake.detach()).float())
        loss_d.backward()
        self.optimizers["D"].step()

        self.optimizers["G"].zero_grad(set_to_none=True)
        with self.frozen_in_g_step(self.modules["D"]), self.precision.autocast():
            loss_g = bce_real(self.D(fake).float())
            loss_g.backward()
        self.optimizers["G"].step()
        return {"loss_D": loss_d.detach(), "loss_G": loss_g.detach()}


def configure(values: dict[str, Any]) -> TrainPlan:
    """`facegan train template` option values -> the model configuration (preset, then the options given),
    the data of each stream, and loop settings the family decides."""
    # The options of TemplateConfig's fields that were given replace the preset's values, by field name.
    config = resolve_config("template", values.get("preset"), get_family("template").config.given(values))
    return TrainPlan(config, {"images": {"path": values["data"], "split": values.get("split", "all")}})


TRAINING = TrainSpec(
    summary="Train the template family: the minimal example to copy when adding a family (a small GAN).",
    example="facegan train template --data data/celeba64 --out runs/template --resolution 64 --steps 2000",
    options=(DATA_OPTION, SPLIT_OPTION),  # and the options of models.template.TemplateConfig's fields
    configure=configure,
    trainer=TemplateTrainer,
    loop_defaults={"steps": 1000},
    resumable=RESUMABLE_LR,  # what --resume may change: the learning rate, from then on
    # The family contract's run (tests/models/test_family_contract.py): seconds on a CPU.
    tiny={"resolution": 8, "width": 4, "z_dim": 8, "batch": 4},
)
