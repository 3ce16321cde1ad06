"""DCGAN training throughput: facegan vs the pytorch/examples pipeline, same images, same machine, one run.

    .venv/bin/python benchmarks/bench_dcgan_train.py --images 1024 --steps 6 --device cpu

Both sides train radford64 at the same batch size on the same synthetic CelebA images:
- reference: ImageFolder over the 178x218 JPEGs, PIL decoding + Resize/CenterCrop in DataLoader workers,
  fp32, contiguous NCHW, pytorch/examples' step (tests/references/dcgan_reference.py);
- facegan: `facegan prepare celeba --crop dcgan` once, then the training loop of `facegan train dcgan`
  (uint8 data on the device, channels_last, bf16 autocast on CUDA, no discarded D gradients).
Each side runs in its own process so that peak memory is its own. Throughput is measured after one
warm-up step; one-off set-up time (preparing, loading to the device) is reported separately.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's facegan_cli, and tests/references


def _peak_memory(device: str) -> dict[str, float]:
    from benchmarks.common import peak_memory

    return peak_memory(device)


def run_reference(args: argparse.Namespace) -> dict:
    import torch
    from references.dcgan_reference import examples_loader, examples_step

    from facegan_cli.core.device import resolve_device
    from facegan_cli.models.registry import build_discriminator, build_generator, resolve_config

    device = resolve_device(args.device)
    torch.manual_seed(0)
    cfg = resolve_config("dcgan", "radford64", {"batch": args.batch})
    netG, netD = build_generator("dcgan", cfg).to(device), build_discriminator("dcgan", cfg).to(device)
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    t0 = time.perf_counter()
    loader = examples_loader(args.image_root, 64, args.batch, args.workers)
    setup = time.perf_counter() - t0
    done, start = 0, None
    while done < args.steps + 1:
        for real, _ in loader:
            if done == 1:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            examples_step(netG, netD, optG, optD, real.to(device), 100)
            done += 1
            if done == args.steps + 1:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"images_per_s": args.steps * args.batch / seconds, "setup_s": setup, **_peak_memory(str(device))}


def run_facegan(args: argparse.Namespace) -> dict:
    from facegan_cli.models.registry import resolve_config
    from facegan_cli.train.dcgan_trainer import DCGANTrainer
    from facegan_cli.train.loop import LoopSettings, run_training

    cfg = resolve_config("dcgan", "radford64", {"batch": args.batch})
    settings = LoopSettings(steps=args.steps + 1, log_every=1, ckpt_every=10**9, sample_every=10**9,
                            tensorboard=False, compile=args.compile, n_samples=16)
    out = Path(args.work) / "facegan-run"
    t0 = time.perf_counter()
    run_training(DCGANTrainer, "dcgan", cfg, {"path": args.prepared, "split": "all"}, settings, out, force=True,
                 device=args.device)
    total = time.perf_counter() - t0
    rates = [json.loads(line)["images_per_s"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    steady = rates[1:]  # step 1 includes warm-up (and compilation)
    # The loop logs a rate per step; the harmonic mean is the rate over the whole interval.
    images_per_s = len(steady) / sum(1 / r for r in steady)
    return {"images_per_s": images_per_s, "setup_s": total - sum(args.batch / r for r in rates),
            **_peak_memory(args.device if args.device != "auto" else "cpu")}


def _side(args: argparse.Namespace, side: str) -> dict:
    cmd = [sys.executable, __file__, "--side", side, "--images", str(args.images), "--steps", str(args.steps),
           "--batch", str(args.batch), "--device", args.device, "--workers", str(args.workers),
           "--work", args.work, "--image-root", args.image_root, "--prepared", args.prepared]
    if args.compile:
        cmd.append("--compile")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _prepare(args: argparse.Namespace) -> float:
    facegan = [sys.executable, "-m", "facegan_cli"]
    tree = Path(args.work) / "celeba"
    if not (tree / "img_align_celeba").is_dir():
        subprocess.run([*facegan, "prepare", "synthetic", "--out", str(tree), "--n", str(args.images),
                        "--quiet", "--force"], check=True)
    link = Path(args.image_root) / "faces"  # ImageFolder wants one sub-folder per class
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(tree / "img_align_celeba", target_is_directory=True)
    t0 = time.perf_counter()
    subprocess.run([*facegan, "prepare", "celeba", "--src", str(tree), "--out", args.prepared, "--crop", "dcgan",
                    "--size", "64", "--quiet", "--force"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=6, help="measured steps (after one warm-up step)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2, help="reference DataLoader workers (examples default)")
    parser.add_argument("--compile", action="store_true", help="facegan side: torch.compile")
    parser.add_argument("--work", default="")
    parser.add_argument("--side", choices=["reference", "facegan"])
    parser.add_argument("--image-root", default="")
    parser.add_argument("--prepared", default="")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.side:
        result = run_reference(args) if args.side == "reference" else run_facegan(args)
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        args.work = args.work or tmp
        args.image_root = str(Path(args.work) / "imagefolder")
        args.prepared = str(Path(args.work) / "celeba64")
        prepare_s = _prepare(args)
        ref = _side(args, "reference")
        ours = _side(args, "facegan")
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU ({os.cpu_count()} cores)"
    report = {
        "benchmark": "dcgan-train radford64", "device": name, "batch": args.batch, "images": args.images,
        "steps": args.steps, "torch": torch.__version__, "reference": ref, "facegan": ours,
        "facegan_prepare_s": round(prepare_s, 2), "speedup": ours["images_per_s"] / ref["images_per_s"],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"device {name}, radford64, batch {args.batch}, {args.steps} measured steps")
    from benchmarks.common import memory_text

    for side in ("reference", "facegan"):
        r = report[side]
        print(f"  {side:9s} {r['images_per_s']:8.1f} images/s   {memory_text(r)}")
    print(f"  speedup   {report['speedup']:.2f}x   (facegan's one-off prepare: {prepare_s:.1f} s)")


if __name__ == "__main__":
    main()
