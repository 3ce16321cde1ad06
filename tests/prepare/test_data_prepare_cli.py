"""`facegan prepare celeba` end to end: outputs, the bad-input policy, --strict, resume, recipes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from prepare_helpers import count_calls, interrupt, writer_fails

from facegan_cli.core.errors import FaceganError
from facegan_cli.data.crops import apply_crop, box_downsample
from facegan_cli.data.imageio import load_rgb
from facegan_cli.data.prepared import PreparedDataset
from facegan_cli.prepare import celeba
from facegan_cli.prepare import celeba_crops as job
from facegan_cli.prepare.recipes import list_recipes, load_recipe, resolve_settings


def test_prepare_celeba_end_to_end(cli_json, synthetic_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    doc = cli_json("prepare", "celeba", "--src", synthetic_tree, "--out", out, "--size", 32, "--workers", 2)
    assert doc["count"] == 30 and doc["resolutions"] == [32] and doc["rejected"] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    for key in (
        "name",
        "count",
        "resolution",
        "resolutions",
        "channels",
        "label_names",
        "splits",
        "recipe",
        "settings",
        "facegan_version",
        "sources",
        "fingerprint",
        "rejected",
    ):
        assert key in manifest, key
    assert manifest["recipe"]["name"] == "celeba-64"
    assert manifest["settings"]["size"] == 32 and manifest["settings"]["crop"] == "dcgan"
    assert manifest["splits"] == {"train": 24, "valid": 3, "test": 3}
    assert (
        manifest["sources"][0]["accepted"] == 30
        and "list_attr_celeba.txt" in manifest["sources"][0]["annotations"]
    )
    assert doc["fingerprint"] == manifest["fingerprint"]

    data = PreparedDataset.open(out)
    assert data.images().shape == (30, 32, 32, 3)
    first = load_rgb(synthetic_tree / "img_align_celeba" / "000001.jpg")
    np.testing.assert_array_equal(data.images()[0], apply_crop(first, "dcgan", 32))
    attrs = celeba.parse_attributes(synthetic_tree / "Anno" / celeba.ATTR_FILE)
    np.testing.assert_array_equal(data.labels, attrs.values)
    assert data.label_names == list(celeba.CELEBA_ATTRIBUTES)
    assert data.names == attrs.files
    np.testing.assert_array_equal(data.split_indices("test"), [27, 28, 29])

    # The same command on one worker gives the same dataset: order does not depend on the pool.
    single = cli_json(
        "prepare", "celeba", "--src", synthetic_tree, "--out", tmp_path / "one", "--size", 32, "--workers", 1
    )
    assert single["fingerprint"] == doc["fingerprint"]


def test_split_attrs_and_recipes(cli_json, synthetic_tree: Path, tmp_path: Path) -> None:
    doc = cli_json(
        "prepare",
        "celeba",
        "--src",
        synthetic_tree,
        "--out",
        tmp_path / "t",
        "--size",
        16,
        "--split",
        "test",
        "--attrs",
        "Male,Young",
        "--workers",
        1,
    )
    data = PreparedDataset.open(tmp_path / "t")
    assert doc["count"] == 3 and data.label_names == ["Male", "Young"] and data.labels.shape == (3, 2)
    assert data.manifest["splits"] == {"train": 0, "valid": 0, "test": 3}

    stargan = cli_json(
        "prepare",
        "celeba",
        "--src",
        synthetic_tree,
        "--out",
        tmp_path / "s",
        "--recipe",
        "celeba-128-attrs",
        "--limit",
        4,
        "--workers",
        1,
    )
    assert stargan["resolutions"] == [128] and stargan["label_names"] == [
        "Black_Hair",
        "Blond_Hair",
        "Brown_Hair",
        "Male",
        "Young",
    ]
    first = load_rgb(synthetic_tree / "img_align_celeba" / "000001.jpg")
    np.testing.assert_array_equal(
        PreparedDataset.open(tmp_path / "s").images()[0], apply_crop(first, "stargan", 128)
    )

    progan = cli_json(
        "prepare",
        "celeba",
        "--src",
        synthetic_tree,
        "--out",
        tmp_path / "p",
        "--recipe",
        "celeba-progan",
        "--limit",
        3,
        "--workers",
        1,
    )
    assert progan["resolutions"] == [128, 64, 32, 16, 8, 4]
    data = PreparedDataset.open(tmp_path / "p")
    np.testing.assert_array_equal(data.images(16)[2], box_downsample(np.asarray(data.images(128)[2]), 8))

    small = cli_json(
        "prepare",
        "celeba",
        "--src",
        synthetic_tree,
        "--out",
        tmp_path / "32",
        "--recipe",
        "celeba-32",
        "--limit",
        2,
        "--workers",
        1,
    )
    assert small["resolutions"] == [32]
    np.testing.assert_array_equal(
        PreparedDataset.open(tmp_path / "32").images()[0], apply_crop(first, "dcgan", 32, crop_size=64)
    )


def _jpeg(image: Image.Image, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **kwargs)
    return buffer.getvalue()


def _damage(root: Path) -> dict[str, str]:
    """Replace some aligned images with bad inputs; returns {file: expected reject reason prefix}."""
    folder = root / "img_align_celeba"
    original = Image.open(folder / "000006.jpg").convert("RGB")
    (folder / "000002.jpg").write_bytes(b"")
    (folder / "000003.jpg").write_text("not an image at all")
    data = (folder / "000004.jpg").read_bytes()
    (folder / "000004.jpg").write_bytes(data[: len(data) // 3])
    Image.new("RGB", (50, 60), (120, 30, 30)).save(folder / "000005.jpg")
    (folder / "000006.jpg").write_bytes(_jpeg(original.convert("CMYK")))
    original.convert("L").save(folder / "000007.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees counter-clockwise; the viewer turns it back
    (folder / "000008.jpg").write_bytes(_jpeg(original.rotate(90, expand=True), exif=exif.tobytes()))
    rgba = original.convert("RGBA")
    rgba.putalpha(0)
    rgba.save(folder / "000009.jpg", format="PNG")  # a PNG under a .jpg name: decoded by content
    deep = np.asarray(original.convert("L")).astype(np.uint16) * 257
    Image.fromarray(deep).save(folder / "000010.jpg", format="PNG")
    original.quantize(64).save(folder / "000011.jpg", format="PNG")
    return {
        "000002.jpg": "zero-byte file",
        "000003.jpg": "not an image",
        "000004.jpg": "truncated or corrupt image",
        "000005.jpg": "too small",
    }


def test_bad_inputs_are_converted_or_rejected(cli, tree_copy: Path, tmp_path: Path) -> None:
    expected = _damage(tree_copy)
    out = tmp_path / "ds"
    result = cli(
        "prepare", "celeba", "--src", tree_copy, "--out", out, "--size", 64, "--workers", 1, "--json"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["count"] == 30 - len(expected) and doc["rejected"] == len(expected)
    rejects = dict(line.split("\t") for line in (out / "rejects.tsv").read_text().splitlines())
    assert {Path(path).name for path in rejects} == set(expected)
    for path, reason in rejects.items():
        assert reason.startswith(expected[Path(path).name]), (path, reason)
    data = PreparedDataset.open(out)
    assert data.names == [f"{i:06d}.jpg" for i in range(1, 31) if f"{i:06d}.jpg" not in expected]
    row = {name: k for k, name in enumerate(data.names)}
    reference = apply_crop(load_rgb(tree_copy / "img_align_celeba" / "000001.jpg"), "dcgan", 64)
    np.testing.assert_array_equal(data.images()[row["000001.jpg"]], reference)
    # The rotated copy of face 6 comes out upright: close to the straight crop of the original.
    upright = apply_crop(
        np.asarray(Image.open(tree_copy / "img_align_celeba" / "000007.jpg").convert("RGB")), "dcgan", 64
    ).astype(int)
    rotated = data.images()[row["000008.jpg"]].astype(int)
    assert np.abs(rotated.mean(axis=2) - upright.mean(axis=2)).mean() < 6
    grey = data.images()[row["000007.jpg"]]
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    assert data.manifest["rejected"]["by_reason"]["zero-byte file"] == 1


def test_nothing_usable_exits_1_with_a_message(cli, tmp_path: Path) -> None:
    src = tmp_path / "celeba"
    (src / "img_align_celeba").mkdir(parents=True)
    for i in range(1, 4):
        (src / "img_align_celeba" / f"{i:06d}.jpg").write_bytes(b"")
    out = tmp_path / "ds"
    result = cli("prepare", "celeba", "--src", src, "--out", out, "--attrs", "none", "--workers", 1)
    assert result.exit_code == 1
    assert "No usable image" in result.stderr and str(src) in result.stderr and "rejects.tsv" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert not (out / "manifest.json").exists()
    assert len((out / "rejects.tsv").read_text().splitlines()) == 3


def test_strict_stops_at_the_first_reject(cli, tree_copy: Path, tmp_path: Path) -> None:
    _damage(tree_copy)
    out = tmp_path / "ds"
    result = cli("prepare", "celeba", "--src", tree_copy, "--out", out, "--strict", "--workers", 2)
    assert result.exit_code == 1
    assert "000002.jpg" in result.stderr and "zero-byte file" in result.stderr and "--strict" in result.stderr
    assert not (out / "manifest.json").exists()


def test_missing_inputs_are_named(cli, synthetic_tree: Path, tmp_path: Path) -> None:
    result = cli("prepare", "celeba", "--src", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert result.exit_code == 1 and "nowhere" in result.stderr and "Traceback" not in result.output
    src = tmp_path / "images-only"
    (src / "img_align_celeba").mkdir(parents=True)
    Image.open(synthetic_tree / "img_align_celeba" / "000001.jpg").save(
        src / "img_align_celeba" / "000001.jpg"
    )
    result = cli("prepare", "celeba", "--src", src, "--out", tmp_path / "o")
    assert (
        result.exit_code == 1 and "list_attr_celeba.txt" in result.stderr and "--attrs none" in result.stderr
    )
    result = cli("prepare", "celeba", "--src", src, "--out", tmp_path / "o", "--split", "test")
    assert result.exit_code == 1
    ok = cli("prepare", "celeba", "--src", src, "--out", tmp_path / "o", "--attrs", "none", "--workers", 1)
    assert ok.exit_code == 0 and "images: 1 (64x64)" in ok.stdout
    assert "every image is marked as train" in ok.stderr
    result = cli("prepare", "celeba", "--src", src, "--out", tmp_path / "o", "--crop", "square")
    assert result.exit_code == 2  # a usage error


def test_existing_output_needs_force(cli, synthetic_tree: Path, tmp_path: Path) -> None:
    args = (
        "prepare",
        "celeba",
        "--src",
        synthetic_tree,
        "--out",
        tmp_path / "ds",
        "--size",
        16,
        "--limit",
        3,
        "--workers",
        1,
    )
    assert cli(*args).exit_code == 0
    again = cli(*args)
    assert again.exit_code == 1 and "--force" in again.stderr
    assert cli(*args, "--force").exit_code == 0
    assert cli(*args, "--resume").exit_code == 0  # already complete: nothing to do


def test_resume_after_interrupt_redoes_nothing(
    cli, synthetic_tree: Path, tmp_path: Path, monkeypatch
) -> None:
    args = ("prepare", "celeba", "--src", synthetic_tree, "--size", 16, "--workers", 1)
    straight = cli(*args, "--out", tmp_path / "straight", "--json", "--quiet")
    assert straight.exit_code == 0

    out = tmp_path / "ds"
    with writer_fails(12, interrupt):  # Ctrl-C in the middle of the run
        interrupted = cli(*args, "--out", out)
    assert interrupted.exit_code == 130
    assert (out / "progress.json").exists() and not (out / "manifest.json").exists()

    refused = cli(*args, "--out", out)
    assert refused.exit_code == 1 and "--resume" in refused.stderr

    decoded = count_calls(monkeypatch, job, "_process")
    resumed = cli(*args, "--out", out, "--resume", "--json", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert len(decoded) == 30 - 11  # the 11 images written before Ctrl-C are not decoded again
    assert json.loads(resumed.stdout)["fingerprint"] == json.loads(straight.stdout)["fingerprint"]
    assert (out / "images-16.u8").read_bytes() == (tmp_path / "straight" / "images-16.u8").read_bytes()
    assert not (out / "progress.json").exists()


def test_json_output_is_one_document_and_help_has_examples(cli, synthetic_tree: Path, tmp_path: Path) -> None:
    result = cli(
        "prepare",
        "celeba",
        "--src",
        synthetic_tree,
        "--out",
        tmp_path / "ds",
        "--size",
        16,
        "--limit",
        2,
        "--workers",
        1,
        "--json",
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["count"] == 2  # the whole of stdout is one JSON document
    for command in ("celeba", "synthetic", "export", "recipes"):
        text = cli("prepare", command, "--help").stdout
        assert "Example:" in text, command


def test_recipes_load_and_are_checked(tmp_path: Path) -> None:
    names = list_recipes()
    assert {"celeba-64", "celeba-32", "celeba-128-attrs", "celeba-progan", "synthetic"} <= set(names)
    assert load_recipe("celeba-32").settings["crop_size"] == 64
    assert load_recipe("celeba-128-attrs").settings["crop"] == "stargan"
    with pytest.raises(FaceganError, match="Unknown dataset recipe"):
        load_recipe("celeba-9000")
    with pytest.raises(FaceganError, match="prepare synthetic"):
        load_recipe("synthetic", command="celeba")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\ncommand = "celeba"\n[settings]\nsise = 64\n')
    with pytest.raises(FaceganError, match="sise"):
        resolve_settings(load_recipe(bad), {}, job.CELEBA_DEFAULTS)
    resolved = resolve_settings(load_recipe("celeba-32"), {"size": 16, "crop": None}, job.CELEBA_DEFAULTS)
    assert resolved["size"] == 16 and resolved["crop"] == "dcgan" and resolved["crop_size"] == 64


def test_real_faces_prepare_with_crop_none(cli_json, celebahq_sample: Path, tmp_path: Path) -> None:
    src = tmp_path / "empty-src"
    src.mkdir()
    doc = cli_json(
        "prepare",
        "celeba",
        "--src",
        src,
        "--images",
        celebahq_sample,
        "--out",
        tmp_path / "hq",
        "--attrs",
        "none",
        "--crop",
        "none",
        "--size",
        32,
        "--workers",
        2,
    )
    assert doc["count"] == 46 and doc["resolutions"] == [32]
    data = PreparedDataset.open(tmp_path / "hq")
    first = sorted(p.name for p in celebahq_sample.glob("*.jpg"))[0]
    assert data.names[0] == first
    expected = np.asarray(Image.open(celebahq_sample / first).convert("RGB").resize((32, 32), Image.LANCZOS))
    np.testing.assert_array_equal(data.images()[0], expected)
