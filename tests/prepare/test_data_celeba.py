"""CelebA annotation parsers: the distributed format, flattened mirrors, and malformed files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from facegan_cli.core.errors import FaceganError
from facegan_cli.prepare import celeba

ATTR_SAMPLE = (
    "3\n"
    + " ".join(celeba.CELEBA_ATTRIBUTES)
    + " \n"  # the real file ends the names line with a space
    + "000001.jpg -1  1  1 -1 -1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1 -1  1 -1 -1  1 -1 -1  1 -1 -1 -1  1  1 -1  1 -1  1 -1 -1  1\n"
    + "000002.jpg -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1 -1 -1  1 -1 -1  1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1\n"
    + "000003.jpg -1 -1 -1 -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1  1  1 -1 -1  1 -1 -1 -1 -1 -1  1  1 -1 -1 -1 -1  1\n"
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_attribute_file_in_the_distributed_format(tmp_path: Path) -> None:
    table = celeba.parse_attributes(_write(tmp_path / "list_attr_celeba.txt", ATTR_SAMPLE))
    assert table.names == list(celeba.CELEBA_ATTRIBUTES) and len(table.names) == 40
    assert table.files == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert table.values.dtype == np.int8 and table.values.shape == (3, 40)
    row = ATTR_SAMPLE.splitlines()[2].split()[1:]
    np.testing.assert_array_equal(table.values[0], [1 if v == "1" else 0 for v in row])
    picked = table.select(["Young", "Male", "Arched_Eyebrows"])
    np.testing.assert_array_equal(picked.values[:, 0], [1, 1, 1])
    np.testing.assert_array_equal(picked.values[:, 1], [0, 0, 0])
    np.testing.assert_array_equal(picked.values[:, 2], [1, 0, 0])
    with pytest.raises(FaceganError, match="Blue_Hair"):
        table.select(["Blue_Hair"])


def test_synthetic_tree_parses_with_anno_and_eval(synthetic_tree: Path) -> None:
    attrs = celeba.parse_attributes(celeba.find_annotation(synthetic_tree, celeba.ATTR_FILE))
    assert celeba.find_annotation(synthetic_tree, celeba.ATTR_FILE).parent.name == "Anno"
    partition = celeba.parse_partition(celeba.find_annotation(synthetic_tree, celeba.PARTITION_FILE))
    assert celeba.find_annotation(synthetic_tree, celeba.PARTITION_FILE).parent.name == "Eval"
    files, aligned = celeba.parse_landmarks(
        celeba.find_annotation(synthetic_tree, celeba.LANDMARKS_ALIGN_FILE)
    )
    _, wild = celeba.parse_landmarks(celeba.find_annotation(synthetic_tree, celeba.LANDMARKS_FILE))
    box_files, boxes = celeba.parse_bboxes(celeba.find_annotation(synthetic_tree, celeba.BBOX_FILE))
    identities = celeba.parse_identities(celeba.find_annotation(synthetic_tree, celeba.IDENTITY_FILE))
    n = len(attrs.files)
    assert n == 30 and files == attrs.files == box_files == sorted(partition) == sorted(identities)
    assert aligned.shape == (n, 5, 2) and wild.shape == (n, 5, 2) and boxes.shape == (n, 4)
    assert sorted(set(partition.values())) == [0, 1, 2]


def test_flattened_mirror_is_accepted(synthetic_tree: Path, tmp_path: Path) -> None:
    for file in list((synthetic_tree / "Anno").iterdir()) + list((synthetic_tree / "Eval").iterdir()):
        shutil.copy(file, tmp_path / file.name)
    for name in (celeba.ATTR_FILE, celeba.PARTITION_FILE, celeba.LANDMARKS_FILE, celeba.BBOX_FILE):
        assert celeba.find_annotation(tmp_path, name) == tmp_path / name
    flat = celeba.parse_attributes(celeba.find_annotation(tmp_path, celeba.ATTR_FILE))
    nested = celeba.parse_attributes(celeba.find_annotation(synthetic_tree, celeba.ATTR_FILE))
    np.testing.assert_array_equal(flat.values, nested.values)


def test_missing_annotation_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FaceganError) as info:
        celeba.find_annotation(tmp_path, celeba.ATTR_FILE)
    assert "list_attr_celeba.txt" in info.value.message and str(tmp_path) in info.value.message
    assert celeba.find_annotation(tmp_path, celeba.PARTITION_FILE, required=False) is None


@pytest.mark.parametrize(
    "mutate,line,what",
    [
        (lambda lines: lines.__setitem__(3, lines[3].rsplit(" ", 1)[0]), 4, "40 values"),  # a value missing
        (lambda lines: lines.__setitem__(4, lines[4].replace("-1", "2", 1)), 5, "1 or -1"),
        (lambda lines: lines.__setitem__(0, "three"), 1, "number of images"),
        (lambda lines: lines.__setitem__(0, "7"), 1, "declares 7"),
    ],
)
def test_malformed_attribute_file_names_file_and_line(tmp_path: Path, mutate, line: int, what: str) -> None:
    lines = ATTR_SAMPLE.splitlines()
    mutate(lines)
    path = _write(tmp_path / "Anno" / "list_attr_celeba.txt", "\n".join(lines) + "\n")
    with pytest.raises(FaceganError) as info:
        celeba.parse_attributes(path)
    assert str(path) in info.value.message
    assert f"line {line}" in info.value.message
    assert what in info.value.message


def test_malformed_other_files_name_file_and_line(tmp_path: Path) -> None:
    partition = _write(tmp_path / "list_eval_partition.txt", "000001.jpg 0\n000002.jpg 3\n")
    with pytest.raises(FaceganError, match=r"list_eval_partition.txt, line 2"):
        celeba.parse_partition(partition)
    header = " ".join(celeba.LANDMARK_NAMES)
    landmarks = _write(
        tmp_path / "list_landmarks_celeba.txt",
        f"2\n{header}\n000001.jpg 1 2 3 4 5 6 7 8 9 10\n000002.jpg 1 2 x 4 5 6 7 8 9 10\n",
    )
    with pytest.raises(FaceganError, match=r"list_landmarks_celeba.txt, line 4"):
        celeba.parse_landmarks(landmarks)
    boxes = _write(
        tmp_path / "list_bbox_celeba.txt", "1\nimage_id x_1 y_1 width height\n000001.jpg 95 71 226\n"
    )
    with pytest.raises(FaceganError, match=r"list_bbox_celeba.txt, line 3"):
        celeba.parse_bboxes(boxes)
    identities = _write(tmp_path / "identity_CelebA.txt", "000001.jpg 2880\n000002.jpg\n")
    with pytest.raises(FaceganError, match=r"identity_CelebA.txt, line 2"):
        celeba.parse_identities(identities)


def test_landmark_rows_keep_celeba_point_order(tmp_path: Path) -> None:
    header = " ".join(celeba.LANDMARK_NAMES)
    path = _write(
        tmp_path / "l.txt",
        f"1\n{header}\n000001.jpg    69  109   106  113    77  142    73  152   108  154\n",
    )
    files, points = celeba.parse_landmarks(path)
    assert files == ["000001.jpg"]
    np.testing.assert_array_equal(points[0], [[69, 109], [106, 113], [77, 142], [73, 152], [108, 154]])


def test_images_dir_accepts_the_nested_kaggle_layout(tmp_path: Path) -> None:
    (tmp_path / "img_align_celeba" / "img_align_celeba").mkdir(parents=True)
    assert celeba.find_images_dir(tmp_path) == tmp_path / "img_align_celeba" / "img_align_celeba"
    with pytest.raises(FaceganError, match="img_celeba"):
        celeba.find_images_dir(tmp_path, celeba.WILD_DIR)
