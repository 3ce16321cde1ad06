"""`facegan train stargan|ccagan|stargan-sagan`: the attribute editors of seed 000 (specs/ccagan.md).

The three commands share one set of options; each starts from its family's preset (stargan and
stargan-sagan: yunjey/stargan's CelebA settings; ccagan: seed 000's). They are added to the `train`
group of cli/train.py when this module is imported (cli/__init__.py does).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from facegan_cli.cli.common import (
    DebugOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    check_non_negative,
    check_positive,
    command,
)
from facegan_cli.cli.train import (
    ChannelsLastOpt,
    CkptEveryOpt,
    CompileOpt,
    DataChangedOkOpt,
    DataOpt,
    EpochsOpt,
    KeepOpt,
    LogEveryOpt,
    OutOpt,
    ResumeOpt,
    SampleEveryOpt,
    StepsOpt,
    TensorboardOpt,
    _loop_settings,
    _report,
    missing_data_or_out,
    resume_changes,
)
from facegan_cli.cli.train import app as train_app
from facegan_cli.core.errors import FaceganError
from facegan_cli.data.prepared import MANIFEST
from facegan_cli.data.sources import open_image_set
from facegan_cli.models.registry import resolve_config
from facegan_cli.models.stargan import CCA_PLACEMENTS, LOSSES
from facegan_cli.train.loop import run_training
from facegan_cli.train.stargan_recipe import recipe_factory

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


def _parse_attrs(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise FaceganError("--attrs is empty.", "Write it like --attrs Black_Hair,Blond_Hair,Brown_Hair,Male,Young.")
    if len(set(names)) != len(names):
        raise FaceganError(f"--attrs {text!r} names an attribute twice.", "List each attribute once.")
    return names


def _auto_d_repeat(resolution: int) -> int:
    """yunjey's 6 stride-2 D layers, fewer when the resolution is too small for them."""
    repeat = 6
    while repeat > 1 and (resolution % 2**repeat or resolution < 2**repeat):
        repeat -= 1
    return repeat


def _training_split(data: Path, split: str | None, protocol: str) -> str:
    if protocol not in ("stargan", "celeba"):
        raise FaceganError(f"Unknown --split-protocol {protocol!r}.", "Use stargan or celeba.")
    if split is not None:
        return split
    if not (data / MANIFEST).exists():
        return "all"  # a folder or zip of images has no partitions
    return "stargan-train" if protocol == "stargan" else "train"


def _default_resolution(data: Path, split: str, preset_resolution: int) -> int:
    found = open_image_set(data, split=split).resolution
    return min(found, preset_resolution)


_PLACEMENT_HELP = "ccagan: CCA modules before every G conv + D's first (all), G's first three + D's (encoder), or none."
_REGISTERED: list[bool] = []


def _make_command(family: str) -> Callable[..., None]:
    def train_family(
        data: DataOpt = None,
        out: OutOpt = None,
        preset: Annotated[str | None, typer.Option(help="Settings of one source (default: the family's).")] = None,
        attrs: Annotated[str | None, typer.Option(
            help="Comma-separated attribute names to train on, any of CelebA's 40 (default: Black_Hair,"
            "Blond_Hair,Brown_Hair,Male,Young). Hair colours among them are edited as one exclusive group.")] = None,
        steps: StepsOpt = None,
        epochs: EpochsOpt = None,
        batch: Annotated[int | None, typer.Option(min=1, help="Batch size (stargan: 16; ccagan: 32).")] = None,
        lr: Annotated[float | None, typer.Option(
            callback=check_positive, help="G's Adam learning rate (1e-4). With --resume: from then on.")] = None,
        d_lr: Annotated[float | None, typer.Option(
            "--d-lr", callback=check_positive, help="D's Adam learning rate (1e-4). With --resume: from then on.")] = None,
        beta1: Annotated[float | None, typer.Option(help="Adam beta1 (0.5).")] = None,
        beta2: Annotated[float | None, typer.Option(help="Adam beta2 (0.999).")] = None,
        loss: Annotated[str | None, typer.Option(
            help=f"Adversarial loss: {', '.join(LOSSES)} (default wgan-gp; bce = log-likelihood, no penalty).")] = None,
        n_critic: Annotated[int | None, typer.Option("--n-critic", min=1, help="D updates per G update (5).")] = None,
        lambda_cls: Annotated[float | None, typer.Option("--lambda-cls", callback=check_non_negative, help="Attribute loss weight (1).")] = None,
        lambda_rec: Annotated[float | None, typer.Option(
            "--lambda-rec", callback=check_non_negative, help="Reconstruction loss weight (stargan: 10; ccagan: 1); 0 = the ablation.")] = None,
        lambda_gp: Annotated[float | None, typer.Option("--lambda-gp", callback=check_non_negative, help="Gradient penalty weight (10).")] = None,
        decay_steps: Annotated[int | None, typer.Option(
            "--decay-steps", min=0, help="Steps over which the rate decays linearly to 0 at the end (default: half the run).")] = None,
        cca_placement: Annotated[str | None, typer.Option("--cca-placement", help=_PLACEMENT_HELP)] = None,
        resolution: Annotated[int | None, typer.Option(
            min=1, help="Image size (default: the data's, at most 128; smaller data is never upsampled).")] = None,
        g_width: Annotated[int | None, typer.Option("--g-width", min=1, help="G's first conv width (64).")] = None,
        d_width: Annotated[int | None, typer.Option("--d-width", min=1, help="D's first conv width (64).")] = None,
        g_repeat: Annotated[int | None, typer.Option("--g-repeat", min=0, help="G's residual blocks (6).")] = None,
        d_repeat: Annotated[int | None, typer.Option(
            "--d-repeat", min=1, help="D's stride-2 convs (6; fewer when the resolution needs it).")] = None,
        split_protocol: Annotated[str, typer.Option(
            "--split-protocol", help="Training rows of a prepared CelebA: stargan (all but yunjey's 1999-image test "
            "set, random.seed(1234)) or celeba (the official train partition). Folders and zips use every image.")
        ] = "stargan",
        split: Annotated[str | None, typer.Option(
            help="An explicit split instead: train, valid, test, all, stargan-train or stargan-test.")] = None,
        mirror: Annotated[bool, typer.Option("--mirror/--no-mirror", help="Random horizontal flips (on the device).")] = True,
        seed: Annotated[int, typer.Option(help="Seed of weights, targets, noise and data order.")] = 0,
        log_every: LogEveryOpt = 100,
        ckpt_every: CkptEveryOpt = 5000,
        sample_every: SampleEveryOpt = 1000,
        keep: KeepOpt = 3,
        amp: Annotated[bool, typer.Option(help="bf16 autocast on CUDA (ignored on CPU).")] = False,
        channels_last: ChannelsLastOpt = True,
        compile_: CompileOpt = False,
        tensorboard: TensorboardOpt = None,
        resume: ResumeOpt = None,
        data_changed_ok: DataChangedOkOpt = False,
        force: ForceOpt = False,
        device: DeviceOpt = "auto",
        json_: JsonOpt = False,
        quiet: QuietOpt = False,
        debug: DebugOpt = False,
    ) -> None:
        factory = recipe_factory(family)
        if resume is not None:
            settings = _loop_settings(steps, epochs, seed, log_every, ckpt_every, sample_every, keep, mirror, amp,
                                      channels_last, compile_, tensorboard)
            changes = resume_changes({"lr": lambda v: {"lr": v}, "d_lr": lambda v: {"d_lr": v}})
            _report(run_training(factory, family, {}, {}, settings, None, resume=resume, device=device,
                                 changes=changes), json_)
            return
        if data is None or out is None:
            raise missing_data_or_out(family, "data/celeba-128-attrs")
        if loss is not None and loss not in LOSSES:
            raise FaceganError(f"Unknown --loss {loss!r}.", f"Use one of: {', '.join(LOSSES)}.")
        if cca_placement is not None:
            if family != "ccagan":
                raise FaceganError(f"--cca-placement applies to ccagan, not {family}.", "Leave it out.")
            if cca_placement not in CCA_PLACEMENTS:
                raise FaceganError(f"Unknown --cca-placement {cca_placement!r}.", f"Use one of: {', '.join(CCA_PLACEMENTS)}.")
        split = _training_split(data, split, split_protocol)
        config = resolve_config(family, preset, {
            "attrs": _parse_attrs(attrs), "batch": batch, "lr": lr, "d_lr": d_lr, "loss": loss, "n_critic": n_critic,
            "lambda_cls": lambda_cls, "lambda_rec": lambda_rec, "lambda_gp": lambda_gp, "decay_steps": decay_steps,
            "cca_placement": cca_placement, "g_width": g_width, "d_width": d_width, "g_repeat": g_repeat,
        })
        if beta1 is not None or beta2 is not None:
            config["betas"] = [beta1 if beta1 is not None else config["betas"][0],
                               beta2 if beta2 is not None else config["betas"][1]]
        config["resolution"] = resolution or _default_resolution(data, split, int(config["resolution"]))
        config["d_repeat"] = d_repeat or _auto_d_repeat(int(config["resolution"]))
        res, rep = int(config["resolution"]), int(config["d_repeat"])
        if res % 2**rep or res < 2**rep:
            raise FaceganError(f"--resolution {res} does not allow {rep} stride-2 discriminator convs.",
                               f"Pass --d-repeat {_auto_d_repeat(res)} or a resolution divisible by {2**rep}.")
        if res % 4:
            raise FaceganError(f"--resolution {res} is not a multiple of 4 (G halves it twice).", "Use e.g. 128.")
        # Length: --steps or --epochs when given, else the preset's (stargan 200k steps, ccagan 20 epochs).
        if steps is None and epochs is None:
            steps, epochs = config.get("steps"), config.get("epochs")
        config["steps"] = steps if epochs is None else None
        settings = _loop_settings(steps, epochs, seed, log_every, ckpt_every, sample_every, keep, mirror, amp,
                                  channels_last, compile_, tensorboard)
        data_cfg = {"path": str(data), "split": split}
        result = run_training(factory, family, config, data_cfg, settings, out, force=force, device=device)
        _report(result, json_)

    return train_family


def register() -> None:
    """Add the three commands to the `train` group (once)."""
    if _REGISTERED:
        return
    _REGISTERED.append(True)
    for family in ("stargan", "ccagan", "stargan-sagan"):
        fn: Any = command(_make_command(family))
        fn.__name__ = f"train_{family.replace('-', '_')}"
        train_app.command(
            family,
            help=f"{_SUMMARIES[family]}\n\n{_COMMON_HELP}",
            epilog=f"Example: facegan prepare celeba --src ~/data/CelebA --out data/celeba-128-attrs --recipe "
            f"celeba-128-attrs && facegan train {family} --data data/celeba-128-attrs --out runs/{family}",
        )(fn)

