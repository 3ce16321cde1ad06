"""`facegan metrics msssim` on large images: bounded memory per pass, a progress bar, a documented cost."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import Result

from facegan_cli.core import progress
from facegan_cli.metrics import msssim


def _recording(monkeypatch: pytest.MonkeyPatch, fake: bool) -> list[int]:
    """Record the batch size of every ms_ssim pass (and, with `fake`, skip the arithmetic)."""
    sizes: list[int] = []
    real = msssim.ms_ssim

    def recorded(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        sizes.append(x.shape[0])
        return torch.zeros(x.shape[0]) if fake else real(x, y)

    monkeypatch.setattr(msssim, "ms_ssim", recorded)
    return sizes


def test_1024_pairs_go_through_a_few_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # 50 pairs of 1024x1024 at once (the CPU batch) held ~9 GB of float32 maps: swap, and no progress.
    a = np.zeros((9, 1024, 1024, 3), dtype=np.uint8)
    sizes = _recording(monkeypatch, fake=True)
    assert msssim.pair_scores(a, a).shape == (9,)
    assert sum(sizes) == 9 and max(sizes) <= 4


def test_grouping_does_not_change_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    whole = (
        msssim.ms_ssim(
            torch.from_numpy(a).permute(0, 3, 1, 2).float(), torch.from_numpy(b).permute(0, 3, 1, 2).float()
        )
        .double()
        .numpy()
    )
    monkeypatch.setattr(msssim, "PASS_PIXELS", 32 * 32 * 3, raising=False)
    sizes = _recording(monkeypatch, fake=False)
    np.testing.assert_allclose(msssim.pair_scores(a, b), whole, rtol=0, atol=1e-6)
    assert sizes == [3, 3, 1]


def _flat(text: str) -> str:
    return " ".join(re.sub(r"[│╭╮╰╯─┃━]", " ", text).split())


def test_help_says_why_10000_pairs_and_what_they_cost(cli: Callable[..., Result]) -> None:
    text = _flat(cli("metrics", "msssim", "--help").stdout)
    assert "default: 10000" in text  # specs/metrics.md: the ProGAN / MMagic protocol
    assert "ProGAN" in text and "1024x1024" in text and "per pair" in text and "ETA" in text


def test_progress_bar_on_stderr_hidden_with_quiet(
    cli: Callable[..., Result], synthetic_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ds"
    assert (
        cli(
            "prepare",
            "celeba",
            "--src",
            synthetic_tree,
            "--out",
            out,
            "--size",
            16,
            "--limit",
            6,
            "--attrs",
            "none",
            "--workers",
            1,
            "--quiet",
        ).exit_code
        == 0
    )
    monkeypatch.setattr(progress, "bars_enabled", lambda: not progress.is_quiet())  # as on a terminal
    shown = cli("metrics", "msssim", out, "--pairs", 60, "--device", "cpu", "--workers", 1, "--json")
    assert shown.exit_code == 0, shown.output
    assert "ms-ssim" in shown.stderr and "60/60" in shown.stderr and "ms-ssim" not in shown.stdout
    quiet = cli(
        "metrics", "msssim", out, "--pairs", 60, "--device", "cpu", "--workers", 1, "--json", "--quiet"
    )
    assert quiet.exit_code == 0 and "60/60" not in quiet.stderr
