"""`torchrun --nproc_per_node=2 facegan train dcgan` with gloo on CPU: one writer, identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from train_helpers import TINY_DCGAN, write_image_folder

from facegan_cli.core.checkpoint import list_checkpoints, load_checkpoint


def test_two_gloo_processes_agree(tmp_path: Path) -> None:
    data = write_image_folder(tmp_path / "faces", n=32)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "facegan_cli", "train", "dcgan", "--data", str(data), "--out", str(out), "--steps", "4",
           "--ckpt-every", "2", "--log-every", "2", "--mirror", *TINY_DCGAN]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "finished" and status["world_size"] == 2
    checksums = status["rank_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == [
        "ckpt-000000002.safetensors", "ckpt-000000004.safetensors"]
    state = load_checkpoint(out).load_state()
    assert len(state["rng_by_rank"]) == 2  # both ranks' generators, for an exact resume
    # metrics.jsonl is written by rank 0 only: one line per logged step, no duplicates.
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]
    # stdout carries the run's paths once (rank 0), not once per process.
    assert proc.stdout.count(str(out / "checkpoints")) == 1
