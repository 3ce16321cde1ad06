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
  pools     J's ImagePool(50) per domain (train/translation.py): fills with the first 50 fakes, then per
            image, with probability 1/2 returns a stored fake and stores the new one in its place (Python's
            `random`, as J, so the same seed makes the same choices). Both pools are saved in every checkpoint.
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

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from facegan_cli.core import weights as W
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.options import Opt
from facegan_cli.data.domains import resolve_domains
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
from facegan_cli.train.gan_objectives import gan_loss, gradient_penalty
from facegan_cli.train.spec import DOMAIN_DATA, DOMAIN_OPTIONS, RESUMABLE_LR, TrainPlan, TrainSpec
from facegan_cli.train.trainer import Images, Stream, TrainContext
from facegan_cli.train.translation import CycleTrainer, crop_sizes, cycle, held_resolution, resize_and_crop
from facegan_cli.train.translation import ImagePool as ImagePool  # where the parity tests import it from
from facegan_cli.train.translation import lr_factor as lr_factor
from facegan_cli.transfer.style_losses import content_error, gram, style_error

# --- losses ---------------------------------------------------------------------------------------------


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Seed 004's TV loss (DTN form): mean over channels and pixels of sqrt(dx^2 + dy^2 + 1e-8), with dx and
    dy the differences to the right and lower neighbour (the last row and column have none)."""
    y = images.float()
    dx = y[:, :, :-1, 1:] - y[:, :, :-1, :-1]
    dy = y[:, :, 1:, :-1] - y[:, :, :-1, :-1]
    return torch.sqrt(dx.square() + dy.square() + 1e-8).mean()


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


# --- the trainer ------------------------------------------------------------------------------------------


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
        on the device; A and B are unpaired, so each stream draws its own crops."""
        load, crop = int(self.config["load_size"]), int(self.config["resolution"])
        return resize_and_crop([images], load, crop, random_crop)[0]

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
    crop, load = crop_sizes(config, values, resolve_config("cycle-gan", values.get("preset")))  # thesis64: no jitter
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
    config["data_resolution"] = held_resolution(
        data, crop, load, config["preset"],
        lambda res: f"Pass --resolution {res - res % 4} (--preset thesis64 is made for 64x64 images), or use larger images.")
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
