"""pix2pix's update step as junyanz's Pix2PixModel.optimize_parameters (`facegan train pix2pix`).

Every step (J = junyanz/pytorch-CycleGAN-and-pix2pix):
  data      pairs: streams A and B in one order (row i of both is one pair), flipped together by the loop
            (--mirror, on by default) and, on the device, resized to `load_size` (bicubic) and randomly
            cropped to `resolution` with ONE draw of offsets per pair (J's aligned dataset: get_params once
            for A and B; train/translation.resize_and_crop). --direction BtoA swaps the sides.
  forward   fake_B = G(real_A) (G in training mode: dropout samples, batch norm on the batch's statistics).
  D update  0.5 [GAN(D(pool(real_A, fake_B)), fake) + GAN(D(real_A, real_B), real)], D conditional on the
            input: (input, output) stacked on the channels, fake first (J's order, which batch norm's running
            statistics see); the pool is J's ImagePool of pairs, size 0 (off) in his pix2pix.
  G update  (D's weights frozen) GAN(D(real_A, fake_B), real) + lambda_L1 |fake_B - real_B|.
  GAN       vanilla (BCE with logits, J's pix2pix default), lsgan or wgangp (no penalty), J's GANLoss.
  lr        J's linear rule by epoch (100 epochs, then 100 of decay), from the step alone (exact resume).
Sample grids: per row the input, G(input) in inference mode, the true target.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from facegan_cli.core.errors import FaceganError
from facegan_cli.data.pairs import resolve_pairs
from facegan_cli.models import registry
from facegan_cli.models.config import checked
from facegan_cli.models.cyclegan import init_weights
from facegan_cli.models.pix2pix import FAMILY, build_discriminator, build_generator, check_config
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.gan_objectives import gan_loss
from facegan_cli.train.spec import DOMAIN_DATA, PAIR_OPTIONS, RESUMABLE_LR, TrainPlan, TrainSpec
from facegan_cli.train.trainer import Images, Stream, TrainContext
from facegan_cli.train.translation import (
    SAMPLE_ROWS,
    EpochScheduled,
    ImagePool,
    crop_sizes,
    held_resolution,
    resize_and_crop,
)


class Pix2PixTrainer(EpochScheduled):
    family = FAMILY
    generator_key = "G"
    grid_columns = 3

    def __init__(self, config: dict[str, Any]) -> None:
        check_config(config)
        super().__init__(config)
        self.pool = ImagePool(int(config["pool_size"]))  # (input, fake) pairs for D
        self._sample: tuple[torch.Tensor, torch.Tensor] | None = None

    def streams(self) -> dict[str, Stream]:
        held = int(self.config["data_resolution"])
        return {"A": Images(resolution=held), "B": Images(resolution=held, order_of="A")}

    def build(self, ctx: TrainContext) -> None:
        cfg = self.config
        gain = float(cfg["init_gain"])
        # J's order: G built and initialised, then D (the same seed, the same weights).
        G = ctx.precision.module(init_weights(build_generator(cfg), gain))
        D = ctx.precision.module(init_weights(build_discriminator(cfg), gain))
        self.modules = {"G": G, "D": D}
        self.G, self.D = G, D  # what the step calls (DDP / compile may wrap them)
        betas, lr = tuple(cfg["betas"]), float(cfg["lr"])
        self.optimizers = {"G": torch.optim.Adam(G.parameters(), lr=lr, betas=betas),
                           "D": torch.optim.Adam(D.parameters(), lr=lr, betas=betas)}

    def wrap_networks(self, wrap: Any) -> None:
        self.G, self.D = wrap(self.G), wrap(self.D)

    def pair(self, batch: dict[str, torch.Tensor], random_crop: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) of the step: A and B cropped alike, in the trained direction."""
        a, b = resize_and_crop([batch["A"], batch["B"]], int(self.config["load_size"]), int(self.config["resolution"]),
                               random_crop)
        return (a, b) if self.config["direction"] == "AtoB" else (b, a)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        mode = str(self.config["gan_mode"])
        self._set_lr(step)
        real_A, real_B = (self.precision.tensor(x) for x in self.pair(batch))
        with self.precision.autocast():
            fake_B = self.G(real_A)

        opt_d = self.optimizers["D"]
        opt_d.zero_grad(set_to_none=True)
        fake_AB = self.pool.query(torch.cat((real_A, fake_B), 1)).to(real_A.dtype)
        with self.precision.autocast():
            loss_D_fake = gan_loss(self.D(fake_AB.detach()), False, mode)
            loss_D_real = gan_loss(self.D(torch.cat((real_A, real_B), 1)), True, mode)
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_D.backward()
        opt_d.step()

        opt_g = self.optimizers["G"]
        with self.frozen_in_g_step(self.modules["D"]):
            with self.precision.autocast():
                loss_G_GAN = gan_loss(self.D(torch.cat((real_A, fake_B), 1)), True, mode)
            loss_G_L1 = F.l1_loss(fake_B.float(), real_B.float()) * float(self.config["lambda_l1"])
            loss_G = loss_G_GAN + loss_G_L1
            opt_g.zero_grad(set_to_none=True)
            loss_G.backward()
        opt_g.step()
        self._set_lr(step + 1)
        return {"loss_G": loss_G.detach(), "G_GAN": loss_G_GAN.detach(), "G_L1": loss_G_L1.detach(),
                "D_real": loss_D_real.detach(), "D_fake": loss_D_fake.detach()}

    # --- state and samples ----------------------------------------------------------------------------------

    def extra_state(self) -> dict[str, Any]:
        return {"pool": self.pool.state()} if self.pool.size else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "pool" in state:
            self.pool.load(state["pool"], self.device)

    def set_sample_inputs(self, batch: dict[str, torch.Tensor]) -> None:
        k = min(SAMPLE_ROWS, batch["A"].shape[0])
        source, target = self.pair({name: batch[name][:k] for name in ("A", "B")}, random_crop=False)
        self._sample = (source.clone(), target.clone())

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Per row: the input, G(input) as `facegan translate` runs it (inference mode), the true target."""
        if self._sample is None:
            raise FaceganError("No sample pairs were handed to the trainer.", "This is a facegan bug.")
        source, target = self._sample
        G = self.modules["G"]
        was_training = G.training
        G.eval()
        try:
            with self.precision.autocast():
                made = G(self.precision.tensor(source)).float()
        finally:
            G.train(was_training)
        return torch.stack([source.float(), made, target.float()], dim=1).flatten(0, 1)


# --- `facegan train pix2pix` --------------------------------------------------------------------------------


def configure(values: dict[str, Any]) -> TrainPlan:
    """Option values -> the model configuration, the pairs (streams A and B) and the run's length."""
    family = registry.get_family(FAMILY)
    config = resolve_config(FAMILY, values.get("preset"), family.config.given(values))
    preset = resolve_config(FAMILY, values.get("preset"))
    if values.get("netg") == "unet_128" and values.get("resolution") is None and preset["netg"] != "unet_128":
        config["resolution"] = 128  # junyanz's unet_128 is made for 128 px crops
    crop, load = crop_sizes(config, values, preset)
    checked(check_config, config, "pix2pix", "trained")
    data, _ = resolve_pairs(values)  # after the options: a wrong value is reported before any data is read
    config["data_resolution"] = held_resolution(
        data, crop, load, config["preset"],
        lambda res: "Use larger images, or smaller crops: --netg resnet_9blocks (any multiple of 4) with --resolution.")
    steps, epochs = values.get("steps"), values.get("epochs")
    length = {} if steps or epochs else {"epochs": float(config["n_epochs"]) + float(config["n_epochs_decay"])}
    return TrainPlan(config, data, length)


TRAINING = TrainSpec(
    summary=(
        "Train pix2pix (Isola et al. 2017) as junyanz/pytorch-CycleGAN-and-pix2pix: paired translation (photos -> "
        "their paintings, maps -> aerial photos, ...).\n\n"
        "junyanz256 is junyanz's default: U-Net G (unet_256) with batch norm and dropout, the 70x70 PatchGAN D on the "
        "(input, output) pair, vanilla GAN + 100 x L1 to the true target, Adam 2e-4 (beta1 0.5), batch 1, 100 epochs "
        "then 100 of linear decay, Resize 286 + random crop 256 + flips, the same for both images of a pair. "
        "junyanz128: unet_128 at 128 px.\n\n"
        "Data: --data ROOT in junyanz's aligned layout (train/ of A|B images side by side, his pix2pix datasets), "
        "from `facegan prepare pairs` (trainA/ trainB/ with the same file names) or `prepare synthetic --style "
        "painting` (trainA/ + truth/trainA/), or --data-a/--data-b matched by file name. --direction BtoA learns "
        "B -> A. Ctrl-C "
        "saves a checkpoint and exits 0; --resume continues bit for bit. Translate with `facegan translate` "
        "(inference mode as junyanz's test.py --eval; --stochastic: dropout on, as his test.py); score held-out pairs "
        "with `facegan eval translation` (L1, PSNR, SSIM to the true targets)."
    ),
    example="facegan train pix2pix --data datasets/facades --direction BtoA --out runs/facades",
    options=PAIR_OPTIONS,  # and the options of models.pix2pix.Pix2PixConfig's fields
    configure=configure,
    trainer=Pix2PixTrainer,
    data_options=DOMAIN_DATA,
    data_root_option="data",
    loop_defaults={"mirror": True, "log_every": 100, "ckpt_every": 5000, "sample_every": 1000},
    loop_help={"epochs": "(default: --n-epochs + --n-epochs-decay, J's 200)", "mirror": "Pairs are flipped together."},
    resumable=RESUMABLE_LR,
    # A ResNet G (any multiple of 4) at 16 px, random crops of 20 px pairs.
    tiny={"netg": "resnet_6blocks", "resolution": 16, "load_size": 20, "ngf": 4, "ndf": 4, "n_layers_d": 2,
          "batch": 2},
)
