"""End to end: facegan's numbers against pytorch-fid, torch-fidelity and clean-fid on the same files.

Every package reads the same PNG folders and the same random-initialised FID Inception file (see
metrics_helpers). The fast tests use 8 + 8 images and, for FID, the 192-dimensional layer: what they
check (file reading, each protocol's resize and scaling, statistics, the Frechet distance) does not
depend on the depth, and the references' 2048-dimensional matrix square roots alone take a minute on
this CPU. KID and IS use pool3 and the logits, end to end. The layer-by-layer agreement of the whole
network is in test_metrics_inception.py; the slow test repeats the FID comparison at 2048 dimensions
on a few hundred images, as specs/metrics.md states it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from metrics_helpers import (  # noqa: F401
    SET_SIZE,
    MetricsWorld,
    clean_fid_extractor,
    metrics_args,
    run_json,
    world,
)
from PIL import Image

from facegan_cli.core import weights as W
from facegan_cli.features.inception import InceptionExtractor
from facegan_cli.metrics.features import extract
from facegan_cli.metrics.inputs import open_source
from facegan_cli.metrics.protocols import get_protocol
from facegan_cli.metrics.stats import FeatureCache

TOL = 1e-3


@pytest.fixture(scope="module")
def env(world: MetricsWorld) -> Iterator[MetricsWorld]:  # noqa: F811
    """TORCH_HOME for pytorch-fid, and a FACEGAN_HOME whose feature cache holds each protocol's features
    (one pass per protocol and set, every tap the tests need), so the CLI calls below read them back."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(world.torch_home))
        mp.setenv("FACEGAN_HOME", str(world.home))
        weights = W.resolve("fid-inception", world.weights)
        taps = {"pytorch-fid": ["192"], "clean": ["192"], "torch-fidelity": ["192", "2048", "logits_unbiased"]}
        for name, wanted in taps.items():
            extractor = InceptionExtractor(weights, get_protocol(name), torch.device("cpu"), SET_SIZE)
            for folder in (world.set_a, world.set_b):
                extract(open_source(folder, workers=1), extractor, wanted, FeatureCache())
        yield world


def facegan(env: MetricsWorld, *args: object) -> dict:
    doc = run_json("metrics", *args, *metrics_args(env))
    assert all(item.get("cached") for item in doc["inputs"])  # the cache served the features
    return doc


def quiet_call(fn, *args, **kwargs):  # noqa: ANN001, ANN201 - the references print progress to stdout
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn(*args, **kwargs)


def test_fid_reproduces_pytorch_fid(env: MetricsWorld) -> None:
    from pytorch_fid.fid_score import calculate_fid_given_paths

    reference = quiet_call(
        calculate_fid_given_paths, [str(env.set_a), str(env.set_b)], SET_SIZE, "cpu", 192, 0
    )
    doc = facegan(env, "fid", env.set_a, env.set_b, "--dims", 192)
    assert doc["protocol"] == "pytorch-fid" and doc["dims"] == 192
    assert reference > 1.0 and abs(doc["value"] - reference) <= TOL, (doc["value"], reference)


def test_fid_kid_is_reproduce_torch_fidelity(env: MetricsWorld) -> None:
    import torch_fidelity

    reference = quiet_call(
        torch_fidelity.calculate_metrics,
        input1=str(env.set_a), input2=str(env.set_b), cuda=False, fid=True, kid=True, isc=True,
        feature_layer_fid="192", kid_subset_size=SET_SIZE - 2, kid_subsets=50, isc_splits=2,
        feature_extractor_weights_path=str(env.weights), cache=False, verbose=False, save_cpu_ram=True,
    )
    common = ("--protocol", "torch-fidelity")
    fid = facegan(env, "fid", env.set_a, env.set_b, "--dims", 192, *common)
    kid = facegan(env, "kid", env.set_a, env.set_b, "--subsets", 50, "--subset-size", SET_SIZE - 2, *common)
    score = facegan(env, "is", env.set_a, "--splits", 2, *common)
    assert abs(fid["value"] - reference["frechet_inception_distance"]) <= TOL
    assert kid["value"] == pytest.approx(reference["kernel_inception_distance_mean"], rel=TOL)
    assert kid["std"] == pytest.approx(reference["kernel_inception_distance_std"], rel=TOL)
    assert kid["subset_size"] == SET_SIZE - 2 and kid["dims"] == 2048
    assert score["value"] == pytest.approx(reference["inception_score_mean"], rel=TOL)
    assert score["std"] == pytest.approx(reference["inception_score_std"], rel=TOL, abs=1e-6)
    assert score["value"] > 1.05  # informative logits: the score is not the trivial 1


def test_clean_protocol_reproduces_clean_fid(env: MetricsWorld) -> None:
    from cleanfid import fid as cleanfid

    reference = quiet_call(
        cleanfid.compute_fid, str(env.set_a), str(env.set_b), mode="clean",
        custom_feat_extractor=clean_fid_extractor(layer=1), num_workers=0, batch_size=SET_SIZE,
        device=torch.device("cpu"), verbose=False,
    )
    doc = facegan(env, "fid", env.set_a, env.set_b, "--dims", 192, "--protocol", "clean")
    pytorch_fid = facegan(env, "fid", env.set_a, env.set_b, "--dims", 192)
    assert abs(doc["value"] - reference) <= TOL, (doc["value"], reference)
    # The protocols measurably differ: which one produced a number matters, as the spec says.
    assert abs(doc["value"] - pytorch_fid["value"]) > 10 * TOL


def test_prdc_on_facegan_features_equals_the_prdc_package(env: MetricsWorld) -> None:
    from prdc import compute_prdc

    doc = facegan(env, "pr", env.set_a, env.set_b, "--k-pr", 3, "--k-dc", 3, "--protocol", "torch-fidelity")
    cache = FeatureCache()
    sha = W.sha256_of(env.weights)
    real = cache.load(open_source(env.set_a).fingerprint, "torch-fidelity", sha)[0]["2048"]
    fake = cache.load(open_source(env.set_b).fingerprint, "torch-fidelity", sha)[0]["2048"]
    reference = quiet_call(compute_prdc, real, fake, 3)
    for name in ("precision", "recall", "density", "coverage"):
        assert doc["values"][name] == pytest.approx(float(reference[name]), abs=1e-6), name
    assert doc["value"] == doc["values"]["precision"] and doc["k_pr"] == doc["k_dc"] == 3


def _augmented(faces: list[np.ndarray], n: int, seed: int) -> list[np.ndarray]:
    """n distinct images from the faces: random crops, mirrors and brightness changes."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        face = faces[i % len(faces)].astype(np.float32)
        top, left = rng.integers(0, 17, size=2)
        crop = face[top : top + 112, left : left + 112] * rng.uniform(0.8, 1.2)
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        out.append(np.clip(crop, 0, 255).astype(np.uint8))
    return out


@pytest.mark.slow
def test_fid_at_2048_on_a_few_hundred_images(world: MetricsWorld, tmp_path: Path) -> None:  # noqa: F811
    """specs/metrics.md's parity statement itself: pool3, a few hundred images, pytorch-fid and torch-fidelity."""
    import torch_fidelity
    from pytorch_fid.fid_score import calculate_fid_given_paths

    folders = []
    for name, seed in (("a", 0), ("b", 1)):
        folder = tmp_path / name
        folder.mkdir()
        for i, image in enumerate(_augmented(world.faces[:23] if seed == 0 else world.faces[23:], 250, seed)):
            Image.fromarray(image).save(folder / f"{i:04d}.png")
        folders.append(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(world.torch_home))
        mp.setenv("FACEGAN_HOME", str(tmp_path / "home"))
        ours = run_json("metrics", "fid", *folders, *metrics_args(world), "--workers", 2)
        theirs = quiet_call(calculate_fid_given_paths, [str(f) for f in folders], 50, "cpu", 2048, 0)
        assert abs(ours["value"] - theirs) <= TOL, (ours["value"], theirs)
        ours = run_json("metrics", "fid", *folders, "--protocol", "torch-fidelity", *metrics_args(world))
        theirs = quiet_call(
            torch_fidelity.calculate_metrics, input1=str(folders[0]), input2=str(folders[1]), cuda=False,
            fid=True, feature_extractor_weights_path=str(world.weights), cache=False, verbose=False,
        )["frechet_inception_distance"]
        assert abs(ours["value"] - theirs) <= TOL, (ours["value"], theirs)
