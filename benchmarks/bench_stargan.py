"""StarGAN training iterations per second: facegan's trainer vs yunjey/stargan's solver, same data, one run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_stargan.py --device cpu --width 16 --iters 10
    python3 benchmarks/bench_stargan.py --device cuda --amp --iters 200 --warmup 20

Both sides train StarGAN (128x128, batch 16, n_critic 5, the 5 CelebA attributes, WGAN-GP) from the same
initial weights on the same images: `--n-faces` synthetic CelebA faces (facegan_cli.prepare.synthetic), or a
CelebA tree given with --celeba.

- reference (tests/references/stargan_reference.py): yunjey's solver iteration, plain fp32 eager NCHW, JPEGs
  decoded with PIL in one DataLoader worker and transformed per iteration, `.item()` on every loss;
- facegan: the data prepared once (`celeba-128-attrs` recipe: CenterCrop 178, Resize 128), held on the
  device as uint8 with the label rows, batches indexed, converted and flipped there (the training loop's
  DeviceImages + EpochOrder), then StarGANTrainer.train_step (channels_last, D frozen in the G step,
  no host syncs; bf16 autocast with --amp on CUDA).

Iterations are timed after --warmup untimed ones; --iters should be a multiple of n_critic so that both
sides make the same number of G updates. `--width` narrows G and D (first conv width; 64 is StarGAN's):
a full-width 128x128 iteration would take of the order of a minute on one CPU thread.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's facegan_cli, and tests/references

from references.stargan_reference import solver_iteration, yunjey_loader  # noqa: E402

from benchmarks.common import device_name, report_ratio, timed_steps  # noqa: E402
from facegan_cli.core.device import Precision, configure_backends, resolve_device  # noqa: E402
from facegan_cli.data.device_data import DeviceImages, EpochOrder  # noqa: E402
from facegan_cli.data.sources import open_image_set  # noqa: E402
from facegan_cli.models.registry import build_discriminator, build_generator, resolve_config  # noqa: E402
from facegan_cli.models.stargan import STARGAN_ATTRS  # noqa: E402
from facegan_cli.prepare.celeba_crops import CELEBA_DEFAULTS, prepare_celeba  # noqa: E402
from facegan_cli.prepare.recipes import load_recipe  # noqa: E402
from facegan_cli.prepare.synthetic import write_synthetic  # noqa: E402
from facegan_cli.train.stargan_trainer import StarGANTrainer  # noqa: E402
from facegan_cli.train.trainer import TrainContext  # noqa: E402


def _config(args: argparse.Namespace) -> dict[str, Any]:
    return resolve_config("stargan", None, {"resolution": args.resolution, "g_width": args.width,
                                            "d_width": args.width, "batch": args.batch, "n_critic": args.n_critic,
                                            "steps": 200_000})


def reference(args: argparse.Namespace, device: torch.device, celeba: Path) -> float:
    torch.manual_seed(0)
    config = _config(args)
    G, D = build_generator("stargan", config).to(device), build_discriminator("stargan", config).to(device)
    g_opt = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.5, 0.999))
    loader = yunjey_loader(celeba, STARGAN_ATTRS, args.batch, args.resolution, workers=args.ref_workers)
    state: dict[str, Any] = {"it": iter(loader)}

    def step(i: int) -> None:
        try:
            x, label = next(state["it"])
        except StopIteration:  # the solver starts a new pass over the loader
            state["it"] = iter(loader)
            x, label = next(state["it"])
        solver_iteration(G, D, g_opt, d_opt, x.to(device), label, i, args.n_critic)

    return 1 / timed_steps(step, device, args.warmup, args.iters)


def facegan(args: argparse.Namespace, device: torch.device, prepared: Path) -> float:
    configure_backends(device)
    torch.manual_seed(0)
    config = _config(args)
    trainer = StarGANTrainer(copy.deepcopy(config), "stargan")
    trainer.setup(TrainContext(device, Precision(device, amp=args.amp, channels_last=True)))
    images = open_image_set(prepared, split="all", resolution=args.resolution)
    pixels, rows = images.load_with_indices()
    columns = [images.label_names.index(a) for a in STARGAN_ATTRS]
    data = DeviceImages(pixels, device, (-1.0, 1.0), labels=images.labels[rows][:, columns])  # type: ignore[index]
    order = EpochOrder(data.count, args.batch, 0)

    def step(i: int) -> None:
        real, labels = data.batch_with_labels(order.indices(i), order.flips(i))
        trainer.train_step({"images": real, "labels": labels}, i)

    return 1 / timed_steps(step, device, args.warmup, args.iters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--n-critic", type=int, default=5)
    parser.add_argument("--width", type=int, default=64, help="G's and D's first conv width (StarGAN: 64)")
    parser.add_argument("--iters", type=int, default=10, help="timed iterations (a multiple of --n-critic)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--amp", action="store_true", help="facegan side: bf16 autocast (CUDA only)")
    parser.add_argument("--celeba", type=Path, help="a CelebA tree (img_align_celeba/, Anno/) instead of synthetic faces")
    parser.add_argument("--n-faces", type=int, default=256, help="synthetic faces to write when --celeba is not given")
    parser.add_argument("--ref-workers", type=int, default=1, help="reference DataLoader workers (yunjey: 1)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        celeba = args.celeba
        if celeba is None:
            celeba = Path(tmp) / "celeba"
            write_synthetic(celeba, n=args.n_faces, seed=0, workers=1)
        prepared = Path(tmp) / "prepared"
        recipe = load_recipe("celeba-128-attrs")
        prepare_celeba(celeba, prepared, {**CELEBA_DEFAULTS, **recipe.settings, "size": args.resolution}, recipe,
                       workers=1)
        ref = reference(args, device, celeba)
        print(json.dumps({"side": "reference (yunjey solver, fp32 eager NCHW, JPEG DataLoader)",
                          "iters_per_s": round(ref, 4)}), flush=True)
        ours = facegan(args, device, prepared)
        print(json.dumps({"side": f"facegan (channels_last, device data{', bf16' if args.amp else ''})",
                          "iters_per_s": round(ours, 4)}), flush=True)
    result = {"device": device_name(device), "torch": torch.__version__, "resolution": args.resolution,
              "batch": args.batch, "n_critic": args.n_critic, "width": args.width, "iters": args.iters,
              "warmup": args.warmup, "amp": args.amp, "reference_iters_per_s": round(ref, 4),
              "facegan_iters_per_s": round(ours, 4), "ratio": round(ours / ref, 3)}
    report_ratio(result, args.out)


if __name__ == "__main__":
    main()
