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

from typing import Any

import torch
import torch.nn.functional as F

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.options import Opt
from facegan_cli.data.sources import open_image_set
from facegan_cli.models import registry
from facegan_cli.models.registry import build_discriminator, build_generator, resolve_config
from facegan_cli.models.stargan import (
    CCA_PLACEMENTS,
    LOSSES,
    auto_d_repeat,
    create_labels,
    instance_statistics,
)
from facegan_cli.train.attribute_options import ATTRS_OPTION, PROTOCOL_OPTION, parse_attrs, protocol_splits
from facegan_cli.train.gan_objectives import bce_fake, bce_real, gradient_penalty
from facegan_cli.train.spec import DATA_OPTION, RESUMABLE_LR, TrainPlan, TrainSpec
from facegan_cli.train.trainer import Images, Labels, Stream, TrainContext, Trainer

SAMPLE_INPUTS = 8  # rows of a training sample grid: input, then one column per attribute target


def classification_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """yunjey's CelebA classification loss: BCE-with-logits summed over attributes, / batch size."""
    return F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="sum") / logits.shape[0]


def decayed_lr(base: float, step: int, total: int, decay_steps: int) -> float:
    """The rate for the update after `step` updates: base, then linear to 0 over the last `decay_steps`.

    yunjey subtracts base/decay every 1000 iterations and ends at 1e-4 - 1e-4/100; here the rate falls
    every step and is exactly 0 after the last one (lr(total) = 0), as the paper describes.
    """
    if decay_steps <= 0 or total <= 0:
        return base
    remaining = max(total - step, 0)
    return base * min(1.0, remaining / decay_steps)



class StarGANTrainer(Trainer):
    generator_key = "G"

    def __init__(self, config: dict[str, Any], family: str = "") -> None:
        super().__init__(config)
        self.family = family  # the loop names the family it trains
        if config["loss"] not in ("wgan-gp", "bce"):
            raise FaceganError(f"Unknown loss {config['loss']!r}.", "Use --loss wgan-gp or --loss bce.")
        self.total_steps = int(config.get("steps") or 0)
        self.grid_columns = len(config["attrs"]) + 1
        self._sample: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def z_dim(self) -> int:
        return 0  # a translation model: the loop's fixed latents are empty, grids use fixed real images

    def streams(self) -> dict[str, Stream]:
        return {"images": Images(), "labels": Labels(of="images", columns=tuple(self.config["attrs"]))}

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

    def wrap_networks(self, wrap: Any) -> None:
        self.G, self.D = wrap(self.G), wrap(self.D)

    def lr_at(self, step: int) -> tuple[float, float]:
        """(G rate, D rate) for the update after `step` updates."""
        cfg = self.config
        return (decayed_lr(float(cfg["lr"]), step, self.total_steps, self.decay_steps),
                decayed_lr(float(cfg["d_lr"]), step, self.total_steps, self.decay_steps))

    def _set_lr(self, step: int) -> None:
        for opt, lr in zip((self.optimizers["G"], self.optimizers["D"]), self.lr_at(step)):
            for group in opt.param_groups:
                group["lr"] = lr

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        real, labels = batch["images"], batch["labels"]
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
            x_hat = u * real.detach() + (1 - u) * fake.detach().to(real.dtype)
            with self.precision.autocast():
                gp = gradient_penalty(lambda x: self.D_penalty(x)[0], x_hat).mean()
        else:
            d_adv = bce_real(src_real) + bce_fake(src_fake)
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
        with self.frozen_in_g_step(self.modules["D"]):
            with self.precision.autocast():
                fake = G(real, c_trg)
                src, cls = D(fake)
                rec = G(fake, c_org) if lambda_rec else None
            src = src.float()
            g_adv = -src.mean() if wgan else bce_real(src)
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

    def set_sample_inputs(self, batch: dict[str, torch.Tensor]) -> None:
        k = min(SAMPLE_INPUTS, batch["images"].shape[0])
        self._sample = (batch["images"][:k].clone(), batch["labels"][:k].float().clone())

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
            raise FaceganError("No sample images were handed to the trainer.", "This is a facegan bug.")
        return self.translate_grid(*self._sample)

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "value_range": [-1.0, 1.0]}


_SUMMARIES = {
    "stargan": (
        "Train StarGAN (Choi et al. 2018) as yunjey/stargan: multi-attribute face editing with one G.\n\n"
        "G(x, c) translates an image to target attributes c (the batch's own labels, permuted); D is a "
        "PatchGAN with a source and an attribute head. WGAN-GP (lambda 10), 5 D steps per G step, "
        "lambda_cls 1, lambda_rec 10, Adam 1e-4 (0.5, 0.999), batch 16, 200k steps with the rate decaying "
        "linearly to exactly 0 over the last half."
    ),
    "ccagan": (
        "Train CCA-GAN (seed 000): StarGAN with a cross-channel self-attention module before every conv of G "
        "and before D's first conv.\n\nSeed 000's settings: lambda_rec 1, batch 32, 20 epochs (10 at a fixed "
        "rate, then linear decay to 0), WGAN-GP with 5 D steps per G step (--loss bce is the paper's literal "
        "log-likelihood loss). --cca-placement encoder|none and --lambda-rec 0 give the ablations. The "
        "paper's mask vector is constant with CelebA alone and is omitted."
    ),
    "stargan-sagan": (
        "Train StarGAN + SAGAN self-attention (seed 000's baseline): SAGAN's block in G after the first "
        "up-sampling layer and in D after its second conv; otherwise yunjey/stargan's settings."
    ),
}
_COMMON_HELP = (
    "Data: a prepared dataset with attribute labels (`facegan prepare celeba --recipe celeba-128-attrs`: "
    "CenterCrop 178, Resize 128, as yunjey), or a folder/zip with labels.csv. Ctrl-C saves a checkpoint and "
    "exits 0; --resume continues bit for bit. Sample grids show fixed inputs and one column per attribute "
    "target (hair colours set exclusively, other attributes flipped)."
)
_OPTIONS = (
    DATA_OPTION,
    ATTRS_OPTION,
    Opt("beta1", ("--beta1",), float, None, "Adam beta1 (0.5)."),
    Opt("beta2", ("--beta2",), float, None, "Adam beta2 (0.999)."),
    PROTOCOL_OPTION,
    Opt("split", ("--split",), str, None,
        "An explicit split instead: train, valid, test, all, stargan-train or stargan-test."),
)  # and the options of models.stargan.StarGANConfig's fields


def configure(family: str, values: dict[str, Any]) -> TrainPlan:
    """`facegan train stargan|ccagan|stargan-sagan` option values -> model configuration, data and length."""
    loss, placement = values.get("loss"), values.get("cca_placement")
    if loss is not None and loss not in LOSSES:
        raise FaceganError(f"Unknown --loss {loss!r}.", f"Use one of: {', '.join(LOSSES)}.")
    if placement is not None:
        if family != "ccagan":
            raise FaceganError(f"--cca-placement applies to ccagan, not {family}.", "Leave it out.")
        if placement not in CCA_PLACEMENTS:
            raise FaceganError(f"Unknown --cca-placement {placement!r}.", f"Use one of: {', '.join(CCA_PLACEMENTS)}.")
    split, _ = protocol_splits(values["data"], values.get("split"), values.get("split_protocol", "stargan"))
    given = registry.get_family(family).config.given(values)
    config = resolve_config(family, values.get("preset"), {"attrs": parse_attrs(values.get("attrs")), **given})
    if values.get("beta1") is not None or values.get("beta2") is not None:
        config["betas"] = [values.get("beta1") if values.get("beta1") is not None else config["betas"][0],
                           values.get("beta2") if values.get("beta2") is not None else config["betas"][1]]
    found = open_image_set(values["data"], split=split).resolution
    config["resolution"] = values.get("resolution") or min(found, int(config["resolution"]))
    config["d_repeat"] = values.get("d_repeat") or auto_d_repeat(int(config["resolution"]))
    res, rep = int(config["resolution"]), int(config["d_repeat"])
    if res % 2**rep or res < 2**rep:
        raise UsageProblem(f"--resolution {res} does not allow {rep} stride-2 discriminator convs.",
                           f"Pass --d-repeat {auto_d_repeat(res)} or a resolution divisible by {2**rep}.")
    if res % 4:
        raise UsageProblem(f"--resolution {res} is not a multiple of 4 (G halves it twice).", "Use e.g. 128.")
    # Length: --steps or --epochs when given, else the preset's (stargan 200k steps, ccagan 20 epochs).
    steps, epochs = values.get("steps"), values.get("epochs")
    if steps is None and epochs is None:
        steps, epochs = config.get("steps"), config.get("epochs")
    config["steps"] = steps if epochs is None else None
    return TrainPlan(config, {"images": {"path": values["data"], "split": split}}, {"steps": steps, "epochs": epochs})


def _training(family: str) -> TrainSpec:
    return TrainSpec(
        summary=f"{_SUMMARIES[family]}\n\n{_COMMON_HELP}",
        example=f"facegan prepare celeba --src ~/data/CelebA --out data/celeba-128-attrs --recipe celeba-128-attrs "
        f"&& facegan train {family} --data data/celeba-128-attrs --out runs/{family}",
        options=_OPTIONS,
        configure=lambda values: configure(family, values),
        trainer=StarGANTrainer,
        loop_defaults={"log_every": 100, "ckpt_every": 5000, "sample_every": 1000, "mirror": True},
        loop_help={"steps": "(default: the preset's: stargan 200k; ccagan 20 epochs)"},
        resumable={**RESUMABLE_LR, "d_lr": lambda value: {"d_lr": value}},
        # G updated every second step (n_critic 2), so a run split in half resumes between G updates.
        tiny={"split_protocol": "celeba", "g_width": 8, "d_width": 8, "g_repeat": 1, "batch": 4, "n_critic": 2},
    )


TRAINING_STARGAN = _training("stargan")
TRAINING_CCAGAN = _training("ccagan")
TRAINING_STARGAN_SAGAN = _training("stargan-sagan")
