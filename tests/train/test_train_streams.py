"""Named streams of the generic loop: paired streams keep their rows together (order and flips)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from train_helpers import write_image_folder

from facegan_cli.core.errors import FaceganError
from facegan_cli.train.loop import LoopSettings, run_training
from facegan_cli.train.trainer import Images, Stream, TrainContext, Trainer


class _PairSpy(Trainer):
    """Records each batch; B follows A's order, so every B image is its A partner inverted."""

    seen: list[dict[str, torch.Tensor]] = []

    def streams(self) -> dict[str, Stream]:
        return {"A": Images(), "B": Images(order_of="A")}

    def build(self, ctx: TrainContext) -> None:
        self.modules = {"G": nn.Linear(1, 1)}
        self.optimizers = {"G": torch.optim.SGD(self.modules["G"].parameters(), lr=0.0)}

    def wrap_networks(self, wrap: Any) -> None:
        return None

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        _PairSpy.seen.append({k: v.clone() for k, v in batch.items()})
        return {"loss": torch.zeros(())}

    def sample(self, z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(1, 3, 8, 8)


def _inverted_copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for path in sorted(src.glob("*.png")):
        Image.fromarray(255 - np.asarray(Image.open(path))).save(dst / path.name)
    return dst


def _run(tmp_path: Path, a: Path, b: Path) -> None:
    settings = LoopSettings(steps=5, log_every=100, ckpt_every=100, sample_every=100, mirror=True, tensorboard=False)
    data = {"A": {"path": str(a), "split": "all"}, "B": {"path": str(b), "split": "all"}}
    run_training(_PairSpy, "pairs-spy", {"batch": 4, "resolution": 8}, data, settings, tmp_path / "run", device="cpu")


@pytest.mark.unit
def test_a_paired_stream_follows_its_leaders_rows_and_flips(tmp_path: Path) -> None:
    a = write_image_folder(tmp_path / "A", n=10, size=8, seed=4)
    b = _inverted_copy(a, tmp_path / "B")
    _PairSpy.seen = []
    _run(tmp_path, a, b)
    assert len(_PairSpy.seen) == 5
    for batch in _PairSpy.seen:  # x / 127.5 - 1 of 255 - p is exactly -(p / 127.5 - 1)
        torch.testing.assert_close(batch["B"], -batch["A"], rtol=0, atol=1e-6)
    assert not torch.equal(_PairSpy.seen[0]["A"], _PairSpy.seen[1]["A"])  # batches move through the data


@pytest.mark.unit
def test_pairs_of_different_sizes_are_refused(tmp_path: Path) -> None:
    a = write_image_folder(tmp_path / "A", n=10, size=8)
    b = write_image_folder(tmp_path / "B", n=9, size=8)
    with pytest.raises(FaceganError, match="cannot be paired row by row"):
        _run(tmp_path, a, b)
