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

import copy
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.options import Opt
from facegan_cli.data.sources import open_image_set
from facegan_cli.models import progan, registry
from facegan_cli.models.layers import downsample2x, upsample2x
from facegan_cli.models.progan import ProDiscriminator, ProGenerator, build_discriminator, build_generator
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.gan_objectives import gradient_penalty
from facegan_cli.train.progan_schedule import ProganSchedule
from facegan_cli.train.spec import DATA_OPTION, SPLIT_OPTION, TrainPlan, TrainSpec
from facegan_cli.train.trainer import Phase, TrainContext, Trainer, frozen


def fade_reals(real: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """Blend real images with their down-then-up-sampled version, as G's output is blended in a fade-in."""
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.to(real.dtype)
    return torch.lerp(upsample2x(downsample2x(real)), real, alpha)


class ProGANTrainer(Trainer):
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
                raise UsageProblem(
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

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        cfg, p, alpha = self.config, self.precision, self._alpha
        real = p.tensor(batch["images"])
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
        with p.autocast():
            gp = gradient_penalty(lambda x: self.d_penalty(x, alpha), torch.lerp(real, fake, mix))
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



SUMMARY = (
    "Train a Progressive GAN (Karras et al. 2018; seed 002): grow 4x4 -> --resolution with WGAN-GP.\n\n"
    "Every phase (4x4, then a fade-in and a stabilisation per doubling) reads its level of a dataset prepared "
    "with --levels (a folder or zip of images is decoded once and box-halved). WGAN-GP (lambda 10, drift "
    "0.001), Adam (lr 1e-3, betas 0/0.99, eps 1e-8), equalised learning rate, pixel norm, minibatch stddev, "
    "generator EMA (samples and checkpoints sample from it). Ctrl-C saves a checkpoint and exits 0; --resume "
    "continues bit for bit, mid-fade-in included.\n\n"
    "Where seed 002 is garbled, facegan follows specs/progan.md and the original code: pixel-norm epsilon "
    "1e-8 (the seed prints 10^8); G's first layer is a dense 512 -> 4x4x512 (the seed's \"Conv 4x4\"); D's "
    "last conv is 4x4 (the seed's \"Conv 1x1\" cannot hold 4.2M parameters); every D conv is LReLU(0.2) (the "
    "seed's \"linear\" is a typo); the paper preset's minibatch at 256 is 14 (the seed prints 6); the drift "
    "term is 0.001 * D(x)^2 (the seed's \"fourth term\"); minibatch stddev groups of 4 (v2) or 16 (paper); "
    "Adam state is reset at every phase start, as the original."
)


def default_resolution(data: str, split: str) -> int:
    """The dataset's largest level, when it is a power of two ProGAN can grow to."""
    found = open_image_set(data, split=split).resolution
    if found < 4 or found > 1024 or found & (found - 1):
        raise FaceganError(
            f"The images in {data} are {found}x{found}, not a power of two from 4 to 1024, so no target "
            "resolution follows from them.",
            "Pass --resolution (e.g. --resolution 128), or prepare the data with `facegan prepare celeba "
            "--crop progan --size 128 --levels`.",
        )
    return found


def configure(values: dict[str, Any]) -> TrainPlan:
    """`facegan train progan` option values -> the model configuration, data and length in images."""
    ema = values.get("ema")
    if ema is not None and not 0.0 <= ema < 1.0:
        raise UsageProblem(f"--ema {ema} must be in [0, 1).", "Use e.g. --ema 0.999 (the original's).")
    split = values.get("split", "all")
    config = resolve_config("progan", values.get("preset"), registry.get_family("progan").config.given(values))
    resolution = values.get("resolution") or default_resolution(values["data"], split)
    config = progan.configure(config, {**values, "resolution": resolution})
    if values.get("batch") is not None:
        config["batch_sizes"] = {r: values["batch"] for r in config["batch_sizes"]}
    if values.get("lr") is not None:
        config["lr_by_resolution"] = {}  # --lr: one rate at every resolution
    kimg = values.get("kimg") or ProganSchedule.from_config(config).schedule_images / 1000
    return TrainPlan(config, {"images": {"path": values["data"], "split": split}}, {"kimg": kimg})


TRAINING = TrainSpec(
    summary=SUMMARY,
    example="facegan prepare celeba --src ~/data/CelebA --out data/celeba-progan --crop progan --size 128 "
    "--levels && facegan train progan --data data/celeba-progan --out runs/progan --preset v2",
    options=(
        DATA_OPTION,
        progan.MAX_CHANNELS,
        Opt("batch", ("--batch",), int, None, "One minibatch for every resolution (v2: 128 at 4-16, 64, 32, 16, 8, "
            "4, 4 at 1024; paper: 16, then 14/6/3 at 256/512/1024).", min=1),
        SPLIT_OPTION,
    ),  # and the options of models.progan.ProGANConfig's fields
    configure=configure,
    trainer=ProGANTrainer,
    length="kimg",
    loop_defaults={"log_every": 100, "ckpt_every": 2000, "sample_every": 2000, "mirror": True},
    loop_help={
        "kimg": "(default: until the target resolution has been stabilised for one phase; the original v2 "
        "CelebA-HQ run used 12000)",
        "sample_every": "(a grid is also written at the end of every phase)",
        "compile": "(each phase's layers)",
    },
    resumable={"lr": lambda value: {"lr": value, "lr_by_resolution": {}}},
    # 4x4, 8x8 fade-in, 8x8: 2 steps of 4 images each (a run split in half resumes inside the fade-in).
    tiny={"resolution": 8, "max_channels": 8, "phase_kimg": 0.008, "batch": 4, "kimg": 0.024},
)
