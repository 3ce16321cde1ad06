"""Shared helpers of the training tests: a tiny image folder, a tiny DCGAN command line, and a tiny run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facegan_cli.core.checkpoint import save_checkpoint
from facegan_cli.models import registry

TINY_DCGAN = ["--preset", "radford64", "--width", "8", "--g-width", "8", "--batch", "8", "--device", "cpu",
              "--no-tensorboard", "--quiet"]
# thesis64's CycleGAN at 16x16 with one residual block: seconds per step on a CPU.
TINY_CYCLE = ["--preset", "thesis64", "--resolution", "16", "--ngf", "8", "--ndf", "8", "--n-blocks", "1",
              "--n-layers-d", "2", "--device", "cpu", "--no-tensorboard", "--quiet"]
# heikka32's architecture at a fraction of its width: 32x32 tanh images, 100-d z, milliseconds per batch.
TINY_HEIKKA32 = {"g_width": 8, "width": 8}


def write_image_folder(root: Path, n: int = 32, size: int = 64, seed: int = 0) -> Path:
    """Smooth random colour images (a blurred noise field), PNG, so training has real structure to fit."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        low = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        img = Image.fromarray(low).resize((size, size), Image.BILINEAR)
        img.save(root / f"{i:04d}.png")
    return root


def make_run(root: Path, ema: bool = False, output: str = "tanh") -> Path:
    """A run directory with one checkpoint of a random TINY_HEIKKA32 DCGAN, written the way the training loop
    writes them."""
    torch.manual_seed(1)
    config = registry.resolve_config("dcgan", "heikka32", {**TINY_HEIKKA32, "output": output})
    modules = {
        "G": registry.build_generator("dcgan", config).state_dict(),
        "D": registry.build_discriminator("dcgan", config).state_dict(),
    }
    if ema:
        modules["G_ema"] = registry.build_generator("dcgan", config).state_dict()
    meta = {"family": "dcgan", "model": config, "generator": "G_ema" if ema else "G"}
    save_checkpoint(root / "checkpoints", 7, modules=modules, meta=meta, state={"step": 7})
    return root


def tiny_dcgan_run(root: Path, images: Path, steps: int) -> Path:
    """A TINY_DCGAN run of `steps` steps on `images` through the CLI, a checkpoint every 2 steps, in root/run."""
    from cli_helpers import invoke_cli

    result = invoke_cli(["train", "dcgan", "--data", images, "--out", root / "run", "--steps", steps, "--ckpt-every",
                         2, "--log-every", 1, "--sample-every", 100, *TINY_DCGAN])
    assert result.exit_code == 0, result.output
    return root / "run"


def tiny_cycle_gan_run(root: Path, steps: int = 2) -> Path:
    """A CycleGAN run of `steps` TINY_CYCLE steps on 20 synthetic photo/painting faces at 16x16, trained
    through the CLI under `root` (its data in root/synth, the run in root/run)."""
    from cli_helpers import invoke_cli

    from facegan_cli.prepare import synthetic

    synthetic.write_synthetic(root / "synth", n=20, size=16, style="painting")
    result = invoke_cli(["train", "cycle-gan", "--data", root / "synth", "--out", root / "run", "--steps", steps,
                         *TINY_CYCLE])
    assert result.exit_code == 0, result.output
    return root / "run"


def copy_run(run: Path, where: Path) -> Path:
    """A copy of a run directory to damage in a test (without the lock file of the run it came from)."""
    shutil.copytree(run, where, ignore=shutil.ignore_patterns(".facegan.lock"))
    return where
