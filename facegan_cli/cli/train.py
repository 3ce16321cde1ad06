"""`facegan train FAMILY`: one command per model family, all on the generic loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.cli.common import DebugOpt, DeviceOpt, ForceOpt, JsonOpt, QuietOpt, command, emit_json
from facegan_cli.core.errors import FaceganError
from facegan_cli.models.dcgan import PRESETS, apply_depth
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.dcgan_recipe import make_recipe as make_dcgan
from facegan_cli.train.loop import LoopSettings, TrainResult, run_training

app = typer.Typer(help="Train a model family (DCGAN now; ProGAN and attribute editors follow).", no_args_is_help=True)

DataOpt = Annotated[
    Path | None, typer.Option("--data", help="Prepared dataset dir, image folder or zip (not needed with --resume).")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Run directory to create.")]
ResumeOpt = Annotated[
    Path | None, typer.Option("--resume", help="Continue this run directory exactly where it stopped.")
]
StepsOpt = Annotated[int | None, typer.Option("--steps", help="Total optimisation steps (default 1000).")]
EpochsOpt = Annotated[float | None, typer.Option("--epochs", help="Train this many epochs instead of --steps.")]


def _report(result: TrainResult, as_json: bool) -> None:
    if result.rank != 0:
        return
    if as_json:
        emit_json(result.to_json())
        return
    typer.echo(str(result.run_dir))
    for path in (result.checkpoint, result.sample_grid):
        if path is not None:
            typer.echo(str(path))


def _loop_settings(
    steps: int | None, epochs: float | None, seed: int, log_every: int, ckpt_every: int, sample_every: int,
    keep: int, mirror: bool, amp: bool, channels_last: bool, compile_: bool, tensorboard: bool | None,
) -> LoopSettings:
    if steps is not None and steps < 1:
        raise FaceganError(f"--steps {steps} must be at least 1.", "Pass a positive number of steps.")
    for name, value in (("--log-every", log_every), ("--ckpt-every", ckpt_every), ("--sample-every", sample_every)):
        if value < 1:
            raise FaceganError(f"{name} {value} must be at least 1.", f"Pass a positive {name}.")
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
    batch: Annotated[int | None, typer.Option(help="Batch size (preset: 128; keras64: 32).")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate (preset: 2e-4; keras64: 1e-4).")] = None,
    beta1: Annotated[float | None, typer.Option(help="Adam beta1 (preset: 0.5; keras64: 0.9).")] = None,
    width: Annotated[int | None, typer.Option(help="Filters of D's first layer (heikka32: 128).")] = None,
    g_width: Annotated[int | None, typer.Option(help="Filters of G's last hidden layer.")] = None,
    depth: Annotated[int | None, typer.Option(help="heikka32 variant: 4 = the 4-layer 512-wide version.")] = None,
    d_first_bn: Annotated[bool, typer.Option(help="BatchNorm on D's first layer (seed 001's literal reading).")] = False,
    split: Annotated[str, typer.Option(help="Split of a prepared dataset: train, valid, test or all.")] = "all",
    mirror: Annotated[bool, typer.Option(help="Random horizontal flips (done on the device).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of weights, noise and data order.")] = 0,
    log_every: Annotated[int, typer.Option(help="Steps between metrics.jsonl lines.")] = 50,
    ckpt_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 500,
    sample_every: Annotated[int, typer.Option(help="Steps between sample grids at fixed latents.")] = 500,
    keep: Annotated[int, typer.Option(help="Checkpoints kept (newest).")] = 3,
    amp: Annotated[bool, typer.Option(help="bf16 autocast on CUDA (ignored on CPU).")] = True,
    channels_last: Annotated[bool, typer.Option(help="channels_last memory format (CPU and CUDA).")] = True,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the networks.")] = False,
    tensorboard: Annotated[
        bool | None, typer.Option("--tensorboard/--no-tensorboard", help="Log to TensorBoard (default: if installed).")
    ] = None,
    resume: ResumeOpt = None,
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
        result = run_training(make_dcgan, "dcgan", {}, {}, settings, None, resume=resume, device=device)
        _report(result, json_)
        return
    if data is None or out is None:
        raise FaceganError("`facegan train dcgan` needs --data and --out (or --resume RUN_DIR).",
                           "Example: facegan train dcgan --data data/celeba64 --out runs/dcgan")
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
