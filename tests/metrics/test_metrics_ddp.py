"""Metrics and sampling under torchrun (2 gloo processes on the CPU) give what one process gives.

Each rank generates, decodes and featurises its share of whole batches and the features are gathered, so
the numbers are not merely close: the test asks for 1e-6 and the images for equal bytes. The sharded code
paths covered: Inception features of a generator and of folders (FID, KID, IS, stats; computed, and read
from rank 0's feature cache), SWD's descriptors (the random patches of the images before a rank's share
skipped), MS-SSIM's generated and random pairs, a sample grid gathered by rank 0, sample and translate
folders staged by every rank and renamed by rank 0, and the CLI printing one document (rank 0's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ddp_metrics_driver import run_cases
from metrics_helpers import MetricsWorld, make_generator, world  # noqa: F401
from PIL import Image

from facegan_cli.core import distributed
from facegan_cli.core.distributed import DistInfo
from facegan_cli.prepare import synthetic

pytestmark = pytest.mark.usefixtures("one_thread")
DRIVER = Path(__file__).with_name("ddp_metrics_driver.py")


def torchrun(*args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Two gloo ranks on the CPU; OMP_NUM_THREADS=1 as in the one-process run (its arithmetic is the same)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FACEGAN_HOME": str(home)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_generator(tmp_path_factory.mktemp("gen") / "run")


@pytest.mark.parametrize("n,batch,ranks", [(10, 3, 2), (11, 4, 3), (2, 4, 4), (64, 8, 8), (0, 5, 2)])
def test_shards_are_whole_batches_in_row_order(n: int, batch: int, ranks: int) -> None:
    shares = [distributed.shard(n, batch, DistInfo(rank, ranks)) for rank in range(ranks)]
    assert [row for share in shares for row in share] == list(range(n))  # every row once, rank order = row order
    assert all(share.start % batch == 0 for share in shares if len(share))  # the batches of one process
    assert max(map(len, shares)) - min(map(len, shares)) <= batch  # balanced to a batch


def _close(one: Any, two: Any, where: str = "") -> None:
    if isinstance(one, dict):
        assert one.keys() == two.keys(), where
        for key in one:
            _close(one[key], two[key], f"{where}.{key}")
    elif isinstance(one, float):
        assert two == pytest.approx(one, abs=1e-6), where
    else:
        assert one == two, where


# Over a minute on two CPU cores: the slow tier (the default suite keeps the cheaper tests of this file).
@pytest.mark.slow
def test_sharded_metrics_equal_one_process(
    world: MetricsWorld, gen: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    small = tmp_path / "small"  # the faces at the generator's 32x32, for SWD against its samples
    small.mkdir()
    for i, face in enumerate(world.faces[:8]):
        Image.fromarray(face).resize((32, 32), Image.Resampling.LANCZOS).save(small / f"{i}.png")
    args = {"work": str(tmp_path), "set_a": str(world.set_a), "set_b": str(world.set_b), "small": str(small),
            "gen": str(gen), "weights": str(world.weights)}
    (tmp_path / "args.json").write_text(json.dumps(args))
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "home-1"))
    one = json.loads(json.dumps(run_cases(args), default=str))
    torchrun(str(DRIVER), str(tmp_path / "args.json"), home=tmp_path / "home-2")
    two = json.loads((tmp_path / "results-2.json").read_text())
    (total,), shares = one["featurised_by_rank"], two["featurised_by_rank"]
    assert sum(shares) == total and max(shares) < total  # each rank featurised its share only
    assert two["kid_folder_cached"] == [True, True]  # the second folder pass came from rank 0's cache
    for case in ("fid_ckpt", "fid_folder", "kid_ckpt", "kid_folder", "is_ckpt", "is_folder", "swd_ckpt",
                 "swd_folder", "msssim_ckpt", "msssim_folder", "stats_doc"):
        _close(one[case], two[case], case)
    assert one["is_ckpt"]["is_mean"] > 1.0 and one["fid_ckpt"]["fid"] > 0  # numbers, not degenerate zeros
    np.testing.assert_allclose(two["stats_mu"], one["stats_mu"], rtol=0, atol=1e-6)
    assert two["stats_sigma_trace"] == pytest.approx(one["stats_sigma_trace"], abs=1e-6)
    assert two["grid_bytes"] == one["grid_bytes"]  # the same grid, pixel for pixel


def test_torchrun_cli_prints_one_result_and_samples_the_same_folder(
    world: MetricsWorld, gen: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_json: Any  # noqa: F811
) -> None:
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "home-1"))
    metric = ["metrics", "fid", str(world.set_a), "--ckpt", str(gen), "--n", "10", "--dims", "64",
              "--inception-weights", str(world.weights), "--device", "cpu", "--workers", "1", "--batch-size", "4"]
    sampling = ["sample", "--ckpt", str(gen), "--n", "11", "--batch-size", "4", "--device", "cpu"]
    one = cli_json(*metric)
    cli_json(*sampling, "--out", tmp_path / "one")
    # `--` ends torchrun's own options: its parser would take facegan's --n for an abbreviation of its --nnodes.
    proc = torchrun("-m", "facegan_cli", "--", *metric, "--json", "--quiet", home=tmp_path / "home-2")
    two = json.loads(proc.stdout)  # exactly one document on stdout: rank 1's is not printed
    assert two["value"] == pytest.approx(one["value"], abs=1e-6) and two["n2"] == one["n2"] == 10
    torchrun("-m", "facegan_cli", "--", *sampling, "--out", str(tmp_path / "two"), "--quiet", home=tmp_path / "h")
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == names and len(names) == 12  # 11 + marker
    assert (tmp_path / "two" / ".facegan-output.json").is_file()  # marked, so --force may replace it
    for name in names[1:]:  # the PNGs
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]  # the staging folder was renamed


def test_translate_under_torchrun_writes_what_one_process_writes(tmp_path: Path, cli: Any) -> None:
    """`facegan translate` shards its inputs by whole batches; rank 0 renames the shared staging folder."""
    painting = tmp_path / "synth"
    synthetic.write_synthetic(painting, n=20, size=16, style="painting")
    run = tmp_path / "run"
    trained = cli("train", "cycle-gan", "--data", painting, "--out", run, "--steps", "1", "--preset", "thesis64",
                  "--resolution", "16", "--ngf", "8", "--ndf", "8", "--n-blocks", "1", "--n-layers-d", "2",
                  "--device", "cpu", "--no-tensorboard", "--quiet")
    assert trained.exit_code == 0, trained.output
    args = ["translate", "--ckpt", str(run), str(painting / "trainA"), "--batch-size", "2", "--grid", "--device", "cpu"]
    assert cli(*args, "--out", tmp_path / "one", "--quiet").exit_code == 0
    proc = torchrun("-m", "facegan_cli", *args, "--out", str(tmp_path / "two"), "--json", "--quiet", home=tmp_path / "h")
    doc = json.loads(proc.stdout)  # one document, listing every input's output
    names = sorted(p.name for p in (tmp_path / "one").iterdir() if p.suffix == ".png")
    assert len(names) >= 5 and sorted(Path(r["output"]).name for r in doc["outputs"]) == names
    for name in names:
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
