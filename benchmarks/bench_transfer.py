"""Neural style transfer throughput: `facegan transfer style --preset tutorial` vs the PyTorch tutorial's own
loop, the same content images, style, network and number of loss evaluations, on the same machine.

    .venv/bin/python benchmarks/bench_transfer.py --size 256 --images 8 --steps 20 --device cpu

- reference: the tutorial's run_style_transfer (tests/references/nst_reference.py: its model with the loss
  layers inserted, LBFGS, a clamp in every closure), one content image at a time, fp32 NCHW, each image read
  with PIL and resized as its image_loader does;
- facegan: the library behind `facegan transfer style --preset tutorial`: the content images decoded,
  resized and optimised together as one batch (channels_last), the results written as PNGs.

Both use torchvision's VGG19 layout with the same weights: `--vgg-weights FILE` (torchvision's format), or
by default a random-initialised network written to a temporary file (the speed does not depend on the
values). Each side runs in its own process, so that its peak memory is its own. `--steps` counts loss
evaluations per image on both sides (the tutorial's loop is given num_steps = steps - 1, which makes it stop
after exactly `steps` closure calls for a multiple of 20); images per minute are also given for the
tutorial's full 300 evaluations (scaled: the cost per evaluation is constant).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's facegan_cli, and tests/references
SAMPLE = ROOT.parent / "shared" / "data" / "celebahq-sample"
STYLE = ROOT.parent / "shared" / "data" / "styles" / "candy.jpg"


def _peak_memory(device: str) -> dict[str, float]:
    from benchmarks.common import peak_memory

    return peak_memory(device)


def _sync(device: object) -> None:
    import torch

    if getattr(device, "type", "") == "cuda":
        torch.cuda.synchronize()


def run_reference(args: argparse.Namespace) -> dict:
    import torch
    import torchvision
    from PIL import Image
    from references.nst_reference import tutorial_run

    from facegan_cli.core.device import resolve_device
    from facegan_cli.features.vgg19 import IMAGENET_MEAN, IMAGENET_STD

    device = resolve_device(args.device)
    cnn = torchvision.models.vgg19(weights=None).features
    state = torch.load(args.vgg_weights, map_location="cpu", weights_only=True)
    cnn.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")})
    cnn = cnn.to(device).eval()
    loader = torchvision.transforms.Compose([torchvision.transforms.Resize(args.size),
                                             torchvision.transforms.ToTensor()])

    def image_loader(path: Path) -> torch.Tensor:
        return loader(Image.open(path).convert("RGB")).unsqueeze(0).to(device, torch.float)

    style = image_loader(Path(args.style))
    files = sorted(Path(args.content).iterdir())
    out = Path(args.out)
    evaluations = 0
    _sync(device)
    start = time.perf_counter()
    for path in files:
        content = image_loader(path)
        result, calls = tutorial_run(cnn, IMAGENET_MEAN, IMAGENET_STD, content, style, content.clone(),
                                     num_steps=args.steps - 1)
        evaluations += calls
        torchvision.transforms.ToPILImage()(result.detach().cpu()[0]).save(out / f"{path.stem}.png")
    _sync(device)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "images": len(files), "evaluations_per_image": evaluations / len(files),
            **_peak_memory(str(device))}


def run_facegan(args: argparse.Namespace) -> dict:
    import torch

    from facegan_cli.core.device import resolve_device
    from facegan_cli.data.grid import save_png, to_uint8
    from facegan_cli.transfer.nst import (
        fit_style,
        read_contents,
        read_picture,
        resolve_settings,
        style_extractor,
        transfer_batch,
    )

    device = resolve_device(args.device)
    settings = resolve_settings("tutorial", size=args.size, steps=args.steps,
                                batch_size=args.batch_size)  # None: the device's default, as a user runs it
    extractor = style_extractor(args.vgg_weights, device, settings.pool)
    out = Path(args.out)
    _sync(device)
    start = time.perf_counter()
    pictures = read_contents(args.content, args.size, settings.resample)
    style = fit_style(read_picture(Path(args.style), "--style"), args.size, resample=settings.resample)
    step = settings.batch_on(device)
    for first in range(0, len(pictures), step):
        chunk = pictures[first : first + step]
        result = transfer_batch(extractor, settings, torch.cat([tensor for _, tensor in chunk]).to(device), [style])
        for (path, _), pixels in zip(chunk, to_uint8(result.images, (0.0, 1.0)), strict=True):
            save_png(pixels, out / f"{path.stem}.png")
    _sync(device)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "images": len(pictures), "evaluations_per_image": result.evaluations,
            **_peak_memory(str(device))}


def _side(args: argparse.Namespace, side: str, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--side", side, "--size", str(args.size), "--images", str(args.images),
           "--steps", str(args.steps), "--device", args.device, "--content", args.content, "--style", args.style,
           "--vgg-weights", args.vgg_weights, "--out", str(out)]
    cmd += ["--batch-size", str(args.batch_size)] if args.batch_size else []
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _inputs(args: argparse.Namespace, work: Path) -> None:
    """The first --images sample faces (square, --size) and, without --vgg-weights, a random VGG19 file."""
    import torch
    import torchvision
    from PIL import Image

    content = work / "content"
    content.mkdir()
    for path in sorted(SAMPLE.glob("*.jpg"))[: args.images]:
        with Image.open(path) as img:
            img.convert("RGB").resize((args.size, args.size), Image.Resampling.LANCZOS).save(content / f"{path.stem}.png")
    args.content = str(content)
    if not args.vgg_weights:
        torch.manual_seed(0)
        state = {f"features.{k}": v for k, v in torchvision.models.vgg19(weights=None).features.state_dict().items()}
        args.vgg_weights = str(work / "random-vgg19.pth")
        torch.save(state, args.vgg_weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="loss evaluations per image (a multiple of 20)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="facegan's content images per optimisation (default: transfer style's for the device)")
    parser.add_argument("--vgg-weights", default="")
    parser.add_argument("--style", default=str(STYLE))
    parser.add_argument("--content", default="")
    parser.add_argument("--out", default="")
    parser.add_argument("--side", choices=["reference", "facegan"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.steps % 20:
        raise SystemExit("--steps must be a multiple of 20 (the tutorial's loop calls LBFGS.step 20 evaluations at a time)")
    if args.side:
        print(json.dumps(run_reference(args) if args.side == "reference" else run_facegan(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _inputs(args, work)
        ref = _side(args, "reference", work / "reference")
        ours = _side(args, "facegan", work / "facegan")
    import torch

    from facegan_cli.core.device import resolve_device

    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"CPU ({torch.get_num_threads()} threads)")
    for r in (ref, ours):
        r["images_per_min"] = r["images"] * 60 / r["seconds"]
        r["images_per_min_at_300"] = r["images_per_min"] * r["evaluations_per_image"] / 300
    report = {"benchmark": "transfer style --preset tutorial", "device": name, "size": args.size,
              "images": args.images, "steps": args.steps, "torch": torch.__version__, "reference": ref,
              "facegan": ours, "speedup": ref["seconds"] / ours["seconds"]}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"device {name}, {args.images} content images at {args.size} px, {args.steps} evaluations each")
    from benchmarks.common import memory_text

    for side in ("reference", "facegan"):
        r = report[side]
        print(f"  {side:9s} {r['images_per_min']:8.2f} images/min ({r['images_per_min_at_300']:.3f} at 300 "
              f"evaluations)   {r['seconds']:.1f} s   {memory_text(r)}")
    print(f"  speedup   {report['speedup']:.2f}x")


if __name__ == "__main__":
    main()
