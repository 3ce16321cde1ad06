"""open_image_set: one API over prepared datasets, folders and zips."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan_cli.core.errors import FaceganError
from facegan_cli.data.prepared import PreparedDataset
from facegan_cli.data.sources import ListSource, fit_square, open_image_list, open_image_set


@pytest.fixture(scope="module")
def prepared(prepare_synthetic: Callable[..., Path]) -> Path:
    return prepare_synthetic("celeba-64", size=16, levels=True)


def test_prepared_set_slices_the_memmap(prepared: Path) -> None:
    data = PreparedDataset.open(prepared)
    images = open_image_set(prepared)
    assert images.kind == "prepared" and len(images) == 30 and images.resolution == 16
    np.testing.assert_array_equal(images.load_array(), data.images())
    np.testing.assert_array_equal(images.load_array([2, 0]), data.images()[[2, 0]])
    assert images.labels.shape == (30, 40) and images.label_names == data.label_names
    assert images.fingerprint == data.fingerprint
    assert images.source_names() == data.names  # names.txt: the CelebA file of each row
    info = images.describe()
    assert {"kind", "path", "count", "resolution", "fingerprint"} <= set(info) and info["count"] == 30


@pytest.mark.unit
def test_prepared_split_and_level(prepared: Path) -> None:
    data = PreparedDataset.open(prepared)
    test = open_image_set(prepared, split="test", resolution=8)
    rows = data.split_indices("test")
    assert len(test) == 3 and test.resolution == 8
    np.testing.assert_array_equal(test.load_array(), data.images(8)[rows])
    np.testing.assert_array_equal(test.labels, data.labels[rows])
    fingerprints = {
        open_image_set(prepared).fingerprint,
        test.fingerprint,
        open_image_set(prepared, split="test").fingerprint,
        open_image_set(prepared, resolution=8).fingerprint,
    }
    assert len(fingerprints) == 4  # each view of the data has its own identity
    with pytest.raises(FaceganError, match="12x12"):
        open_image_set(prepared, resolution=12)
    with pytest.raises(FaceganError, match="Unknown split"):
        open_image_set(prepared, split="holdout")


def test_folder_of_real_faces_with_labels_csv(celebahq_sample: Path) -> None:
    images = open_image_set(celebahq_sample, resolution=32, workers=1)
    assert images.kind == "folder" and len(images) == 46 and images.resolution == 32
    batch, kept = images.load_with_indices(range(3))
    assert batch.shape == (3, 32, 32, 3) and batch.dtype == np.uint8 and list(kept) == [0, 1, 2]
    first = sorted(celebahq_sample.glob("*.jpg"))[0]
    np.testing.assert_array_equal(batch[0], fit_square(Image.open(first).convert("RGB"), 32))
    truth = {row["file"]: int(row["Male"]) for row in csv.DictReader((celebahq_sample / "labels.csv").open())}
    assert images.label_names == ["Male"]
    np.testing.assert_array_equal(images.labels[:, 0], [truth[Path(name).name] for name in images.entries])
    assert open_image_set(celebahq_sample).resolution == 1024  # from the first header, nothing decoded
    assert images.fingerprint == open_image_set(celebahq_sample, resolution=32).fingerprint
    assert images.fingerprint != open_image_set(celebahq_sample, resolution=64).fingerprint


@pytest.mark.unit
def test_folder_with_bad_files_skips_and_counts(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "a.PNG")
    Image.new("L", (24, 24), 90).save(tmp_path / "sub" / "b.jpg")
    Image.new("RGB", (8, 8)).save(tmp_path / "c.png")  # smaller than the resolution asked for
    (tmp_path / "d.jpg").write_bytes(b"")
    (tmp_path / "e.jpeg").write_text("text")
    (tmp_path / "._a.PNG").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork
    (tmp_path / "notes.txt").write_text("not listed")
    images = open_image_set(tmp_path, resolution=16, workers=1)
    assert images.entries == ["a.PNG", "c.png", "d.jpg", "e.jpeg", "sub/b.jpg"]
    assert images.source_names()[-1] == str(tmp_path.absolute() / "sub" / "b.jpg")
    batch, kept = images.load_with_indices()
    assert batch.shape == (2, 16, 16, 3) and list(kept) == [0, 4]
    assert (batch[0] == [200, 10, 10]).all() and (batch[1] == 90).all()
    reasons = {Path(src).name: why for src, why in images.rejects}
    assert reasons == {"c.png": "too small: 8x8 < 16", "d.jpg": "zero-byte file", "e.jpeg": "not an image"}
    assert images.describe()["rejected"] == 3
    with pytest.raises(FaceganError, match="no 'test' split"):
        open_image_set(tmp_path, split="test")


@pytest.mark.unit
def test_zip_in_stylegan_layout(prepared: Path, tmp_path: Path) -> None:
    data = PreparedDataset.open(prepared)
    archive = tmp_path / "ds.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(5):
            buffer = tmp_path / "x.png"
            Image.fromarray(np.asarray(data.images()[i])).save(buffer)
            zf.write(buffer, f"00000/img{i:08d}.png")
        zf.writestr("__MACOSX/00000/._img00000000.png", b"junk")
        labels = [[f"00000/img{i:08d}.png", data.labels[i, :3].tolist()] for i in range(5)]
        zf.writestr("dataset.json", json.dumps({"labels": labels}))
    images = open_image_set(archive)
    assert images.kind == "zip" and len(images) == 5 and images.resolution == 16
    np.testing.assert_array_equal(images.load_array(), data.images()[:5])
    np.testing.assert_array_equal(images.labels, data.labels[:5, :3])
    assert images.label_names == ["label_0", "label_1", "label_2"]
    assert images.fingerprint.startswith("sha256:")


@pytest.mark.unit
def test_non_faces_folder_loads_at_any_resolution(non_faces: Path) -> None:
    images = open_image_set(non_faces, resolution=24, workers=2)
    assert len(images) == 15 and images.labels is None
    assert images.load_array().shape == (15, 24, 24, 3)


@pytest.mark.unit
def test_unknown_paths_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FaceganError, match="does not exist"):
        open_image_set(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(FaceganError, match="neither"):
        open_image_set(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaceganError, match="No images found"):
        open_image_set(tmp_path / "empty")


@pytest.mark.unit
def test_list_source_reads_the_files_given_in_order(tmp_path: Path) -> None:
    """`-` on stdin gives a list of files: read in that order, through the same decode-and-reject path."""
    for name, grey in (("b.png", 10), ("a.png", 200)):
        Image.new("RGB", (20, 16), (grey, grey, grey)).save(tmp_path / name)
    (tmp_path / "empty.png").write_bytes(b"")
    files = [tmp_path / "b.png", tmp_path / "empty.png", tmp_path / "a.png"]
    images = ListSource(files, workers=1)
    assert images.kind == "list" and len(images) == 3 and images.resolution == 16 and images.labels is None
    batch, kept = images.load_with_indices()
    assert list(kept) == [0, 2] and batch.shape == (2, 16, 16, 3)
    assert batch[0, 0, 0, 0] == 10 and batch[1, 0, 0, 0] == 200
    assert images.rejects == [(str(tmp_path / "empty.png"), "zero-byte file")]
    (native,) = list(images.batches(8, native=True))
    assert [image.shape for image in native] == [(16, 20, 3), (16, 20, 3)] and images.used == 2
    assert images.fingerprint == ListSource(files).fingerprint != ListSource(files[::-1]).fingerprint
    with pytest.raises(FaceganError, match="empty.png cannot be used: zero-byte file"):
        list(ListSource(files, workers=1, strict=True).batches(8))
    with pytest.raises(FaceganError, match="names no image files"):
        ListSource([])


@pytest.mark.unit
def test_open_image_list_takes_a_file_a_folder_or_paths_on_stdin(tmp_path: Path) -> None:
    for name in ("b.png", "a.JPG"):
        Image.new("RGB", (8, 8)).save(tmp_path / name, format="PNG")
    (tmp_path / "notes.txt").write_text("not listed")
    (tmp_path / "sub").mkdir()
    assert open_image_list(tmp_path).entries == [str(tmp_path / "a.JPG"), str(tmp_path / "b.png")]
    assert open_image_list(tmp_path / "b.png").entries == [str(tmp_path / "b.png")]
    listed = open_image_list("-", stdin=io.StringIO(f"{tmp_path / 'b.png'}\n\n{tmp_path / 'a.JPG'}\n"))
    assert listed.label == "-" and listed.entries == [str(tmp_path / "b.png"), str(tmp_path / "a.JPG")]
    with pytest.raises(FaceganError, match="is not a file"):
        open_image_list("-", stdin=io.StringIO(f"{tmp_path / 'gone.png'}\n"))
    with pytest.raises(FaceganError, match="read no paths"):
        open_image_list("-", stdin=io.StringIO(""))
    with pytest.raises(FaceganError, match="No images found"):
        open_image_list(tmp_path / "sub")
