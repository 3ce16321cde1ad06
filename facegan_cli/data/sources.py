"""One reader API over prepared datasets, folders of images and zips (StyleGAN's layout included).

`open_image_set(path, split, resolution)` returns an ImageSet; training and metrics use only
`len()`, `.resolution`, `.load_array()`, `.labels`, `.label_names`, `.fingerprint` and `.describe()`.

A prepared dataset is sliced from its memory map. Folders and zips are decoded on the fly (the slow
path) through data.imageio's one decode-and-reject path, under the bad-input policy: unusable files
(corrupt, FIFOs and devices, broken links, decompression bombs, ...) are skipped, counted in
`.rejects`, named in a warning, and the rows that were returned are reported by `load_with_indices`.
A labels.csv that is not UTF-8 is read as Latin-1, with a warning.
"""

from __future__ import annotations

import abc
import csv
import functools
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facegan_cli.core.errors import FaceganError
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

# Decoding in worker processes only pays off above this many images.
_PARALLEL_MIN = 64
# Class labels of dataset.json above this are taken for damage, not classes (one-hot rows would not fit).
_MAX_CLASSES = 1 << 16


class ImageSet(abc.ABC):
    """The interface every image source offers (see the module docstring)."""

    kind = "abstract"

    def __init__(self, path: Path, split: str) -> None:
        self.path = path
        self.split = split
        self.rejects: list[tuple[str, str]] = []

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @property
    @abc.abstractmethod
    def resolution(self) -> int: ...

    @property
    @abc.abstractmethod
    def labels(self) -> np.ndarray | None:
        """N x A int8 0/1 attributes of the rows of this set, or None."""

    @property
    @abc.abstractmethod
    def label_names(self) -> list[str]: ...

    @property
    @abc.abstractmethod
    def fingerprint(self) -> str:
        """Identifies the content (and split and resolution): equal fingerprints, equal pixels."""

    @abc.abstractmethod
    def load_with_indices(self, indices: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(N x res x res x 3 uint8 images, the indices they belong to) for the requested rows."""

    def load_array(self, indices: Any = None) -> np.ndarray:
        """The images of `indices` (default: all) as one uint8 array (N, res, res, 3)."""
        return self.load_with_indices(indices)[0]

    def describe(self) -> dict[str, Any]:
        """What a run's config.json records about its data."""
        return {
            "kind": self.kind,
            "path": str(self.path.resolve()),
            "split": self.split,
            "count": len(self),
            "resolution": self.resolution,
            "label_names": self.label_names,
            "fingerprint": self.fingerprint,
        }


def _as_indices(indices: Any, n: int) -> np.ndarray:
    if indices is None:
        return np.arange(n, dtype=np.int64)
    out = np.asarray(indices, dtype=np.int64).reshape(-1)
    if out.size and (out.min() < -n or out.max() >= n):
        raise IndexError(f"index out of range for an image set of {n} images")
    return out % n if out.size else out


class PreparedImageSet(ImageSet):
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


def _decode_fit(task: tuple[str, str | None, int]) -> np.ndarray:
    location, member, resolution = task
    return fit_square(open_rgb(location, member=member), resolution)


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


class DecodedImageSet(ImageSet):
    """A folder or a zip: names listed once, images decoded when loaded."""

    def __init__(
        self, path: Path, split: str, entries: list[str], resolution: int | None, workers: int | None
    ) -> None:
        super().__init__(path, split)
        if split not in ("all", "train"):
            raise FaceganError(
                f"{path} is a plain {self.kind} of images: it has no {split!r} split.",
                "Use --split all (or train), or prepare a dataset with partitions (`facegan prepare celeba`).",
            )
        if not entries:
            raise FaceganError(
                f"No images found in {path} (looked for .jpg, .jpeg, .png, .bmp, .webp, .tif, .gif, any case).",
                "Point at the folder or zip that holds the images.",
            )
        max_pixels()  # a bad FACEGAN_MAX_PIXELS fails here, once, rather than in every worker
        self.entries = entries
        self.workers = workers
        self._resolution = resolution
        self._labels: tuple[np.ndarray, list[str]] | None = self._read_labels()
        self._fingerprint: str | None = None

    @abc.abstractmethod
    def _task(self, name: str) -> tuple[str, str | None]:
        """(file path, None) or (zip path, member) of one entry."""

    @abc.abstractmethod
    def _side_bytes(self, name: str) -> bytes | None:
        """The bytes of a file beside the images (dataset.json, labels.csv), or None when absent."""

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

    @abc.abstractmethod
    def _content_digest(self, digest: Any) -> None:
        """Feed the identity of every entry's content to `digest`."""

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
                    self._resolution = min(size)
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

    def load_with_indices(self, indices: Any = None) -> tuple[np.ndarray, np.ndarray]:
        wanted = _as_indices(indices, len(self))
        res = self.resolution
        tasks = [(*self._task(self.entries[i]), res) for i in wanted]
        workers = self.workers if self.workers is not None else default_workers()
        if len(tasks) < _PARALLEL_MIN:
            workers = 1
        images, kept, skipped = [], [], []
        seen = {source for source, _ in self.rejects}
        with Progress(len(tasks), f"decode {self.path.name}", unit="img") as bar:
            for i, (ok, payload) in zip(
                wanted, ordered_map(functools.partial(guarded, _decode_fit), tasks, workers), strict=True
            ):
                if ok:
                    images.append(payload)
                    kept.append(i)
                else:
                    source = (
                        f"{self.path}/{self.entries[i]}"
                        if self.kind == "zip"
                        else str(self.path / self.entries[i])
                    )
                    if source not in seen:
                        self.rejects.append((source, payload))
                        seen.add(source)
                    skipped.append((self.entries[i], payload))
                bar.advance()
        if skipped:
            warn(
                f"{display_name(self.path)}: skipped {len(skipped)} unusable image(s) of {len(tasks)}: "
                f"{describe_rejects(skipped)}"
            )
        if not images:
            first = f" ({describe_rejects(skipped, shown=1)})" if skipped else ""
            raise FaceganError(
                f"No usable image among the {len(tasks)} requested from {display_name(self.path)}{first}.",
                "Check the files, or ask for a smaller resolution if they were too small.",
            )
        return np.stack(images), np.asarray(kept, dtype=np.int64)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.sha256(f"facegan-{self.kind}-v1|res={self.resolution}\n".encode())
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

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["rejected"] = len(self.rejects)
        return info


def _hidden(parts: tuple[str, ...]) -> bool:
    # macOS resource forks (._x.jpg, __MACOSX/) and dot-folders are never images a user meant.
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


class FolderImageSet(DecodedImageSet):
    kind = "folder"

    def __init__(self, path: Path, split: str, resolution: int | None, workers: int | None) -> None:
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
        super().__init__(path, split, sorted(entries), resolution, workers)

    def _task(self, name: str) -> tuple[str, str | None]:
        return str(self.path / name), None

    def _side_bytes(self, name: str) -> bytes | None:
        file = self.path / name
        # is_file() leaves out folders and special files; read_file checks the opened file again (no race).
        return read_file(file) if file.is_file() else None

    def _content_digest(self, digest: Any) -> None:
        for name in self.entries:
            # Names as the file system's bytes (not UTF-8 for some); contents through the reader's own
            # checks, so a FIFO, device or broken link adds its reject reason instead of blocking or failing.
            digest.update(name_bytes(f"{name}\n"))
            digest_input(self.path / name, digest)


class ZipImageSet(DecodedImageSet):
    kind = "zip"

    def __init__(self, path: Path, split: str, resolution: int | None, workers: int | None) -> None:
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
        super().__init__(path, split, sorted(self._infos), resolution, workers)

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


def open_image_set(
    path: str | os.PathLike[str],
    split: str | None = None,
    resolution: int | None = None,
    workers: int | None = None,
) -> ImageSet:
    """A prepared dataset directory, a folder of images (recursive) or a zip of images."""
    path = Path(path)
    split_name = normalize_split(split, protocols=True)
    if path.is_dir():
        if (path / MANIFEST).exists() or (path / PROGRESS).exists():
            return PreparedImageSet(PreparedDataset.open(path), split_name, resolution)
        return FolderImageSet(path, split_name, resolution, workers)
    if path.is_file() and zipfile.is_zipfile(path):
        return ZipImageSet(path, split_name, resolution, workers)
    if not path.exists():
        raise FaceganError(
            f"Dataset {path} does not exist.",
            "Pass a prepared dataset directory (from `facegan prepare ...`), a folder of images or a .zip.",
        )
    raise FaceganError(
        f"{path} is neither a directory nor a zip file.",
        "Pass a prepared dataset directory, a folder of images or a .zip of images.",
    )
