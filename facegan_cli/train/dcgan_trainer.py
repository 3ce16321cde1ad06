"""DCGAN's update step: BCE, non-saturating generator loss, Adam (specs/dcgan.md).

`radford64`/`heikka32` follow pytorch/examples dcgan/main.py: D on the real batch and on the detached
fake batch (two forward passes, so BatchNorm sees each batch alone), one D update, then a G update that
reuses the same fake batch. `keras64` follows the Keras CelebA DCGAN example: D sees fakes labelled 1 and
reals labelled 0 with 0.05 uniform label noise, and G is trained on fresh latents towards label 0.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from facegan_cli.core.options import Opt
from facegan_cli.models import registry
from facegan_cli.models.registry import build_discriminator, build_generator, resolve_config
from facegan_cli.train.gan_objectives import bce_fake, bce_real
from facegan_cli.train.spec import DATA_OPTION, RESUMABLE_LR, SPLIT_OPTION, TrainPlan, TrainSpec
from facegan_cli.train.trainer import TrainContext, Trainer


class DCGANTrainer(Trainer):
    family = "dcgan"
    generator_key = "G"

    def build(self, ctx: TrainContext) -> None:
        cfg = self.config
        G = ctx.precision.module(build_generator("dcgan", cfg))
        D = ctx.precision.module(build_discriminator("dcgan", cfg))
        self.modules = {"G": G, "D": D}
        self.G, self.D = G, D  # the networks updated; DDP may wrap these, checkpoints use `modules`
        betas = tuple(cfg["betas"])
        eps = 1e-7 if cfg["arch"] == "keras" else 1e-8  # Keras' Adam default epsilon
        self.optimizers = {
            "G": torch.optim.Adam(G.parameters(), lr=cfg["lr"], betas=betas, eps=eps),
            "D": torch.optim.Adam(D.parameters(), lr=cfg["lr"], betas=betas, eps=eps),
        }

    def wrap_networks(self, wrap: Any) -> None:
        self.G, self.D = wrap(self.G), wrap(self.D)

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.device)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        real = self.precision.tensor(batch["images"])
        if self.config["arch"] == "keras":
            return self._keras_step(real)
        return self._examples_step(real)

    def _examples_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        G, D, opt_g, opt_d = self.G, self.D, self.optimizers["G"], self.optimizers["D"]
        n = real.shape[0]

        opt_d.zero_grad(set_to_none=True)
        with self.precision.autocast():
            out_real = D(real).float()
            fake = G(self._noise(n))
            out_fake = D(fake.detach()).float()
        loss_d = bce_real(out_real) + bce_fake(out_fake)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        with self.frozen_in_g_step(self.modules["D"]):
            with self.precision.autocast():
                out_g = D(fake).float()
            loss_g = bce_real(out_g)
            loss_g.backward()
        opt_g.step()
        return {
            "loss_D": loss_d.detach(),
            "loss_G": loss_g.detach(),
            "D_x": torch.sigmoid(out_real.detach()).mean(),
            "D_G_z": torch.sigmoid(out_fake.detach()).mean(),
        }

    def _keras_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        G, D, opt_g, opt_d = self.G, self.D, self.optimizers["G"], self.optimizers["D"]
        n = real.shape[0]
        opt_d.zero_grad(set_to_none=True)
        with self.precision.autocast():
            fake = G(self._noise(n)).detach()
            logits = D(torch.cat([fake, real])).float()
        targets = torch.cat([torch.ones(n, device=real.device), torch.zeros(n, device=real.device)])
        targets = targets + 0.05 * torch.rand_like(targets)  # the example's label noise
        loss_d = F.binary_cross_entropy_with_logits(logits, targets)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        with self.frozen_in_g_step(self.modules["D"]):
            with self.precision.autocast():
                logits_g = D(G(self._noise(n))).float()
            loss_g = F.binary_cross_entropy_with_logits(logits_g, torch.zeros(n, device=real.device))
            loss_g.backward()
        opt_g.step()
        return {
            "loss_D": loss_d.detach(),
            "loss_G": loss_g.detach(),
            "D_x": 1 - torch.sigmoid(logits[n:].detach()).mean(),  # D's belief that reals are real
            "D_G_z": 1 - torch.sigmoid(logits[:n].detach()).mean(),
        }



def configure(values: dict[str, Any]) -> TrainPlan:
    """`facegan train dcgan` option values -> the model configuration, data and length."""
    family = registry.get_family("dcgan")
    config = resolve_config("dcgan", values.get("preset"), family.config.given(values, arch=False))
    config = family.configure(config, values)  # the architecture options, --depth first
    if values.get("beta1") is not None:
        config["betas"] = [values["beta1"], config["betas"][1]]
    length = {} if values.get("steps") or values.get("epochs") else {"steps": 1000}
    return TrainPlan(config, {"images": {"path": values["data"], "split": values.get("split", "all")}}, length)


TRAINING = TrainSpec(
    summary="Train a DCGAN (radford64 = pytorch/examples, heikka32 = seed 001, keras64 = seed 003).\n\n"
    "keras64 follows the Keras CelebA DCGAN example that seed 003 paraphrases (the article names no numbers). "
    "Ctrl-C saves a checkpoint and exits 0; --resume continues bit for bit.",
    example="facegan train dcgan --data data/celeba64 --out runs/dcgan --preset radford64 --epochs 5",
    options=(
        DATA_OPTION,
        Opt("beta1", ("--beta1",), float, None, "Adam beta1 (preset: 0.5; keras64: 0.9)."),
        SPLIT_OPTION,
    ),  # and the options of models.dcgan.DCGANConfig's fields
    configure=configure,
    trainer=DCGANTrainer,
    loop_defaults={"amp": True},
    loop_help={"steps": "(default: 1000)"},
    resumable=RESUMABLE_LR,
    tiny={"preset": "heikka32", "width": 8, "g_width": 8, "batch": 4},
)


