"""ProGAN training speed: images/s per resolution, progressive vs full-resolution, step time vs plain fp32.

    .venv/bin/python benchmarks/bench_progan.py --device cpu --max-channels 16 --max-resolution 32
    python3 benchmarks/bench_progan.py --device cuda --max-resolution 1024 --amp --compile-at 256

What it measures, on one machine in one process:
1. Throughput: training images per second of facegan's ProGAN step at every resolution, in the
   stabilisation and in the fade-in phase, with the preset's minibatch (v2 by default), data drawn from
   a device-resident uint8 set exactly as the training loop does (index, convert, flip). fp32 with
   channels_last (TF32 on CUDA), and bf16 autocast with --amp.
2. Progressive vs full resolution: the wall time of the whole schedule (4x4, then a fade-in and a
   stabilisation per doubling, --phase-kimg each) from the measured per-phase rates, against showing the
   same number of images at the target resolution from the start (the seed's "about 2x faster").
3. Step time at 256x256 (or --step-resolution): facegan's step (channels_last, TF32, no discarded D
   gradients, fused Adam, optionally bf16 and torch.compile) against a plain fp32 eager implementation of
   the same step (tests/references/progan_reference.py: NCHW, PyTorch's default backend flags).
4. bf16 and the gradient penalty: the relative error of the per-image gradient norms under bf16
   autocast against fp32 on the same weights and images, and a short training run in each precision
   from the same start (finite losses, penalty and Wasserstein estimate side by side).
Tensors are random (the speed of a step does not depend on the pixels); the weights are ProGAN's.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's facegan_cli, and tests/references

from references.progan_reference import plain_step  # noqa: E402

from benchmarks.common import device_name, timed_steps  # noqa: E402
from facegan_cli.core.device import Precision, configure_backends, resolve_device  # noqa: E402
from facegan_cli.data.device_data import DeviceImages, ImageStream  # noqa: E402
from facegan_cli.models.progan import apply_overrides  # noqa: E402
from facegan_cli.models.registry import resolve_config  # noqa: E402
from facegan_cli.train.gan_objectives import gradient_penalty  # noqa: E402
from facegan_cli.train.progan_trainer import ProGANTrainer  # noqa: E402
from facegan_cli.train.trainer import TrainContext  # noqa: E402


def _recipe(args: argparse.Namespace, device: torch.device, amp: bool, resolution: int) -> ProGANTrainer:
    torch.manual_seed(0)
    config = apply_overrides(resolve_config("progan", args.preset), resolution, args.max_channels)
    if args.batch:
        config["batch_sizes"] = {r: args.batch for r in config["batch_sizes"]}
    trainer = ProGANTrainer(config)
    trainer.setup(TrainContext(device, Precision(device, amp=amp, channels_last=True)))
    return trainer


def _phase_images(trainer: ProGANTrainer, resolution: int, fading: bool) -> int:
    """An images-seen count in the middle of the stabilisation (or fade-in) phase of `resolution`."""
    s = trainer.schedule
    k = resolution.bit_length() - 3  # 4 -> 0, 8 -> 1, ...
    index = 2 * k - 1 if fading else 2 * k
    return index * s.phase_images + s.phase_images // 2


def throughput(args: argparse.Namespace, device: torch.device, amp: bool) -> list[dict[str, Any]]:
    """Images/s of the loop's data path + trainer step, per resolution and phase kind."""
    configure_backends(device)
    trainer = _recipe(args, device, amp, args.max_resolution)
    rows = []
    resolutions = [4 * 2**k for k in range(args.max_resolution.bit_length() - 2)]
    for resolution in resolutions:
        for fading in (False, True) if resolution > 4 else (False,):
            images = _phase_images(trainer, resolution, fading)
            phase = trainer.phase(images)
            trainer.enter_phase(phase)
            trainer.begin_step(images)
            batch = phase.batch_size
            pixels = torch.randint(0, 256, (max(batch * 4, 64), resolution, resolution, 3), dtype=torch.uint8)
            data = DeviceImages(pixels.numpy(), device, trainer.value_range)
            stream = ImageStream(data.count, 0)

            def step(i: int, data: DeviceImages = data, stream: ImageStream = stream, batch: int = batch) -> None:
                real = data.batch(stream.indices(i * batch, batch), stream.flips(i * batch, batch))
                trainer.train_step({"images": real}, i)

            seconds = timed_steps(step, device, args.warmup, args.steps)
            rows.append({"resolution": resolution, "phase": phase.name, "fading": fading, "batch": batch,
                         "amp": amp, "ms_per_step": round(seconds * 1e3, 3),
                         "images_per_s": round(batch / seconds, 3)})
            print(json.dumps(rows[-1]), flush=True)
            del data
    return rows


def progressive_vs_full(rows: list[dict[str, Any]], phase_kimg: float, target: int) -> dict[str, Any]:
    """Schedule wall time from measured rates: progressive growing vs the target resolution throughout."""
    rate = {(r["resolution"], r["fading"]): r["images_per_s"] for r in rows}
    phase = phase_kimg * 1000
    seconds = phase / rate[(4, False)]
    images = phase
    r = 8
    while r <= target:
        seconds += phase / rate[(r, True)] + phase / rate[(r, False)]
        images += 2 * phase
        r *= 2
    full = images / rate[(target, False)]
    return {"target": target, "kimg": images / 1000, "progressive_hours": round(seconds / 3600, 2),
            "full_resolution_hours": round(full / 3600, 2), "speedup": round(full / seconds, 2)}


def _plain_step_seconds(args: argparse.Namespace, device: torch.device, res: int) -> tuple[int, int, float]:
    """(images seen of the phase, batch, seconds per plain step) in the stabilisation at `res`."""
    trainer = _recipe(args, device, False, args.max_resolution)
    images = _phase_images(trainer, res, False)
    trainer.enter_phase(trainer.phase(images))
    trainer.begin_step(images)
    batch = trainer.phase(images).batch_size
    G, D, G_ema = (copy.deepcopy(trainer.modules[k]).to(memory_format=torch.contiguous_format) for k in ("G", "D", "G_ema"))
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
    real = torch.rand(batch, 3, res, res, device=device) * 2 - 1
    seconds = timed_steps(lambda i: plain_step(G, D, G_ema, opt_g, opt_d, real, 1.0, False, trainer.z_dim),
                           device, args.warmup, args.steps)
    return images, batch, seconds


def step_comparison(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """ms/step at --step-resolution: plain fp32 eager vs facegan (fp32, bf16, compiled)."""
    res = args.step_resolution
    out = []
    variants: list[tuple[str, bool, bool]] = [("facegan fp32 (channels_last; TF32 on CUDA)", False, False)]
    if device.type == "cuda":
        variants.append(("facegan bf16 autocast", True, False))
        if args.compile_at == res:
            variants.append(("facegan bf16 + torch.compile", True, True))
    # Plain side: PyTorch's default backend flags (cudnn autotuning off, TF32 on for convs as by default).
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = True
    images, batch, plain = _plain_step_seconds(args, device, res)
    real = torch.rand(batch, 3, res, res, device=device) * 2 - 1
    out.append({"variant": "plain fp32 eager (NCHW, default flags)", "resolution": res, "batch": batch,
                "ms_per_step": round(plain * 1e3, 3), "speedup": 1.0})
    print(json.dumps(out[-1]), flush=True)
    for name, amp, compiled in variants:
        configure_backends(device)
        trainer = _recipe(args, device, amp, args.max_resolution)
        if compiled:
            trainer.wrap_networks(torch.compile)
        trainer.enter_phase(trainer.phase(images))
        trainer.begin_step(images)
        real_cl = real.contiguous(memory_format=torch.channels_last)
        t0 = time.perf_counter()
        seconds = timed_steps(lambda i, r=trainer, x=real_cl: r.train_step({"images": x}, i), device,
                               args.warmup + (5 if compiled else 0), args.steps)
        out.append({"variant": name, "resolution": res, "batch": batch, "ms_per_step": round(seconds * 1e3, 3),
                    "speedup": round(plain / seconds, 2), "setup_s": round(time.perf_counter() - t0, 1)})
        print(json.dumps(out[-1]), flush=True)
        del trainer
    return out


def bf16_penalty(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """How far bf16 autocast moves the gradient penalty's norms, and whether a short run stays sane."""
    if device.type != "cuda":
        return {"skipped": "bf16 autocast is CUDA-only in facegan"}
    configure_backends(device)
    result: dict[str, Any] = {}
    for res in sorted({args.step_resolution, args.max_resolution}):
        trainer = _recipe(args, device, False, args.max_resolution)
        images = _phase_images(trainer, res, True)  # a fade-in: both RGB paths in use
        trainer.enter_phase(trainer.phase(images))
        trainer.begin_step(images)
        n = trainer.phase(images).batch_size
        torch.manual_seed(1)
        real = torch.rand(n, 3, res, res, device=device) * 2 - 1
        with torch.no_grad():
            fake = trainer.G(torch.randn(n, trainer.z_dim, device=device)).float()
        mix = torch.rand(n, 1, 1, 1, device=device)
        mixed = torch.lerp(real, fake, mix)

        def critic_bf16(x: torch.Tensor, D: Any = trainer.D, alpha: torch.Tensor = trainer._alpha) -> torch.Tensor:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return D(x, alpha)

        gp32 = gradient_penalty(lambda x, D=trainer.D, alpha=trainer._alpha: D(x, alpha), mixed).detach()
        gp16 = gradient_penalty(critic_bf16, mixed).detach()
        dev32, dev16 = gp32.sqrt(), gp16.sqrt()  # |gradient norm - 1| per image
        result[f"{res}x{res}"] = {
            "gp_fp32": round(float(gp32.mean()), 5), "gp_bf16": round(float(gp16.mean()), 5),
            "max_abs_diff_norm": round(float((dev32 - dev16).abs().max()), 5),
            "max_rel_diff_gp": round(float(((gp16 - gp32).abs() / gp32.clamp_min(1e-12)).max()), 4),
        }
        print(json.dumps({"bf16_gp": res, **result[f"{res}x{res}"]}), flush=True)
        del trainer
    # A short run at a small resolution from one start, in both precisions.
    runs = {}
    for amp in (False, True):
        trainer = _recipe(args, device, amp, args.max_resolution)
        images = _phase_images(trainer, 32, False)
        trainer.enter_phase(trainer.phase(images))
        trainer.begin_step(images)
        n = trainer.phase(images).batch_size
        gen = torch.Generator(device=device).manual_seed(3)
        smooth = torch.nn.functional.interpolate(torch.rand(512, 3, 4, 4, device=device, generator=gen) * 2 - 1,
                                                 size=32, mode="bilinear", align_corners=False)
        torch.manual_seed(5)
        history = []
        for i in range(args.stability_steps):
            rows = torch.arange(i * n, (i + 1) * n, device=device) % smooth.shape[0]
            losses = trainer.train_step({"images": smooth[rows]}, i)
            history.append({k: float(v) for k, v in losses.items()})
        last = history[-20:]
        runs["bf16" if amp else "fp32"] = {
            "finite": all(all(map(lambda x: x == x and abs(x) != float("inf"), h.values())) for h in history),
            **{k: round(sum(h[k] for h in last) / len(last), 4) for k in ("loss_D", "wdist", "gp")},
        }
        print(json.dumps({"stability": "bf16" if amp else "fp32", **runs["bf16" if amp else "fp32"]}), flush=True)
        del trainer
    result["short_run_32x32_last20_mean"] = runs
    result["steps"] = args.stability_steps
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preset", default="v2", choices=["v2", "paper"])
    parser.add_argument("--max-resolution", type=int, default=1024)
    parser.add_argument("--max-channels", type=int, default=None, help="channel cap (quick CPU runs)")
    parser.add_argument("--batch", type=int, default=None, help="one minibatch everywhere (default: the preset's)")
    parser.add_argument("--phase-kimg", type=float, default=600.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--step-resolution", type=int, default=256)
    parser.add_argument("--compile-at", type=int, default=0, help="also time torch.compile at this resolution")
    parser.add_argument("--amp", action="store_true", help="also measure throughput with bf16 autocast")
    parser.add_argument("--stability-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    report: dict[str, Any] = {"device": device_name(device), "torch": torch.__version__, "preset": args.preset,
                              "max_channels": args.max_channels or 512}
    precisions = [False, True] if args.amp and device.type == "cuda" else [False]
    report["throughput"] = []
    for amp in precisions:
        report["throughput"] += throughput(args, device, amp)
    report["progressive_vs_full"] = []
    for amp in precisions:
        rows = [r for r in report["throughput"] if r["amp"] == amp]
        for target in sorted({min(256, args.max_resolution), args.max_resolution}):
            if target >= 8:
                report["progressive_vs_full"].append(
                    {"amp": amp, **progressive_vs_full(rows, args.phase_kimg, target)})
                print(json.dumps(report["progressive_vs_full"][-1]), flush=True)
    if args.step_resolution <= args.max_resolution:
        report["step_time"] = step_comparison(args, device)
    report["bf16_gradient_penalty"] = bf16_penalty(args, device)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
