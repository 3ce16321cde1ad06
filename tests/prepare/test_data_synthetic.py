"""Synthetic faces: exact landmarks, attributes that match the pixels, determinism, layouts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan_cli.core.errors import FaceganError
from facegan_cli.data.imageio import load_rgb
from facegan_cli.prepare import celeba, synthetic

N = 30


def _fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares dst = [[a, b], [-b, a]] src + t; returns (matrix, t)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows += [[x, y, 1, 0], [y, -x, 0, 1]]
        rhs += [u, v]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows, float), np.array(rhs, float), rcond=None)[0]
    return np.array([[a, b], [-b, a]]), np.array([tx, ty])


def test_in_the_wild_landmarks_are_the_similarity_transform_of_the_aligned(synthetic_tree: Path) -> None:
    files, aligned = celeba.parse_landmarks(synthetic_tree / "Anno" / celeba.LANDMARKS_ALIGN_FILE)
    wild_files, wild = celeba.parse_landmarks(synthetic_tree / "Anno" / celeba.LANDMARKS_FILE)
    assert files == wild_files and len(files) == N
    for index, (p, q) in enumerate(zip(aligned, wild, strict=True)):
        spec = synthetic.face_spec(0, index, N)
        np.testing.assert_array_equal(p, spec.landmarks)
        # Re-derived from the generator's transform: exactly what the file says.
        np.testing.assert_array_equal(q, np.rint(p @ spec.matrix.T + np.array(spec.shift)))
        # And from the files alone: the points are a similarity of each other up to integer rounding.
        matrix, t = _fit_similarity(p.astype(float), q.astype(float))
        residual = np.abs(p @ matrix.T + t - q).max()
        assert residual <= 0.75, (files[index], residual)
        assert np.hypot(*matrix[0]) == pytest.approx(spec.scale, rel=0.03)


def test_aligned_landmarks_sit_at_celeba_positions(synthetic_tree: Path) -> None:
    _, aligned = celeba.parse_landmarks(synthetic_tree / "Anno" / celeba.LANDMARKS_ALIGN_FILE)
    mean = aligned.reshape(-1, 5, 2).mean(axis=0)
    np.testing.assert_allclose(mean, synthetic.CANONICAL_LANDMARKS, atol=1.5)
    image = Image.open(synthetic_tree / "img_align_celeba" / "000001.jpg")
    assert image.size == (178, 218) and image.format == "JPEG"


def _pupil_centre(pixels: np.ndarray, x: float, y: float) -> tuple[float, float] | None:
    xi, yi = int(round(x)), int(round(y))
    window = pixels[yi - 4 : yi + 5, xi - 4 : xi + 5].astype(int).sum(axis=2)
    ys, xs = np.nonzero(window < 120)
    if len(xs) == 0:
        return None
    return xs.mean() + xi - 4, ys.mean() + yi - 4


def test_eyes_are_drawn_at_the_landmarks_in_both_images(synthetic_tree: Path) -> None:
    checked = 0
    for index in range(N):
        spec = synthetic.face_spec(0, index, N)
        if spec.hair == "Black_Hair" or spec.eyeglasses:  # dark hair or frames would disturb the pupil search
            continue
        for folder, points in (
            ("img_align_celeba", spec.landmarks.astype(float)),
            ("img_celeba", spec.to_wild(spec.landmarks)),
        ):
            pixels = load_rgb(synthetic_tree / folder / spec.file)
            for eye in (0, 1):
                centre = _pupil_centre(pixels, *points[eye])
                assert centre is not None, (spec.file, folder)
                assert np.hypot(centre[0] - points[eye][0], centre[1] - points[eye][1]) < 1.5
        checked += 1
    assert checked >= 5


def test_attributes_are_consistent_and_hair_is_exclusive(synthetic_tree: Path) -> None:
    table = celeba.parse_attributes(synthetic_tree / "Anno" / celeba.ATTR_FILE)
    hair = table.select(["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]).values
    np.testing.assert_array_equal(hair.sum(axis=1), np.ones(N))
    unmodelled = [name for name in celeba.CELEBA_ATTRIBUTES if name not in synthetic.MODELLED_ATTRIBUTES]
    assert not table.select(unmodelled).values.any()
    picked = table.select(["Male", "No_Beard", "Wearing_Lipstick", "Young", "Gray_Hair"]).values
    assert not (picked[:, 0] & picked[:, 2]).any()  # lipstick only on women
    assert picked[:, 1][picked[:, 0] == 0].all()  # women have no beard
    assert not (picked[:, 3] & picked[:, 4]).any()  # young people are not grey here
    assert 0 < picked[:, 0].sum() < N  # both sexes occur


def test_hair_colour_label_matches_the_pixels(synthetic_tree: Path) -> None:
    table = celeba.parse_attributes(synthetic_tree / "Anno" / celeba.ATTR_FILE)
    hair_names = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]
    hair = table.select(hair_names).values
    for index in range(N):
        spec = synthetic.face_spec(0, index, N)
        g = synthetic.face_geometry(spec)
        hairline = g["eye_y"] - (0.62 if spec.long_hair else 0.78) * g["d"]
        y = int(round((hairline + g["cy"] - 1.04 * g["b"]) / 2))
        pixel = load_rgb(synthetic_tree / "img_align_celeba" / spec.file)[y, int(round(g["cx"]))].astype(int)
        labelled = hair_names[int(np.argmax(hair[index]))]
        distances = {name: np.abs(pixel - synthetic.HAIR_COLOURS[name]).sum() for name in hair_names}
        assert min(distances, key=distances.get) == labelled, (spec.file, pixel, labelled)


def test_partition_and_bbox_files(synthetic_tree: Path) -> None:
    partition = celeba.parse_partition(synthetic_tree / "Eval" / celeba.PARTITION_FILE)
    codes = [partition[name] for name in sorted(partition)]
    assert codes == [0] * 24 + [1] * 3 + [2] * 3  # 80/10/10, contiguous like CelebA
    identities = celeba.parse_identities(synthetic_tree / "Anno" / celeba.IDENTITY_FILE)
    by_split = [{identities[f] for f in partition if partition[f] == code} for code in range(3)]
    assert (
        not (by_split[0] & by_split[1])
        and not (by_split[0] & by_split[2])
        and not (by_split[1] & by_split[2])
    )
    files, boxes = celeba.parse_bboxes(synthetic_tree / "Anno" / celeba.BBOX_FILE)
    _, wild = celeba.parse_landmarks(synthetic_tree / "Anno" / celeba.LANDMARKS_FILE)
    for name, (x, y, w, h), points in zip(files, boxes, wild, strict=True):
        width, height = Image.open(synthetic_tree / "img_celeba" / name).size
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
        assert (points[:, 0] >= x).all() and (points[:, 0] < x + w).all()
        assert (points[:, 1] >= y).all() and (points[:, 1] < y + h).all()


def test_same_seed_same_files_other_seed_other_faces(tmp_path: Path) -> None:
    synthetic.write_synthetic(tmp_path / "a", n=6, seed=5)
    synthetic.write_synthetic(tmp_path / "b", n=6, seed=5)
    synthetic.write_synthetic(tmp_path / "c", n=6, seed=6)
    for rel in (
        "Anno/list_attr_celeba.txt",
        "Anno/list_landmarks_celeba.txt",
        "img_align_celeba/000004.jpg",
        "img_celeba/000006.jpg",
    ):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    assert (tmp_path / "a" / "img_celeba/000001.jpg").read_bytes() != (
        tmp_path / "c" / "img_celeba/000001.jpg"
    ).read_bytes()
    assert (tmp_path / "a" / "Anno/list_attr_celeba.txt").read_text() != (
        tmp_path / "c" / "Anno/list_attr_celeba.txt"
    ).read_text()


def test_parallel_workers_write_the_same_tree(tmp_path: Path) -> None:
    synthetic.write_synthetic(tmp_path / "one", n=8, seed=2, workers=1)
    synthetic.write_synthetic(tmp_path / "two", n=8, seed=2, workers=2)
    for file in sorted((tmp_path / "one").rglob("*")):
        # synthetic.json and the ownership marker record when they were written; everything else is drawn.
        if file.is_file() and file.name not in ("synthetic.json", ".facegan-output.json"):
            assert file.read_bytes() == (tmp_path / "two" / file.relative_to(tmp_path / "one")).read_bytes()


def test_folder_layout_writes_square_images_and_labels(tmp_path: Path) -> None:
    out = tmp_path / "faces"
    summary = synthetic.write_synthetic(out, n=5, seed=1, layout="folder", size=32)
    assert summary["layout"] == "folder"
    images = sorted(out.glob("*.png"))
    assert [p.name for p in images] == [f"{i:06d}.png" for i in range(1, 6)]
    assert all(Image.open(p).size == (32, 32) for p in images)
    rows = list(csv.reader((out / "labels.csv").open()))
    assert rows[0] == ["file", *synthetic.MODELLED_ATTRIBUTES]
    assert [r[0] for r in rows[1:]] == [p.name for p in images]
    expected = synthetic.face_spec(1, 2, 5).attributes()
    assert rows[3][1:] == [str(int(expected[name])) for name in synthetic.MODELLED_ATTRIBUTES]


def test_existing_output_needs_force_and_foreign_dirs_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    synthetic.write_synthetic(out, n=2, seed=0)
    with pytest.raises(FaceganError) as info:
        synthetic.write_synthetic(out, n=2, seed=0)
    assert "--force" in info.value.paragraph()
    synthetic.write_synthetic(out, n=3, seed=0, force=True)
    assert len(list((out / "img_align_celeba").iterdir())) == 3
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(FaceganError, match="refusing"):
        synthetic.write_synthetic(foreign, n=2, seed=0, force=True)
    assert (foreign / "thesis.tex").read_text() == "keep me"


def test_cli_synthetic_json(cli_json, tmp_path: Path) -> None:
    doc = cli_json("prepare", "synthetic", "--out", tmp_path / "s", "--n", 4, "--seed", 3, "--workers", 1)
    assert doc["n"] == 4 and doc["seed"] == 3 and doc["layout"] == "celeba"
    assert doc["partition"] == {"train": 3, "valid": 0, "test": 1}
    assert (tmp_path / "s" / "Anno" / celeba.ATTR_FILE).exists()
