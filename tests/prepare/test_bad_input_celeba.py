"""CelebA annotation files that point outside the image folder, repeat rows, are not UTF-8, or carry
decimal landmarks (issue 10, items 13, 15, 16): the parsers confine every listed name to its folder,
name both lines of a duplicate, read Latin-1 with a warning, and say precisely what a row lacks."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facegan_cli.core.errors import FaceganError
from facegan_cli.prepare import celeba

HEADER = " ".join(celeba.LANDMARK_NAMES)
VALUES = " ".join(["-1"] * 40)


def _attrs(names: list[str]) -> str:
    rows = "".join(f"{name} {VALUES}\n" for name in names)
    return f"{len(names)}\n{' '.join(celeba.CELEBA_ATTRIBUTES)} \n{rows}"


def _landmarks(names: list[str]) -> str:
    rows = "".join(f"{name} 69 109 106 113 77 142 73 152 108 154\n" for name in names)
    return f"{len(names)}\n{HEADER}\n{rows}"


def _bboxes(names: list[str]) -> str:
    rows = "".join(f"{name} 95 71 226 313\n" for name in names)
    return f"{len(names)}\nimage_id x_1 y_1 width height\n{rows}"


# file name -> (text holding the given names, parser, line of the first name)
FILES: dict[str, tuple[Callable[[list[str]], str], Callable[[Path], object], int]] = {
    celeba.ATTR_FILE: (_attrs, celeba.parse_attributes, 3),
    celeba.PARTITION_FILE: (lambda names: "".join(f"{n} 0\n" for n in names), celeba.parse_partition, 1),
    celeba.LANDMARKS_FILE: (_landmarks, celeba.parse_landmarks, 3),
    celeba.LANDMARKS_ALIGN_FILE: (_landmarks, celeba.parse_landmarks, 3),
    celeba.BBOX_FILE: (_bboxes, celeba.parse_bboxes, 3),
    celeba.IDENTITY_FILE: (lambda names: "".join(f"{n} 2880\n" for n in names), celeba.parse_identities, 1),
    celeba.HQ_MAPPING_FILE: (
        lambda names: "idx orig_idx orig_file\n"
        + "".join(f"{k} {int(n[:6]) - 1 if n[:6].isdigit() else 5} {n}\n" for k, n in enumerate(names)),
        celeba.parse_hq_mapping,
        2,
    ),
}
ESCAPES = ["../../../etc/hostname", "/etc/hostname", "sub/000002.jpg", "..", "..\\win.jpg", "a\x00b.jpg"]


@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("filename", list(FILES))
def test_names_outside_the_folder_are_refused(tmp_path: Path, filename: str, escape: str) -> None:
    text, parse, first = FILES[filename]
    path = tmp_path / filename
    path.write_text(text(["000001.jpg", escape]))
    with pytest.raises(FaceganError) as info:
        parse(path)
    message = info.value.message
    assert f"{path}, line {first + 1}" in message and repr(escape) in message
    assert "inside the image folder" in message


@pytest.mark.parametrize("filename", list(FILES))
def test_duplicate_rows_name_both_lines(tmp_path: Path, filename: str) -> None:
    text, parse, first = FILES[filename]
    path = tmp_path / filename
    path.write_text(text(["000001.jpg", "000002.jpg", "000001.jpg"]))
    if filename == celeba.HQ_MAPPING_FILE:  # its own key is idx; a CelebA file mapped twice is the repeat
        path.write_text("idx orig_idx orig_file\n0 0 000001.jpg\n1 1 000002.jpg\n2 0 000001.jpg\n")
    with pytest.raises(FaceganError) as info:
        parse(path)
    message = info.value.message
    assert f"{path}, line {first + 2}" in message and f"line {first}" in message and "000001.jpg" in message


def test_prepare_celeba_refuses_a_name_that_leaves_the_folder(cli, tree_copy: Path, tmp_path: Path) -> None:
    attrs = tree_copy / "Anno" / celeba.ATTR_FILE
    lines = attrs.read_text().splitlines()
    lines[4] = "../../../etc/hostname" + lines[4][len("000003.jpg") :]
    attrs.write_text("\n".join(lines) + "\n")
    result = cli("prepare", "celeba", "--src", tree_copy, "--out", tmp_path / "o", "--size", 16, "--workers", 1)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{attrs}, line 5" in result.stderr and "../../../etc/hostname" in result.stderr
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_latin1_annotations_are_read_with_a_warning(cli, tree_copy: Path, tmp_path: Path) -> None:
    attrs = tree_copy / "Anno" / celeba.ATTR_FILE
    lines = attrs.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"Young", b"J\xfcnger")  # a renamed attribute, saved by a Latin-1 editor
    attrs.write_bytes(b"\n".join(lines))
    result = cli("prepare", "celeba", "--src", tree_copy, "--out", tmp_path / "o", "--size", 16,
                 "--workers", 1, "--json", "--attrs", "Jünger,Male")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{attrs} is not UTF-8" in result.stderr and "Latin-1" in result.stderr
    table = celeba.parse_attributes(attrs)
    assert table.names[-1] == "Jünger"
    mapping = tmp_path / celeba.HQ_MAPPING_FILE
    mapping.write_bytes(b"idx orig_idx orig_file  # \xa9 2019\n0 0 000001.jpg\n")
    with pytest.raises(FaceganError, match="line 1"):  # the header is damaged, but read, not a crash
        celeba.parse_hq_mapping(mapping)
    identities = tmp_path / celeba.IDENTITY_FILE
    identities.write_bytes(b"000001.jpg 2880\n000002.jpg \xb2\n")  # Latin-1 superscript two: a digit, not a number
    with pytest.raises(FaceganError, match="line 2: expected '<file> <identity number>'"):
        celeba.parse_identities(identities)


def test_a_short_row_says_how_many_values_it_has(tmp_path: Path) -> None:
    path = tmp_path / celeba.ATTR_FILE
    text = _attrs(["000001.jpg", "000002.jpg"]).splitlines()
    text[3] = text[3].rsplit(" ", 1)[0]
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(FaceganError) as info:
        celeba.parse_attributes(path)
    assert "line 4: expected a file name and 40 values, found a file name and 39 values" in info.value.message
    boxes = tmp_path / celeba.BBOX_FILE
    boxes.write_text("1\nimage_id x_1 y_1 width height\n000001.jpg 95 71 226\n")
    with pytest.raises(FaceganError, match="expected a file name and 4 box values, found a file name and 3"):
        celeba.parse_bboxes(boxes)


def test_decimal_landmarks_are_accepted(synthetic_tree: Path, tmp_path: Path, cli) -> None:
    path = tmp_path / celeba.LANDMARKS_FILE
    path.write_text(f"2\n{HEADER}\n000001.jpg 69.5 109.25 106 113 77 142 73 152 108 154\n"
                    "000002.jpg 1 2 3 4 5 6 7 8 9 10\n")  # fmt: skip
    files, points = celeba.parse_landmarks(path)
    assert files == ["000001.jpg", "000002.jpg"] and points.dtype == np.float64
    np.testing.assert_array_equal(points[0, 0], [69.5, 109.25])
    ints = tmp_path / "ints.txt"
    ints.write_text(_landmarks(["000001.jpg"]))
    assert celeba.parse_landmarks(ints)[1].dtype == np.int64  # whole numbers stay integers, as before
    path.write_text(f"1\n{HEADER}\n000001.jpg 69.5 nan 106 113 77 142 73 152 108 154\n")
    with pytest.raises(FaceganError, match="line 3: coordinates must be finite numbers"):
        celeba.parse_landmarks(path)

    # prepare celeba-hq with another detector's sub-pixel points for the synthetic faces
    src = tmp_path / "celeba"
    shutil.copytree(synthetic_tree / "img_celeba", src / "img_celeba")
    shutil.copytree(synthetic_tree / "Eval", src / "Eval")
    lines = (synthetic_tree / "Anno" / celeba.LANDMARKS_FILE).read_text().splitlines()
    shifted = [lines[0], lines[1]] + [
        " ".join([row.split()[0], *(f"{int(v) + 0.25:g}" for v in row.split()[1:])]) for row in lines[2:]
    ]
    (src / "Anno").mkdir()
    (src / "Anno" / celeba.LANDMARKS_FILE).write_text("\n".join(shifted) + "\n")
    result = cli("prepare", "celeba-hq", "--src", src, "--out", tmp_path / "hq", "--size", 16,
                 "--transform-size", 64, "--no-levels", "--attrs", "none", "--limit", 2, "--workers", 1,
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
