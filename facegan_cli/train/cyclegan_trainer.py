"""CycleGAN's update step as junyanz's CycleGANModel.optimize_parameters, with seed 004's options.

Every step (specs/cyclegan.md, J = junyanz/pytorch-CycleGAN-and-pix2pix):
  data      A and B batches (independent orders) at `data_resolution`; on the device, Resize to `load_size`
            (bicubic, only ever upwards: larger data was reduced once when loaded) and a random crop of
            `resolution` per image, offsets from the run's CPU generator (saved in every checkpoint, so a
            resumed run crops exactly as the straight one). Flips are the loop's (--mirror, on by default).
  forward   fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B = G_A(fake_A).
  G update  (D weights frozen) GAN(D_A(fake_B), real) + GAN(D_B(fake_A), real) + lambda_A |rec_A - A|
            + lambda_B |rec_B - B| + identity + lambda_TV (TV(fake_B) + TV(fake_A)); one Adam for both Gs.
            identity, mode cyclegan (J): lambda_B lambda_idt |G_A(B) - B| + lambda_A lambda_idt |G_B(A) - A|;
            mode thesis (seed 004's equation, T:632): lambda_A lambda_idt |G_A(A) - A| + lambda_B lambda_idt
            |G_B(B) - B|, which keeps each input close to its own translation; mode nst (CycleGAN+NST,
            T:660-664): lambda_c Lc(G_A(A), A) + lambda_s Ls(G_A(A), B) + the same for G_B, with VGG19's
            content (conv3_2) and style (conv1_1..conv5_1, weights 1/5) losses in the thesis's convention
            (1/2 sum (F - P)^2; sum (G - S)^2 / (4 C^2 (HW)^2)), average-pooled post-ReLU features of
            (x + 1) / 2, the style target the real B image of the step; lambda_c and lambda_s, when not
            given, make each term 0.5 (the cyclegan identity term's 5 x 0.1) on the first sample images
            at initialisation (spec DEFAULT), and are kept in the checkpoints.
  D update  D_A: 0.5 [GAN(D_A(B), real) + GAN(D_A(pool_B(fake_B)), fake)], then D_B likewise with pool_A;
            one Adam for both Ds; WGAN-GP adds lambda_gp times the gradient penalty (J's cycle_gan_model
            has none: --lambda-gp 0 is J exactly).
  GAN       lsgan: MSE to 1/0 (J's default); vanilla: BCE with logits; wgangp: -mean / +mean.
  pools     J's ImagePool(50) per domain: fills with the first 50 fakes, then per image, with probability
            1/2 returns a stored fake and stores the new one in its place (Python's `random`, as J, so the
            same seed makes the same choices). Both pools are saved in every checkpoint.
  noise     seed 004's white noise on every D input (real and pooled fake, in the D and the G pass), sigma
            falling linearly from d_noise_std to 0 over the n_epochs + n_epochs_decay epochs of the schedule
            (DEFAULT; the thesis gives no value).
  PacGAN    with pack m, D reads m consecutive images of a batch stacked on its channels (pool first).
  DDP       under torchrun each process keeps its own pools of its own fakes; checkpoints hold rank 0's, so a
            multi-process run resumes with rank 0's pools on every rank (bit-exact with one process only).
  lr        J's linear rule by epoch: lr * (1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1)), epoch
            counted from 0 (an epoch = one pass over the larger domain), so a resumed run has the rate the
            straight run had; never 0.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facegan_cli.core import weights as W
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.options import Opt
from facegan_cli.data.domains import resolve_domains
from facegan_cli.data.sources import open_image_set
from facegan_cli.features.vgg19 import VGG19Extractor, layer_tap, recorded_extractor
from facegan_cli.models import registry
from facegan_cli.models.cyclegan import (
    build_discriminator,
    build_generator,
    check_config,
    init_weights,
    pack_images,
)
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.gan_objectives import gradient_penalty
from facegan_cli.train.spec import DOMAIN_DATA, DOMAIN_OPTIONS, RESUMABLE_LR, TrainPlan, TrainSpec
from facegan_cli.train.trainer import Images, Stream, TrainContext, Trainer
from facegan_cli.transfer.style_losses import content_error, gram, style_error

SAMPLE_ROWS = 8  # rows of a training grid: A, G_A(A), G_B(G_A(A)), B, G_B(B), G_A(G_B(B))


# --- losses ----------------------------------------------------------------------------------------------


def gan_loss(prediction: torch.Tensor, target_is_real: bool, mode: str) -> torch.Tensor:
    """J's GANLoss: lsgan = MSE to 1 or 0, vanilla = BCE with logits, wgangp = -mean (real) / mean (fake)."""
    prediction = prediction.float()
    if mode == "lsgan":
        return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if target_is_real else 0.0))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(prediction, torch.full_like(prediction, 1.0 if target_is_real else 0.0))
    if mode == "wgangp":
        return -prediction.mean() if target_is_real else prediction.mean()
    raise ValueError(f"unknown gan mode {mode!r}")


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Seed 004's TV loss (DTN form): mean over channels and pixels of sqrt(dx^2 + dy^2 + 1e-8), with dx and
    dy the differences to the right and lower neighbour (the last row and column have none)."""
    y = images.float()
    dx = y[:, :, :-1, 1:] - y[:, :, :-1, :-1]
    dy = y[:, :, 1:, :-1] - y[:, :, :-1, :-1]
    return torch.sqrt(dx.square() + dy.square() + 1e-8).mean()


def lr_factor(step: int, epoch_steps: int, n_epochs: int, n_epochs_decay: int) -> float:
    """J's 'linear' policy for the update after `step` updates: 1 for the first n_epochs epochs, then
    falling by 1 / (n_epochs_decay + 1) per epoch (epoch 0-based, J's epoch_count 1)."""
    epoch = step // max(1, epoch_steps)
    return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)


NST_CONTENT = "conv3_2"
NST_STYLE = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
NST_TERM = 0.5  # what each calibrated term weighs at initialisation: J's identity term, 5 x an L1 of about 0.1


class NSTLosses:
    """Seed 004's content and style terms through a frozen VGG19 (see the module docstring)."""

    def __init__(self, extractor: VGG19Extractor) -> None:
        self.vgg = extractor
        self.content_tap = layer_tap(NST_CONTENT)
        self.style_taps = [layer_tap(layer) for layer in NST_STYLE]

    def _features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.vgg((images.float() + 1.0) / 2.0, [self.content_tap, *self.style_taps])

    def __call__(self, output: torch.Tensor, content: torch.Tensor, style: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(content loss, style loss), each the per-image value averaged over the batch."""
        with torch.no_grad():
            target_c = self._features(content)[self.content_tap]
            target_s = self._features(style)
        found = self._features(output)
        lc = content_error(found[self.content_tap], target_c, "thesis").mean()
        ls = 0.0
        for tap in self.style_taps:
            f = found[tap]
            ls = ls + style_error(gram(f, "thesis"), gram(target_s[tap], "thesis"), "thesis",
                                  f.shape[2] * f.shape[3]).mean() / len(self.style_taps)
        return lc, ls  # type: ignore[return-value]


def nst_extractor(config: dict[str, Any], device: torch.device) -> VGG19Extractor:
    """The VGG19 of a CycleGAN+NST run: the file it recorded (its SHA-256 checked), on `device`."""
    return recorded_extractor(
        config.get("vgg_weights"), device, str(config["vgg_pool"]), config.get("vgg_sha256"),
        "this run was trained with",
        "Resume where the run's VGG19 file is (facegan's cache, or the --vgg-weights file it was given).",
    )


# --- the history buffer ----------------------------------------------------------------------------------


class ImagePool:
    """J's ImagePool(size) (util/image_pool.py) on the device: a preallocated buffer, Python `random` for the
    choices (as J, and restored with the run's other generators on resume), and its content in checkpoints."""

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


# --- the trainer ------------------------------------------------------------------------------------------


def cycle(
    G_A: nn.Module, G_B: nn.Module, real_A: torch.Tensor, real_B: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B = G_A(fake_A), in J's order (the order
    of the calls is the order of the random numbers a network may draw)."""
    fake_B = G_A(real_A)
    rec_A = G_B(fake_B)
    fake_A = G_B(real_B)
    return fake_B, rec_A, fake_A, G_A(fake_A)


class CycleTrainer(Trainer):
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

    @property
    def z_dim(self) -> int:
        return 0  # a translation model: the loop's latents are empty; grids translate fixed real images

    def set_epoch_length(self, steps: int) -> None:
        self.epoch_steps = int(steps)

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

    def lr_at(self, step: int) -> float:
        cfg = self.config
        return float(cfg["lr"]) * lr_factor(step, self.epoch_steps, int(cfg["n_epochs"]), int(cfg["n_epochs_decay"]))

    def _set_lr(self, step: int) -> None:
        lr = self.lr_at(step)
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr

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

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "value_range": [-1.0, 1.0]}


class CycleGANTrainer(CycleTrainer):
    family = "cycle-gan"

    def __init__(self, config: dict[str, Any]) -> None:
        check_config(config)
        super().__init__(config)
        self.nst: NSTLosses | None = None
        self.nst_weights = (config.get("lambda_content"), config.get("lambda_style"))

    @property
    def pack(self) -> int:
        return int(self.config.get("pack", 1))

    def streams(self) -> dict[str, Stream]:
        held = int(self.config["data_resolution"])
        return {"A": Images(resolution=held), "B": Images(resolution=held)}

    def build(self, ctx: TrainContext) -> None:
        cfg = self.config
        gain = float(cfg["init_gain"])
        # J's order of construction and initialisation: G_A, G_B, D_A, D_B (the same seed, the same weights).
        nets = {}
        for name, builder in (("G_A", build_generator), ("G_B", build_generator), ("D_A", build_discriminator),
                              ("D_B", build_discriminator)):
            nets[name] = ctx.precision.module(init_weights(builder(cfg), gain))
        self.modules = dict(nets)
        self.set_networks(nets)
        self.D_penalty = dict(nets)  # the penalty differentiates twice: never through torch.compile
        if cfg["identity_mode"] == "nst":
            self.nst = NSTLosses(nst_extractor(cfg, ctx.device))

    # --- schedules -----------------------------------------------------------------------------------------

    def noise_std(self, step: int) -> float:
        """The std of the white noise on D's inputs at `step`: d_noise_std falling linearly to 0 over the
        schedule's n_epochs + n_epochs_decay epochs (so, like the rate, it depends on the step alone, and a
        run lengthened on resume keeps the noise it had)."""
        sigma = float(self.config["d_noise_std"])
        horizon = (int(self.config["n_epochs"]) + int(self.config["n_epochs_decay"])) * self.epoch_steps
        if sigma <= 0 or horizon <= 0:
            return 0.0
        return sigma * max(0.0, 1.0 - step / horizon)

    # --- data ------------------------------------------------------------------------------------------------

    def fit(self, images: torch.Tensor, random_crop: bool = True) -> torch.Tensor:
        """J's Resize(load_size, bicubic) then RandomCrop(resolution) (CenterCrop with random_crop False),
        on the device."""
        load, crop = int(self.config["load_size"]), int(self.config["resolution"])
        if images.shape[-1] != load:
            images = F.interpolate(images, size=(load, load), mode="bicubic", align_corners=False).clamp_(-1.0, 1.0)
        if load == crop:
            return images
        n = images.shape[0]
        if random_crop:
            offsets = torch.randint(0, load - crop + 1, (n, 2)).tolist()  # CPU generator: no device sync
        else:
            offsets = [[(load - crop) // 2] * 2] * n
        return torch.stack([images[i, :, y : y + crop, x : x + crop] for i, (y, x) in enumerate(offsets)])

    # --- the step ----------------------------------------------------------------------------------------

    def _d_input(self, images: torch.Tensor, sigma: float) -> torch.Tensor:
        if sigma > 0:
            images = images + sigma * torch.randn_like(images)
        return self.precision.tensor(pack_images(images, self.pack))

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        mode = str(cfg["gan_mode"])
        G_A, G_B, D_A, D_B = (self.nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
        self._set_lr(step)
        sigma = self.noise_std(step)
        real_A = self.precision.tensor(self.fit(batch["A"]))
        real_B = self.precision.tensor(self.fit(batch["B"]))
        lambda_a, lambda_b = float(cfg["lambda_a"]), float(cfg["lambda_b"])
        lambda_idt = float(cfg["lambda_identity"])

        with self.precision.autocast():
            fake_B, rec_A, fake_A, rec_B = cycle(G_A, G_B, real_A, real_B)

        # G_A and G_B, the discriminators frozen.
        opt_g = self.optimizers["G"]
        with self.frozen_in_g_step(self.modules["D_A"]), self.frozen_in_g_step(self.modules["D_B"]):
            zero = torch.zeros((), device=real_A.device)
            if lambda_idt > 0 and cfg["identity_mode"] == "cyclegan":
                with self.precision.autocast():
                    idt_A = G_A(real_B)
                    idt_B = G_B(real_A)
                loss_idt_A = F.l1_loss(idt_A.float(), real_B.float()) * lambda_b * lambda_idt
                loss_idt_B = F.l1_loss(idt_B.float(), real_A.float()) * lambda_a * lambda_idt
            elif self.nst is not None:  # CycleGAN+NST: content of the input, style of the other domain
                lambda_c, lambda_s = self.nst_weights
                content_A, style_A = self.nst(fake_B, real_A, real_B)
                content_B, style_B = self.nst(fake_A, real_B, real_A)
                loss_idt_A = lambda_c * content_A + lambda_s * style_A
                loss_idt_B = lambda_c * content_B + lambda_s * style_B
            elif lambda_idt > 0:  # thesis: each input close to its own translation
                loss_idt_A = F.l1_loss(fake_B.float(), real_A.float()) * lambda_a * lambda_idt
                loss_idt_B = F.l1_loss(fake_A.float(), real_B.float()) * lambda_b * lambda_idt
            else:
                loss_idt_A = loss_idt_B = zero
            with self.precision.autocast():
                pred_A = D_A(self._d_input(fake_B, sigma))
                pred_B = D_B(self._d_input(fake_A, sigma))
            loss_G_A = gan_loss(pred_A, True, mode)
            loss_G_B = gan_loss(pred_B, True, mode)
            loss_cycle_A = F.l1_loss(rec_A.float(), real_A.float()) * lambda_a
            loss_cycle_B = F.l1_loss(rec_B.float(), real_B.float()) * lambda_b
            # J's sum, in J's order (float sums are order-sensitive; the parity test compares bits).
            loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
            lambda_tv = float(cfg["lambda_tv"])
            loss_tv = lambda_tv * (total_variation(fake_B) + total_variation(fake_A)) if lambda_tv > 0 else zero
            if lambda_tv > 0:
                loss_G = loss_G + loss_tv
            opt_g.zero_grad(set_to_none=True)
            loss_G.backward()
        opt_g.step()

        # D_A and D_B, from the history buffers.
        opt_d = self.optimizers["D"]
        opt_d.zero_grad(set_to_none=True)
        loss_D_A, gp_A = self._d_loss("D_A", real_B, self.pool_B.query(fake_B), sigma, mode)
        loss_D_A.backward()
        loss_D_B, gp_B = self._d_loss("D_B", real_A, self.pool_A.query(fake_A), sigma, mode)
        loss_D_B.backward()
        opt_d.step()
        self._set_lr(step + 1)
        return {
            "loss_G": loss_G.detach(), "G_A": loss_G_A.detach(), "G_B": loss_G_B.detach(),
            "cycle_A": loss_cycle_A.detach(), "cycle_B": loss_cycle_B.detach(), "idt_A": loss_idt_A.detach(),
            "idt_B": loss_idt_B.detach(), "tv": loss_tv.detach(), "D_A": loss_D_A.detach(), "D_B": loss_D_B.detach(),
            "gp": (gp_A + gp_B).detach(),
        }

    def _d_loss(self, name: str, real: torch.Tensor, fake: torch.Tensor, sigma: float, mode: str
                ) -> tuple[torch.Tensor, torch.Tensor]:
        D = self.nets[name]
        fake = self.precision.tensor(fake.to(real.dtype))
        real_in, fake_in = self._d_input(real, sigma), self._d_input(fake, sigma)
        with self.precision.autocast():
            pred_real = D(real_in)
            pred_fake = D(fake_in)
        loss = (gan_loss(pred_real, True, mode) + gan_loss(pred_fake, False, mode)) * 0.5
        lambda_gp = float(self.config["lambda_gp"])
        if mode == "wgangp" and lambda_gp > 0:
            u = torch.rand(real_in.shape[0], 1, 1, 1, device=real_in.device)
            mixed = u * real_in.detach() + (1 - u) * fake_in.detach()
            with self.precision.autocast():
                gp = gradient_penalty(self.D_penalty[name], mixed).mean()
            return loss + lambda_gp * gp, gp
        return loss, torch.zeros((), device=real.device)

    # --- state -------------------------------------------------------------------------------------------

    def extra_state(self) -> dict[str, Any]:
        state = super().extra_state()
        if self.nst is not None:
            state["nst_weights"] = list(self.nst_weights)
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        if "nst_weights" in state:  # calibrated at the start of the run, not on the resumed networks
            self.nst_weights = tuple(float(w) for w in state["nst_weights"])

    # --- sampling ----------------------------------------------------------------------------------------

    def sample_input(self, images: torch.Tensor) -> torch.Tensor:
        return self.fit(images, False)  # centre crops

    def set_sample_inputs(self, batch: dict[str, torch.Tensor]) -> None:
        super().set_sample_inputs(batch)
        if self.nst is not None:
            self._calibrate_nst(*self._sample)

    def _calibrate_nst(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """lambda_c and lambda_s not given: each NST term weighs NST_TERM on the sample images through the
        initial generators (the same images on every rank, so DDP ranks agree)."""
        if None not in self.nst_weights:
            return
        assert self.nst is not None
        with torch.no_grad():
            fake_b, fake_a = self.modules["G_A"](self.precision.tensor(a)), self.modules["G_B"](self.precision.tensor(b))
            c_a, s_a = self.nst(fake_b, a, b)
            c_b, s_b = self.nst(fake_a, b, a)
        content, style = float(c_a + c_b) / 2, float(s_a + s_b) / 2
        given_c, given_s = self.nst_weights
        self.nst_weights = (given_c if given_c is not None else NST_TERM / max(content, 1e-12),
                            given_s if given_s is not None else NST_TERM / max(style, 1e-12))

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Per row: A, G_A(A), G_B(G_A(A)), B, G_B(B), G_A(G_B(B))."""
        a, b = (self.precision.tensor(x) for x in self.sample_pair())
        with self.precision.autocast():
            fake_b, rec_a, fake_a, rec_b = cycle(self.modules["G_A"], self.modules["G_B"], a, b)
        columns = [a, fake_b, rec_a, b, fake_a, rec_b]
        return torch.stack([c.float() for c in columns], dim=1).flatten(0, 1)


# --- `facegan train cycle-gan` ------------------------------------------------------------------------------

def configure(values: dict[str, Any]) -> TrainPlan:
    """`facegan train cycle-gan` option values -> the model configuration, the A and B data, and the length."""
    data = resolve_domains(values.get("data"), values.get("data_a"), values.get("data_b"), values.get("split"))
    config = resolve_config("cycle-gan", values.get("preset"), registry.get_family("cycle-gan").config.given(values))
    if values.get("beta1") is not None or values.get("beta2") is not None:
        config["betas"] = [values.get("beta1") if values.get("beta1") is not None else config["betas"][0],
                           values.get("beta2") if values.get("beta2") is not None else config["betas"][1]]
    preset = resolve_config("cycle-gan", values.get("preset"))
    if values.get("resolution") is not None and values.get("load_size") is None:
        # Keep the preset's jitter ratio (junyanz: 286/256, e.g. 143 for 128 crops; thesis64: none).
        config["load_size"] = round(int(values["resolution"]) * preset["load_size"] / preset["resolution"])
    crop, load = int(config["resolution"]), int(config["load_size"])
    if load < crop:
        raise UsageProblem(f"--load-size {load} is smaller than the {crop}x{crop} crops.",
                           f"Pass --load-size {crop} or more (junyanz: 286 for 256 crops).")
    try:
        check_config(config)
    except ValueError as exc:
        raise FaceganError(f"This CycleGAN configuration cannot be trained: {exc}.", "Change the option named.") from exc
    if int(config["batch"]) % int(config["pack"]):
        raise UsageProblem(f"--batch {config['batch']} is not a multiple of --pack {config['pack']}: PacGAN packs "
                           "whole groups of images.", f"Pass --batch {config['pack']} (or a multiple of it).")
    # The options of CycleGAN+NST: those whose help starts "nst:" (models.cyclegan.CycleGANConfig).
    nst_options = [opt.flag for opt in registry.get_family("cycle-gan").config.options()
                   if opt.help.startswith("nst:") and values.get(opt.name) is not None]
    if config["identity_mode"] == "nst":
        # The VGG19 file is resolved now: missing weights fail before any data is read, naming the file.
        resolved = W.resolve("vgg19", Path(values["vgg_weights"]) if values.get("vgg_weights") else None)
        config.update(vgg_weights=str(resolved.path.resolve()) if values.get("vgg_weights") else None,
                      vgg_sha256=resolved.sha256, lambda_content=values.get("lambda_content"),
                      lambda_style=values.get("lambda_style"))
        if values.get("vgg_pool") is not None:
            config["vgg_pool"] = values["vgg_pool"]
    elif nst_options:
        raise FaceganError(f"{', '.join(nst_options)} apply to --identity-mode nst (CycleGAN+NST).",
                           "Add --identity-mode nst, or leave them out.")
    # The data stays on the device at the load size, or smaller when the images are (then upsampled per batch,
    # as J's Resize does): never below the crop.
    sizes = {stream: open_image_set(cfg["path"], split=cfg["split"]).resolution for stream, cfg in data.items()}
    config["data_resolution"] = min(load, *sizes.values())
    small = {s: r for s, r in sizes.items() if r < crop}
    if small:
        stream, res = next(iter(small.items()))
        raise FaceganError(
            f"The {stream} data at {data[stream]['path']} holds {res}x{res} images, smaller than the {crop}x{crop} "
            f"crops of this run (preset {config['preset']}).",
            f"Pass --resolution {res - res % 4} (--preset thesis64 is made for 64x64 images), or use larger images.",
        )
    steps, epochs = values.get("steps"), values.get("epochs")
    length = {} if steps or epochs else {"epochs": float(config["n_epochs"]) + float(config["n_epochs_decay"])}
    return TrainPlan(config, data, length)


_OPTIONS = (  # and the options of models.cyclegan.CycleGANConfig's fields
    *DOMAIN_OPTIONS,
    Opt("beta1", ("--beta1",), float, None, "Adam beta1 (0.5)."),
    Opt("beta2", ("--beta2",), float, None, "Adam beta2 (0.999)."),
)

TRAINING = TrainSpec(
    summary=(
        "Train CycleGAN (Zhu et al. 2017) as junyanz/pytorch-CycleGAN-and-pix2pix, or with seed 004's changes: "
        "unpaired translation between two image domains (photos <-> paintings).\n\n"
        "junyanz256 is junyanz's default (Resize 286, random crop 256, flips, 9 residual blocks, LSGAN, identity "
        "0.5, 50-image pools, batch 1, Adam 2e-4 for 100 epochs then linear decay over 100). thesis64 is seed "
        "004 at 64x64: 6 blocks, nearest resize-convolution, reflection padding, annealed noise on D's inputs "
        "and a TV loss (the last two weights are our defaults: the thesis gives none). Every variant is also an "
        "option: --upsample, --padding, --d-noise-std, --lambda-tv, --identity-mode, --pack (PacGAN). "
        "Use 9 blocks for 256 px and up, 6 for 128 px and below.\n\n"
        "Data: --data-a/--data-b (folders, zips, prepared datasets) or --data ROOT in junyanz's layout "
        "(trainA/ trainB/). Ctrl-C saves a checkpoint (with both history buffers) and exits 0; --resume continues "
        "bit for bit, with the learning rate the schedule gives at that step (--lr changes its base). Sample "
        "grids: per row A, G_A(A), G_B(G_A(A)), B, G_B(B), G_A(G_B(B)). Translate with `facegan translate`."
    ),
    example="facegan train cycle-gan --data datasets/photo2painting --out runs/cyclegan --preset thesis64",
    options=_OPTIONS,
    configure=configure,
    trainer=CycleGANTrainer,
    data_options=DOMAIN_DATA,
    data_root_option="data",
    loop_defaults={"mirror": True, "amp": True, "log_every": 100, "ckpt_every": 5000, "sample_every": 1000},
    loop_help={"epochs": "(default: --n-epochs + --n-epochs-decay, J's 200)"},
    resumable=RESUMABLE_LR,
    # thesis64's options, tiny: random 16x16 crops of images held at 20, 3-image pools (full after 2 steps).
    tiny={"preset": "thesis64", "resolution": 16, "load_size": 20, "ngf": 8, "ndf": 8, "n_blocks": 1,
          "n_layers_d": 2, "batch": 2, "pool_size": 3},
)
