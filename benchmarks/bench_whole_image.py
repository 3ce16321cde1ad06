"""Peak memory and time of a whole large image through a translator: untiled (padded to the networks'
multiple) vs `--tile` (apply.whole_image.apply_tiled), each in a fresh process, and how far apart the two
outputs are (levels 0-255).

    .venv/bin/python benchmarks/bench_whole_image.py --width 2000 --height 1500 --tile 256 --ngf 8 --blocks 3

The network is CycleGAN's resnet generator (`--ngf`, `--blocks`; junyanz's default is 64 and 9) with its
instance norms replaced by batch norms in eval mode and random unit-gain weights (tests/apply/
test_whole_image.fully_convolutional: a fully convolutional translator without per-image statistics), on
smoothed noise. Peak memory is the process's peak resident set (ru_maxrss) minus its value just before the
pass (torch, the network and the input already loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import json, resource, sys, time, numpy as np, torch
sys.path.insert(0, {tests!r})
from test_whole_image import fully_convolutional, photo_like, levels
from facegan_cli.apply.whole_image import apply_padded, apply_tiled
mode, out, width, height, tile, ngf, blocks = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8])
torch.set_num_threads(1)  # two shared cores: one thread is the steadier measure
g = fully_convolutional(ngf=ngf, n_blocks=blocks)
x = photo_like(height, width)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
with torch.no_grad():
    y = apply_tiled(g, x, 4, tile)[0] if mode == "tiled" else apply_padded(g, x, 4)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
np.save(out, levels(y)[0].to(torch.uint8).numpy())
print(json.dumps({{"mode": mode, "before_mib": before / 1024, "peak_mib": peak / 1024,
                  "extra_mib": (peak - before) / 1024, "seconds": seconds}}))
"""


def measure(mode: str, out: Path, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = WORKER.format(tests=str(ROOT / "tests" / "apply"))
    argv = [mode, str(out), str(args.width), str(args.height), str(args.tile), str(args.ngf), str(args.blocks)]
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    import tempfile

    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--ngf", type=int, default=8)
    parser.add_argument("--blocks", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(mode, Path(tmp) / f"{mode}.npy", args) for mode in ("tiled", "untiled")]
        a, b = (np.load(Path(tmp) / f"{mode}.npy").astype(int) for mode in ("tiled", "untiled"))
    print(json.dumps({"image": f"{args.width}x{args.height}", "tile": args.tile, "ngf": args.ngf,
                      "blocks": args.blocks, "max_level_difference": int(np.abs(a - b).max()),
                      "mean_level_difference": float(np.abs(a - b).mean()), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
