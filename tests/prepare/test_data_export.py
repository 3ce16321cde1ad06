"""`facegan prepare export`: a PNG folder for FID tools and StyleGAN dataset_tool's zip layout."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan_cli.data.prepared import PreparedDataset
from facegan_cli.data.sources import open_image_set
from facegan_cli.prepare.export import archive_name


@pytest.fixture(scope="module")
def prepared(prepare_synthetic: Callable[..., Path]) -> Path:
    return prepare_synthetic("celeba-64", size=16, attrs="Male,Smiling")


def test_png_export_is_a_flat_folder_of_exact_pixels(cli_json, prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "png"
    doc = cli_json("prepare", "export", prepared, "--out", out, "--format", "png", "--workers", 2)
    assert doc["count"] == 30 and doc["format"] == "png" and doc["resolution"] == 16
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"img{i:08d}.png" for i in range(30)]
    data = PreparedDataset.open(prepared)
    for i in (0, 17, 29):
        np.testing.assert_array_equal(np.asarray(Image.open(files[i])), data.images()[i])
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["label_names"] == ["Male", "Smiling"]
    assert meta["labels"][5] == [files[5].name, data.labels[5].tolist()]
    assert not list(tmp_path.glob(".*partial*"))


def test_zip_export_uses_the_stylegan_layout(cli_json, prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds.zip"
    doc = cli_json(
        "prepare", "export", prepared, "--out", out, "--format", "zip", "--split", "test", "--workers", 1
    )
    assert doc["count"] == 3
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        meta = json.loads(archive.read("dataset.json"))
    assert names == [
        "00000/img00000000.png",
        "00000/img00000001.png",
        "00000/img00000002.png",
        "dataset.json",
    ]
    data = PreparedDataset.open(prepared)
    test_rows = data.split_indices("test")
    assert [row[1] for row in meta["labels"]] == data.labels[test_rows].tolist()
    reread = open_image_set(out)
    np.testing.assert_array_equal(reread.load_array(), data.images()[test_rows])
    np.testing.assert_array_equal(reread.labels, data.labels[test_rows])
    assert reread.label_names == ["Male", "Smiling"]
    assert archive_name(0) == "00000/img00000000.png" and archive_name(123456) == "00123/img00123456.png"


def test_export_never_overwrites_without_force(cli, prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "png"
    assert cli("prepare", "export", prepared, "--out", out, "--workers", 1).exit_code == 0
    again = cli("prepare", "export", prepared, "--out", out, "--workers", 1)
    assert again.exit_code == 1 and "--force" in again.stderr
    assert cli("prepare", "export", prepared, "--out", out, "--workers", 1, "--force").exit_code == 0
    (out / "thesis.tex").write_text("keep")
    refused = cli("prepare", "export", prepared, "--out", out, "--workers", 1, "--force")
    assert refused.exit_code == 1 and (out / "thesis.tex").exists()
    missing = cli("prepare", "export", tmp_path / "nothing", "--out", tmp_path / "x")
    assert missing.exit_code == 1 and "nothing" in missing.stderr and "Traceback" not in missing.output
