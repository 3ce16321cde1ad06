"""ProGAN's update step (specs/progan.md): WGAN-GP with drift, Adam reset per phase, generator EMA.

One D step then one G step per minibatch, as the original (D_repeats = 1):
  D loss = mean(D(G(z)) - D(x) + lambda * (||grad_x_hat D(x_hat)||_2 - 1)^2 + eps_drift * D(x)^2),
           x_hat = lerp(x, G(z), u), u ~ U(0, 1) per image, lambda = 10, eps_drift = 0.001;
  G loss = -mean(D(G(z'))) on fresh latents;
  G_ema = lerp(G, G_ema, 0.999) after each G step (samples, checkpoints' sampling weights, metrics).
During a fade-in the real images are cross-faded like the networks: lerp(up(down(x)), x, alpha).
The optimisers are rebuilt at every phase start (fade-in and stabilisation), which is what the
original's reset rule (a change in floor or ceil of the level of detail) does.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from facegan_cli.core.errors import FaceganError
from facegan_cli.models.layers import at_least_fp32, downsample2x, upsample2x
from facegan_cli.models.progan import ProDiscriminator, ProGenerator, build_discriminator, build_generator
from facegan_cli.train.progan_schedule import ProganSchedule
from facegan_cli.train.recipe import Phase, Recipe, TrainContext, frozen


def fade_reals(real: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """Blend real images with their down-then-up-sampled version, as G's output is blended in a fade-in."""
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.to(real.dtype)
    return torch.lerp(upsample2x(downsample2x(real)), real, alpha)


def gradient_penalty(
    D: nn.Module, real: torch.Tensor, fake: torch.Tensor, mix: torch.Tensor, alpha: torch.Tensor | float,
    autocast: contextlib.AbstractContextManager | None = None,
) -> torch.Tensor:
    """Per-image (||grad D(x_hat)||_2 - 1)^2 at x_hat = lerp(real, fake, mix) (WGAN-GP, Gulrajani et al.)."""
    mixed = torch.lerp(real, fake, mix).detach().requires_grad_(True)
    with autocast or contextlib.nullcontext():
        scores = at_least_fp32(D(mixed, alpha))
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = at_least_fp32(grad).square().sum(dim=(1, 2, 3)).sqrt()
    return (norms - 1.0).square()


class ProGANRecipe(Recipe):
    family = "progan"
    generator_key = "G_ema"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        try:
            self.schedule = ProganSchedule.from_config(config)
        except ValueError as exc:
            raise FaceganError(f"The ProGAN configuration cannot be trained ({exc}).",
                               "Check --resolution, --phase-kimg and --batch.") from exc
        self._wrappers: list[Any] = []
        self._phase: Phase | None = None
        self._alpha_value = 1.0

    @property
    def batch_size(self) -> int:
        return self.schedule.phase_at(0).batch_size

    def phase(self, images_seen: int) -> Phase:
        return self.schedule.phase_at(images_seen)

    # --- building ----------------------------------------------------------------------------------------

    def build(self, ctx: TrainContext) -> None:
        cfg = self.config
        self.device = ctx.device
        self.precision = ctx.precision
        self._check_stddev_groups(ctx.world_size)
        G = ctx.precision.module(build_generator(cfg))
        D = ctx.precision.module(build_discriminator(cfg))
        G_ema = copy.deepcopy(G).requires_grad_(False)  # starts as G, as the original's Gs = G.clone()
        self.modules = {"G": G, "D": D, "G_ema": G_ema}
        self.G: ProGenerator = G  # type: ignore[assignment]
        self.D: ProDiscriminator = D  # type: ignore[assignment]
        self.G_ema: ProGenerator = G_ema  # type: ignore[assignment]
        # The fade weight lives on the device and is refilled in place: no host sync, and a compiled or
        # graph-captured step reads the current value.
        self._alpha = torch.ones((), device=ctx.device)
        self.enter_phase(self.phase(0))

    def _check_stddev_groups(self, world_size: int) -> None:
        group = int(self.config["mbstd_group"])
        for resolution, batch in sorted(self.schedule.batch_sizes.items()):
            if resolution > self.schedule.resolution or group <= 1:
                continue
            local = batch // max(world_size, 1)
            g = min(group, local)
            if local % g:
                raise FaceganError(
                    f"The minibatch at {resolution}x{resolution} ({local} images per process) does not split "
                    f"into minibatch-stddev groups of {g}.",
                    "Pass an --mbstd-group that divides every minibatch (e.g. --mbstd-group 16 with the paper "
                    "preset, whose 14 at 256 is not a multiple of 4), or another --batch.",
                )

    def wrap_networks(self, wrap: Any) -> None:
        """Remember the wrapper (torch.compile, DDP): each phase wraps the layers it trains afresh."""
        self._wrappers.append(wrap)
        if self._phase is not None:
            self._wire()

    def _wire(self) -> None:
        """Point the step at the current phase's layers: raw, and wrapped for the passes that allow it."""
        if any(wrap is torch.compile for wrap in self._wrappers):
            # Each phase compiles its own graphs; dropping the last phase's keeps a 1024 run (17 phases)
            # under dynamo's recompile limit instead of silently falling back to eager.
            torch._dynamo.reset()
        g_path, d_path = self.G.path(), self.D.path()
        g_run, d_run = g_path, d_path
        for wrap in self._wrappers:
            g_run, d_run = wrap(g_run), wrap(d_run)
        self.g_train = g_run  # G pass that G's update differentiates (DDP-reduced under torchrun)
        self.d_train = d_run  # D passes on real and fake images in D's update
        # DDP wants a gradient for every parameter it wraps, so the passes that must not reduce D's
        # gradients (G's update) or that need a second derivative (the penalty: torch.compile cannot
        # differentiate twice) use the layers themselves.
        self.g_fast = g_run.module if isinstance(g_run, DistributedDataParallel) else g_run
        self.d_frozen = d_run.module if isinstance(d_run, DistributedDataParallel) else d_run
        self.d_penalty = d_path
        ema_path = self.G_ema.path()
        self._ema_pairs = (list(ema_path.parameters()), list(g_path.parameters()))

    def enter_phase(self, phase: Phase) -> None:
        fading = self.schedule.is_fading(phase.index)
        alpha = self.schedule.alpha(phase.start)
        for net in (self.G, self.D, self.G_ema):
            net.set_phase(phase.resolution, fading, alpha)
        self._set_alpha(alpha)
        self._phase = phase
        self._fading = fading
        lr = self.schedule.learning_rate(phase.resolution)
        betas = tuple(float(b) for b in self.config["betas"])
        eps = float(self.config["adam_eps"])
        fused = self.device.type == "cuda"
        # Over every parameter: those of stages not yet grown get no gradient, so Adam leaves them alone,
        # and the optimiser's parameter order (hence its saved state) does not depend on the phase.
        self.optimizers = {
            name: torch.optim.Adam(net.parameters(), lr=lr, betas=betas, eps=eps, fused=fused)  # type: ignore[arg-type]
            for name, net in (("G", self.G), ("D", self.D))
        }
        self._wire()

    def _set_alpha(self, alpha: float) -> None:
        self._alpha.fill_(alpha)
        self._alpha_value = alpha
        for net in (self.G, self.D, self.G_ema):
            net.alpha = alpha  # what sampling and checkpoints' metadata use

    def begin_step(self, images_seen: int) -> None:
        alpha = self.schedule.alpha(images_seen)
        if alpha != self._alpha_value:
            self._set_alpha(alpha)

    # --- the step ----------------------------------------------------------------------------------------

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.device)

    def train_step(self, real: torch.Tensor, labels: torch.Tensor | None, step: int) -> dict[str, torch.Tensor]:
        cfg, p, alpha = self.config, self.precision, self._alpha
        real = p.tensor(real)
        if self._fading:
            real = fade_reals(real, alpha)
        n = real.shape[0]
        opt_g, opt_d = self.optimizers["G"], self.optimizers["D"]

        opt_d.zero_grad(set_to_none=True)
        z = self._noise(n)
        with torch.no_grad(), p.autocast():
            fake = self.g_fast(z, alpha)
        fake = p.tensor(fake.float())
        mix = torch.rand(n, 1, 1, 1, device=real.device)
        with p.autocast():
            d_real = self.d_train(real, alpha).float()
            d_fake = self.d_train(fake, alpha).float()
        gp = gradient_penalty(self.d_penalty, real, fake, mix, alpha, p.autocast())
        drift = d_real.square()
        loss_d = (d_fake - d_real + float(cfg["gp_lambda"]) * gp + float(cfg["drift"]) * drift).mean()
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        with frozen(self.d_frozen), p.autocast():
            score = self.d_frozen(self.g_train(self._noise(n), alpha), alpha).float()
        loss_g = -score.mean()
        loss_g.backward()
        opt_g.step()
        self._update_ema()
        return {
            "loss_D": loss_d.detach(),
            "loss_G": loss_g.detach(),
            "wdist": (d_real - d_fake).detach().mean(),
            "gp": gp.detach().mean(),
            "alpha": alpha.detach().clone(),
        }

    @torch.no_grad()
    def _update_ema(self) -> None:
        """G_ema = G + beta * (G_ema - G) over the layers this phase trains (the others are equal already)."""
        ema, live = self._ema_pairs
        torch._foreach_lerp_(ema, live, 1.0 - float(self.config["ema"]))

    # --- checkpoints ---------------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """The model config with the phase the weights are in, so a mid-training checkpoint samples as trained."""
        return {"family": self.family, "model": {**self.config, "grown": self.G_ema.phase()},
                "generator": self.generator_key}

    def extra_state(self) -> dict[str, Any]:
        return {"phase": self.G.phase()}  # informative only: the loop's images seen decide the phase



def make_recipe(config: dict[str, Any]) -> Recipe:
    return ProGANRecipe(config)
