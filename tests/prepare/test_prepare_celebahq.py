"""`facegan prepare celeba-hq`: real faces under known similarities, the default 4096 path against the
PIL reference, attributes, mapping files, the bad-input policy, resume, shards and CelebAMask-HQ."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from align_helpers import psnr, warped_tree
from PIL import Image
from prepare_helpers import count_calls, interrupt, writer_fails
from references.align_reference import reference_align

from facegan_cli.align.geometry import five_points, oriented_quad
from facegan_cli.align.warp import WarpSettings, align_crop
from facegan_cli.data.crops import box_downsample
from facegan_cli.data.prepared import PreparedDataset
from facegan_cli.prepare import aligned, celeba

FAST = ("--size", 256, "--transform-size", 1024)  # the test size; 1024 instead of 4096 for speed


@pytest.fixture(scope="module")
def warped(tmp_path_factory: pytest.TempPathFactory, celebahq_sample: Path) -> tuple[Path, list[dict]]:
    """Four real faces, each rotated (up to 25 degrees), scaled (0.5-1.5) and placed on a larger canvas."""
    return warped_tree(tmp_path_factory.mktemp("wild") / "celeba", celebahq_sample, count=4, seed=11)


def test_celeba_landmarks_return_the_crop_of_the_unwarped_face(cli_json, warped, tmp_path: Path) -> None:
    root, records = warped
    out = tmp_path / "hq"
    doc = cli_json("prepare", "celeba-hq", "--src", root, "--out", out, *FAST, "--workers", 2)
    assert doc["count"] == len(records) and doc["rejected"] == 0
    data = PreparedDataset.open(out)
    assert data.names == [r["name"] for r in records]
    settings = WarpSettings(size=256, transform_size=1024)
    values = []
    for k, record in enumerate(records):
        # The quad comes from the file's (integer) landmarks by the CelebA-HQ formulas ...
        np.testing.assert_allclose(
            data.extra("quads")[k], oriented_quad(record["written"], "progan"), atol=1e-4
        )
        np.testing.assert_array_equal(data.extra("landmarks")[k], record["written"])
        # ... and the crop equals the crop of the original face aligned with its own landmarks.
        expected = align_crop(record["image"], oriented_quad(record["unwarped"], "progan"), settings)
        values.append(psnr(data.images()[k], expected))
    print("celeba landmarks PSNR (dB):", [round(v, 2) for v in values])
    assert min(values) >= 35, values


def test_dlib_landmarks_on_the_warped_faces(cli_json, warped, tmp_path: Path) -> None:
    root, records = warped
    out = tmp_path / "hq-dlib"
    doc = cli_json(
        "prepare", "celeba-hq", "--src", root, "--out", out, *FAST, "--landmarks", "dlib", "--workers", 2
    )
    assert doc["count"] == len(records)
    data = PreparedDataset.open(out)
    manifest = data.manifest
    assert manifest["alignment"]["landmark_backend"]["backend"] == "dlib"
    settings = WarpSettings(size=256, transform_size=1024)
    values = []
    for k, record in enumerate(records):
        np.testing.assert_allclose(
            data.extra("quads")[k], oriented_quad(data.extra("landmarks")[k], "progan"), atol=1e-3
        )
        # The reference: the original face aligned with the landmarks dlib finds on it.
        expected = align_crop(
            record["image"], oriented_quad(five_points(record["points68"]), "progan"), settings
        )
        values.append(psnr(data.images()[k], expected))
    print("dlib landmarks PSNR (dB):", [round(v, 2) for v in values])
    assert min(values) >= 25, values


def test_default_4096_path_matches_the_pil_reference(cli_json, warped, tmp_path: Path) -> None:
    root, records = warped
    out = tmp_path / "hq1024"
    doc = cli_json("prepare", "celeba-hq", "--src", root, "--out", out, "--limit", 1, "--workers", 1)
    assert doc["resolutions"] == [1024, 512, 256, 128, 64, 32, 16, 8, 4]
    data = PreparedDataset.open(out)
    record = records[0]
    wild = Image.open(root / "img_celeba" / record["name"]).convert("RGB")
    reference = np.asarray(
        reference_align(wild, oriented_quad(record["written"], "progan"), 1024, 4096, 1024)
    )
    top = data.images(1024)[0]
    difference = np.abs(top.astype(int) - reference.astype(int))
    assert difference.mean() < 0.6 and psnr(top, reference, central=1.0) > 45
    for res in (512, 16, 4):  # ProGAN's pyramid: 2x2 box averages of the top level
        np.testing.assert_array_equal(data.images(res)[0], box_downsample(top, 1024 // res))


def test_synthetic_tree_attributes_partitions_and_json(cli, synthetic_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "syn"
    result = cli(
        "prepare",
        "celeba-hq",
        "--src",
        synthetic_tree,
        "--out",
        out,
        "--size",
        64,
        "--transform-size",
        256,
        "--no-levels",
        "--workers",
        2,
        "--json",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert doc["count"] == 30 and doc["resolutions"] == [64] and doc["faces"] == {"several_faces": 0}
    data = PreparedDataset.open(out)
    attrs = celeba.parse_attributes(synthetic_tree / "Anno" / celeba.ATTR_FILE)
    np.testing.assert_array_equal(data.labels, attrs.values)
    assert data.manifest["splits"] == {"train": 24, "valid": 3, "test": 3}
    names, points = celeba.parse_landmarks(synthetic_tree / "Anno" / celeba.LANDMARKS_FILE)
    assert data.names == names
    wild = Image.open(synthetic_tree / "img_celeba" / names[5]).convert("RGB")
    expected = align_crop(wild, oriented_quad(points[5], "progan"), WarpSettings(64, 256))
    np.testing.assert_array_equal(data.images()[5], expected)
    sources = data.manifest["sources"][0]
    assert set(sources["annotations"]) == {celeba.LANDMARKS_FILE, celeba.ATTR_FILE, celeba.PARTITION_FILE}
    assert (
        data.manifest["settings"]["transform_size"] == 256 and data.manifest["recipe"]["name"] == "celeba-hq"
    )
    # One worker gives the same dataset.
    again = cli(
        "prepare",
        "celeba-hq",
        "--src",
        synthetic_tree,
        "--out",
        tmp_path / "one",
        "--size",
        64,
        "--transform-size",
        256,
        "--no-levels",
        "--workers",
        1,
        "--json",
        "--quiet",
    )
    assert json.loads(again.stdout)["fingerprint"] == doc["fingerprint"]


def _mapping(path: Path, rows: list[tuple[int, str]], header: bool) -> Path:
    text = "idx orig_idx orig_file\n" if header else ""
    text += "".join(f"{idx:<6d}{int(Path(name).stem) - 1:<8d}{name}\n" for idx, name in rows)
    path.write_text(text)
    return path


@pytest.mark.parametrize("header", [True, False])
def test_mapping_selects_and_orders_the_hq_subset(
    cli_json, synthetic_tree: Path, tmp_path: Path, header: bool
) -> None:
    mapping = _mapping(
        tmp_path / "map.txt", [(0, "000007.jpg"), (1, "000002.jpg"), (2, "000029.jpg")], header
    )
    doc = cli_json(
        "prepare",
        "celeba-hq",
        "--src",
        synthetic_tree,
        "--out",
        tmp_path / "hq",
        "--size",
        32,
        "--transform-size",
        128,
        "--mapping",
        mapping,
        "--workers",
        1,
    )
    assert doc["count"] == 3
    data = PreparedDataset.open(tmp_path / "hq")
    assert data.names == ["000007.jpg", "000002.jpg", "000029.jpg"]
    attrs = celeba.parse_attributes(synthetic_tree / "Anno" / celeba.ATTR_FILE)
    np.testing.assert_array_equal(data.labels, attrs.values[[6, 1, 28]])
    np.testing.assert_array_equal(data.partition, [0, 0, 2])
    assert "map.txt" in data.manifest["sources"][0]["annotations"]


def test_malformed_mapping_and_landmark_files_name_file_and_line(
    cli, wild_copy: Path, tmp_path: Path
) -> None:
    args = ("prepare", "celeba-hq", "--src", wild_copy, "--size", 32, "--transform-size", 128, "--workers", 1)
    bad = tmp_path / "bad-map.txt"
    bad.write_text("idx orig_idx orig_file\n0 6 000007.jpg\n1 x 000002.jpg\n")
    result = cli(*args, "--out", tmp_path / "a", "--mapping", bad)
    assert (
        result.exit_code == 1 and "bad-map.txt, line 3" in result.stderr and "Traceback" not in result.output
    )
    wrong = tmp_path / "wrong-map.txt"
    wrong.write_text("0 6 000007.jpg\n1 5 000002.jpg\n")  # 000002.jpg is CelebA index 1, not 5
    result = cli(*args, "--out", tmp_path / "b", "--mapping", wrong)
    assert result.exit_code == 1 and "wrong-map.txt, line 2" in result.stderr
    absent = tmp_path / "absent-map.txt"
    absent.write_text("0 99 000100.jpg\n")
    result = cli(*args, "--out", tmp_path / "c", "--mapping", absent)
    assert (
        result.exit_code == 1 and "absent-map.txt, line 1" in result.stderr and "000100.jpg" in result.stderr
    )
    result = cli(*args, "--out", tmp_path / "d", "--mapping", tmp_path / "nowhere.txt")
    assert result.exit_code == 1 and "nowhere.txt" in result.stderr

    landmarks = wild_copy / "Anno" / celeba.LANDMARKS_FILE
    lines = landmarks.read_text().splitlines()
    lines[4] = lines[4].replace(lines[4].split()[3], "3x")
    landmarks.write_text("\n".join(lines) + "\n")
    result = cli(*args, "--out", tmp_path / "e")
    assert result.exit_code == 1 and f"{celeba.LANDMARKS_FILE}, line 5" in result.stderr
    landmarks.unlink()
    result = cli(*args, "--out", tmp_path / "f")
    assert result.exit_code == 1 and celeba.LANDMARKS_FILE in result.stderr
    assert not (tmp_path / "f" / "manifest.json").exists()


def _damage(root: Path) -> dict[str, str]:
    """Every kind of bad input of the policy; returns the expected reject reasons by file."""
    wild = root / "img_celeba"
    (wild / "000002.jpg").write_bytes(b"")
    (wild / "000003.jpg").write_text("not a JPEG\n" * 10)
    data = (wild / "000004.jpg").read_bytes()
    (wild / "000004.jpg").write_bytes(data[: len(data) // 3])
    Image.new("RGB", (8, 8), (90, 90, 90)).save(wild / "000005.jpg")  # tiny: the landmarks fall outside
    Image.open(wild / "000006.jpg").convert("CMYK").save(wild / "000006.jpg", quality=98)
    Image.open(wild / "000007.jpg").convert("L").save(wild / "000007.jpg", quality=98)
    upright = Image.open(wild / "000008.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": stored turned 90 degrees counter-clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(wild / "000008.jpg", quality=98, exif=exif)
    gray16 = np.asarray(Image.open(wild / "000009.jpg").convert("L")).astype(np.uint16) * 257
    buffer = io.BytesIO()
    Image.fromarray(gray16).save(buffer, format="PNG")  # 16-bit PNG content under a .jpg name
    (wild / "000009.jpg").write_bytes(buffer.getvalue())
    Image.open(wild / "000010.jpg").convert("RGBA").save(wild / "000010.png")
    (wild / "000010.jpg").unlink()  # the .png of the same stem is used (PNG mirrors of CelebA)
    anno = root / "Anno" / celeba.LANDMARKS_FILE
    lines = anno.read_text().splitlines()
    lines[2 + 10] = "000011.jpg " + "".join(
        f"{v:5d}" for v in [5000, 10, 5040, 10, 5020, 30, 5005, 50, 5035, 50]
    )
    lines[2 + 11] = "000012.jpg " + "".join(f"{v:5d}" for v in [50, 50, 52, 50, 51, 51, 50, 52, 52, 52])
    anno.write_text("\n".join(lines) + "\n")
    return {
        "000002.jpg": "zero-byte file",
        "000003.jpg": "not an image",
        "000004.jpg": "truncated or corrupt image",
        "000005.jpg": "landmarks outside the image",
        "000011.jpg": "landmarks outside the image",
        "000012.jpg": "face too small",
    }


def test_bad_inputs_are_converted_or_rejected(
    cli, synthetic_tree: Path, wild_copy: Path, tmp_path: Path
) -> None:
    expected = _damage(wild_copy)
    out = tmp_path / "ds"
    args = ("--size", 64, "--transform-size", 256, "--no-levels", "--workers", 2)
    result = cli("prepare", "celeba-hq", "--src", wild_copy, "--out", out, *args, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["count"] == 30 - len(expected) and doc["rejected"] == len(expected)
    rejects = dict(line.split("\t") for line in (out / "rejects.tsv").read_text().splitlines())
    assert {Path(p).name for p in rejects} == set(expected)
    for path, reason in rejects.items():
        assert reason.startswith(expected[Path(path).name]), (path, reason)
    data = PreparedDataset.open(out)
    row = {name: k for k, name in enumerate(data.names)}
    clean = PreparedDataset.open(_clean_run(cli, synthetic_tree, tmp_path, args))
    clean_row = {name: k for k, name in enumerate(clean.names)}

    def close(name: str, tolerance: float) -> bool:
        ours = data.images()[row[name]].astype(int)
        theirs = clean.images()[clean_row[name]].astype(int)
        return np.abs(ours - theirs).mean() < tolerance

    assert close("000006.jpg", 4)  # CMYK converted
    assert close("000008.jpg", 2)  # EXIF orientation applied before the landmarks are used
    assert close("000010.jpg", 1)  # alpha dropped
    for name in ("000007.jpg", "000009.jpg"):  # grayscale and 16-bit grayscale become grey RGB
        grey = data.images()[row[name]]
        np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    assert data.manifest["rejected"]["by_reason"]["zero-byte file"] == 1

    strict = cli("prepare", "celeba-hq", "--src", wild_copy, "--out", tmp_path / "strict", *args, "--strict")
    assert strict.exit_code == 1 and "000002.jpg" in strict.stderr and "--strict" in strict.stderr


def _clean_run(cli, synthetic_tree: Path, tmp_path: Path, args: tuple) -> Path:
    out = tmp_path / "clean"
    assert cli("prepare", "celeba-hq", "--src", synthetic_tree, "--out", out, *args).exit_code == 0
    return out


def test_nothing_usable_exits_1(cli, wild_copy: Path, tmp_path: Path) -> None:
    for image in (wild_copy / "img_celeba").iterdir():
        image.write_bytes(b"")
    out = tmp_path / "ds"
    result = cli("prepare", "celeba-hq", "--src", wild_copy, "--out", out, "--size", 32, "--workers", 1)
    assert result.exit_code == 1 and "No usable image" in result.stderr and result.stdout == ""
    assert not (out / "manifest.json").exists() and len((out / "rejects.tsv").read_text().splitlines()) == 30


def test_resume_after_interrupt_and_shards(cli, synthetic_tree: Path, tmp_path: Path, monkeypatch) -> None:
    args = (
        "prepare",
        "celeba-hq",
        "--src",
        synthetic_tree,
        "--size",
        32,
        "--transform-size",
        128,
        "--workers",
        1,
    )
    straight = cli(*args, "--out", tmp_path / "straight", "--json", "--quiet")
    assert straight.exit_code == 0
    out = tmp_path / "ds"
    with writer_fails(12, interrupt):
        assert cli(*args, "--out", out).exit_code == 130
    assert (out / "progress.json").exists() and not (out / "manifest.json").exists()
    aligned_inputs = count_calls(monkeypatch, aligned, "align_input")
    resumed = cli(*args, "--out", out, "--resume", "--json", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert len(aligned_inputs) == 30 - 11
    assert json.loads(resumed.stdout)["fingerprint"] == json.loads(straight.stdout)["fingerprint"]
    assert (out / "quads.npy").read_bytes() == (tmp_path / "straight" / "quads.npy").read_bytes()

    full = PreparedDataset.open(tmp_path / "straight")
    parts = [
        PreparedDataset.open(tmp_path / f"s{i}")
        for i in range(3)
        if cli(*args, "--out", tmp_path / f"s{i}", "--shard", f"{i}/3").exit_code == 0
    ]
    assert len(parts) == 3
    assert sum((p.names for p in parts), []) == full.names
    np.testing.assert_array_equal(np.concatenate([p.images(32) for p in parts]), full.images(32))
    assert parts[1].manifest["sources"][0]["shard"] == {"index": 1, "count": 3, "inputs": [10, 20], "of": 30}
    bad = cli(*args, "--out", tmp_path / "bad", "--shard", "3/3")
    assert bad.exit_code == 2 and "--shard" in bad.stderr  # a bad number: a usage error


def test_celebamask_hq_images_are_resized_with_celeba_attributes(
    cli_json, synthetic_tree: Path, tmp_path: Path
) -> None:
    src = tmp_path / "CelebAMask-HQ"
    (src / celeba.HQ_IMAGES_DIR).mkdir(parents=True)
    chosen = ["000004.jpg", "000001.jpg", "000030.jpg"]
    for idx, name in enumerate(chosen):
        face = Image.open(synthetic_tree / "img_align_celeba" / name).crop((0, 20, 178, 198))
        face.resize((128, 128), Image.LANCZOS).save(src / celeba.HQ_IMAGES_DIR / f"{idx}.jpg", quality=95)
    _mapping(src / celeba.HQ_MAPPING_FILE, list(enumerate(chosen)), header=True)
    doc = cli_json(
        "prepare",
        "celeba-hq",
        "--src",
        src,
        "--celeba",
        synthetic_tree,
        "--out",
        tmp_path / "hq",
        "--size",
        64,
        "--workers",
        1,
    )
    assert doc["count"] == 3 and doc["resolutions"] == [64, 32, 16, 8, 4]
    data = PreparedDataset.open(tmp_path / "hq")
    assert data.names == chosen
    attrs = celeba.parse_attributes(synthetic_tree / "Anno" / celeba.ATTR_FILE)
    np.testing.assert_array_equal(data.labels, attrs.values[[3, 0, 29]])
    np.testing.assert_array_equal(data.partition, [0, 0, 2])
    expected = Image.open(src / celeba.HQ_IMAGES_DIR / "1.jpg").convert("RGB").resize((64, 64), Image.LANCZOS)
    np.testing.assert_array_equal(data.images()[1], np.asarray(expected))
    assert data.manifest["alignment"]["align"] == "none"


def test_help_explains_the_delta_files(cli) -> None:
    text = " ".join(cli("prepare", "celeba-hq", "--help").stdout.split())
    assert "Example:" in text and "delta" in text and "super-resolution" in text and "JPEG" in text
    assert "Example:" in cli("prepare", "faces", "--help").stdout
