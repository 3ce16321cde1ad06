"""KID and Inception Score against torch-fidelity's own functions on the same features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facegan_cli.core.errors import FaceganError
from facegan_cli.metrics import kid as kid_mod
from facegan_cli.metrics.inception_score import inception_score
from facegan_cli.metrics.kid import kernel_inception_distance


def _features(n: int, d: int, shift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.abs(rng.standard_normal((n, d)) * 0.4 + 0.3 + shift).astype(np.float32)


@pytest.mark.parametrize(("n1", "n2", "subset_size"), [(120, 90, 50), (60, 60, 1000)])
def test_kid_matches_torch_fidelity(n1: int, n2: int, subset_size: int) -> None:
    from torch_fidelity.metric_kid import kid_features_to_metric

    a, b = _features(n1, 64, 0.0, 1), _features(n2, 64, 0.1, 2)
    m = min(subset_size, n1, n2)
    reference = kid_features_to_metric(
        torch.from_numpy(a), torch.from_numpy(b), kid_subsets=20, kid_subset_size=m, rng_seed=7, verbose=False
    )
    mean, std, used = kernel_inception_distance(a, b, subsets=20, subset_size=subset_size, seed=7)
    assert used == m
    assert mean == pytest.approx(reference["kernel_inception_distance_mean"], rel=1e-4)
    # When every subset holds every sample the MMDs are equal: std 0 here, float32 noise in torch-fidelity.
    assert std == pytest.approx(reference["kernel_inception_distance_std"], rel=1e-3, abs=1e-4 * mean)
    assert mean > 10 * std / np.sqrt(20)  # the sets really differ: the test compares a signal, not noise


@pytest.mark.unit
def test_kid_full_kernel_and_per_subset_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _features(80, 32, 0.0, 3), _features(70, 32, 0.1, 4)
    full = kernel_inception_distance(a, b, subsets=5, subset_size=40, seed=1)
    monkeypatch.setattr(kid_mod, "_FULL_KERNEL_MAX", 0)
    per_subset = kernel_inception_distance(a, b, subsets=5, subset_size=40, seed=1)
    assert full[0] == pytest.approx(per_subset[0], rel=1e-12)
    assert full[1] == pytest.approx(per_subset[1], rel=1e-9)


def test_kid_of_a_set_with_itself_is_near_zero_and_errors_are_clear() -> None:
    a = _features(100, 16, 0.0, 5)
    mean, _, _ = kernel_inception_distance(a, a.copy(), subsets=10, subset_size=50)
    far, _, _ = kernel_inception_distance(a, a + 0.5, subsets=10, subset_size=50)
    assert abs(mean) < 0.05 * far
    with pytest.raises(FaceganError, match="same D"):
        kernel_inception_distance(a, a[:, :8])
    with pytest.raises(FaceganError, match="at least 2"):
        kernel_inception_distance(a[:1], a)


@pytest.mark.parametrize("splits", [1, 3, 10])
def test_inception_score_matches_torch_fidelity(splits: int) -> None:
    from torch_fidelity.metric_isc import isc_features_to_metric

    rng = np.random.default_rng(8)
    logits = (rng.standard_normal((53, 1008)) * 3).astype(np.float32)
    reference = isc_features_to_metric(torch.from_numpy(logits), splits=splits, shuffle=True, rng_seed=2020)
    mean, std = inception_score(logits, splits=splits, seed=2020)
    assert mean == pytest.approx(reference["inception_score_mean"], rel=1e-9)
    assert std == pytest.approx(reference["inception_score_std"], rel=1e-7, abs=1e-12)
    assert mean > 1.5


@pytest.mark.unit
def test_inception_score_bounds_and_errors() -> None:
    confident = np.eye(20, 1008, dtype=np.float32) * 50  # 20 samples, 20 different certain classes
    mean, _ = inception_score(confident, splits=1)
    assert mean == pytest.approx(20, rel=1e-6)
    same = np.tile(confident[:1], (20, 1))  # always the same class: the minimum score, 1
    assert inception_score(same, splits=2)[0] == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(FaceganError, match="at least one sample"):
        inception_score(confident[:5], splits=10)
