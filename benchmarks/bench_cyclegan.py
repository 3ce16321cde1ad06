"""CycleGAN training iterations per second and peak memory: facegan vs junyanz's loop, same data, one run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cyclegan.py --device cpu --size 64 --ngf 16 --steps 20
    python3 benchmarks/bench_cyclegan.py --device cuda --size 256 --load 286 --crop 256 --steps 200 --amp

Both sides train CycleGAN (batch 1, LSGAN, 50-image pools, identity 0.5) from the same initial weights on the
same two folders of PNGs: the photo and painting domains of `facegan prepare synthetic --style painting`
(--faces faces at --size px, so junyanz's Resize upsamples them to --load and crops --crop, as its default
286/256 does for 256-px datasets).

- reference (tests/references/cyclegan_reference.py): junyanz's loop: UnalignedDataset (A in order, B at a
  random index) decoding every PNG with PIL, Resize(load, bicubic) -> RandomCrop -> flip -> ToTensor ->
  Normalize in DataLoader workers (junyanz's default num_threads 4, here --workers), the batch moved to the
  device every iteration, CycleGANModel.optimize_parameters in fp32, contiguous NCHW;
- facegan: the domains decoded once and held on the device as uint8 (the loop's DeviceImages/EpochOrder),
  resize and random crop on the device, CycleGANTrainer.train_step (channels_last, the discriminators frozen
  in the G step, pools on the device; bf16 autocast with --amp on CUDA, torch.compile with --compile).

Each side runs in its own process so that its peak memory is its own (peak RSS as VmHWM, plus the private
memory of the reference's DataLoader workers; peak CUDA memory allocated on a GPU). Rates are measured after
--warmup untimed iterations; --repeats alternates the sides and reports the medians, for a shared machine; the one-off decode of the facegan side is reported apart. `--ngf`/`--ndf` narrow the
networks (junyanz: 64) so that a CPU measurement takes minutes, not hours.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's facegan_cli, and tests/references


def _peak_memory(device: Any) -> dict[str, float]:
    from benchmarks.common import peak_memory

    return peak_memory(device)


def _config(args: argparse.Namespace) -> dict[str, Any]:
    from facegan_cli.models.registry import resolve_config

    config = resolve_config("cycle-gan", "junyanz256", {"resolution": args.crop, "load_size": args.load,
                                                        "ngf": args.ngf, "ndf": args.ndf, "n_blocks": args.n_blocks})
    config["data_resolution"] = min(args.size, args.load)
    return config


def _networks(args: argparse.Namespace, device: Any) -> dict[str, Any]:
    """facegan's four networks, built and initialised from seed 0 (both sides start from these weights)."""
    import torch

    from facegan_cli.models.cyclegan import build_discriminator, build_generator, init_weights

    torch.manual_seed(0)
    config = _config(args)
    return {name: init_weights(builder(config)).to(device) for name, builder in
            (("G_A", build_generator), ("G_B", build_generator), ("D_A", build_discriminator),
             ("D_B", build_discriminator))}


def _timed(step: Any, device: Any, warmup: int, steps: int) -> float:
    from benchmarks.common import timed_steps

    return 1 / timed_steps(step, device, warmup, steps)


def run_reference(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from references.cyclegan_reference import CycleGANModel, UnalignedDataset

    from facegan_cli.core.device import resolve_device

    device = resolve_device(args.device)
    model = CycleGANModel(_networks(args, device))
    dataset = UnalignedDataset(Path(args.data) / "trainA", Path(args.data) / "trainB", args.load, args.crop)
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=True, num_workers=args.workers)
    state: dict[str, Any] = {"it": iter(loader)}

    def step(_: int) -> None:
        try:
            data = next(state["it"])
        except StopIteration:  # junyanz's next epoch: a new pass over the loader
            state["it"] = iter(loader)
            data = next(state["it"])
        model.set_input(data["A"].to(device), data["B"].to(device))
        model.optimize_parameters()

    rate = _timed(step, device, args.warmup, args.steps)
    return {"iters_per_s": rate, **_peak_memory(device)}


def run_facegan(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from facegan_cli.core.device import Precision, configure_backends, resolve_device
    from facegan_cli.data.device_data import DeviceImages, EpochOrder
    from facegan_cli.data.sources import open_image_set
    from facegan_cli.train.cyclegan_trainer import CycleGANTrainer
    from facegan_cli.train.trainer import TrainContext

    device = resolve_device(args.device)
    configure_backends(device)
    config = _config(args)
    trainer = CycleGANTrainer(config)
    trainer.setup(TrainContext(device, Precision(device, amp=args.amp, channels_last=True)))
    nets = _networks(args, device)
    for name, net in nets.items():  # the reference's initial weights
        trainer.modules[name].load_state_dict(net.state_dict())
    if args.compile:
        trainer.wrap_networks(torch.compile)
    trainer.set_epoch_length(10**9)
    t0 = time.perf_counter()
    held = int(config["data_resolution"])
    domains = {}
    for i, name in enumerate(("A", "B")):
        pixels = open_image_set(Path(args.data) / f"train{name}", resolution=held).load_array()
        images = DeviceImages(pixels, device, (-1.0, 1.0), resolution=held)
        domains[name] = (images, EpochOrder(images.count, 1, i))
    setup = time.perf_counter() - t0

    def step(i: int) -> None:
        batch = {name: images.batch(order.indices(i), order.flips(i)) for name, (images, order) in domains.items()}
        trainer.train_step(batch, i)

    rate = _timed(step, device, args.warmup, args.steps)
    return {"iters_per_s": rate, "setup_s": round(setup, 2), **_peak_memory(device)}


def _side(args: argparse.Namespace, side: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--side", side, "--data", args.data, "--device", args.device,
           "--size", str(args.size), "--load", str(args.load), "--crop", str(args.crop), "--ngf", str(args.ngf),
           "--ndf", str(args.ndf), "--n-blocks", str(args.n_blocks), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--workers", str(args.workers)]
    cmd += ["--amp"] if args.amp else []
    cmd += ["--compile"] if args.compile else []
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r["iters_per_s"])[(len(runs) - 1) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--faces", type=int, default=200, help="synthetic faces (about 45%% per training domain)")
    parser.add_argument("--size", type=int, default=64, help="size of the PNGs")
    parser.add_argument("--load", type=int, default=72, help="junyanz's load_size (Resize before the crop)")
    parser.add_argument("--crop", type=int, default=64, help="junyanz's crop_size")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--n-blocks", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="reference DataLoader workers (junyanz: 4)")
    parser.add_argument("--amp", action="store_true", help="facegan side: bf16 autocast (CUDA only)")
    parser.add_argument("--compile", action="store_true", help="facegan side: torch.compile")
    parser.add_argument("--side", choices=["reference", "facegan"])
    parser.add_argument("--data", default="")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the sides alternately this many times each (reference, facegan, reference, ...) "
                        "and report the median rates: a shared machine's load then falls on both sides alike")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_reference(args) if args.side == "reference" else run_facegan(args)))
        return
    import torch

    from benchmarks.common import device_name, report_ratio
    from facegan_cli.core.device import resolve_device
    from facegan_cli.prepare.synthetic import write_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        args.data = args.data or str(Path(tmp) / "domains")
        write_synthetic(args.data, n=args.faces, size=args.size, style="painting")
        refs, ourss = [], []
        for _ in range(max(1, args.repeats)):
            refs.append(_side(args, "reference"))
            print(json.dumps({"side": "reference (junyanz loop: PIL decode, DataLoader, fp32 NCHW)", **refs[-1]}),
                  flush=True)
            ourss.append(_side(args, "facegan"))
            print(json.dumps({"side": "facegan (device data and crops, channels_last"
                              f"{', bf16' if args.amp else ''}{', compile' if args.compile else ''})", **ourss[-1]}),
                  flush=True)
    ref, ours = _median_run(refs), _median_run(ourss)
    device = resolve_device(args.device)
    result = {"device": device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores, "
              f"{os.environ.get('OMP_NUM_THREADS', 'default')} threads)", "torch": torch.__version__,
              "size": args.size, "load": args.load, "crop": args.crop, "ngf": args.ngf, "ndf": args.ndf,
              "n_blocks": args.n_blocks, "steps": args.steps, "warmup": args.warmup, "workers": args.workers,
              "amp": args.amp, "compile": args.compile, "reference": ref, "facegan": ours,
              "repeats": len(refs), "ratio": round(ours["iters_per_s"] / ref["iters_per_s"], 3),
              "ratios": [round(o["iters_per_s"] / r["iters_per_s"], 3) for r, o in zip(refs, ourss)]}
    report_ratio(result, args.out)


if __name__ == "__main__":
    main()
