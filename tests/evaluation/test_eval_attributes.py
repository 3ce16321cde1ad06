"""`facegan eval attributes`: seed 000's Table 1 (FID / KID per target), edit success and preservation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from metrics_helpers import MetricsWorld, homes, metrics_args, run_cli, world  # noqa: F401
from PIL import Image

from facegan_cli.cli.evaluate import _render_attributes
from facegan_cli.data.sources import open_image_set
from facegan_cli.metrics.attribute_editing import (
    Target,
    default_targets,
    face_region_mask,
    masked_l1,
    parse_targets,
    success_rate,
)
from facegan_cli.models.attr_classifier import load_classifier
from facegan_cli.models.editing import load_editor

ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
TINY = ["--split-protocol", "celeba", "--g-width", "8", "--d-width", "8", "--g-repeat", "1", "--batch", "4",
        "--n-critic", "1", "--device", "cpu", "--no-tensorboard", "--quiet"]
LIMIT = 6  # the first 6 faces of the synthetic set: 5 with black hair, 1 blond, 4 male


pytestmark = pytest.mark.usefixtures("one_thread")


# --- the measures on hand-made tensors -------------------------------------------------------------------


def test_success_rate_counts_matching_target_values() -> None:
    predicted = torch.tensor([1.0, 0.0, 1.0, 1.0])
    assert success_rate(predicted, torch.tensor([1.0, 1.0, 1.0, 0.0])) == 0.5
    assert success_rate(predicted, predicted.clone()) == 1.0
    assert success_rate(torch.zeros(3), torch.ones(3)) == 0.0
    with pytest.raises(ValueError):
        success_rate(torch.zeros(3), torch.zeros(4))


def test_face_region_and_l1_outside_and_inside_it() -> None:
    mask = face_region_mask(8, 0.5)  # the centred 4x4 square: rows and columns 2..5
    assert mask.sum() == 16 and mask[2:6, 2:6].all() and not mask[1, :].any() and not mask[:, 6].any()
    assert face_region_mask(128).nonzero()[:, 0].tolist()[0] == 24 and face_region_mask(128).sum() == 80 * 80
    a = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    b = a.copy()
    b[:, 2:6, 2:6] = 255  # a change inside the face square only
    assert masked_l1(a, b, ~mask) == 0.0 and masked_l1(a, b, mask) == 1.0
    b[0, 0, 0, 0] = 51  # one channel of one outside pixel of one image: 0.2 / (2 images x 48 pixels x 3)
    assert masked_l1(a, b, ~mask) == pytest.approx(0.2 / (2 * 48 * 3))
    with pytest.raises(ValueError):
        masked_l1(a, b[:, :4], ~mask)


def test_targets_follow_create_labels_or_explicit_values() -> None:
    assert [t.key for t in default_targets(ATTRS)] == ["Black_Hair=1", "Blond_Hair=1", "Brown_Hair=1", "Male=flip",
                                                       "Young=flip"]
    assert parse_targets("Black_Hair, Male=flip,Young=0") == [Target("Black_Hair", 1), Target("Male", None),
                                                              Target("Young", 0)]
    c = torch.tensor([[1.0, 0, 0, 1, 1], [0, 0, 1, 0, 0]])
    assert Target("Blond_Hair", 1).labels(c, ATTRS).tolist() == [[0, 1, 0, 1, 1], [0, 1, 0, 0, 0]]
    assert Target("Male", None).labels(c, ATTRS).tolist() == [[1, 0, 0, 0, 1], [0, 0, 1, 1, 0]]
    assert Target("Young", 0).labels(c, ATTRS).tolist() == [[1, 0, 0, 1, 0], [0, 0, 1, 0, 0]]


# --- end to end ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(attrs16: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The 16x16 prepared set, tiny stargan and ccagan runs (2 steps) on it, and a tiny classifier."""
    base = tmp_path_factory.mktemp("evalattrs")
    data = attrs16
    runs = {}
    for family in ("stargan", "ccagan"):
        runs[family] = base / family
        result = run_cli("train", family, "--data", data, "--out", runs[family], "--steps", 2, *TINY)
        assert result.exit_code == 0, result.output
    clf = base / "clf"
    result = run_cli("train", "attr-classifier", "--data", data, "--out", clf, "--attrs", "Black_Hair,Male",
                     "--split-protocol", "celeba", "--batch", 8, "--width", 8, "--steps", 5, "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    return {"data": data, "clf": clf, **runs}


def _translated(run: Path, data: Path, target: Target) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, translated images, label rows) of the first LIMIT faces, recomputed outside the command."""
    images = open_image_set(data, split="all")
    pixels, rows = images.load_with_indices(np.arange(LIMIT))
    labels = images.labels[rows]
    editor = load_editor(run)
    c_org = torch.from_numpy(labels[:, [images.label_names.index(a) for a in ATTRS]]).float()
    out = editor.translate(editor.to_tensor(pixels), target.labels(c_org, ATTRS))
    fakes = ((out + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return pixels, fakes, labels


def _write(folder: Path, pixels: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return folder


# Over a minute on two CPU cores: the slow tier (the default suite keeps the cheaper tests of this file).
@pytest.mark.slow
def test_table_one_row_per_checkpoint(setup: dict[str, Path], homes: MetricsWorld, tmp_path: Path,  # noqa: F811
                                      capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli("eval", "attributes", "--ckpt", setup["stargan"], "--ckpt", setup["ccagan"], "--data",
                     setup["data"], "--split", "all", "--limit", LIMIT, "--targets", "Black_Hair,Blond_Hair,Male=flip",
                     "--classifier", setup["clf"], "--kid-subsets", 5, "--batch-size", 4, "--json", "--quiet",
                     *metrics_args(homes)[:-2])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["protocol"] == "pytorch-fid" and doc["n_test"] == LIMIT and doc["split"] == "all"
    assert doc["targets"] == ["Black_Hair=1", "Blond_Hair=1", "Male=flip"]
    assert [r["family"] for r in doc["rows"]] == ["stargan", "ccagan"] and doc["weights_sha256"]
    assert doc["kid"] == {"subsets": 5, "subset_size": 1000, "seed": 2020} and doc["face_region"]["fraction"] == 0.625
    for row in doc["rows"]:
        black, blond, male = (row["cells"][k] for k in doc["targets"])
        assert (black["n_translated"], black["n_reference"]) == (LIMIT, 5)
        assert (male["n_reference"], blond["n_reference"]) == (LIMIT, 1)
        assert black["kid_subset_size"] == 5 and male["kid_subset_size"] == LIMIT  # min(1000, n1, n2)
        for cell in (black, male):
            assert np.isfinite([cell["fid"], cell["kid_mean"], cell["kid_std"]]).all() and cell["fid"] > 0
            assert 0 <= cell["success_rate"] <= 1 and 0 <= cell["unedited_success_rate"] <= 1
            assert 0 < cell["l1_outside"] < 1 and 0 < cell["l1_inside"] < 1
        assert blond["fid"] is None and blond["kid_mean"] is None and blond["success_rate"] is None  # 1 real blond
    assert any("Blond_Hair=1: 1 real test image" in w for w in doc["warnings"])
    assert doc["rows"][0]["cells"]["Black_Hair=1"]["fid"] != doc["rows"][1]["cells"]["Black_Hair=1"]["fid"]

    # The cells are what the parts compute: the ccagan row's Black_Hair FID is `facegan metrics fid` of the
    # translated faces against the 5 real black-haired ones; success and L1 from the images themselves.
    target = Target("Black_Hair", 1)
    inputs, fakes, labels = _translated(setup["ccagan"], setup["data"], target)
    black_rows = labels[:, open_image_set(setup["data"]).label_names.index("Black_Hair")] == 1
    fid = run_cli("metrics", "fid", _write(tmp_path / "real", inputs[black_rows]), _write(tmp_path / "fake", fakes),
                  "--json", "--quiet", "--no-cache", *metrics_args(homes))
    assert fid.exit_code == 0, fid.output
    cell = doc["rows"][1]["cells"]["Black_Hair=1"]
    assert cell["fid"] == pytest.approx(json.loads(fid.stdout)["value"], rel=1e-6, abs=1e-6)
    clf = load_classifier(setup["clf"])
    predicted = clf.predict(torch.from_numpy(fakes).permute(0, 3, 1, 2).float() / 127.5 - 1)[:, 0]
    assert cell["success_rate"] == pytest.approx(float(predicted.mean()))
    assert cell["l1_outside"] == pytest.approx(masked_l1(inputs, fakes, ~face_region_mask(16)))

    _render_attributes(doc)
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert "Black_Hair=1" in table and "Male=flip" in table and "success (unedited)" in table
    assert sum("stargan (stargan)" in line for line in lines) == 5  # FID, KID, L1, success, unedited
    assert sum("ccagan (ccagan)" in line for line in lines) == 5
    fid_line = next(line for line in lines if line.lstrip("│ ").startswith("FID"))
    assert f"{doc['rows'][0]['cells']['Black_Hair=1']['fid']:.2f}" in fid_line


def test_errors(setup: dict[str, Path], homes: MetricsWorld) -> None:  # noqa: F811
    common = ["--data", setup["data"], "--split", "all", "--limit", LIMIT, *metrics_args(homes)[:-2]]
    not_editor = run_cli("eval", "attributes", "--ckpt", setup["clf"], *common)
    assert not_editor.exit_code == 1 and "not an attribute editor" in not_editor.stderr
    assert "Traceback" not in not_editor.output
    bad_target = run_cli("eval", "attributes", "--ckpt", setup["ccagan"], "--targets", "Male=2", *common)
    assert bad_target.exit_code == 1 and "NAME=flip" in bad_target.stderr
    names = run_cli("eval", "attributes", "--ckpt", setup["ccagan"], "--name", "a", "--name", "b", *common)
    assert names.exit_code == 1 and "--name" in names.stderr
    sample = run_cli("sample", "--ckpt", setup["ccagan"], "--n", 2, "--out", setup["clf"].parent / "s", "--device",
                     "cpu")
    assert sample.exit_code == 1 and "facegan edit" in sample.stderr and "Traceback" not in sample.output
    help_text = run_cli("eval", "attributes", "--help").output
    assert "Example: facegan eval attributes" in help_text and "face-fraction" in help_text
