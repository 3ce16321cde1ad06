"""`facegan train FAMILY`: one command per model family, all on the generic loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from facegan_cli.cli.click_api import ParameterSource, UsageError, get_current_context
from facegan_cli.cli.common import (
    DebugOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    check_positive,
    command,
    emit_json,
    emit_line,
)
from facegan_cli.core.errors import FaceganError
from facegan_cli.data.sources import open_image_set
from facegan_cli.models.dcgan import PRESETS, apply_depth
from facegan_cli.models.progan import PRESETS as PROGAN_PRESETS
from facegan_cli.models.progan import apply_overrides as apply_progan_overrides
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.dcgan_recipe import make_recipe as make_dcgan
from facegan_cli.train.loop import LoopSettings, ResumeChanges, TrainResult, run_training
from facegan_cli.train.progan_recipe import make_recipe as make_progan
from facegan_cli.train.progan_schedule import ProganSchedule

app = typer.Typer(help="Train a model family: DCGAN, ProGAN, the attribute editors (StarGAN, CCA-GAN, StarGAN+SAGAN) and their classifier.", no_args_is_help=True)

DataOpt = Annotated[
    Path | None, typer.Option("--data", help="Prepared dataset dir, image folder or zip (not needed with --resume).")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Run directory to create.")]
ResumeOpt = Annotated[
    Path | None, typer.Option("--resume", help="Continue this run directory exactly where it stopped.")
]
StepsOpt = Annotated[int | None, typer.Option(
    "--steps", min=1, help="Total optimisation steps (default: dcgan 1000; stargan 200k; ccagan 20 epochs). "
    "With --resume: train longer.")]
EpochsOpt = Annotated[float | None, typer.Option(
    "--epochs", callback=check_positive, help="Train this many epochs instead of --steps.")]
DataChangedOkOpt = Annotated[bool, typer.Option(
    "--data-changed-ok", help="With --resume: continue although the dataset changed since the run started "
    "(recorded in config.json); without it such a resume is refused.")]

LogEveryOpt = Annotated[int, typer.Option("--log-every", min=1, help="Steps between metrics.jsonl lines.")]
CkptEveryOpt = Annotated[int, typer.Option("--ckpt-every", min=1, help="Steps between checkpoints.")]
SampleEveryOpt = Annotated[int, typer.Option("--sample-every", min=1, help="Steps between sample grids.")]
KeepOpt = Annotated[int, typer.Option("--keep", min=1, help="Checkpoints kept (newest).")]
TrainSeedOpt = Annotated[int, typer.Option("--seed", help="Seed of weights, noise and data order.")]
ChannelsLastOpt = Annotated[bool, typer.Option(help="channels_last memory format (CPU and CUDA).")]
CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the networks.")]
TensorboardOpt = Annotated[bool | None, typer.Option(
    "--tensorboard/--no-tensorboard", help="Log to TensorBoard (default: if installed).")]

# Options --resume applies (and records in config.json): the run's length and bookkeeping. The dataset
# may be named again with --data (moved: same fingerprint). Every other option is refused on resume.
_RESUMABLE_LOOP = ("steps", "epochs", "kimg", "log_every", "ckpt_every", "sample_every", "keep", "tensorboard")
_ANY_TIME = ("resume", "data", "data_changed_ok", "device", "json_", "quiet", "debug")


def _option_name(ctx: Any, name: str) -> str:
    for param in ctx.command.params:
        if param.name == name and param.opts:
            return max(param.opts, key=len)
    return name


def resume_changes(model: dict[str, Callable[[Any], dict[str, Any]]] | None = None) -> ResumeChanges:
    """What this `--resume` command line asks to change, from the options given on it.

    `model` maps the options a family lets a resume change (its learning rates) to the config entries
    they set. An option given that a resume cannot honour is refused (exit 2), never silently ignored.
    """
    model = model or {}
    ctx = get_current_context()
    given = [
        name for name in ctx.params
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    ]
    refused = [name for name in given if name not in (*_RESUMABLE_LOOP, *_ANY_TIME, *model)]
    if refused:
        names = ", ".join(_option_name(ctx, name) for name in refused)
        allowed = ", ".join(_option_name(ctx, n) for n in (*_RESUMABLE_LOOP, *model) if n in ctx.params)
        raise UsageError(
            f"{names} cannot change when a run is resumed: --resume continues the run exactly, with the settings "
            f"in its config.json. A resume may change {allowed} and the place of the same data (--data). Leave "
            f"{names} out, or start a new run with --out.",
            ctx,
        )
    changes = ResumeChanges(data_changed_ok=bool(ctx.params.get("data_changed_ok")))
    for name in given:
        if name in _RESUMABLE_LOOP:
            changes.train[name] = ctx.params[name]
        elif name in model:
            changes.model.update(model[name](ctx.params[name]))
        elif name == "data":
            changes.data_path = str(ctx.params[name])
    return changes


def missing_data_or_out(family: str, example_data: str) -> UsageError:
    return UsageError(
        f"`facegan train {family}` needs --data and --out (or --resume RUN_DIR). Example: facegan train {family} "
        f"--data {example_data} --out runs/{family}",
        get_current_context(),
    )


def _report(result: TrainResult, as_json: bool) -> None:
    if result.rank != 0:
        return
    if as_json:
        emit_json(result.to_json())
        return
    emit_line(str(result.run_dir))
    for path in (result.checkpoint, result.sample_grid):
        if path is not None:
            emit_line(str(path))


def _loop_settings(
    steps: int | None, epochs: float | None, seed: int, log_every: int, ckpt_every: int, sample_every: int,
    keep: int, mirror: bool, amp: bool, channels_last: bool, compile_: bool, tensorboard: bool | None,
) -> LoopSettings:
    return LoopSettings(
        steps=steps or 0, epochs=epochs, seed=seed, log_every=log_every, ckpt_every=ckpt_every,
        sample_every=sample_every, keep=keep, mirror=mirror, amp=amp, channels_last=channels_last,
        compile=compile_, tensorboard=tensorboard,
    )


@app.command(
    "dcgan",
    epilog="Example: facegan train dcgan --data data/celeba64 --out runs/dcgan --preset radford64 --epochs 5",
)
@command
def dcgan(
    data: DataOpt = None,
    out: OutOpt = None,
    preset: Annotated[str, typer.Option(help=f"Settings of one paper: {', '.join(PRESETS)}.")] = "radford64",
    steps: StepsOpt = None,
    epochs: EpochsOpt = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Batch size (preset: 128; keras64: 32).")] = None,
    lr: Annotated[float | None, typer.Option(
        callback=check_positive, help="Adam learning rate (preset: 2e-4; keras64: 1e-4). With --resume: from then on.")] = None,
    beta1: Annotated[float | None, typer.Option(help="Adam beta1 (preset: 0.5; keras64: 0.9).")] = None,
    width: Annotated[int | None, typer.Option(help="Filters of D's first layer (heikka32: 128).")] = None,
    g_width: Annotated[int | None, typer.Option(help="Filters of G's last hidden layer.")] = None,
    depth: Annotated[int | None, typer.Option(help="heikka32 variant: 4 = the 4-layer 512-wide version.")] = None,
    d_first_bn: Annotated[bool, typer.Option(help="BatchNorm on D's first layer (seed 001's literal reading).")] = False,
    split: Annotated[str, typer.Option(help="Split of a prepared dataset: train, valid, test or all.")] = "all",
    mirror: Annotated[bool, typer.Option(help="Random horizontal flips (done on the device).")] = False,
    seed: TrainSeedOpt = 0,
    log_every: LogEveryOpt = 50,
    ckpt_every: CkptEveryOpt = 500,
    sample_every: SampleEveryOpt = 500,
    keep: KeepOpt = 3,
    amp: Annotated[bool, typer.Option(help="bf16 autocast on CUDA (ignored on CPU).")] = True,
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
    """Train a DCGAN (radford64 = pytorch/examples, heikka32 = seed 001, keras64 = seed 003).

    keras64 follows the Keras CelebA DCGAN example that seed 003 paraphrases (the article names no
    numbers). Ctrl-C saves a checkpoint and exits 0; --resume continues bit for bit.
    """
    settings = _loop_settings(
        steps if steps is not None or epochs is not None or resume is not None else 1000,
        epochs, seed, log_every, ckpt_every, sample_every, keep, mirror, amp, channels_last, compile_, tensorboard,
    )
    if resume is not None:
        changes = resume_changes({"lr": lambda v: {"lr": v}})
        result = run_training(make_dcgan, "dcgan", {}, {}, settings, None, resume=resume, device=device,
                              changes=changes)
        _report(result, json_)
        return
    if data is None or out is None:
        raise missing_data_or_out("dcgan", "data/celeba64")
    overrides = {"batch": batch, "lr": lr, "width": width, "g_width": g_width, "d_first_bn": d_first_bn or None}
    config = resolve_config("dcgan", preset, overrides)
    if beta1 is not None:
        config["betas"] = [beta1, config["betas"][1]]
    try:
        config = apply_depth(config, depth)
    except ValueError as exc:
        raise FaceganError(f"--depth {depth}: {exc}.", "Use --depth 4 with heikka32 or radford64.") from exc
    data_cfg = {"path": str(data), "split": split}
    result = run_training(make_dcgan, "dcgan", config, data_cfg, settings, out, force=force, device=device)
    _report(result, json_)


_PROGAN_SUMMARY = (
    "Train a Progressive GAN (Karras et al. 2018; seed 002): grow 4x4 -> --resolution with WGAN-GP.\n\n"
    "Every phase (4x4, then a fade-in and a stabilisation per doubling) reads its level of a dataset prepared "
    "with --levels (a folder or zip of images is decoded once and box-halved). WGAN-GP (lambda 10, drift "
    "0.001), Adam (lr 1e-3, betas 0/0.99, eps 1e-8), equalised learning rate, pixel norm, minibatch stddev, "
    "generator EMA (samples and checkpoints sample from it). Ctrl-C saves a checkpoint and exits 0; --resume "
    "continues bit for bit, mid-fade-in included."
)

PROGAN_CHOICES = (
    "Where seed 002 is garbled, facegan follows specs/progan.md and the original code: pixel-norm epsilon "
    "1e-8 (the seed prints 10^8); G's first layer is a dense 512 -> 4x4x512 (the seed's \"Conv 4x4\"); D's "
    "last conv is 4x4 (the seed's \"Conv 1x1\" cannot hold 4.2M parameters); every D conv is LReLU(0.2) (the "
    "seed's \"linear\" is a typo); the paper preset's minibatch at 256 is 14 (the seed prints 6); the drift "
    "term is 0.001 * D(x)^2 (the seed's \"fourth term\"); minibatch stddev groups of 4 (v2) or 16 (paper); "
    "Adam state is reset at every phase start, as the original."
)


def _default_resolution(data: Path, split: str) -> int:
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


@app.command(
    "progan",
    help=f"{_PROGAN_SUMMARY}\n\n{PROGAN_CHOICES}",
    epilog="Example: facegan prepare celeba --src ~/data/CelebA --out data/celeba-progan --crop progan "
    "--size 128 --levels && facegan train progan --data data/celeba-progan --out runs/progan --preset v2",
)
@command
def progan(
    data: DataOpt = None,
    out: OutOpt = None,
    preset: Annotated[str, typer.Option(help=f"Settings of one source: {', '.join(PROGAN_PRESETS)} "
                                        "(v2 = the original code's single-GPU preset; paper = the paper's v1).")] = "v2",
    resolution: Annotated[int | None, typer.Option(
        help="Target resolution, a power of two from 4 to 1024 (default: the dataset's largest level).")] = None,
    phase_kimg: Annotated[float | None, typer.Option(
        "--phase-kimg", callback=check_positive, help="Thousands of real images per fade-in and per stabilisation phase (v2: 600; paper: 800).")] = None,
    kimg: Annotated[float | None, typer.Option(
        callback=check_positive, help="Length of training in thousands of images (default: until the target resolution has been "
        "stabilised for one phase; the original v2 CelebA-HQ run used 12000). With --resume: train longer.")] = None,
    batch: Annotated[int | None, typer.Option(
        min=1, help="One minibatch for every resolution (v2: 128 at 4-16, 64, 32, 16, 8, 4, 4 at 1024; paper: 16, "
        "then 14/6/3 at 256/512/1024).")] = None,
    lr: Annotated[float | None, typer.Option(
        callback=check_positive, help="Adam learning rate at every resolution (preset: 1e-3; v2 uses 1.5e-3 at 1024).")] = None,
    mbstd_group: Annotated[int | None, typer.Option(
        "--mbstd-group", min=1, help="Minibatch stddev group size (v2: 4; paper: 16, i.e. the whole minibatch); 1 = off.")] = None,
    max_channels: Annotated[int | None, typer.Option(
        "--max-channels", min=1, help="Cap on feature maps per layer (default 512; small values for quick tries and tests).")] = None,
    ema: Annotated[float, typer.Option(help="Decay of the generator's moving average used for samples.")] = 0.999,
    split: Annotated[str, typer.Option(help="Split of a prepared dataset: train, valid, test or all.")] = "all",
    mirror: Annotated[bool, typer.Option("--mirror/--no-mirror", help="Random horizontal flips (done on the device).")] = True,
    seed: TrainSeedOpt = 0,
    log_every: LogEveryOpt = 100,
    ckpt_every: CkptEveryOpt = 2000,
    sample_every: SampleEveryOpt = 2000,
    keep: KeepOpt = 3,
    amp: Annotated[bool, typer.Option(help="bf16 autocast on CUDA (ignored on CPU); see benchmarks/RESULTS.md.")] = False,
    channels_last: ChannelsLastOpt = True,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile each phase's layers.")] = False,
    tensorboard: TensorboardOpt = None,
    resume: ResumeOpt = None,
    data_changed_ok: DataChangedOkOpt = False,
    force: ForceOpt = False,
    device: DeviceOpt = "auto",
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Train a Progressive GAN (see _PROGAN_SUMMARY and PROGAN_CHOICES, shown by --help)."""
    if not 0.0 <= ema < 1.0:
        raise FaceganError(f"--ema {ema} must be in [0, 1).", "Use e.g. --ema 0.999 (the original's).")
    settings = _loop_settings(None, None, seed, log_every, ckpt_every, sample_every, keep, mirror, amp,
                              channels_last, compile_, tensorboard)
    settings.kimg = kimg
    if resume is not None:
        changes = resume_changes({"lr": lambda v: {"lr": v, "lr_by_resolution": {}}})
        result = run_training(make_progan, "progan", {}, {}, settings, None, resume=resume, device=device,
                              changes=changes)
        _report(result, json_)
        return
    if data is None or out is None:
        raise missing_data_or_out("progan", "data/celeba-progan")
    config = resolve_config("progan", preset, {"phase_kimg": phase_kimg, "mbstd_group": mbstd_group, "ema": ema})
    try:
        config = apply_progan_overrides(config, resolution or _default_resolution(data, split), max_channels)
    except ValueError as exc:
        raise FaceganError(f"--resolution/--max-channels: {exc}.", "Use a power of two from 4 to 1024.") from exc
    if batch is not None:
        config["batch_sizes"] = {r: batch for r in config["batch_sizes"]}
    if lr is not None:
        config["lr"], config["lr_by_resolution"] = lr, {}
    settings.kimg = kimg or ProganSchedule.from_config(config).schedule_images / 1000
    data_cfg = {"path": str(data), "split": split}
    result = run_training(make_progan, "progan", config, data_cfg, settings, out, force=force, device=device)
    _report(result, json_)
