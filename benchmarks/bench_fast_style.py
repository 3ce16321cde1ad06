"""Fast style transfer throughput: `facegan transfer fast` vs pytorch/examples' stylize loop on the same network
and weights, vs `facegan transfer style` on the same photos; and `facegan train fast-style` steps/s vs their
train loop, on the same machine.

    .venv/bin/python benchmarks/bench_fast_style.py --images 8 --size 512 --device cpu

- stylise: `--images` photos at --size x --size (the first sample faces, resized). Reference: their
  `neural_style.py eval` per image (tests/references/fast_style_reference.stylize_file: read, ToTensor x 255,
  a new TransformerNet, torch.load + legacy-key cleanup, forward under no_grad, save_image). facegan: the library
  behind `facegan transfer fast` (one network, inference mode, channels_last, equal-size images batched
  --batch-size at a time, PNGs written). The network: random weights saved as their train saves it, made a
  facegan run with `facegan import` (interop.importer.import_models) (the speed does not depend on the values).
- transfer style: `facegan transfer style --preset tutorial --size SIZE` on the first photo for --nst-steps
  evaluations, scaled to the tutorial's 300 (the cost per evaluation is constant): seconds per image.
- train: their `train` loop (tests/references/fast_style_reference.train_loop: ImageFolder + DataLoader, batch 4,
  Resize + CenterCrop --train-size (their 256), VGG16) vs `facegan train fast-style --preset examples` (batch 4,
  the same size), on
  --train-images photos, each timed for --steps-short and --steps-long steps in fresh processes: steps/s is
  the difference (startup, data and VGG loading cancel out).

VGG16 (training): `--vgg-weights FILE`, VGG19 (transfer style): `--vgg19-weights FILE` (torchvision's format),
or random-initialised ones written to a temporary folder.
Each measurement runs in its own process. CUDA (when a GPU is lent):

    python3 benchmarks/bench_fast_style.py --images 64 --size 512 --device cuda --vgg-weights vgg16-397923af.pth \
        --vgg19-weights vgg19-dcbb9e9d.pth
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


def _sync(device: object) -> None:
    import torch

    if getattr(device, "type", "") == "cuda":
        torch.cuda.synchronize()


def side_reference_stylize(args: argparse.Namespace) -> dict:
    import torch
    from references.fast_style_reference import stylize_file

    if args.device == "cuda":
        raise SystemExit("the reference stylize side runs on the CPU here (their --cuda 1 is the same loop on CUDA)")
    files = sorted(Path(args.content).iterdir())
    out = Path(args.out)
    start = time.perf_counter()
    for path in files:
        stylize_file(args.model, path, out / f"{path.stem}.png")
    return {"seconds": time.perf_counter() - start, "images": len(files), "threads": torch.get_num_threads()}


def side_facegan_stylize(args: argparse.Namespace) -> dict:
    import torch

    from facegan_cli.apply.stylize import stylize_files
    from facegan_cli.core.progress import set_quiet

    set_quiet(True)
    device = torch.device(args.device)
    _sync(device)
    start = time.perf_counter()
    doc = stylize_files(Path(args.run), [Path(args.content)], Path(args.out) / "out", batch_size=args.batch_size,
                        device=args.device)
    _sync(device)
    return {"seconds": time.perf_counter() - start, "images": len(doc["outputs"]), "threads": torch.get_num_threads()}


def side_nst(args: argparse.Namespace) -> dict:
    from facegan_cli.core.progress import set_quiet
    from facegan_cli.transfer.nst import resolve_settings, transfer_style

    set_quiet(True)
    first = sorted(Path(args.content).iterdir())[0]
    settings = resolve_settings("tutorial", size=args.size, steps=args.nst_steps)
    start = time.perf_counter()
    doc = transfer_style(first, [STYLE], Path(args.out) / "nst", settings, vgg_weights=args.vgg19_weights,
                         device=args.device)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "evaluations": doc["images"][0].get("evaluations", args.nst_steps),
            "seconds_per_image_at_300": seconds * 300 / args.nst_steps}


def side_reference_train(args: argparse.Namespace) -> dict:
    import torch
    from references.fast_style_reference import train_loop

    state = torch.load(args.vgg_weights, map_location="cpu", weights_only=True)
    start = time.perf_counter()
    train_loop(args.train_data, STYLE, state, args.steps, image_size=args.train_size)
    return {"seconds": time.perf_counter() - start, "steps": args.steps}


def side_facegan_train(args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "facegan_cli", "train", "fast-style", "--preset", "examples", "--resolution",
           str(args.train_size), "--data",
           str(Path(args.train_data) / "photos"), "--style-image", str(STYLE), "--vgg-weights", args.vgg_weights,
           "--out", str(Path(args.out) / f"run-{args.steps}"), "--steps", str(args.steps), "--device", args.device,
           "--no-tensorboard", "--quiet", "--log-every", "1000", "--sample-every", "100000", "--ckpt-every",
           "100000"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    return {"seconds": time.perf_counter() - start, "steps": args.steps}


SIDES = {"reference-stylize": side_reference_stylize, "facegan-stylize": side_facegan_stylize, "nst": side_nst,
         "reference-train": side_reference_train, "facegan-train": side_facegan_train}


def _side(args: argparse.Namespace, side: str, out: Path, **extra: object) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    values = {**vars(args), "side": side, "out": str(out), **extra}
    cmd = [sys.executable, __file__]
    for key, value in values.items():
        if value not in (None, False, "") and key not in ("json",):
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _inputs(args: argparse.Namespace, work: Path) -> None:
    """The photos, their network (saved as their train saves it, made a facegan run), a VGG16 file, the
    training folder (ImageFolder's layout: one class folder)."""
    import torch
    import torchvision
    from PIL import Image
    from references.fast_style_reference import TransformerNet

    from facegan_cli.interop.importer import import_models

    faces = sorted(SAMPLE.glob("*.jpg"))
    content = work / "content"
    content.mkdir()
    for path in faces[: args.images]:
        with Image.open(path) as img:
            img.convert("RGB").resize((args.size, args.size), Image.Resampling.LANCZOS).save(content / f"{path.stem}.png")
    args.content = str(content)
    train = work / "train" / "photos"
    train.mkdir(parents=True)
    for path in faces[: args.train_images]:
        with Image.open(path) as img:
            img.convert("RGB").resize((320, 320), Image.Resampling.LANCZOS).save(train / f"{path.stem}.jpg", quality=95)
    args.train_data = str(train.parent)
    torch.manual_seed(0)
    args.model = str(work / "random.model")
    torch.save(TransformerNet().state_dict(), args.model)
    args.run = str(work / "run")
    import_models([Path(args.model)], Path(args.run))
    for key, build in (("vgg_weights", torchvision.models.vgg16), ("vgg19_weights", torchvision.models.vgg19)):
        if not getattr(args, key):
            state = {f"features.{k}": v for k, v in build(weights=None).features.state_dict().items()}
            setattr(args, key, str(work / f"random-{key}.pth"))
            torch.save(state, getattr(args, key))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--nst-steps", type=int, default=5, help="transfer style evaluations measured (scaled to 300)")
    parser.add_argument("--train-images", type=int, default=24)
    parser.add_argument("--train-size", type=int, default=256, help="training crops (their --image-size, 256)")
    parser.add_argument("--steps-short", type=int, default=2)
    parser.add_argument("--steps-long", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--vgg-weights", default="", help="VGG16 (training)")
    parser.add_argument("--vgg19-weights", default="", help="VGG19 (transfer style)")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: stylize,nst,train")
    parser.add_argument("--json", action="store_true")
    # Internal: one side in its own process.
    for name in ("side", "content", "out", "model", "run", "train_data"):
        parser.add_argument(f"--{name.replace('_', '-')}", default="")
    parser.add_argument("--steps", type=int, default=0)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(SIDES[args.side](args)))
        return
    import torch

    skip = set(filter(None, args.skip.split(",")))
    report: dict = {"benchmark": "fast style", "size": args.size, "images": args.images, "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "device": args.device}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _inputs(args, work)
        if "stylize" not in skip:
            ref = _side(args, "reference-stylize", work / "ref-stylize")
            ours = _side(args, "facegan-stylize", work / "facegan-stylize")
            for r in (ref, ours):
                r["images_per_s"] = r["images"] / r["seconds"]
            report["stylize"] = {"reference": ref, "facegan": ours, "speedup": ours["images_per_s"] / ref["images_per_s"]}
        if "nst" not in skip:
            nst = _side(args, "nst", work / "nst")
            report["transfer_style"] = nst
            if "stylize" in report:
                per_image = 1.0 / report["stylize"]["facegan"]["images_per_s"]
                report["transfer_style"]["fast_vs_style"] = nst["seconds_per_image_at_300"] / per_image
        if "train" not in skip:
            train = {}
            for side in ("reference-train", "facegan-train"):
                short = _side(args, side, work / side, steps=args.steps_short)
                long = _side(args, side, work / side, steps=args.steps_long)
                train[side] = {"short": short, "long": long,
                               "steps_per_s": (args.steps_long - args.steps_short) / (long["seconds"] - short["seconds"])}
            train["speedup"] = train["facegan-train"]["steps_per_s"] / train["reference-train"]["steps_per_s"]
            report["train"] = train
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"device {args.device}, torch {torch.__version__}, {report['threads']} threads")
    if "stylize" in report:
        s = report["stylize"]
        print(f"  stylise {args.images} photos at {args.size} px: reference {s['reference']['images_per_s']:.3f} img/s, "
              f"facegan {s['facegan']['images_per_s']:.3f} img/s (batch {args.batch_size}): {s['speedup']:.2f}x")
    if "transfer_style" in report:
        n = report["transfer_style"]
        ratio = f", {n['fast_vs_style']:.0f}x slower than transfer fast" if "fast_vs_style" in n else ""
        print(f"  transfer style --preset tutorial at {args.size} px: {n['seconds_per_image_at_300']:.0f} s per image at "
              f"300 evaluations (measured {args.nst_steps}){ratio}")
    if "train" in report:
        t = report["train"]
        print(f"  train (batch 4, {args.train_size} px): reference {t['reference-train']['steps_per_s']:.4f} steps/s, facegan "
              f"{t['facegan-train']['steps_per_s']:.4f} steps/s: {t['speedup']:.2f}x")


if __name__ == "__main__":
    main()
