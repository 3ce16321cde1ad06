"""FID speed: facegan vs pytorch-fid and torch-fidelity on the same images, same machine, one run.

    .venv/bin/python benchmarks/bench_metrics.py --n 1000 --size 256 --device cpu
    .venv/bin/python benchmarks/bench_metrics.py --n 1000 --device cuda --weights pt_inception-2015-12-05-6726825d.pth

The n images (two sets of n/2: augmented crops of the 46 sample faces in ../shared/data, JPEG) are
featurised by each tool in its own process, one after the other:
- pytorch-fid 0.3: its ImagePathDataset + DataLoader (min(8, CPUs) workers) + InceptionV3, batch 50;
- torch-fidelity 0.4: its ImagesPathDataset + DataLoader + inception-v3-compat extractor, batch 64;
- facegan, once per protocol: `metrics.run`'s path with the feature cache off.
Images per second count feature extraction only (decoding, resizing, network, copies back); the
Frechet distance is timed on its own, on the tools' own statistics of these sets and on a synthetic,
well-conditioned pair of 2048-d Gaussians, with each tool's function. Every FID printed comes from the
same images and the same weights file: the official one with --weights, else a seeded random network
with recalibrated BatchNorm (the tests' stand-in, tests/metrics_helpers.py), since this machine has no
network access. Results are printed as JSON and as markdown rows for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_FACES = ROOT.parent / "shared" / "data" / "celebahq-sample"
OFFICIAL = "pt_inception-2015-12-05-6726825d.pth"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's facegan_cli, and metrics_helpers


def make_images(out: Path, n: int, size: int, seed: int = 0) -> tuple[Path, Path]:
    """Two folders of n/2 JPEGs each: random crops, mirrors and brightness changes of the sample faces."""
    import numpy as np
    from metrics_helpers import load_faces
    from PIL import Image

    faces = load_faces(SHARED_FACES, side=int(size * 1.15))
    rng = np.random.default_rng(seed)
    folders = (out / "a", out / "b")
    for k, folder in enumerate(folders):
        folder.mkdir(parents=True)
        pool = faces[: len(faces) // 2] if k == 0 else faces[len(faces) // 2 :]
        for i in range(n // 2):
            face = pool[rng.integers(len(pool))].astype(np.float32)
            top, left = rng.integers(0, face.shape[0] - size + 1, size=2)
            crop = face[top : top + size, left : left + size] * rng.uniform(0.8, 1.2)
            crop = crop[:, ::-1] if rng.random() < 0.5 else crop
            Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=95)
    return folders


def make_weights(out: Path, explicit: Path | None) -> tuple[Path, Path]:
    """(file for facegan, TORCH_HOME holding the official name for pytorch-fid)."""
    hub = out / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    if explicit is not None:
        shutil.copyfile(explicit, hub / OFFICIAL)
        return explicit, out / "torch"
    import torch
    from metrics_helpers import load_faces, random_inception

    model = random_inception(load_faces(SHARED_FACES)[:24])
    own = out / "random-fid-inception.pth"
    torch.save(model.state_dict(), own)
    shutil.copyfile(own, hub / OFFICIAL)
    return own, out / "torch"


# --- workers: one tool each, in a process of its own ---------------------------------------------


def _quiet() -> contextlib.AbstractContextManager:
    return contextlib.redirect_stdout(io.StringIO())


def _frechet_timings(mu1, s1, mu2, s2) -> dict:  # noqa: ANN001
    """Each tool's Frechet distance on the same statistics, timed."""
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    from facegan_cli.metrics.frechet import frechet_distance

    out = {}
    for name, fn in (
        ("facegan-eig", lambda: frechet_distance(mu1, s1, mu2, s2, "eig")),
        ("pytorch-fid-sqrtm", lambda: calculate_frechet_distance(mu1, s1, mu2, s2)),
        ("torch-fidelity-eigvals", lambda: fid_statistics_to_metric(
            {"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, False)["frechet_inception_distance"]),
    ):
        start = time.perf_counter()
        with _quiet():
            value = float(fn())
        out[name] = {"fid": value, "seconds": round(time.perf_counter() - start, 3)}
    return out


def work_pytorch_fid(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    from pytorch_fid.fid_score import IMAGE_EXTENSIONS, calculate_frechet_distance, get_activations
    from pytorch_fid.inception import InceptionV3

    device = torch.device(args.device)
    workers = min(8, len(os.sched_getaffinity(0)))  # pytorch-fid's own default
    model = InceptionV3([3]).to(device)
    stats, seconds = [], 0.0
    for folder in (args.a, args.b):
        files = sorted(f for ext in IMAGE_EXTENSIONS for f in Path(folder).glob(f"*.{ext}"))
        start = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            act = get_activations(files, model, 50, 2048, device, workers)
        seconds += time.perf_counter() - start
        stats.append((np.mean(act, axis=0), np.cov(act, rowvar=False)))
    start = time.perf_counter()
    with _quiet():
        fid = float(calculate_frechet_distance(stats[0][0], stats[0][1], stats[1][0], stats[1][1]))
    return {"tool": "pytorch-fid", "feature_seconds": seconds, "frechet_seconds": time.perf_counter() - start,
            "fid": fid, "workers": workers, "batch_size": 50}


def work_torch_fidelity(args: argparse.Namespace) -> dict:
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.utils import (
        create_feature_extractor,
        get_featuresdict_from_dataset,
        prepare_input_from_id,
    )

    cuda = args.device.startswith("cuda")
    kwargs = {"input1": args.a, "input2": args.b, "cuda": cuda, "verbose": False,
              "feature_extractor_weights_path": args.weights}
    extractor = create_feature_extractor("inception-v3-compat", ["2048"], **kwargs)
    stats, seconds = [], 0.0
    for slot in (1, 2):
        dataset = prepare_input_from_id(slot, **kwargs)
        start = time.perf_counter()
        features = get_featuresdict_from_dataset(dataset, extractor, 64, cuda, False, False)["2048"]
        seconds += time.perf_counter() - start
        stats.append(fid_features_to_statistics(features))
    start = time.perf_counter()
    fid = fid_statistics_to_metric(stats[0], stats[1], False)["frechet_inception_distance"]
    return {"tool": "torch-fidelity", "feature_seconds": seconds, "frechet_seconds": time.perf_counter() - start,
            "fid": float(fid), "batch_size": 64}


def work_facegan(args: argparse.Namespace) -> dict:
    from facegan_cli.metrics.frechet import frechet_distance
    from facegan_cli.metrics.run import Session, Settings
    from facegan_cli.metrics.stats import gaussian_stats

    settings = Settings(protocol=args.protocol, inception_weights=Path(args.weights), device=args.device,
                        cache=False, batch_size=args.batch_size)
    session = Session(settings)
    stats, seconds = [], 0.0
    for folder in (args.a, args.b):
        (source,) = session.inputs([Path(folder)], None, (1, 1))
        start = time.perf_counter()
        features = session.features(source, ["2048"]).taps["2048"]
        seconds += time.perf_counter() - start
        stats.append(gaussian_stats(features, session.device))
    start = time.perf_counter()
    fid = frechet_distance(stats[0].mu, stats[0].sigma, stats[1].mu, stats[1].sigma, "eig", session.device)
    frechet = time.perf_counter() - start
    result = {"tool": f"facegan --protocol {args.protocol}", "feature_seconds": seconds, "frechet_seconds": frechet,
              "fid": fid, "batch_size": session.batch_size, "workers": session.workers}
    if args.protocol == "pytorch-fid":  # every tool's Frechet distance on these very statistics
        result["frechet_on_these_stats"] = _frechet_timings(stats[0].mu, stats[0].sigma, stats[1].mu, stats[1].sigma)
    return result


def work_frechet(args: argparse.Namespace) -> dict:
    """A well-conditioned pair (n > d): 2048-d Gaussians estimated from 6000 correlated samples each."""
    import numpy as np

    from facegan_cli.metrics.stats import gaussian_stats

    rng = np.random.default_rng(0)
    mix = rng.standard_normal((2048, 2048)) * (np.arange(1, 2049) ** -0.7)[:, None]
    a = np.abs(rng.standard_normal((6000, 2048)) @ mix * 0.3 + 0.3)
    b = np.abs(rng.standard_normal((6000, 2048)) @ mix * 0.3 + 0.32)
    s1, s2 = gaussian_stats(a), gaussian_stats(b)
    return {"tool": "frechet-2048", "timings": _frechet_timings(s1.mu, s1.sigma, s2.mu, s2.sigma)}


WORKERS = {"pytorch-fid": work_pytorch_fid, "torch-fidelity": work_torch_fidelity, "facegan": work_facegan,
           "frechet": work_frechet}


def _run_worker(tool: str, common: list[str], env: dict[str, str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, *common]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tool} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{tool}: {json.dumps(result)}", file=sys.stderr, flush=True)  # partial results survive a timeout
    return result


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="images in all (two sets of n/2)")
    parser.add_argument("--size", type=int, default=256, help="side of the JPEGs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", type=Path, default=None, help="the official pt_inception file, if present")
    parser.add_argument("--batch-size", type=int, default=None, help="facegan's batch (default: its own)")
    parser.add_argument("--skip-frechet", action="store_true", help="leave out the synthetic 2048-d timing")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--protocol", default="pytorch-fid", help=argparse.SUPPRESS)
    parser.add_argument("--a", help=argparse.SUPPRESS)
    parser.add_argument("--b", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        root = Path(tmp)
        a, b = make_images(root / "images", args.n, args.size)
        weights, torch_home = make_weights(root, args.weights)
        env = {**os.environ, "TORCH_HOME": str(torch_home), "FACEGAN_HOME": str(root / "home"), "FACEGAN_QUIET": "1"}
        common = ["--device", args.device, "--a", str(a), "--b", str(b), "--weights", str(weights)]
        if args.batch_size:
            common += ["--batch-size", str(args.batch_size)]
        runs = [
            _run_worker("pytorch-fid", common, env),
            _run_worker("facegan", [*common, "--protocol", "pytorch-fid"], env),
            _run_worker("torch-fidelity", common, env),
            _run_worker("facegan", [*common, "--protocol", "torch-fidelity"], env),
        ]
        frechet = None if args.skip_frechet else _run_worker("frechet", common, env)
    for run in runs:
        run["images_per_second"] = round(args.n / run["feature_seconds"], 3)
    report = {
        "device": _device_name(args.device), "images": args.n, "size": args.size,
        "weights": "official" if args.weights else "random-init stand-in (same file for every tool)",
        "runs": runs, "frechet_2048_synthetic": frechet,
    }
    print(json.dumps(report, indent=2))
    by_tool = {r["tool"]: r for r in runs}
    print("\n| tool | images/s | feature s | Frechet s | FID | vs reference |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    pairs = {"facegan --protocol pytorch-fid": "pytorch-fid", "facegan --protocol torch-fidelity": "torch-fidelity"}
    for run in runs:
        ref = by_tool.get(pairs.get(run["tool"], ""))
        versus = ""
        if ref is not None:
            versus = (f"{run['images_per_second'] / ref['images_per_second']:.2f}x faster, "
                      f"|dFID| = {abs(run['fid'] - ref['fid']):.2e}")
        print(f"| {run['tool']} | {run['images_per_second']:.2f} | {run['feature_seconds']:.1f} | "
              f"{run['frechet_seconds']:.2f} | {run['fid']:.6f} | {versus} |")


if __name__ == "__main__":
    main()
