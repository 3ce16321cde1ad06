"""The ONE image-source hierarchy: what training, metrics, latent tools and editing read.

`open_image_set(path, split, resolution)` returns an `ImageSource`: a prepared dataset, a folder of
images (recursive), or a zip (StyleGAN's layout included); `ListSource` reads an explicit list of image
files (e.g. paths on stdin, `-`), and sources outside this package (generator samples, models.sources)
derive from the same base; `open_image_list(path)` resolves an --input (a file, a folder's images, or `-`)
into a ListSource. Every source offers:

- `len()`, `.resolution`, `.labels` / `.label_names`, `.fingerprint` (equal fingerprints, equal pixels;
  the metric feature cache and run configs key on it), `.describe()`, `.source_names()` (where each row
  came from), `.rejects`, `.used`, `.strict`;
- random access: `load_with_indices(rows)` / `load_array(rows)` (square images at `.resolution`, with a
  progress bar and a warning naming skipped files) and `take(rows)` (the same, quietly: MS-SSIM pairs);
- streaming, one pass at a time: `batches(batch_size, native)` and `stream(...)` (the same with the row
  numbers of each batch), over every row or over `rows` only (one rank's share under torchrun).
  `native=True` (the Inception metrics) gives every image at its stored size, each resized later by the
  metric's protocol as the reference packages do with files; `native=False` gives squares of
  `.resolution`, fitted by `fit_square` (the first image decides a folder's size).

A prepared dataset is sliced from its memory map. Folders, zips and lists are decoded on the fly (the
slow path) through data.imageio's one decode-and-reject path, in worker processes, under the bad-input
policy: unusable files (corrupt, FIFOs and devices, broken links, decompression bombs, ...) are skipped,
counted in `.rejects`, named in a warning, and the rows that were returned are reported; with `strict`
the first one stops the command. A labels.csv that is not UTF-8 is read as Latin-1, with a warning.
"""

from __future__ import annotations

import abc
import csv
import functools
import hashlib
import io
import json
import os
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from PIL import Image

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import require_file, special_kind
from facegan_cli.core.parallel import default_workers, ordered_map
from facegan_cli.core.progress import Progress, warn
from facegan_cli.data.crops import center_crop, resize_short_side
from facegan_cli.data.imageio import (
    DEFAULT_MAX_PIXELS,
    RejectedImage,
    decode_text,
    describe_rejects,
    digest_input,
    display_name,
    guarded,
    is_image_name,
    max_input_bytes,
    max_pixels,
    name_bytes,
    open_rgb,
    probe_size,
    read_file,
)
from facegan_cli.data.prepared import MANIFEST, PROGRESS, PreparedDataset, normalize_split

# Decoding in worker processes only pays off above this many images (random access; a pass always does).
_PARALLEL_MIN = 64
# Class labels of dataset.json above this are taken for damage, not classes (one-hot rows would not fit).
_MAX_CLASSES = 1 << 16

# A batch: one N x H x W x 3 uint8 array, or (native decoding of files) a list of H x W x 3 arrays.
Batch = np.ndarray | list[np.ndarray]


class ImageSource(abc.ABC):
    """A finite, ordered set of images (see the module docstring for what every source offers)."""

    kind = "abstract"

    def __init__(self, label: str | os.PathLike[str], split: str | None = None, strict: bool = False) -> None:
        self.label = os.fspath(label)  # what messages and result documents call the source
        self.path = Path(label)
        self.split = split  # None for sources that are not a dataset on disk (generator samples, arrays)
        self.strict = strict  # stop at the first unusable image instead of skipping it
        # Why a strict source stops, and the fix (its message): --strict, unless a reader needs every image.
        self.strict_why = ("--strict stops at the first unusable image",
                           "Fix or remove that file, or run without --strict to skip such files and count them.")
        self.rejects: list[tuple[str, str]] = []  # (source, reason) of every unusable image met
        self.used = 0  # images yielded by the last pass

    @abc.abstractmethod
    def __len__(self) -> int:
        """Images the source holds (before any are rejected)."""

    @property
    @abc.abstractmethod
    def resolution(self) -> int:
        """The side of the square images random access and `native=False` passes give."""

    @property
    def labels(self) -> np.ndarray | None:
        """N x A int8 0/1 attributes of the rows of this source, or None."""
        return None

    @property
    def label_names(self) -> list[str]:
        return []

    @property
    def fingerprint(self) -> str | None:
        """Identifies the content (and split and resolution): equal fingerprints, equal pixels; None when
        the pixels are not reproducible from the source alone."""
        return None

    def source_names(self) -> list[str]:
        """Where each row came from (an absolute file path, or DATASET[row]), for reports and answer keys."""
        return [f"{self.path.absolute()}[{row}]" for row in range(len(self))]

    def load_with_indices(self, indices: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(N x res x res x 3 uint8 images, the rows they are) for the requested rows (default: all)."""
        raise FaceganError(f"{self.label} cannot be read at random.", "Pass a folder, zip or prepared dataset.")

    def load_array(self, indices: Any = None) -> np.ndarray:
        """The images of `indices` (default: all) as one uint8 array (N, res, res, 3)."""
        return self.load_with_indices(indices)[0]

    def take(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """`load_with_indices` without progress bar or warning, for many small reads (MS-SSIM pairs)."""
        return self.load_with_indices(np.asarray(rows, dtype=np.int64))

    def stream(
        self, batch_size: int, native: bool = True, description: str = "images", rows: Sequence[int] | None = None
    ) -> Iterator[tuple[Batch, np.ndarray]]:
        """One pass: every usable image of `rows` (default: all) once, in order, `batch_size` at a time,
        with its row numbers."""
        self.used = 0
        wanted = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        with Progress(len(wanted), f"{description} {self.path.name}", unit="img") as bar:
            for start in range(0, len(wanted), batch_size):
                images, kept = self.load_with_indices(wanted[start : start + batch_size])
                yield images, kept
                self.used += len(images)
                bar.advance(len(images))

    def batches(
        self, batch_size: int, native: bool = True, description: str = "images", rows: Sequence[int] | None = None
    ) -> Iterator[Batch]:
        """One pass, as `stream` without the row numbers."""
        for images, _ in self.stream(batch_size, native, description, rows):
            yield images

    def describe(self) -> dict[str, Any]:
        """What result documents (metrics, exports) record about the source."""
        info: dict[str, Any] = {"kind": self.kind, "path": self.label}
        if self.split is not None:
            info.update(split=self.split, resolution=self.resolution, label_names=self.label_names)
        info.update(count=len(self), used=self.used, rejected=len(self.rejects), fingerprint=self.fingerprint)
        return info


def _as_indices(indices: Any, n: int) -> np.ndarray:
    if indices is None:
        return np.arange(n, dtype=np.int64)
    out = np.asarray(indices, dtype=np.int64).reshape(-1)
    if out.size and (out.min() < -n or out.max() >= n):
        raise IndexError(f"index out of range for an image source of {n} images")
    return out % n if out.size else out


class PreparedSource(ImageSource):
    """A prepared dataset (split and resolution chosen), sliced from its memory map."""

    kind = "prepared"

    def __init__(self, dataset: PreparedDataset, split: str, resolution: int | None) -> None:
        super().__init__(dataset.path, split)
        self.dataset = dataset
        self.rows = dataset.split_indices(split)
        self._resolution = dataset.resolution if resolution is None else int(resolution)
        if self._resolution not in dataset.resolutions:
            raise FaceganError(
                f"{dataset.path} has no {self._resolution}x{self._resolution} images (it holds "
                f"{', '.join(map(str, dataset.resolutions))}).",
                "Pick one of those resolutions, or prepare the dataset again with that --size (or --levels).",
            )
        if len(self.rows) == 0:
            raise FaceganError(
                f"Split {split!r} of {dataset.path} is empty (splits: {dataset.manifest.get('splits')}).",
                "Choose another --split, or prepare the dataset with that split.",
            )

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def resolution(self) -> int:
        return self._resolution

    def memmap(self) -> np.memmap:
        """All images of this resolution (every split), memory-mapped, read-only."""
        return self.dataset.images(self._resolution)

    @property
    def labels(self) -> np.ndarray | None:
        labels = self.dataset.labels
        return None if labels is None else labels[self.rows]

    @property
    def label_names(self) -> list[str]:
        return self.dataset.label_names

    @property
    def fingerprint(self) -> str:
        base = self.dataset.fingerprint
        if self.split == "all" and self._resolution == self.dataset.resolution:
            return base
        # A split or a lower level is other data: give it its own identity (metric caches key on this).
        digest = hashlib.sha256(f"{base}|split={self.split}|res={self._resolution}".encode())
        return "sha256:" + digest.hexdigest()

    def source_names(self) -> list[str]:
        names = self.dataset.names
        if len(names) == self.dataset.count:  # names.txt: the file each row was prepared from
            return [names[int(row)] for row in self.rows]
        return [f"{self.dataset.path.absolute()}[{int(row)}]" for row in self.rows]

    def load_with_indices(self, indices: Any = None) -> tuple[np.ndarray, np.ndarray]:
        wanted = _as_indices(indices, len(self))
        rows = self.rows[wanted]
        images = self.memmap()
        if len(rows) == images.shape[0] and np.array_equal(rows, np.arange(len(rows))):
            return np.array(images), wanted
        return np.ascontiguousarray(images[rows]), wanted


def fit_square(image: Image.Image, resolution: int) -> np.ndarray:
    """Resize the short side to `resolution` (LANCZOS, antialiased) and centre-crop a square."""
    w, h = image.size
    if min(w, h) < resolution:
        raise RejectedImage(f"too small: {w}x{h} < {resolution}")
    if (w, h) != (resolution, resolution):
        image = center_crop(resize_short_side(image, resolution, Image.LANCZOS), resolution)
    return np.asarray(image, dtype=np.uint8)


def _image_size(location: str, member: str | None) -> tuple[int, int] | None:
    # The same checks as decoding (regular file, byte and pixel limits), so a FIFO is not waited on and
    # a decompression bomb does not set the resolution of the whole set.
    try:
        return probe_size(location, member)
    except RejectedImage:  # try the next file
        return None


def _labels_from_stylegan(payload: dict[str, Any], names: list[str]) -> tuple[np.ndarray, list[str]] | None:
    """dataset.json {"labels": [[file, label], ...]}: 0/1 vectors, or class indices one-hot (as StyleGAN)."""
    raw = payload.get("labels")
    if not raw:
        return None
    table = {str(fname): label for fname, label in raw}
    if any(name not in table for name in names):
        return None
    values = [table[name] for name in names]
    if all(isinstance(v, int) for v in values):
        if min(values) < 0 or max(values) >= _MAX_CLASSES:
            return None
        classes = max(values) + 1
        onehot = np.zeros((len(values), classes), dtype=np.int8)
        onehot[np.arange(len(values)), values] = 1
        return onehot, [f"class_{k}" for k in range(classes)]
    array = np.asarray(values)
    if array.ndim != 2 or not np.isin(array, (0, 1)).all():
        return None
    label_names = payload.get("label_names") or [f"label_{k}" for k in range(array.shape[1])]
    return array.astype(np.int8), [str(n) for n in label_names]


def _latin1_view(name: str) -> str:
    # A file name as a Latin-1 labels.csv spells it: its bytes on disk, each read as one Latin-1 character.
    return name_bytes(name).decode("latin-1")


def _labels_from_csv(
    text: str, names: list[str], latin1: bool = False
) -> tuple[np.ndarray, list[str]] | None:
    """labels.csv: a header `file,Attr1,Attr2,...` then rows of 0/1 (or -1/1) per file.

    `latin1`: the file was not UTF-8 and was read as Latin-1; a name then also matches the file whose
    name has those bytes (a Latin-1 file system name, which Python lists with surrogate escapes)."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error:  # e.g. a field above csv's size limit: not a labels table
        return None
    if len(rows) < 2 or len(rows[0]) < 2:
        return None
    header, table = rows[0], {}
    for row in rows[1:]:
        if len(row) != len(header):
            return None
        try:
            table[row[0].strip()] = [1 if int(v) == 1 else 0 for v in row[1:]]
        except ValueError:
            return None
    values = []
    for name in names:
        keys = [name, os.path.basename(name)]
        if latin1:
            keys += [_latin1_view(key) for key in keys]
        found = next((table[key] for key in keys if key in table), None)
        if found is None:
            return None
        values.append(found)
    return np.asarray(values, dtype=np.int8), [h.strip() for h in header[1:]]


def half_of(image: Image.Image, half: str | None) -> Image.Image:
    """Side `half` ("A": left, "B": right) of an image holding a pair side by side (junyanz's aligned
    layout: A|B, split at int(w / 2)); the image itself for None."""
    if half is None:
        return image
    w, h = image.size
    return image.crop((0, 0, w // 2, h) if half == "A" else (w // 2, 0, w, h))


def _decode(task: tuple[str, str | None, int | None, str | None]) -> np.ndarray:
    """One file (or zip member), or one half of it, at its stored size (`side` None) or fitted to a
    side x side square."""
    location, member, side, half = task
    image = half_of(open_rgb(location, member=member), half)
    return np.asarray(image, dtype=np.uint8) if side is None else fit_square(image, side)


class DecodedSource(ImageSource):
    """Image files decoded when read: a folder, a zip or a list. Names are listed once (`entries`). With
    `half` "A" or "B" each file holds a pair side by side and the source reads one side of it."""

    half: str | None = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        split: str,
        entries: list[str],
        resolution: int | None,
        workers: int | None,
        strict: bool = False,
    ) -> None:
        super().__init__(path, split, strict)
        if split not in ("all", "train"):
            raise FaceganError(
                f"{path} is a plain {self.kind} of images: it has no {split!r} split.",
                "Use --split all (or train), or prepare a dataset with partitions (`facegan prepare celeba`).",
            )
        if not entries:
            raise FaceganError(self._no_entries(), "Point at the images (a folder, a zip, or a list of files).")
        max_pixels()  # a bad FACEGAN_MAX_PIXELS fails here, once, rather than in every worker
        self.entries = entries
        self.workers = workers if workers is not None else default_workers()
        self._resolution = resolution
        self._labels: tuple[np.ndarray, list[str]] | None = self._read_labels()
        self._fingerprint: str | None = None

    def _no_entries(self) -> str:
        return f"No images found in {self.path} (looked for .jpg, .jpeg, .png, .bmp, .webp, .tif, .gif, any case)."

    @abc.abstractmethod
    def _task(self, name: str) -> tuple[str, str | None]:
        """(file path, None) or (zip path, member) of one entry."""

    def _source_name(self, name: str) -> str:
        """How rejects.tsv-style lists and messages name one entry."""
        return f"{self.path}/{name}"

    def _side_bytes(self, name: str) -> bytes | None:
        """The bytes of a file beside the images (dataset.json, labels.csv), or None when absent."""
        return None

    def source_names(self) -> list[str]:
        root = self.path.absolute()
        return [f"{root}/{entry}" for entry in self.entries]

    def _side_file(self, name: str) -> tuple[str, bool] | None:
        """(text, was UTF-8) of a file beside the images; not UTF-8 is read as Latin-1, with a warning."""
        try:
            raw = self._side_bytes(name)
        except RejectedImage as exc:
            warn(f"{display_name(self.path)}: ignoring {name} ({exc.reason})")
            return None
        if raw is None:
            return None
        text, utf8 = decode_text(raw)
        if not utf8:
            warn(f"{display_name(self.path)}: {name} is not UTF-8; read it as Latin-1 (save it as UTF-8)")
        return text, utf8

    def _content_digest(self, digest: Any) -> None:
        """Feed the identity of every entry's content to `digest` (files: their names and bytes)."""
        for name in self.entries:
            # Names as the file system's bytes (not UTF-8 for some); contents through the reader's own
            # checks, so a FIFO, device or broken link adds its reject reason instead of blocking or failing.
            digest.update(name_bytes(f"{name}\n"))
            digest_input(self._task(name)[0], digest)

    def _read_labels(self) -> tuple[np.ndarray, list[str]] | None:
        stylegan, table = self._side_file("dataset.json"), self._side_file("labels.csv")
        found = None
        if stylegan is not None:
            try:
                payload = json.loads(stylegan[0])
            except json.JSONDecodeError:
                payload = {}
            if isinstance(payload, dict) and payload.get("labels"):
                try:
                    found = _labels_from_stylegan(payload, self.entries)
                except (TypeError, ValueError):
                    found = None
                if found is None:
                    warn(
                        f"{self.path}: dataset.json labels do not cover every image as 0/1 vectors or classes; "
                        "ignoring them"
                    )
        elif table is not None:
            found = _labels_from_csv(table[0], self.entries, latin1=not table[1])
            if found is None:
                warn(f"{self.path}: labels.csv does not give 0/1 values for every image; ignoring it")
        return found

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def resolution(self) -> int:
        if self._resolution is None:
            # The first readable image decides, squared to its short side (rotation does not change it).
            for name in self.entries:
                size = _image_size(*self._task(name))
                if size is not None:
                    self._resolution = min(size[0] // 2 if self.half else size[0], size[1])
                    break
            else:
                raise FaceganError(
                    f"None of the {len(self)} files in {self.path} is a readable image.",
                    "Point at a folder or zip of JPEG/PNG images.",
                )
        return self._resolution

    @property
    def labels(self) -> np.ndarray | None:
        return None if self._labels is None else self._labels[0]

    @property
    def label_names(self) -> list[str]:
        return [] if self._labels is None else self._labels[1]

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.sha256(f"facegan-{self.kind}-v1|res={self.resolution}\n".encode())
            if self.half:
                digest.update(f"half={self.half}\n".encode())
            limit = max_pixels()
            if limit != DEFAULT_MAX_PIXELS:
                # Another pixel limit accepts or rejects other files: other pixels, so another identity
                # (the metrics feature cache keys on it). The default adds nothing, keeping old fingerprints.
                digest.update(f"max_pixels={limit}\n".encode())
            self._content_digest(digest)
            if self._labels is not None:
                digest.update(self._labels[0].tobytes())
                digest.update("\n".join(self._labels[1]).encode())
            self._fingerprint = "sha256:" + digest.hexdigest()
        return self._fingerprint

    # --- decoding: every reader below goes through _decoded --------------------------------------------

    def _decoded(
        self, rows: Sequence[int], native: bool, workers: int, skipped: list[tuple[str, str]]
    ) -> Iterator[tuple[int, np.ndarray]]:
        """(row, pixels) of every usable row in order; unusable ones are added to `skipped` (entry, reason)
        and to `.rejects` (once per file), or stop the command with `strict`."""
        side = None if native else self.resolution
        tasks = [(*self._task(self.entries[row]), side, self.half) for row in rows]
        seen = {source for source, _ in self.rejects}
        results = ordered_map(functools.partial(guarded, _decode), tasks, workers)
        for row, (ok, payload) in zip(rows, results, strict=True):
            if ok:
                yield row, payload
                continue
            source = self._source_name(self.entries[row])
            if self.strict:
                raise FaceganError(f"{display_name(source)} cannot be used: {payload} ({self.strict_why[0]}).",
                                   self.strict_why[1])
            if source not in seen:
                self.rejects.append((source, payload))
                seen.add(source)
            skipped.append((self.entries[row], payload))

    def _random_workers(self, count: int) -> int:
        return self.workers if count >= _PARALLEL_MIN else 1

    def _stacked(self, rows: Sequence[int], skipped: list[tuple[str, str]], bar: Any = None) -> tuple[np.ndarray, np.ndarray]:
        kept, images = [], []
        for row, image in self._decoded(rows, False, self._random_workers(len(rows)), skipped):
            kept.append(row)
            images.append(image)
            if bar is not None:
                bar.advance()
        if bar is not None:
            bar.advance(len(skipped))
        side = self.resolution
        stacked = np.stack(images) if images else np.zeros((0, side, side, 3), np.uint8)
        return stacked, np.asarray(kept, dtype=np.int64)

    def _check_skipped(self, skipped: list[tuple[str, str]], total: int, found: int) -> None:
        """The warning that names skipped files, and the error when nothing was usable."""
        if skipped:
            warn(
                f"{display_name(self.label)}: skipped {len(skipped)} unusable image(s) of {total}: "
                f"{describe_rejects(skipped)}"
            )
        if not found:
            first = f" (first problem: {describe_rejects(skipped, shown=1)})" if skipped else ""
            raise FaceganError(
                f"No usable image among the {total} requested from {display_name(self.label)}{first}.",
                "Check that the path points at the images (JPEG, PNG, ...) and that they are not damaged, or "
                "ask for a smaller resolution if they were too small.",
            )

    def load_with_indices(self, indices: Any = None) -> tuple[np.ndarray, np.ndarray]:
        wanted = _as_indices(indices, len(self))
        skipped: list[tuple[str, str]] = []
        with Progress(len(wanted), f"decode {self.path.name}", unit="img") as bar:
            images, kept = self._stacked(list(wanted), skipped, bar)
        self._check_skipped(skipped, len(wanted), len(kept))
        return images, kept

    def take(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        return self._stacked(list(rows), [])

    def stream(
        self, batch_size: int, native: bool = True, description: str = "images", rows: Sequence[int] | None = None
    ) -> Iterator[tuple[Batch, np.ndarray]]:
        self.rejects, self.used = [], 0
        skipped: list[tuple[str, str]] = []
        share = rows is not None  # one rank's share: a share without usable images is not yet an error
        rows = range(len(self)) if rows is None else [int(row) for row in rows]
        pending: list[np.ndarray] = []
        kept: list[int] = []
        with Progress(len(rows), f"{description} {self.path.name}", unit="img") as bar:
            for row, image in self._decoded(rows, native, self.workers, skipped):
                pending.append(image)
                kept.append(row)
                if len(pending) == batch_size:
                    yield (pending if native else np.stack(pending)), np.asarray(kept, dtype=np.int64)
                    self.used += len(pending)
                    bar.advance(len(pending))
                    pending, kept = [], []
            if pending:
                yield (pending if native else np.stack(pending)), np.asarray(kept, dtype=np.int64)
                self.used += len(pending)
        self._check_skipped(skipped, len(rows), self.used or share)


def _hidden(parts: tuple[str, ...]) -> bool:
    # macOS resource forks (._x.jpg, __MACOSX/) and dot-folders are never images a user meant.
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


class FolderSource(DecodedSource):
    kind = "folder"

    def __init__(
        self, path: Path, split: str, resolution: int | None, workers: int | None, strict: bool = False
    ) -> None:
        entries: list[str] = []
        unlisted: list[OSError] = []
        # Symlinked folders are not followed (os.walk's default): no loops, nothing outside `path`.
        for root, dirs, files in os.walk(path, onerror=unlisted.append):
            dirs[:] = sorted(d for d in dirs if not _hidden((d,)))
            rel = Path(root).relative_to(path)
            entries += [(rel / f).as_posix() for f in files if is_image_name(f) and not _hidden((f,))]
        for exc in unlisted:
            folder = display_name(exc.filename or path)
            warn(f"cannot list {folder} ({exc.strerror or exc}): the images in it are left out")
        super().__init__(path, split, sorted(entries), resolution, workers, strict)

    def _task(self, name: str) -> tuple[str, str | None]:
        return str(self.path / name), None

    def _side_bytes(self, name: str) -> bytes | None:
        file = self.path / name
        # is_file() leaves out folders and special files; read_file checks the opened file again (no race).
        return read_file(file) if file.is_file() else None


class ZipSource(DecodedSource):
    kind = "zip"

    def __init__(
        self, path: Path, split: str, resolution: int | None, workers: int | None, strict: bool = False
    ) -> None:
        try:
            with zipfile.ZipFile(path) as archive:
                self._infos = {
                    info.filename: (info.CRC, info.file_size)
                    for info in archive.infolist()
                    if not info.is_dir()
                    and is_image_name(info.filename)
                    and not _hidden(Path(info.filename).parts)
                }
                self._side = {
                    name: self._member_bytes(archive, name) for name in ("dataset.json", "labels.csv")
                }
        except (zipfile.BadZipFile, OSError) as exc:
            raise FaceganError(
                f"{path} is not a readable zip file ({exc}).", "Check the file or re-create it."
            ) from exc
        super().__init__(path, split, sorted(self._infos), resolution, workers, strict)

    def _task(self, name: str) -> tuple[str, str | None]:
        return str(self.path), name

    @staticmethod
    def _member_bytes(archive: zipfile.ZipFile, name: str) -> bytes | RejectedImage | None:
        try:
            info = archive.getinfo(name)
        except KeyError:
            return None
        limit = max_input_bytes()
        if limit is not None and info.file_size > limit:  # from the directory: nothing decompressed yet
            return RejectedImage(f"declares {info.file_size:,} bytes, above the {limit:,}-byte limit")
        try:
            return archive.read(info)
        except Exception as exc:  # a damaged side file leaves the images usable
            return RejectedImage(f"unreadable: {exc}")

    def _side_bytes(self, name: str) -> bytes | None:
        found = self._side.get(name)
        if isinstance(found, RejectedImage):
            raise found
        return found

    def _content_digest(self, digest: Any) -> None:
        # The zip's own CRC-32 and size of each member identify its content without reading it.
        for name in self.entries:
            crc, size = self._infos[name]
            digest.update(f"{name}\t{crc:08x}\t{size}\n".encode())


class ListSource(DecodedSource):
    """An explicit list of image files (e.g. the paths `-` reads from stdin), read in the order given."""

    kind = "list"
    # (path, reason) of the image-named entries of a folder that were left out (FIFOs, dangling links).
    skipped: list[tuple[str, str]] = []

    def __init__(
        self,
        files: Sequence[str | os.PathLike[str]],
        label: str = "-",
        resolution: int | None = None,
        workers: int | None = None,
        strict: bool = False,
    ) -> None:
        super().__init__(label, "all", [os.fspath(file) for file in files], resolution, workers, strict)

    def _no_entries(self) -> str:
        return f"{self.label} names no image files."

    def _task(self, name: str) -> tuple[str, str | None]:
        return name, None

    def _source_name(self, name: str) -> str:
        return name

    def source_names(self) -> list[str]:
        return [str(Path(entry).absolute()) for entry in self.entries]


def open_image_list(
    path: str | os.PathLike[str], option: str = "--input", stdin: TextIO | None = None, **options: Any
) -> ListSource:
    """The images an `option` names: one file, a folder's images (its own level, sorted), or, for '-', the
    paths on stdin (one a line); `options` go to ListSource (resolution, workers, strict)."""
    if os.fspath(path) == "-":
        files = [line.strip() for line in (stdin or sys.stdin) if line.strip()]
        if not files:
            raise FaceganError(f"{option} - read no paths from stdin.", "Pipe image paths, one per line.")
        missing = [file for file in files if not Path(file).is_file()]
        if missing:
            kind = special_kind(missing[0])
            raise FaceganError(f"{missing[0]} (read from stdin) is {kind or 'not a file'}"
                               f"{', not a regular file' if kind else ''}.", "Pipe existing image paths.")
        return ListSource(files, "-", **options)
    path = Path(path)
    if path.is_dir():
        found, skipped = [], []
        for child in sorted(path.iterdir()):
            if not is_image_name(child.name):
                continue
            if child.is_file():
                found.append(child)
            elif child.is_symlink() and not child.exists():
                skipped.append((str(child), "a symbolic link whose target does not exist"))
            elif (kind := special_kind(child)) is not None and kind != "a directory":
                skipped.append((str(child), f"{kind}, not a regular file"))
        if skipped:
            # Named, not dropped silently: the user expects one output per image-named entry.
            warn(f"{option} {display_name(path)}: skipping {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} "
                 f"that cannot be read as images: {describe_rejects(skipped)}")
        if not found:
            raise FaceganError(f"No images found in {path}.", f"Point {option} at an image or a folder of images.")
        source = ListSource(found, str(path), **options)
        source.skipped = skipped
        return source
    require_file(path, option, f"Point {option} at an image or a folder of images.")
    return ListSource([path], str(path), **options)


def open_image_set(
    path: str | os.PathLike[str],
    split: str | None = None,
    resolution: int | None = None,
    workers: int | None = None,
    strict: bool = False,
    half: str | None = None,
) -> ImageSource:
    """A prepared dataset directory, a folder of images (recursive) or a zip of images (`half` "A" / "B":
    one side of each image of a folder or zip of side-by-side pairs, see DecodedSource)."""
    path = Path(path)
    split_name = normalize_split(split, protocols=True)
    source: DecodedSource
    if path.is_dir():
        if (path / MANIFEST).exists() or (path / PROGRESS).exists():
            if half is not None:
                raise FaceganError(f"{path} is a prepared dataset, not a folder of side-by-side pairs.",
                                   "Give the pairs as two folders (--data-a/--data-b) or junyanz's aligned folder.")
            return PreparedSource(PreparedDataset.open(path), split_name, resolution)
        source = FolderSource(path, split_name, resolution, workers, strict)
        source.half = half
        return source
    if path.is_file() and zipfile.is_zipfile(path):
        source = ZipSource(path, split_name, resolution, workers, strict)
        source.half = half
        return source
    if not path.exists():
        raise FaceganError(
            f"Dataset {path} does not exist.",
            "Pass a prepared dataset directory (from `facegan prepare ...`), a folder of images or a .zip.",
        )
    raise FaceganError(
        f"{path} is neither a directory nor a zip file.",
        "Pass a prepared dataset directory, a folder of images or a .zip of images.",
    )
