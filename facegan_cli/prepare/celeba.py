"""Parsers for the CelebA annotation files, as distributed (specs/datasets.md).

Files are looked up in `Anno/` and `Eval/` and, for mirrors that flatten them, in the root. Every row
is split on runs of whitespace. A malformed file raises FaceganError naming the file and line number.

The files are read as UTF-8; a file that is not (edited and saved as Latin-1) is read as Latin-1 with a
warning. Every file name a row lists must be a plain name inside the image folder: a name with a path
separator, '..', an absolute path or a NUL byte is refused with a FaceganError naming the file and line
(a stranger's annotation file must not make facegan read outside the folder), and so is a file listed
twice (naming both lines), since its rows would disagree or count one image twice. Landmark files may
hold decimal coordinates (another detector's sub-pixel points); CelebA's own are integers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import read_regular
from facegan_cli.core.progress import warn
from facegan_cli.data.imageio import decode_text
from facegan_cli.data.prepared import digest_file

ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
LANDMARKS_FILE = "list_landmarks_celeba.txt"
LANDMARKS_ALIGN_FILE = "list_landmarks_align_celeba.txt"
BBOX_FILE = "list_bbox_celeba.txt"
IDENTITY_FILE = "identity_CelebA.txt"
ALIGNED_DIR = "img_align_celeba"
WILD_DIR = "img_celeba"

# The 40 attributes in the order of list_attr_celeba.txt.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
LANDMARK_NAMES = (
    "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
).split()
BBOX_NAMES = ["x_1", "y_1", "width", "height"]
PARTITION_NAMES = {0: "train", 1: "valid", 2: "test"}
_SUBFOLDER = {
    ATTR_FILE: "Anno",
    LANDMARKS_FILE: "Anno",
    LANDMARKS_ALIGN_FILE: "Anno",
    BBOX_FILE: "Anno",
    IDENTITY_FILE: "Anno",
    PARTITION_FILE: "Eval",
}
_REDOWNLOAD = "The file may be truncated or edited; download it again from the CelebA site."


def _malformed(path: Path, line_no: int, what: str) -> FaceganError:
    return FaceganError(f"{path}, line {line_no}: {what}.", _REDOWNLOAD)


def find_annotation(root: str | os.PathLike[str], filename: str, required: bool = True) -> Path | None:
    """`root/Anno/filename` (or Eval/), else `root/filename`; FaceganError naming both when missing."""
    root = Path(root)
    candidates = [root / _SUBFOLDER.get(filename, "Anno") / filename, root / filename]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if not required:
        return None
    raise FaceganError(
        f"CelebA annotation file {filename} not found: looked for {candidates[0]} and {candidates[1]}.",
        f"Point --src at the CelebA folder that holds {_SUBFOLDER.get(filename, 'Anno')}/{filename} "
        "(from the CelebA download), or at a mirror with it in the root.",
    )


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """(1-based line number, whitespace-split fields) for every non-blank line."""
    try:
        raw = read_regular(path, "Annotation file")  # a FIFO is refused by name, never waited on
    except OSError as exc:
        raise FaceganError(
            f"{path} cannot be read ({exc.strerror or exc}).", "Check its permissions."
        ) from exc
    text, utf8 = decode_text(raw)
    if not utf8:
        warn(f"{path} is not UTF-8; read it as Latin-1 (save it as UTF-8 to be sure of non-ASCII names)")
    return [(i, line.split()) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _listed_name(path: Path, line_no: int, name: str) -> str:
    """`name` when it is a plain file name inside the image folder; FaceganError naming the row if not."""
    if (
        name in ("", ".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or os.path.isabs(name)
        or os.path.splitdrive(name)[0]  # C:x.jpg on Windows
    ):
        raise FaceganError(
            f"{path}, line {line_no}: the file name {name!r} is not a plain name inside the image folder "
            "(it holds a path separator or a NUL byte, is absolute, or is '..'); facegan reads listed images "
            "only from that folder.",
            "Rows name files like '000001.jpg'. Fix or remove that row, or use the annotation file of the "
            "CelebA download.",
        )
    return name


def _first_listing(path: Path, seen: dict[str, int], name: str, line_no: int) -> None:
    """Record that `name` is listed on `line_no`; FaceganError naming both lines when it was before."""
    if name in seen:
        raise FaceganError(
            f"{path}, line {line_no}: {name!r} is listed again (first on line {seen[name]}).",
            "Each image may have one row; remove the duplicate (or use the file of the CelebA download).",
        )
    seen[name] = line_no


def _files_and_values(
    path: Path, line_no: int, fields: list[str], count: int, what: str, seen: dict[str, int]
) -> tuple[str, list[str]]:
    """The checked file name and the `count` value fields of one row."""
    if len(fields) != count + 1:
        found = "only a file name" if len(fields) == 1 else f"a file name and {len(fields) - 1} {what}"
        raise _malformed(path, line_no, f"expected a file name and {count} {what}, found {found}")
    name = _listed_name(path, line_no, fields[0])
    _first_listing(path, seen, name, line_no)
    return name, fields[1:]


def _count_line(path: Path, rows: list[tuple[int, list[str]]]) -> int:
    if not rows:
        raise FaceganError(f"{path} is empty.", _REDOWNLOAD)
    line_no, fields = rows[0]
    if len(fields) != 1 or not fields[0].isdecimal():
        raise _malformed(path, line_no, f"expected the number of images, found {' '.join(fields)[:60]!r}")
    return int(fields[0])


def _check_count(path: Path, declared: int, found: int) -> None:
    if declared != found:
        raise FaceganError(
            f"{path}, line 1: declares {declared} images but the file has {found} rows.", _REDOWNLOAD
        )


def _number_table(
    path: Path, rows: list[tuple[int, list[str]]], ncols: int, what: str, decimals: bool = False
) -> tuple[list[str], np.ndarray]:
    """Files and an N x ncols int64 table; with `decimals`, float64 when any value has a fraction."""
    files: list[str] = []
    seen: dict[str, int] = {}
    table: list[list[int] | list[float]] = []
    fractional = False
    for line_no, fields in rows:
        name, texts = _files_and_values(path, line_no, fields, ncols, what, seen)
        try:
            table.append([int(v) for v in texts])
        except ValueError as exc:
            if not decimals:
                raise _malformed(path, line_no, f"{what} must be integers ({exc})") from exc
            try:
                numbers = [float(v) for v in texts]
            except ValueError as bad:
                raise _malformed(path, line_no, f"{what} must be finite numbers ({bad})") from bad
            if not np.isfinite(numbers).all():
                raise _malformed(
                    path, line_no, f"{what} must be finite numbers, found {' '.join(texts)!r}"
                ) from exc
            table.append(numbers)
            fractional = True
        files.append(name)
    dtype = np.float64 if fractional else np.int64
    return files, np.asarray(table, dtype=dtype).reshape(len(rows), ncols)


@dataclass
class Attributes:
    names: list[str]
    files: list[str]
    values: np.ndarray  # N x A int8, 1 where CelebA says +1, 0 where it says -1

    def select(self, wanted: list[str]) -> Attributes:
        """Keep the named attributes, in the given order; FaceganError listing the valid names."""
        unknown = [name for name in wanted if name not in self.names]
        if unknown:
            raise FaceganError(
                f"Unknown attribute(s) {', '.join(unknown)} in --attrs.",
                f"Valid names (case-sensitive): {' '.join(self.names)}.",
            )
        columns = [self.names.index(name) for name in wanted]
        return Attributes(list(wanted), self.files, self.values[:, columns])


def parse_attributes(path: str | os.PathLike[str]) -> Attributes:
    """list_attr_celeba.txt: count line, names line (trailing space), rows of +-1 (0/1 accepted)."""
    path = Path(path)
    rows = _rows(path)
    declared = _count_line(path, rows)
    if len(rows) < 2:
        raise FaceganError(f"{path} has no attribute-names line (line 2).", _REDOWNLOAD)
    names_line, names = rows[1]
    if names and names[0] in ("image_id", "file", "filename"):
        names = names[1:]
    if not names or any(name.lstrip("-").isdecimal() for name in names):
        raise _malformed(path, names_line, "expected the attribute names")
    files: list[str] = []
    seen: dict[str, int] = {}
    values = np.empty((len(rows) - 2, len(names)), dtype=np.int8)
    for k, (line_no, fields) in enumerate(rows[2:]):
        name, row = _files_and_values(path, line_no, fields, len(names), "values", seen)
        for value in row:
            if value not in ("1", "-1", "0"):
                raise _malformed(path, line_no, f"attribute values must be 1 or -1, found {value!r}")
        values[k] = [1 if value == "1" else 0 for value in row]
        files.append(name)
    _check_count(path, declared, len(files))
    return Attributes(names, files, values)


def parse_partition(path: str | os.PathLike[str]) -> dict[str, int]:
    """list_eval_partition.txt: "000001.jpg 0" rows (0 train, 1 valid, 2 test), no header."""
    path = Path(path)
    out: dict[str, int] = {}
    seen: dict[str, int] = {}
    for line_no, fields in _rows(path):
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise _malformed(path, line_no, "expected '<file> 0|1|2'")
        name = _listed_name(path, line_no, fields[0])
        _first_listing(path, seen, name, line_no)
        out[name] = int(fields[1])
    return out


def parse_landmarks(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """list_landmarks_celeba.txt or list_landmarks_align_celeba.txt -> (files, N x 5 x 2 array).

    Points in CelebA's order: left eye, right eye, nose, left mouth corner, right mouth corner. The
    array is int64 for CelebA's integer coordinates, float64 when a file holds decimals (landmarks from
    another detector); both are used as floats by the crops.
    """
    path = Path(path)
    rows = _rows(path)
    declared = _count_line(path, rows)
    if len(rows) < 2 or rows[1][1][:2] != LANDMARK_NAMES[:2]:
        raise _malformed(
            path, rows[1][0] if len(rows) > 1 else 2, "expected the header lefteye_x lefteye_y ..."
        )
    files, values = _number_table(path, rows[2:], 10, "coordinates", decimals=True)
    _check_count(path, declared, len(files))
    return files, values.reshape(-1, 5, 2)


def parse_bboxes(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """list_bbox_celeba.txt -> (files, N x 4 int array of x_1, y_1, width, height)."""
    path = Path(path)
    rows = _rows(path)
    declared = _count_line(path, rows)
    if len(rows) < 2 or [f.lower() for f in rows[1][1][-4:]] != [n.lower() for n in BBOX_NAMES]:
        raise _malformed(
            path, rows[1][0] if len(rows) > 1 else 2, "expected the header image_id x_1 y_1 width height"
        )
    files, values = _number_table(path, rows[2:], 4, "box values")
    _check_count(path, declared, len(files))
    return files, values


def parse_identities(path: str | os.PathLike[str]) -> dict[str, int]:
    """identity_CelebA.txt: "000001.jpg 2880" rows, no header."""
    path = Path(path)
    out: dict[str, int] = {}
    seen: dict[str, int] = {}
    for line_no, fields in _rows(path):
        if len(fields) != 2 or not fields[1].isdecimal():
            raise _malformed(path, line_no, "expected '<file> <identity number>'")
        name = _listed_name(path, line_no, fields[0])
        _first_listing(path, seen, name, line_no)
        out[name] = int(fields[1])
    return out


def find_images_dir(root: str | os.PathLike[str], name: str = ALIGNED_DIR) -> Path:
    """root/img_align_celeba (or the doubly nested copy some mirrors ship); FaceganError if absent."""
    root = Path(root)
    folder = root / name
    if (folder / name).is_dir():
        folder = folder / name  # e.g. the Kaggle mirror: img_align_celeba/img_align_celeba/
    if not folder.is_dir():
        raise FaceganError(
            f"CelebA image folder {folder} not found.",
            f"Point --src at the CelebA folder that holds {name}/ (unzip img_align_celeba.zip there), or "
            "pass --images DIR.",
        )
    return folder


def resolve_image(folder: Path, name: str) -> Path:
    """The file for an annotation row; falls back to a .png of the same stem (PNG mirrors of CelebA)."""
    path = folder / name
    if not path.exists():
        png = path.with_suffix(".png")
        if png.exists():
            return png
    return path


HQ_MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"
HQ_IMAGES_DIR = "CelebA-HQ-img"
HQ_ATTR_FILE = "CelebAMask-HQ-attribute-anno.txt"


@dataclass(frozen=True)
class HQMapping:
    """One row of CelebA-HQ-to-CelebA-mapping.txt: CelebA-HQ index, 0-based CelebA index, CelebA file."""

    idx: int
    orig_idx: int
    orig_file: str
    line: int  # 1-based line in the mapping file, for messages


def parse_hq_mapping(path: str | os.PathLike[str]) -> list[HQMapping]:
    """CelebA-HQ-to-CelebA-mapping.txt (CelebAMask-HQ): "idx orig_idx orig_file" rows, with or without
    that header line, in CelebA-HQ order. A malformed file raises FaceganError naming the line."""
    path = Path(path)
    rows = _rows(path)
    if not rows:
        raise FaceganError(f"{path} is empty.", "Use the CelebA-HQ-to-CelebA-mapping.txt of CelebAMask-HQ.")
    if [field.lower() for field in rows[0][1]] == ["idx", "orig_idx", "orig_file"]:
        rows = rows[1:]
    fix = "It should hold rows like '0 119613 119614.jpg'; use the copy shipped with CelebAMask-HQ."
    out: list[HQMapping] = []
    seen: dict[int, int] = {}
    seen_files: dict[str, int] = {}
    for line_no, fields in rows:
        if len(fields) != 3 or not fields[0].isdecimal() or not fields[1].isdecimal():
            raise FaceganError(
                f"{path}, line {line_no}: expected 'idx orig_idx orig_file', found {' '.join(fields)[:60]!r}.",
                fix,
            )
        idx, orig_idx = int(fields[0]), int(fields[1])
        orig_file = _listed_name(path, line_no, fields[2])
        # Two CelebA-HQ images made from one CelebA file would be the same face twice.
        _first_listing(path, seen_files, orig_file, line_no)
        stem = Path(orig_file).stem
        if stem.isdecimal() and int(stem) != orig_idx + 1:
            raise FaceganError(
                f"{path}, line {line_no}: orig_idx {orig_idx} (0-based) does not name {orig_file}.", fix
            )
        if idx in seen:
            raise FaceganError(f"{path}, line {line_no}: idx {idx} repeats line {seen[idx]}.", fix)
        seen[idx] = line_no
        out.append(HQMapping(idx, orig_idx, orig_file, line_no))
    return sorted(out, key=lambda row: row.idx)


def partition_codes(
    root: str | os.PathLike[str], files: list[str], required: bool
) -> tuple[list[int], Path | None]:
    """The list_eval_partition code (0 train, 1 valid, 2 test) of each file, and the file read.

    Without a partition file (and not `required`) every image is train. A file missing from the
    partition list is a FaceganError naming the first one.
    """
    path = find_annotation(root, PARTITION_FILE, required=required)
    if path is None:
        return [0] * len(files), None
    table = parse_partition(path)
    missing = [name for name in files if name not in table]
    if missing:
        raise FaceganError(
            f"{path} has no row for {missing[0]} ({len(missing)} images in all).",
            "Use the list_eval_partition.txt of the same CelebA download as the images and annotations.",
        )
    return [table[name] for name in files], path


def attribute_table(
    root: str | os.PathLike[str], attrs: str, path: Path | None = None
) -> tuple[Attributes | None, Path | None]:
    """The columns --attrs keeps ("all", "none", or names like Male,Young) of the attribute file (default:
    root's list_attr_celeba.txt), and the file read; (None, None) for "none"."""
    spec = attrs.strip()
    if spec.lower() == "none":
        return None, None
    try:
        path = path or find_annotation(root, ATTR_FILE)
        table = parse_attributes(path)
    except FaceganError as exc:
        raise FaceganError(
            exc.message, exc.fix + " Or pass --attrs none to prepare the images without labels."
        ) from exc
    if spec.lower() != "all":
        table = table.select([name.strip() for name in spec.split(",") if name.strip()])
    return table, path


def provenance(kind: str, src: Path, images: Path, annotations: Iterable[Path | None]) -> dict[str, Any]:
    """The manifest's `sources` entry of a CelebA-style input: the folders read, and the path and SHA-256
    of each annotation file read."""
    return {
        "kind": kind,
        "path": str(src.resolve()),
        "images": str(images.resolve()),
        "annotations": {
            path.name: {"path": str(path.resolve()), "sha256": digest_file(path, hashlib.sha256()).hexdigest()}
            for path in annotations
            if path is not None
        },
    }
