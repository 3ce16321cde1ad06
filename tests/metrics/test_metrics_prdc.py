"""Precision / recall / density / coverage against the `prdc` package on the same features."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from facegan_cli.core.errors import FaceganError
from facegan_cli.metrics import prdc as prdc_mod
from facegan_cli.metrics.prdc import precision_recall_density_coverage


def _reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample counts
        return compute_prdc(real, fake, k)


@pytest.mark.parametrize(("n_real", "n_fake", "shift"), [(150, 120, 0.0), (90, 140, 0.4), (60, 60, 2.0)])
def test_prdc_equals_the_prdc_package(n_real: int, n_fake: int, shift: float, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(int(shift * 10) + n_real)
    real = rng.standard_normal((n_real, 32)).astype(np.float32)
    fake = (rng.standard_normal((n_fake, 32)) * 1.2 + shift).astype(np.float32)
    monkeypatch.setattr(prdc_mod, "_BLOCK_ENTRIES", 1000)  # many blocks: the blockwise path is exercised
    got = precision_recall_density_coverage(real, fake, k_pr=3, k_dc=5)
    at3, at5 = _reference(real, fake, 3), _reference(real, fake, 5)
    for name, ref in (("precision", at3), ("recall", at3), ("density", at5), ("coverage", at5)):
        assert got[name] == pytest.approx(float(ref[name]), abs=1e-6), name
    if shift == 2.0:
        assert got["precision"] < 0.5 and got["coverage"] < 0.5  # far apart: the metrics notice


@pytest.mark.unit
def test_identical_sets_are_perfect_and_small_sets_are_refused() -> None:
    rng = np.random.default_rng(0)
    real = rng.standard_normal((40, 8))
    got = precision_recall_density_coverage(real, real.copy())
    assert got["precision"] == 1.0 and got["recall"] == 1.0 and got["coverage"] == 1.0
    with pytest.raises(FaceganError, match="at least 6 samples"):
        precision_recall_density_coverage(real[:5], real)
