"""The Frechet distance against pytorch-fid's and torch-fidelity's, statistics and the .npz format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facegan_cli.core.errors import FaceganError
from facegan_cli.metrics.frechet import frechet_distance
from facegan_cli.metrics.stats import FeatureCache, GaussianStats, gaussian_stats, load_stats, save_stats


def _features(n: int, d: int, shift: float, seed: int) -> np.ndarray:
    """Non-negative, correlated, decaying-spectrum features like pooled ReLU activations."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) * (np.arange(1, d + 1) ** -0.8)[:, None]
    return np.abs(rng.standard_normal((n, d)) @ mix * 0.3 + 0.3 + shift).astype(np.float32)


@pytest.mark.parametrize("n", [40, 600])  # fewer samples than dimensions (singular), and more
def test_eig_and_scipy_match_pytorch_fid_and_torch_fidelity(n: int) -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    a, b = _features(n, 160, 0.0, 1), _features(n, 160, 0.05, 2)
    sa, sb = gaussian_stats(a), gaussian_stats(b)
    reference = calculate_frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)
    fidelity = fid_statistics_to_metric({"mu": sa.mu, "sigma": sa.sigma}, {"mu": sb.mu, "sigma": sb.sigma}, False)
    eig = frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma, "eig")
    scipy = frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma, "scipy")
    assert reference > 0.1
    assert abs(scipy - reference) < 1e-9
    assert abs(eig - reference) < 1e-6 * max(1.0, reference)
    assert abs(eig - fidelity["frechet_inception_distance"]) < 1e-6 * max(1.0, reference)


@pytest.mark.unit
def test_identical_statistics_are_at_distance_zero_and_order_does_not_matter() -> None:
    s1, s2 = gaussian_stats(_features(300, 64, 0.0, 3)), gaussian_stats(_features(300, 64, 0.1, 4))
    assert abs(frechet_distance(s1.mu, s1.sigma, s1.mu, s1.sigma)) < 1e-8
    d12 = frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma)
    assert abs(d12 - frechet_distance(s2.mu, s2.sigma, s1.mu, s1.sigma)) < 1e-8 * d12


@pytest.mark.unit
def test_mismatched_statistics_and_unknown_method_are_user_errors() -> None:
    s1, s2 = gaussian_stats(_features(20, 8, 0, 5)), gaussian_stats(_features(20, 16, 0, 6))
    with pytest.raises(FaceganError, match="do not match"):
        frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma)
    with pytest.raises(FaceganError, match="--matrix-sqrt"):
        frechet_distance(s1.mu, s1.sigma, s1.mu, s1.sigma, "newton")


@pytest.mark.unit
def test_gaussian_stats_are_numpys_mean_and_cov() -> None:
    x = _features(50, 12, 0, 7)
    stats = gaussian_stats(x)
    np.testing.assert_allclose(stats.mu, np.mean(x.astype(np.float64), axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.sigma, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-14)
    with pytest.raises(FaceganError, match="at least 2 samples"):
        gaussian_stats(x[:1])


@pytest.mark.unit
def test_stats_files_are_pytorch_fids_format_both_ways(tmp_path: Path) -> None:
    stats = gaussian_stats(_features(30, 10, 0, 8))
    stats.meta = {"protocol": "clean"}
    path = save_stats(stats, tmp_path / "real.npz")
    with np.load(path) as data:  # exactly how pytorch-fid reads a stats file
        np.testing.assert_array_equal(data["mu"][:], stats.mu)
        np.testing.assert_array_equal(data["sigma"][:], stats.sigma)
    again = load_stats(path)
    assert again.meta["protocol"] == "clean" and again.n == 30 and again.dims == 10
    theirs = tmp_path / "theirs.npz"
    np.savez_compressed(theirs, mu=stats.mu, sigma=stats.sigma)  # pytorch-fid's --save-stats
    read = load_stats(theirs)
    assert read.meta == {} and read.n is None
    np.testing.assert_array_equal(read.sigma, stats.sigma)


@pytest.mark.unit
def test_bad_stats_files_are_user_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "other.npz", features=np.zeros((3, 2)))
    with pytest.raises(FaceganError, match="not the mu and sigma"):
        load_stats(tmp_path / "other.npz")
    np.savez(tmp_path / "shape.npz", mu=np.zeros(3), sigma=np.zeros((2, 2)))
    with pytest.raises(FaceganError, match="expected"):
        load_stats(tmp_path / "shape.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(FaceganError, match="not a readable"):
        load_stats(tmp_path / "junk.npz")
    with pytest.raises(FaceganError, match="does not exist"):
        load_stats(tmp_path / "none.npz")


@pytest.mark.unit
def test_feature_cache_round_trip_and_damaged_entries(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    feats = {"2048": np.arange(12, dtype=np.float32).reshape(3, 4)}
    path = cache.store("sha256:abc", "clean", "w" * 64, feats, {"used": 3, "rejects": []})
    taps, meta = cache.load("sha256:abc", "clean", "w" * 64)
    np.testing.assert_array_equal(taps["2048"], feats["2048"])
    assert meta["used"] == 3
    # Another protocol or other weights are other features.
    assert cache.load("sha256:abc", "pytorch-fid", "w" * 64) == ({}, {})
    assert cache.load("sha256:abc", "clean", "v" * 64) == ({}, {})
    path.write_bytes(b"damaged")
    assert cache.load("sha256:abc", "clean", "w" * 64) == ({}, {})


@pytest.mark.unit
def test_gaussian_stats_dims_property() -> None:
    assert GaussianStats(np.zeros(5), np.eye(5), 3).dims == 5
