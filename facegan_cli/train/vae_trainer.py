"""`facegan train vae`: the VAE of seed 004's CycleGAN+VAE, trained on both domains (stage 1).

Every step takes `batch` images of each domain (so the two are balanced, 64 images in all by default),
encodes them, draws a code by the reparameterisation z = mu + exp(logvar / 2) eps, decodes it, and
minimises reconstruction + beta * KL per image, averaged over the batch: reconstruction is the L1 (or, with
recon mse, the squared error) summed over each image's pixels, KL = 1/2 sum(exp(logvar) + mu^2 - 1 - logvar)
(specs/cyclegan.md 4: DEFAULTs; the thesis names VAE, L1/MSE and KL and nothing else). Adam 1e-3.
"""

from __future__ import annotations

from typing import Any

import torch

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.data.domains import resolve_domains
from facegan_cli.data.sources import open_image_set
from facegan_cli.models import registry
from facegan_cli.models.registry import resolve_config
from facegan_cli.models.vae import RECONS, build_decoder, build_encoder, kl_divergence
from facegan_cli.train.spec import DOMAIN_DATA, DOMAIN_OPTIONS, RESUMABLE_LR, TrainPlan, TrainSpec
from facegan_cli.train.trainer import Images, Stream, TrainContext, Trainer


def vae_loss(x: torch.Tensor, rec: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, recon: str,
             beta_kl: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, reconstruction, KL), each the per-image sum averaged over the batch."""
    diff = rec.float() - x.float()
    per_image = (diff.abs() if recon == "l1" else diff.square()).flatten(1).sum(1)
    kl = kl_divergence(mu.float(), logvar.float())
    return (per_image + beta_kl * kl).mean(), per_image.mean(), kl.mean()


class VAETrainer(Trainer):
    family = "vae"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        if config["recon"] not in RECONS:
            raise FaceganError(f"Unknown reconstruction loss {config['recon']!r}.", f"Use one of: {', '.join(RECONS)}.")
        self.per_domain = bool(config["per_domain"])
        self.generator_key = "G_A" if self.per_domain else "G"

    def streams(self) -> dict[str, Stream]:
        return {"A": Images(), "B": Images()}

    def build(self, ctx: TrainContext) -> None:
        cfg = self.config
        names = ("E_A", "G_A", "E_B", "G_B") if self.per_domain else ("E", "G")
        self.modules = {name: ctx.precision.module((build_encoder if name.startswith("E") else build_decoder)(cfg))
                        for name in names}
        self.nets = dict(self.modules)
        params = [p for net in self.modules.values() for p in net.parameters()]
        self.optimizers = {"VAE": torch.optim.Adam(params, lr=float(cfg["lr"]), betas=tuple(cfg["betas"]))}

    def wrap_networks(self, wrap: Any) -> None:
        self.nets = {name: wrap(net) for name, net in self.nets.items()}

    def _pass(self, x: torch.Tensor, enc: str, dec: str) -> tuple[torch.Tensor, ...]:
        with self.precision.autocast():
            mu, logvar = self.nets[enc](x)
            z = mu.float() + torch.exp(0.5 * logvar.float()) * torch.randn_like(mu, dtype=torch.float32)
            rec = self.nets[dec](z)
        return rec, mu, logvar

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        a, b = self.precision.tensor(batch["A"]), self.precision.tensor(batch["B"])
        if self.per_domain:
            parts = [(a, *self._pass(a, "E_A", "G_A")), (b, *self._pass(b, "E_B", "G_B"))]
            x = torch.cat([p[0] for p in parts])
            rec, mu, logvar = (torch.cat([p[k] for p in parts]) for k in (1, 2, 3))
        else:
            x = self.precision.tensor(torch.cat([a, b]))
            rec, mu, logvar = self._pass(x, "E", "G")
        loss, rec_loss, kl = vae_loss(x, rec, mu, logvar, str(cfg["recon"]), float(cfg["beta_kl"]))
        opt = self.optimizers["VAE"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach(), "recon": rec_loss.detach(), "kl": kl.detach()}

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "value_range": [-1.0, 1.0]}


def configure(values: dict[str, Any]) -> TrainPlan:
    data = resolve_domains(values.get("data"), values.get("data_a"), values.get("data_b"), values.get("split"))
    config = resolve_config("vae", values.get("preset"), registry.get_family("vae").config.given(values))
    res = int(config["resolution"])
    if res % 16 or res < 16:
        raise UsageProblem(f"--resolution {res} is not a multiple of 16.", "Use e.g. --resolution 64.")
    for stream, cfg in data.items():
        found = open_image_set(cfg["path"], split=cfg["split"]).resolution
        if found < res:
            raise FaceganError(f"The {stream} data at {cfg['path']} holds {found}x{found} images, smaller than the "
                               f"VAE's {res}x{res}.", f"Pass --resolution {found - found % 16} or use larger images.")
    length = {} if values.get("steps") or values.get("epochs") else {"epochs": 50.0}
    return TrainPlan(config, data, length)


TRAINING = TrainSpec(
    summary=(
        "Train the VAE of seed 004's CycleGAN+VAE on both image domains (stage 1; then `facegan train cycle-gan-vae "
        "--vae RUN`).\n\n"
        "The thesis names no architecture: a 4-conv encoder to a 128-d code and a resize-convolution decoder "
        "(2,656,867 parameters at 64x64), L1 reconstruction summed per image plus the KL term, Adam 1e-3, 32 "
        "images of each domain per step, 50 epochs: our DEFAULTs, each an option. A VAE run is a generator too: "
        "`facegan sample --ckpt RUN` decodes random codes."
    ),
    example="facegan train vae --data datasets/photo2painting --out runs/vae --resolution 64",
    options=(
        *DOMAIN_OPTIONS,
    ),  # and the options of models.vae.VAEConfig's fields
    configure=configure,
    trainer=VAETrainer,
    data_options=DOMAIN_DATA,
    data_root_option="data",
    loop_defaults={"mirror": True, "log_every": 100, "ckpt_every": 2000, "sample_every": 1000},
    loop_help={"epochs": "(default: 50)"},
    resumable=RESUMABLE_LR,
    tiny={"resolution": 16, "width": 4, "z_dim": 8, "batch": 4},
)
