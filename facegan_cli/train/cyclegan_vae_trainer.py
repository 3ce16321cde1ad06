"""`facegan train cycle-gan-vae`: seed 004's CycleGAN+VAE, stage 2 (specs/cyclegan.md 4).

The VAE of a `facegan train vae` run is loaded and frozen (eval mode, no gradients). Every step encodes
the A and B batches to their means z = mu(x), w = mu(y), then runs junyanz's CycleGAN step on codes (the
translation toolkit's losses, pools and schedule): fake_w = G_A(z), rec_z = G_B(fake_w), fake_z = G_B(w),
rec_w = G_A(fake_z); G: LSGAN(D_A(fake_w)) + LSGAN(D_B(fake_z)) + lambda_A |rec_z - z| + lambda_B |rec_w - w|
(+ identity on codes when asked); D_A / D_B on real codes and 50-code pools; one Adam per pair, J's linear
decay by epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facegan_cli.core.checkpoint import load_checkpoint
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.options import Opt
from facegan_cli.data.domains import resolve_domains
from facegan_cli.data.sources import open_image_set
from facegan_cli.models import registry
from facegan_cli.models.cyclegan import init_weights
from facegan_cli.models.cyclegan_vae import build_critic, build_translator, vae_module_names
from facegan_cli.models.loading import family_of
from facegan_cli.models.registry import resolve_config
from facegan_cli.models.vae import build_decoder, build_encoder
from facegan_cli.train.gan_objectives import gan_loss
from facegan_cli.train.spec import DOMAIN_DATA, DOMAIN_OPTIONS, RESUMABLE_LR, TrainPlan, TrainSpec
from facegan_cli.train.trainer import Images, Stream, TrainContext
from facegan_cli.train.translation import CycleTrainer, cycle


class LatentCycleGANTrainer(CycleTrainer):
    """The CycleGAN on codes; its pools hold codes (pool_A: domain A codes made by G_B, for D_B)."""

    family = "cycle-gan-vae"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.names = vae_module_names(config["vae_config"])

    def streams(self) -> dict[str, Stream]:
        return {"A": Images(), "B": Images()}

    def build(self, ctx: TrainContext) -> None:
        cfg = self.config
        # A new run reads the VAE run; a resumed one restores the copy in its own checkpoint right after this
        # (load_extra_state says so), so it does not need the VAE run any more.
        vae = load_checkpoint(cfg["vae"]) if Path(cfg["vae"]).exists() else None
        self._vae_ready = vae is not None
        saved = {"E": "E", "Dec": "G", "E_A": "E_A", "Dec_A": "G_A", "E_B": "E_B", "Dec_B": "G_B"}
        frozen: dict[str, nn.Module] = {}
        for enc, dec in self.names.values():
            for name, builder in ((enc, build_encoder), (dec, build_decoder)):
                net = builder(cfg["vae_config"])
                if vae is not None:
                    net.load_state_dict(vae.modules[saved[name]])
                frozen[name] = ctx.precision.module(net).eval().requires_grad_(False)
        gain = float(cfg["init_gain"])
        nets = {name: init_weights(builder(cfg), gain).to(ctx.device) for name, builder in
                (("G_A", build_translator), ("G_B", build_translator), ("D_A", build_critic), ("D_B", build_critic))}
        self.modules = {**nets, **frozen}
        self.set_networks(nets)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, domain: str) -> torch.Tensor:
        with self.precision.autocast():
            return self.modules[self.names[domain][0]](self.precision.tensor(images))[0].float()

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        mode = str(cfg["gan_mode"])
        G_A, G_B, D_A, D_B = (self.nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
        if not self._vae_ready:
            raise FaceganError(f"The VAE run {cfg['vae']} cannot be found.", "Pass --vae with the VAE run's place.")
        self._set_lr(step)
        z, w = self.encode(batch["A"], "A"), self.encode(batch["B"], "B")
        lambda_a, lambda_b, lambda_idt = (float(cfg[k]) for k in ("lambda_a", "lambda_b", "lambda_identity"))
        fake_w, rec_z, fake_z, rec_w = cycle(G_A, G_B, z, w)
        opt_g = self.optimizers["G"]
        with self.frozen_in_g_step(self.modules["D_A"]), self.frozen_in_g_step(self.modules["D_B"]):
            zero = torch.zeros((), device=z.device)
            idt_A = F.l1_loss(G_A(w), w) * lambda_b * lambda_idt if lambda_idt > 0 else zero
            idt_B = F.l1_loss(G_B(z), z) * lambda_a * lambda_idt if lambda_idt > 0 else zero
            loss_G_A = gan_loss(D_A(fake_w), True, mode)
            loss_G_B = gan_loss(D_B(fake_z), True, mode)
            cycle_A = F.l1_loss(rec_z, z) * lambda_a
            cycle_B = F.l1_loss(rec_w, w) * lambda_b
            loss_G = loss_G_A + loss_G_B + cycle_A + cycle_B + idt_A + idt_B
            opt_g.zero_grad(set_to_none=True)
            loss_G.backward()
        opt_g.step()
        opt_d = self.optimizers["D"]
        opt_d.zero_grad(set_to_none=True)
        pooled_w = self.pool_B.query(fake_w)
        loss_D_A = (gan_loss(D_A(w), True, mode) + gan_loss(D_A(pooled_w), False, mode)) * 0.5
        loss_D_A.backward()
        pooled_z = self.pool_A.query(fake_z)
        loss_D_B = (gan_loss(D_B(z), True, mode) + gan_loss(D_B(pooled_z), False, mode)) * 0.5
        loss_D_B.backward()
        opt_d.step()
        self._set_lr(step + 1)
        return {"loss_G": loss_G.detach(), "G_A": loss_G_A.detach(), "G_B": loss_G_B.detach(),
                "cycle_A": cycle_A.detach(), "cycle_B": cycle_B.detach(), "idt_A": idt_A.detach(),
                "idt_B": idt_B.detach(), "D_A": loss_D_A.detach(), "D_B": loss_D_B.detach()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._vae_ready = True  # the checkpoint's frozen VAE weights were restored with the other modules
        super().load_extra_state(state)

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Per row: A, Dec(G_A(z)), Dec(G_B(G_A(z))), B, Dec(G_B(w)), Dec(G_A(G_B(w)))."""
        a, b = self.sample_pair()
        za, wb = self.encode(a, "A"), self.encode(b, "B")
        dec_a, dec_b = self.modules[self.names["A"][1]], self.modules[self.names["B"][1]]
        with self.precision.autocast():
            fake_w, rec_z, fake_z, rec_w = cycle(self.modules["G_A"], self.modules["G_B"], za, wb)
            columns = [a, dec_b(fake_w), dec_a(rec_z), b, dec_a(fake_z), dec_b(rec_w)]
        return torch.stack([c.float() for c in columns], dim=1).flatten(0, 1)


def configure(values: dict[str, Any]) -> TrainPlan:
    if values.get("vae") is None:
        raise FaceganError("cycle-gan-vae translates between the codes of a trained VAE, and no --vae was given.",
                           "Train one first (`facegan train vae --data ... --out runs/vae`) and pass --vae runs/vae.")
    vae = load_checkpoint(values["vae"])
    family, vae_config = family_of(vae)
    if family.name != "vae":
        raise FaceganError(f"--vae {values['vae']} is a {family.name} checkpoint, not a VAE.",
                           "Pass a run of `facegan train vae`.")
    data = resolve_domains(values.get("data"), values.get("data_a"), values.get("data_b"), values.get("split"))
    config = resolve_config("cycle-gan-vae", values.get("preset"), registry.get_family("cycle-gan-vae").config.given(values))
    config.update(vae=str(vae.path.resolve()), vae_step=vae.step, vae_config=dict(vae_config),
                  z_dim=int(vae_config["z_dim"]), resolution=int(vae_config["resolution"]))
    res = config["resolution"]
    for stream, cfg in data.items():
        found = open_image_set(cfg["path"], split=cfg["split"]).resolution
        if found < res:
            raise FaceganError(f"The {stream} data at {cfg['path']} holds {found}x{found} images, smaller than the "
                               f"VAE's {res}x{res}.", "Train the VAE at a size the data has.")
    length = {} if values.get("steps") or values.get("epochs") else {
        "epochs": float(config["n_epochs"]) + float(config["n_epochs_decay"])}
    return TrainPlan(config, data, length)


TRAINING = TrainSpec(
    summary=(
        "Train seed 004's CycleGAN+VAE, stage 2: a CycleGAN between the codes of a frozen VAE (`facegan train vae`, "
        "stage 1).\n\n"
        "Translators G_A, G_B are residual MLPs on codes and the discriminators MLPs on codes (our DEFAULT "
        "architecture: the thesis gives none); LSGAN, 50-code pools, cycle L1 on codes (10), junyanz's optimisers "
        "and linear decay. An image is translated as Dec(G_A(mu(x))) (`facegan translate`). The checkpoint keeps "
        "the frozen VAE, so it works without the VAE run."
    ),
    example="facegan train cycle-gan-vae --vae runs/vae --data datasets/photo2painting --out runs/cg-vae",
    options=(
        Opt("vae", ("--vae",), Path, None, "The VAE: a run of `facegan train vae` (or one of its checkpoints)."),
        *DOMAIN_OPTIONS,
    ),  # and the options of models.cyclegan_vae.CycleGANVAEConfig's fields
    configure=configure,
    trainer=LatentCycleGANTrainer,
    data_options=DOMAIN_DATA,
    data_root_option="data",
    loop_defaults={"mirror": True, "log_every": 100, "ckpt_every": 5000, "sample_every": 1000},
    loop_help={"epochs": "(default: --n-epochs + --n-epochs-decay, 200)"},
    resumable=RESUMABLE_LR,
    tiny={"batch": 2, "pool_size": 3},  # the VAE run (--vae) decides the sizes: a tiny one makes it tiny
)
