"""The cost of `facegan train ... --eval fid`: seconds per evaluation, next to the training step it interrupts.

    .venv/bin/python benchmarks/bench_train_eval.py --device cpu
    .venv/bin/python benchmarks/bench_train_eval.py --device cuda --weights pt_inception-2015-12-05-6726825d.pth

In one process, one after the other:
1. the reference's features: REF is a folder of --ref-n JPEGs (crops of the 46 sample faces), featurised
   once as the first evaluation of a run does (then cached under $FACEGAN_HOME/features);
2. one evaluation at --eval-n samples (default: the --eval-n default of `facegan train`) of a radford64
   DCGAN generator (pytorch/examples' 64x64 DCGAN at full width, random weights: the cost does not depend
   on them), through `metrics.in_training.TrainingEvaluator.evaluate` exactly as the training loop calls it
   (the reference already in memory): generation, Inception features, FID;
3. --steps training steps of the same DCGAN at batch 128 (the trainer's own step on random images).
The FID Inception network is the official file with --weights, else the tests' seeded random network in
its format (same architecture and arithmetic, so the same cost). Prints one JSON document and a markdown
row for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's facegan_cli, and metrics_helpers

from benchmarks.bench_metrics import make_images, make_weights  # noqa: E402
from benchmarks.common import device_name, timed_steps  # noqa: E402


def main() -> None:
    from facegan_cli.core.device import Precision, resolve_device
    from facegan_cli.metrics.in_training import DEFAULT_N, TrainingEvaluator
    from facegan_cli.models.registry import resolve_config
    from facegan_cli.train.dcgan_trainer import DCGANTrainer
    from facegan_cli.train.trainer import TrainContext

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--eval-n", type=int, default=DEFAULT_N)
    parser.add_argument("--ref-n", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--weights", type=Path, default=None, help="The official pt_inception file.")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["FACEGAN_HOME"] = str(work / "home")  # an empty feature cache: the reference is computed
        weights, _ = make_weights(work, args.weights)
        ref, _ = make_images(work / "ref", 2 * args.ref_n, 64)
        trainer = DCGANTrainer(resolve_config("dcgan", "radford64", {}))
        trainer.setup(TrainContext(device, Precision(device, channels_last=True)))
        evaluator = TrainingEvaluator("fid", ref, args.eval_n, 0, device, weights=weights)

        started = time.perf_counter()
        evaluator._reference()  # what the run's first evaluation does before scoring
        ref_seconds = time.perf_counter() - started
        started = time.perf_counter()
        record, _ = evaluator.evaluate(trainer.sample, trainer.z_dim, trainer.value_range, 64, 1, 0.0)
        eval_seconds = time.perf_counter() - started

        import torch

        batch = {"images": torch.rand(128, 3, 64, 64, device=device) * 2 - 1}
        step_seconds = timed_steps(lambda i: trainer.train_step(batch, i), device, 1, args.steps)
    doc = {
        "device": device_name(device), "load_average_start": load, "eval_n": args.eval_n,
        "ref_images": args.ref_n, "reference_seconds": round(ref_seconds, 1),
        "evaluation_seconds": round(eval_seconds, 1), "samples_per_second": round(args.eval_n / eval_seconds, 1),
        "train_step_seconds_batch128": round(step_seconds, 3),
        "evaluation_in_train_steps": round(eval_seconds / step_seconds, 1), "fid": record["fid"],
        "official_weights": args.weights is not None,
    }
    print(json.dumps(doc, indent=2))
    print(f"| {doc['device']} | {args.eval_n} | {doc['evaluation_seconds']} | {doc['samples_per_second']} | "
          f"{doc['reference_seconds']} ({args.ref_n} images, once) | {doc['train_step_seconds_batch128']} | "
          f"{doc['evaluation_in_train_steps']} |")


if __name__ == "__main__":
    main()
