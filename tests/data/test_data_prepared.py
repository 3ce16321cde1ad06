"""The prepared-dataset format: writer, reader, levels, resume after a kill, never a false manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from facegan_cli.core.errors import FaceganError
from facegan_cli.data.crops import box_downsample
from facegan_cli.data.prepared import PreparedDataset, PreparedWriter, level_resolutions

RES = 8
LABELS = ["Male", "Young"]
N_INPUTS = 14


def _inputs() -> list[tuple[str, np.ndarray | None, np.ndarray, int]]:
    """(name, pixels or None for a reject, labels, split) for each input."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(N_INPUTS):
        pixels = None if i in (3, 9) else rng.integers(0, 256, (RES, RES, 3), dtype=np.uint8)
        rows.append((f"{i:06d}.jpg", pixels, np.array([i % 2, (i // 2) % 2], dtype=np.int8), i % 3))
    return rows


def _writer(out: Path, **kwargs: object) -> PreparedWriter:
    """The writer of this file's inputs; keyword arguments add to (or replace) its settings."""
    settings = {"resolution": RES, "plan": {"test": 1}, "total_inputs": N_INPUTS, "label_names": LABELS, "levels": True}
    return PreparedWriter(out, **{**settings, **kwargs})


def _feed(writer: PreparedWriter, rows: list, stop: int | None = None) -> None:
    for name, pixels, labels, split in rows[writer.inputs_done : stop]:
        if pixels is None:
            writer.reject(f"/src/{name}", "truncated or corrupt image: cut")
        else:
            writer.add(pixels, name, labels, split)


def _straight(out: Path) -> dict:
    writer = _writer(out)
    assert writer.open() == "fresh"
    _feed(writer, _inputs())
    return writer.finish({"name": "t"})


def _dataset_bytes(out: Path) -> dict[str, bytes]:
    names = ["images-8.u8", "images-4.u8", "labels.npy", "partition.npy", "names.txt", "rejects.tsv"]
    return {name: (out / name).read_bytes() for name in names}


@pytest.mark.unit
def test_writer_and_reader_round_trip(tmp_path: Path) -> None:
    manifest = _straight(tmp_path / "ds")
    rows = [r for r in _inputs() if r[1] is not None]
    data = PreparedDataset.open(tmp_path / "ds")
    assert data.count == len(rows) == manifest["count"] == 12
    assert data.resolutions == [8, 4] == level_resolutions(8, True)
    images = data.images()
    assert isinstance(images, np.memmap) and images.shape == (12, 8, 8, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, np.stack([r[1] for r in rows]))
    np.testing.assert_array_equal(data.images(4)[5], box_downsample(rows[5][1], 2))
    np.testing.assert_array_equal(data.labels, np.stack([r[2] for r in rows]))
    assert data.labels.dtype == np.int8 and data.label_names == LABELS
    assert data.names == [r[0] for r in rows]
    np.testing.assert_array_equal(data.split_indices("valid"), [i for i, r in enumerate(rows) if r[3] == 1])
    np.testing.assert_array_equal(data.split_indices("all"), np.arange(12))
    assert manifest["splits"] == {"train": 3, "valid": 5, "test": 4}
    assert manifest["rejected"] == {"total": 2, "by_reason": {"truncated or corrupt image": 2}}
    assert (tmp_path / "ds" / "rejects.tsv").read_text().splitlines() == [
        "/src/000003.jpg\ttruncated or corrupt image: cut",
        "/src/000009.jpg\ttruncated or corrupt image: cut",
    ]
    assert data.fingerprint.startswith("sha256:") and data.fingerprint == manifest["fingerprint"]
    assert not list((tmp_path / "ds").glob("*.partial")) and not (tmp_path / "ds" / "progress.json").exists()
    with pytest.raises(FaceganError, match="16x16"):
        data.images(16)


def test_fingerprint_changes_with_one_pixel(tmp_path: Path) -> None:
    first = _straight(tmp_path / "a")["fingerprint"]
    assert _straight(tmp_path / "b")["fingerprint"] == first
    rows = _inputs()
    rows[0][1][0, 0, 0] ^= 1
    writer = _writer(tmp_path / "c")
    writer.open()
    _feed(writer, rows)
    assert writer.finish({})["fingerprint"] != first


@pytest.mark.unit
def test_no_manifest_until_finished(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    writer = _writer(out)
    writer.open()
    _feed(writer, _inputs(), stop=6)
    writer.checkpoint()
    assert not (out / "manifest.json").exists()
    assert not list(out.glob("images-*.u8"))  # only *.partial files exist
    with pytest.raises(FaceganError) as info:
        PreparedDataset.open(out)
    assert "--resume" in info.value.paragraph()
    with pytest.raises(ValueError):
        writer.finish({})  # 6 of 14 inputs: refusing to write a manifest
    assert not (out / "manifest.json").exists()


def test_resume_after_kill_is_byte_identical(tmp_path: Path) -> None:
    straight = _straight(tmp_path / "straight")
    out = tmp_path / "killed"
    rows = _inputs()
    writer = _writer(out)
    writer.open()
    _feed(writer, rows, stop=7)
    writer.checkpoint()
    _feed(writer, rows, stop=11)  # written after the checkpoint, then the process "dies"
    writer.flush()
    del writer  # no close(), no finish(): as after SIGKILL
    for partial in out.glob("*.partial"):
        with open(partial, "ab") as fh:
            fh.write(b"\xff" * 5000)  # a torn write longer than anything the rest of the run appends

    resumed = _writer(out, resume=True)
    assert resumed.open() == "resumed"
    assert resumed.inputs_done == 7 and resumed.count == 6 and resumed.rejected == 1
    _feed(resumed, rows)
    manifest = resumed.finish({"name": "t"})
    assert manifest["fingerprint"] == straight["fingerprint"]
    assert _dataset_bytes(out) == _dataset_bytes(tmp_path / "straight")


def test_resume_after_a_crash_inside_finish(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    writer = _writer(out)
    writer.open()
    _feed(writer, _inputs())
    writer.close()
    # finish() renamed the images, then died before writing the manifest.
    for partial in out.glob("images-*.u8.partial"):
        os.replace(partial, partial.with_name(partial.name.removesuffix(".partial")))
    with pytest.raises(FaceganError):
        PreparedDataset.open(out)
    resumed = _writer(out, resume=True)
    assert resumed.open() == "resumed" and resumed.inputs_done == N_INPUTS
    resumed.finish({})
    _straight(tmp_path / "straight")
    assert _dataset_bytes(out) == _dataset_bytes(tmp_path / "straight")


def test_existing_outputs_are_protected(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    _straight(out)
    with pytest.raises(FaceganError) as info:
        _writer(out).open()
    assert "--force" in info.value.paragraph()
    assert _writer(out, resume=True).open() == "complete"
    other = PreparedWriter(out, resolution=RES, plan={"test": 2}, total_inputs=N_INPUTS, resume=True)
    with pytest.raises(FaceganError, match="other settings"):
        other.open()
    with pytest.raises(FaceganError, match="contradict"):
        _writer(out, resume=True, force=True).open()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FaceganError, match="notes.txt"):  # a file facegan did not write: refused, kept
        _writer(out, force=True).open()
    assert (out / "manifest.json").exists() and (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    writer = _writer(out, force=True)
    assert writer.open() == "fresh"
    assert not (out / "manifest.json").exists()
    writer.close()

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.bin").write_bytes(b"1")
    with pytest.raises(FaceganError, match="not a facegan prepared dataset"):
        _writer(foreign, force=True).open()


@pytest.mark.unit
def test_interrupted_prepare_needs_resume_or_force(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    writer = _writer(out)
    writer.open()
    _feed(writer, _inputs(), stop=3)
    writer.close()
    with pytest.raises(FaceganError) as info:
        _writer(out).open()
    assert "--resume" in info.value.paragraph()
    changed = _writer(out, plan={"test": 3}, resume=True)
    with pytest.raises(FaceganError, match="other settings"):
        changed.open()


@pytest.mark.unit
def test_damaged_dataset_is_reported(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    _straight(out)
    with open(out / "images-4.u8", "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(FaceganError, match="wrong size"):
        PreparedDataset.open(out)
    (out / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(FaceganError, match="not a facegan"):
        PreparedDataset.open(out)
