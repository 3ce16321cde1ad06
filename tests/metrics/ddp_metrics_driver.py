"""Every sharded metric and a sample grid, run in one process group: the cases of test_metrics_ddp.py.

`python -m torch.distributed.run --nproc_per_node=2 tests/metrics/ddp_metrics_driver.py ARGS.json` runs them on two
gloo ranks; the test calls `run_cases` in its own process for the one-process numbers. Several commands
share the script's one process group (each command's own `process_group` joins it), which saves a
torchrun start per command. Rank 0 writes the results next to ARGS.json as results-{world size}.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.apply.sample import sample
from facegan_cli.core import distributed
from facegan_cli.features.base import FrozenExtractor
from facegan_cli.metrics import run
from facegan_cli.metrics.run import Settings
from facegan_cli.metrics.stats import load_stats


def run_cases(args: dict[str, str]) -> dict[str, Any]:
    """The documents' values of every case (and the written files' content), by case name."""
    work = Path(args["work"])
    set_a, set_b, small, gen = (Path(args[k]) for k in ("set_a", "set_b", "small", "gen"))

    def settings(**extra: Any) -> Settings:
        # Batches of 3 over 10 samples: 4 batches, the last one short, 2 per rank.
        chosen = {"inception_weights": Path(args["weights"]), "device": "cpu", "batch_size": 3, "workers": 1,
                  "n": 10, "seed": 5}
        return Settings(**{**chosen, **extra})

    out: dict[str, Any] = {}
    featurised = [0]  # images this rank put through the Inception network: its share, not everything
    network_input = FrozenExtractor.network_input

    def counted(self: FrozenExtractor, batch: Any) -> torch.Tensor:
        featurised[0] += len(batch)
        return network_input(self, batch)

    FrozenExtractor.network_input = counted  # type: ignore[method-assign]
    with distributed.process_group(torch.device("cpu")) as info:
        world = info.world_size
        # pool3 once (the usual FID); the other FID/KID cases on the 64-d tap, the same sharded path at a
        # fraction of the network's cost (IS below runs the whole network on both kinds of input).
        out["fid_ckpt"] = run.compute_fid(settings(), [set_a], gen)["values"]
        out["fid_folder"] = run.compute_fid(settings(), [set_a, set_b], dims=64)["values"]
        out["kid_ckpt"] = run.compute_kid(settings(), [set_a], gen, dims=64, subsets=10, subset_size=5)["values"]
        cached = run.compute_kid(settings(), [set_a, set_b], dims=64, subsets=10, subset_size=5)  # from the cache
        out["kid_folder"], out["kid_folder_cached"] = cached["values"], [i["cached"] for i in cached["inputs"]]
        out["is_ckpt"] = run.compute_is(settings(), [], gen, splits=2)["values"]
        out["is_folder"] = run.compute_is(settings(cache=False), [set_a], splits=2)["values"]
        out["swd_ckpt"] = run.compute_swd(settings(), [small], gen)["values"]
        out["swd_folder"] = run.compute_swd(settings(n=7), [set_a, set_b])["values"]
        out["msssim_ckpt"] = run.compute_msssim(settings(), [], gen, pairs=7)["values"]
        out["msssim_folder"] = run.compute_msssim(settings(), [set_a], pairs=8)["values"]
        stats = work / f"stats-{world}.npz"
        out["stats_doc"] = run.compute_stats(settings(cache=False), set_a, stats, dims=64)["values"]
        grid = work / f"grid-{world}.png"
        out["grid_doc"] = sample(gen, grid, n=7, seed=3, batch_size=3, device="cpu")["files"]
        distributed.barrier(info)  # rank 0's files are written before anyone reads them
        loaded = load_stats(stats)
        out["stats_mu"], out["stats_sigma_trace"] = loaded.mu.tolist(), float(np.trace(loaded.sigma))
        out["grid_bytes"] = grid.read_bytes().hex()
        out["featurised_by_rank"] = distributed.gather_objects(info, featurised[0])
        if info.is_main:
            (work / f"results-{world}.json").write_text(json.dumps(out, default=str))
    FrozenExtractor.network_input = network_input  # type: ignore[method-assign]
    return out


if __name__ == "__main__":
    run_cases(json.loads(Path(sys.argv[1]).read_text()))
