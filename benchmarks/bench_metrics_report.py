"""`facegan metrics report --metrics fid,kid,is,pr`: one featurisation for four metrics, same machine, one run.

    .venv/bin/python benchmarks/bench_metrics_report.py --n 50

A generator checkpoint (the tests' tiny random DCGAN, 32x32) and a folder of n real JPEGs (crops of the 46 sample
faces in ../shared/data, 64x64); every command is timed as a user runs it, wall clock of a fresh process
(`python -m facegan_cli ...`, start-up included), each with an empty feature cache of its own unless said:

1. `metrics report REAL --ckpt GEN --metrics fid,kid,is,pr`;
2. `metrics fid REAL --ckpt GEN` alone (the issue's bound: the report at most 1.15x this);
3. the four single commands with --no-cache (what four metrics cost before the report and the samples cache);
4. the four single commands sharing one cache (the samples cached: IS reads another layer, one more pass);
5. torch-fidelity 0.4's one call `calculate_metrics(isc, fid, kid, prc)` on the real folder and a second
   folder of n other face crops (input1, the "generated" side: the tiny random generator's samples are all
   alike, which would make precision, recall and IS trivial), and `metrics report` on the same two folders
   with `--protocol torch-fidelity`:
   the ratio of the two, and every value's difference (goal: within 1e-3); and `metrics report` on the same
   folders with the default protocol (pytorch-fid's resize, which is cheaper than the TF1 one).

The FID Inception file is the tests' random-initialised stand-in (tests/metrics_helpers.py), the same file
for both tools (this machine has no network). KID subsets hold all n samples, so that both tools' draws
cover the same rows. Prints JSON and the markdown rows of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's facegan_cli, and metrics_helpers

from benchmarks.bench_metrics import make_images, make_weights  # noqa: E402

METRICS = ("fid", "kid", "is", "pr")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, dict]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    out = done.stdout.strip()
    try:
        doc = json.loads(out)
    except json.JSONDecodeError:  # a worker that printed something before its one JSON line
        doc = json.loads(out.splitlines()[-1])
    print(f"{seconds:7.1f} s  {' '.join(cmd[3:6])} ...", file=sys.stderr, flush=True)
    return seconds, doc


def torch_fidelity_worker(args: argparse.Namespace) -> None:
    import torch_fidelity

    found = torch_fidelity.calculate_metrics(
        input1=args.fakes, input2=args.real, cuda=False, isc=True, fid=True, kid=True, prc=True,
        feature_extractor="inception-v3-compat", feature_extractor_weights_path=args.weights,
        kid_subset_size=args.n, cache=False, verbose=False,
    )
    print(json.dumps({k: float(v) for k, v in found.items()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30, help="generated samples, and real images")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fakes", help=argparse.SUPPRESS)
    parser.add_argument("--real", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        torch_fidelity_worker(args)
        return
    from metrics_helpers import make_generator

    n = args.n
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = Path(tmp)
        real, other = make_images(root / "images", 2 * n, 64)
        weights, torch_home = make_weights(root, None)
        gen = make_generator(root / "gen")
        # The tiny random generator's samples are all alike (precision and recall 0, IS 1): the parity with
        # torch-fidelity is measured on two folders of other faces, where every value means something.
        fakes = other
        homes = iter(range(1000))

        def env(home: int | None = None) -> dict[str, str]:
            return {**os.environ, "TORCH_HOME": str(torch_home), "FACEGAN_HOME": str(root / f"home{home}")}

        facegan = [sys.executable, "-m", "facegan_cli", "metrics"]
        common = ["--device", "cpu", "--workers", "1", "--inception-weights", str(weights), "--json", "--quiet"]
        on_gen = [str(real), "--ckpt", str(gen), "--n", str(n), *common]
        kid_all = ["--subset-size", str(n)]
        singles = {"fid": [], "kid": kid_all, "is": [], "pr": []}

        def single(name: str, *extra: str) -> list[str]:
            inputs = on_gen[1:] if name == "is" else on_gen  # IS scores the samples alone
            return [*facegan, name, *inputs, *singles[name], *extra]

        report_s, report = timed([*facegan, "report", *on_gen, "--metrics", ",".join(METRICS), *kid_all],
                                 env(next(homes)))
        fid_s, _ = timed(single("fid"), env(next(homes)))
        no_cache = [timed(single(name, "--no-cache"), env(next(homes)))[0] for name in METRICS]
        shared_home = next(homes)
        shared = [timed(single(name), env(shared_home))[0] for name in METRICS]
        tf_cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--fakes", str(fakes), "--real",
                  str(real), "--weights", str(weights), "--n", str(n)]
        tf_s, theirs = timed(tf_cmd, env(next(homes)))
        ours_s, ours = timed([*facegan, "report", str(real), str(fakes), "--metrics", ",".join(METRICS), *kid_all,
                              "--protocol", "torch-fidelity", *common], env(next(homes)))
        default_s, _ = timed([*facegan, "report", str(real), str(fakes), "--metrics", ",".join(METRICS), *kid_all,
                              *common], env(next(homes)))
    load_after = os.getloadavg()
    pairs = {"inception_score_mean": "is.is_mean", "inception_score_std": "is.is_std",
             "frechet_inception_distance": "fid.fid", "kernel_inception_distance_mean": "kid.kid_mean",
             "kernel_inception_distance_std": "kid.kid_std", "precision": "pr.precision", "recall": "pr.recall"}
    parity = {k: {"torch-fidelity": theirs[k], "facegan": ours["values"][v], "diff": abs(theirs[k] - ours["values"][v])}
              for k, v in pairs.items()}
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} CPUs",
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "n": n, "weights": "random-init stand-in (same file for both tools)",
        "report_ckpt_s": round(report_s, 1), "feature_passes": report["feature_passes"],
        "fid_alone_s": round(fid_s, 1), "report_over_fid": round(report_s / fid_s, 3),
        "four_singles_no_cache_s": round(sum(no_cache), 1), "four_singles_shared_cache_s": round(sum(shared), 1),
        "four_singles_no_cache_over_report": round(sum(no_cache) / report_s, 2),
        "torch_fidelity_one_call_s": round(tf_s, 1), "report_same_folders_s": round(ours_s, 1),
        "torch_fidelity_over_report": round(tf_s / ours_s, 2),
        "report_same_folders_default_protocol_s": round(default_s, 1),
        "torch_fidelity_over_report_default_protocol": round(tf_s / default_s, 2),
        "parity": parity, "max_abs_diff": max(p["diff"] for p in parity.values()),
    }
    print(json.dumps(result, indent=2))
    print("\n| what | seconds | ratio |")
    print("| --- | ---: | --- |")
    print(f"| `report --metrics fid,kid,is,pr --ckpt` | {report_s:.1f} | {report_s / fid_s:.2f}x one FID |")
    print(f"| `metrics fid --ckpt` alone | {fid_s:.1f} | 1 |")
    print(f"| four single commands, --no-cache | {sum(no_cache):.1f} | {sum(no_cache) / report_s:.2f}x the report |")
    print(f"| four single commands, one cache | {sum(shared):.1f} | {sum(shared) / report_s:.2f}x the report |")
    print(f"| torch-fidelity `calculate_metrics(isc, fid, kid, prc)` | {tf_s:.1f} | {tf_s / ours_s:.2f}x facegan's |")
    print(f"| `report` on the same folders, --protocol torch-fidelity | {ours_s:.1f} | 1 |")
    print(f"| `report` on the same folders, default protocol (pytorch-fid) | {default_s:.1f} | "
          f"torch-fidelity {tf_s / default_s:.2f}x this |")


if __name__ == "__main__":
    main()
