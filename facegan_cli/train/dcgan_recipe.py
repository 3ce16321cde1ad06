"""DCGAN's update step: BCE, non-saturating generator loss, Adam (specs/dcgan.md).

`radford64`/`heikka32` follow pytorch/examples dcgan/main.py: D on the real batch and on the detached
fake batch (two forward passes, so BatchNorm sees each batch alone), one D update, then a G update that
reuses the same fake batch. `keras64` follows the Keras CelebA DCGAN example: D sees fakes labelled 1 and
reals labelled 0 with 0.05 uniform label noise, and G is trained on fresh latents towards label 0.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F

from facegan_cli.models.registry import build_discriminator, build_generator
from facegan_cli.train.recipe import Recipe, TrainContext, frozen


class DCGANRecipe(Recipe):
    family = "dcgan"
    generator_key = "G"

    def build(self, ctx: TrainContext) -> None:
        cfg = self.config
        self.device = ctx.device
        self.precision = ctx.precision
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
        if isinstance(self.D, torch.nn.parallel.DistributedDataParallel):
            self._d_frozen_in_g_step = False  # DDP expects a gradient for every parameter it wraps

    _d_frozen_in_g_step = True

    def _g_step_discriminator(self) -> contextlib.AbstractContextManager:
        """During the G update, D's weight gradients are computed by the reference and then thrown away
        (D.zero_grad() at the next step); not computing them gives the same G update for less work."""
        if not self._d_frozen_in_g_step:
            return contextlib.nullcontext()
        return frozen(self.modules["D"])

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.device)

    def train_step(self, real: torch.Tensor, labels: torch.Tensor | None, step: int) -> dict[str, torch.Tensor]:
        real = self.precision.tensor(real)
        if self.config["arch"] == "keras":
            return self._keras_step(real)
        return self._examples_step(real)

    def _examples_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        G, D, opt_g, opt_d = self.G, self.D, self.optimizers["G"], self.optimizers["D"]
        n = real.shape[0]
        ones = torch.ones(n, device=real.device)
        zeros = torch.zeros(n, device=real.device)

        opt_d.zero_grad(set_to_none=True)
        with self.precision.autocast():
            out_real = D(real).float()
            fake = G(self._noise(n))
            out_fake = D(fake.detach()).float()
        loss_d = F.binary_cross_entropy_with_logits(out_real, ones) + F.binary_cross_entropy_with_logits(
            out_fake, zeros
        )
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        with self._g_step_discriminator():
            with self.precision.autocast():
                out_g = D(fake).float()
            loss_g = F.binary_cross_entropy_with_logits(out_g, ones)
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
        with self._g_step_discriminator():
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



def make_recipe(config: dict[str, Any]) -> Recipe:
    return DCGANRecipe(config)


