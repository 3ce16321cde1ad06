"""StarGAN's update step (yunjey/stargan solver.py), shared by stargan, ccagan and stargan-sagan.

Every step (specs/ccagan.md):
  targets   c_trg = the batch's own labels in a random permutation (torch.randperm on the CPU generator);
  D update  -mean D_src(x) + mean D_src(G(x, c_trg)) + lambda_cls * cls(D_cls(x), c_org)
            + lambda_gp * mean_b (||grad_x_hat D_src(x_hat)||_2 - 1)^2, x_hat = u x + (1 - u) G(x, c_trg),
            u ~ U(0, 1) per image  (`loss = "bce"`: BCE real/fake instead, no penalty);
  G update  every n_critic-th step: -mean D_src(G(x, c_trg)) + lambda_rec * mean |x - G(G(x, c_trg), c_org)|
            + lambda_cls * cls(D_cls(G(x, c_trg)), c_trg)  (bce: BCE towards "real");
  cls       BCE-with-logits summed over attributes, divided by the batch size.
Adam (lr 1e-4, betas 0.5/0.999) for both networks; the rate decays linearly to exactly 0 at the last step
over the last `decay_steps` (default: half the run), recomputed from the step, so resume is exact.

Inference (sample grids, `facegan edit`) runs G with per-image instance statistics, as yunjey's test(),
which never calls eval(): the running statistics are kept (for checkpoint parity) but never used.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facegan_cli.core.errors import FaceganError
from facegan_cli.models.registry import build_discriminator, build_generator
from facegan_cli.models.stargan import apply_edits, create_labels, instance_statistics

__all__ = ["StarGANRecipe", "apply_edits", "classification_loss", "create_labels", "decayed_lr",
           "gradient_penalty", "instance_statistics", "recipe_factory"]
from facegan_cli.train.recipe import Recipe, TrainContext, frozen

SAMPLE_INPUTS = 8  # rows of a training sample grid: input, then one column per attribute target


def classification_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """yunjey's CelebA classification loss: BCE-with-logits summed over attributes, / batch size."""
    return F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="sum") / logits.shape[0]


def gradient_penalty(D: nn.Module, x_hat: torch.Tensor) -> torch.Tensor:
    """mean over images of (||d sum(D_src(x_hat)) / d x_hat||_2 - 1)^2, differentiable (create_graph)."""
    if not x_hat.requires_grad:
        x_hat = x_hat.requires_grad_(True)
    src, _ = D(x_hat)
    (grad,) = torch.autograd.grad(src, x_hat, grad_outputs=torch.ones_like(src), create_graph=True)
    norms = grad.float().flatten(1).square().sum(1).sqrt()
    return (norms - 1.0).square().mean()


def decayed_lr(base: float, step: int, total: int, decay_steps: int) -> float:
    """The rate for the update after `step` updates: base, then linear to 0 over the last `decay_steps`.

    yunjey subtracts base/decay every 1000 iterations and ends at 1e-4 - 1e-4/100; here the rate falls
    every step and is exactly 0 after the last one (lr(total) = 0), as the paper describes.
    """
    if decay_steps <= 0 or total <= 0:
        return base
    remaining = max(total - step, 0)
    return base * min(1.0, remaining / decay_steps)



class StarGANRecipe(Recipe):
    generator_key = "G"

    def __init__(self, config: dict[str, Any], family: str = "stargan") -> None:
        super().__init__(config)
        self.family = family
        if config["loss"] not in ("wgan-gp", "bce"):
            raise FaceganError(f"Unknown loss {config['loss']!r}.", "Use --loss wgan-gp or --loss bce.")
        self.total_steps = int(config.get("steps") or 0)
        self.grid_columns = len(config["attrs"]) + 1
        self._sample: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def z_dim(self) -> int:
        return 0  # a translation model: the loop's fixed latents are empty, grids use fixed real images

    def label_names(self) -> list[str]:
        return list(self.config["attrs"])

    @property
    def decay_steps(self) -> int:
        explicit = self.config.get("decay_steps")
        if explicit is not None:
            return int(explicit)
        return round(self.total_steps * float(self.config["decay_fraction"]))

    def set_run_length(self, steps: int) -> None:
        self.total_steps = int(steps)

    def build(self, ctx: TrainContext) -> None:
        cfg = self.config
        self.device = ctx.device
        self.precision = ctx.precision
        G = ctx.precision.module(build_generator(self.family, cfg))
        D = ctx.precision.module(build_discriminator(self.family, cfg))
        self.modules = {"G": G, "D": D}
        self.G, self.D = G, D  # what the step calls (DDP / compile may wrap these)
        self.D_penalty = D  # the penalty differentiates twice: never through torch.compile
        betas = tuple(cfg["betas"])
        self.optimizers = {
            "G": torch.optim.Adam(G.parameters(), lr=cfg["lr"], betas=betas),
            "D": torch.optim.Adam(D.parameters(), lr=cfg["d_lr"], betas=betas),
        }
        self._zero = torch.zeros((), device=ctx.device)
        self._last_g = {"loss_G": self._zero, "G_fake": self._zero, "G_rec": self._zero, "G_cls": self._zero}
        self._freeze_d = True

    def wrap_networks(self, wrap: Any) -> None:
        self.G, self.D = wrap(self.G), wrap(self.D)
        if isinstance(self.D, torch.nn.parallel.DistributedDataParallel):
            self._freeze_d = False  # DDP expects a gradient for every parameter it wraps

    def lr_at(self, step: int) -> tuple[float, float]:
        """(G rate, D rate) for the update after `step` updates."""
        cfg = self.config
        return (decayed_lr(float(cfg["lr"]), step, self.total_steps, self.decay_steps),
                decayed_lr(float(cfg["d_lr"]), step, self.total_steps, self.decay_steps))

    def _set_lr(self, step: int) -> None:
        for opt, lr in zip((self.optimizers["G"], self.optimizers["D"]), self.lr_at(step)):
            for group in opt.param_groups:
                group["lr"] = lr

    def train_step(self, real: torch.Tensor, labels: torch.Tensor | None, step: int) -> dict[str, torch.Tensor]:
        if labels is None:
            raise FaceganError(f"{self.family} needs attribute labels with every batch.", "Train on labelled data.")
        cfg = self.config
        G, D, opt_d = self.G, self.D, self.optimizers["D"]
        wgan = cfg["loss"] == "wgan-gp"
        self._set_lr(step)
        real = self.precision.tensor(real)
        c_org = labels.float()
        n = real.shape[0]
        c_trg = c_org[torch.randperm(n).to(c_org.device)]

        with self.precision.autocast():
            src_real, cls_real = D(real)
            fake = G(real, c_trg)
            src_fake, _ = D(fake.detach())
        src_real, src_fake = src_real.float(), src_fake.float()
        d_cls = classification_loss(cls_real, c_org)
        if wgan:
            d_adv = -src_real.mean() + src_fake.mean()
            u = torch.rand(n, 1, 1, 1, device=real.device)
            x_hat = (u * real.detach() + (1 - u) * fake.detach().to(real.dtype)).requires_grad_(True)
            with self.precision.autocast():
                gp = gradient_penalty(self.D_penalty, x_hat)
        else:
            d_adv = F.binary_cross_entropy_with_logits(src_real, torch.ones_like(src_real)) + \
                F.binary_cross_entropy_with_logits(src_fake, torch.zeros_like(src_fake))
            gp = self._zero
        loss_d = d_adv + float(cfg["lambda_cls"]) * d_cls + float(cfg["lambda_gp"]) * gp
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        if (step + 1) % int(cfg["n_critic"]) == 0:
            self._last_g = self._g_step(real, c_org, c_trg, wgan)
        self._set_lr(step + 1)
        return {"loss_D": loss_d.detach(), "D_adv": d_adv.detach(), "D_cls": d_cls.detach(), "gp": gp.detach(),
                **self._last_g}

    def _g_step(self, real: torch.Tensor, c_org: torch.Tensor, c_trg: torch.Tensor, wgan: bool) -> dict[str, torch.Tensor]:
        cfg = self.config
        G, D, opt_g = self.G, self.D, self.optimizers["G"]
        lambda_rec = float(cfg["lambda_rec"])
        no_d_grads = frozen(self.modules["D"]) if self._freeze_d else contextlib.nullcontext()
        with no_d_grads:
            with self.precision.autocast():
                fake = G(real, c_trg)
                src, cls = D(fake)
                rec = G(fake, c_org) if lambda_rec else None
            src = src.float()
            g_adv = -src.mean() if wgan else F.binary_cross_entropy_with_logits(src, torch.ones_like(src))
            g_cls = classification_loss(cls, c_trg)
            g_rec = (real - rec.float()).abs().mean() if rec is not None else self._zero
            loss_g = g_adv + lambda_rec * g_rec + float(cfg["lambda_cls"]) * g_cls
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
        opt_g.step()
        return {"loss_G": loss_g.detach(), "G_fake": g_adv.detach(), "G_rec": g_rec.detach(), "G_cls": g_cls.detach()}

    def extra_state(self) -> dict[str, Any]:
        # The last G losses, so a resumed run logs the same values between G updates as a straight one.
        return {"last_g": {k: v.detach().cpu() for k, v in self._last_g.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        last = state.get("last_g")
        if last:
            self._last_g = {k: v.to(self.device) for k, v in last.items()}

    # --- sampling --------------------------------------------------------------------------------------

    def set_sample_inputs(self, images: torch.Tensor, labels: torch.Tensor | None) -> None:
        if labels is None:
            return
        k = min(SAMPLE_INPUTS, images.shape[0])
        self._sample = (images[:k].clone(), labels[:k].float().clone())

    def translate_grid(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """StarGAN's sample grid as a flat batch: per input, the input then one image per target."""
        G = self.generator()
        targets = create_labels(labels, self.config["attrs"])
        with instance_statistics(G):
            x = self.precision.tensor(images)
            with self.precision.autocast():
                outs = [G(x, c).float() for c in targets]
        columns = torch.stack([images.float(), *outs], dim=1)  # B x (1 + c) x 3 x H x W
        return columns.flatten(0, 1)

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        if self._sample is None:
            raise FaceganError("No sample images were handed to the recipe.", "This is a facegan bug.")
        return self.translate_grid(*self._sample)

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "value_range": [-1.0, 1.0]}


def recipe_factory(family: str) -> Any:
    """The loop's factory (config -> recipe) for one of the three attribute-editing families."""

    def make(config: dict[str, Any]) -> Recipe:
        return StarGANRecipe(config, family)

    return make
