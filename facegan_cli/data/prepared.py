"""The prepared-dataset format (specs/datasets.md): writer with resume, and a memory-mapping reader.

A finished dataset directory holds
  manifest.json         written LAST and atomically: a directory without it is never a dataset
  images-{res}.u8       N x res x res x 3 raw uint8 (C order), one per resolution, memory-mappable
  labels.npy            N x A int8 0/1 (only when the source has labels)
  partition.npy         N int8: 0 train, 1 valid, 2 test (CelebA's list_eval_partition codes)
  names.txt             the source file of each row, one per line
  rejects.tsv           source path TAB reason, one line per input that could not be used
  {extra}.npy           optional per-row float32 arrays a prepare declares (e.g. the crop quad of
                        each aligned face), N x shape

One input may yield several rows (every face of a photo): the rows of an input are added with
final=False except the last, and checkpoints only ever record whole inputs.

While a prepare runs, rows are appended to `*.partial` files and `progress.json` records, at each
checkpoint, how many inputs were handled and how many bytes each partial file holds. A killed prepare
resumes from the last checkpoint: bytes written after it are truncated and the inputs redone, so a
resumed dataset is byte-identical to a straight run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import weakref
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from facegan_cli import __version__
from facegan_cli.core.atomic import atomic_path, write_json
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import open_regular, read_regular, read_regular_text
from facegan_cli.core.lock import FolderLock, is_locked
from facegan_cli.core.outputs import LOCK_NAME, MARKER, make_out_dir, read_marker, write_marker
from facegan_cli.core.ownership import foreign_entries, record, remove_recorded
from facegan_cli.core.progress import log
from facegan_cli.data.crops import box_downsample
from facegan_cli.data.stargan_split import PROTOCOL_SPLITS, protocol_rows

FORMAT = "facegan-prepared"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}
SPLIT_ALIASES = {"val": "valid", "validation": "valid"}
LABELS_PARTIAL = "labels.i8.partial"
PARTITION_PARTIAL = "partition.i8.partial"
NAMES_PARTIAL = "names.txt.partial"
REJECTS_PARTIAL = "rejects.tsv.partial"
# The ownership marker's kind (core.outputs), written when a prepare starts: --force replaces a prepared
# dataset only when it carries it. manifest.json or progress.json alone prove nothing (anyone can write
# `{}` into a file of that name). Datasets of older facegan versions have none: still readable and
# resumable, never replaced.
PREPARED_KIND = "prepared"
LOCK_WHAT = "prepared dataset"
_EXTRA_FILE = re.compile(r"^\w+\.npy$")


def images_file(resolution: int) -> str:
    return f"images-{resolution}.u8"


def level_resolutions(top: int, levels: bool, smallest: int = 4) -> list[int]:
    """[top] or, with levels, top, top/2, ... down to `smallest` (ProGAN's pyramid), largest first."""
    if not levels:
        return [top]
    out = [top]
    while out[-1] % 2 == 0 and out[-1] // 2 >= smallest:
        out.append(out[-1] // 2)
    return out


def normalize_split(split: str | None, protocols: bool = False) -> str:
    """A split name: train, valid, test, all; with `protocols`, also a split defined by a reference
    implementation rather than by partition.npy (stargan-train / stargan-test: data/stargan_split.py)."""
    name = (split or "all").strip().lower()
    name = SPLIT_ALIASES.get(name, name)
    if protocols and name in PROTOCOL_SPLITS:
        return name
    if name != "all" and name not in SPLIT_CODES:
        raise FaceganError(f"Unknown split {split!r}.", "Use train, valid, test or all.")
    return name


def plan_digest(plan: dict[str, Any]) -> str:
    """A stable hash of everything that decides the output, to refuse resuming with other settings."""
    return hashlib.sha256(json.dumps(plan, sort_keys=True, default=str).encode()).hexdigest()


def _line_bytes(text: str) -> bytes:
    # names.txt and rejects.tsv keep a file name's own bytes, also when they are not UTF-8 (Python holds
    # such names with lone surrogates, PEP 383): `ls` shows the same name, and reading back gives the
    # str os.listdir gives. Strict UTF-8 would fail on those names and lose the whole prepare.
    return text.encode("utf-8", "surrogateescape")


def _line_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _clean_field(text: str) -> str:
    # rejects.tsv and names.txt are line/tab separated; a stray tab or newline would shift columns.
    return " ".join(str(text).replace("\t", " ").splitlines())


def digest_file(path: Path, digest: Any) -> Any:
    """Feed a file's bytes to a hashlib object in 16 MiB chunks (datasets can be many GiB)."""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            digest.update(chunk)
    return digest


def extra_partial(name: str) -> str:
    return f"{name}.f32.partial"


def _load_npy(path: Path) -> np.ndarray:
    """A dataset's .npy file, refused by name when it is a FIFO or device (core.files), never unpickled."""
    with open_regular(path, "Dataset file") as fh:
        return np.load(fh, allow_pickle=False)


def _nothing_usable(saved: dict[str, Any] | None) -> bool:
    """True when progress.json records a finished pass over every input that kept no image."""
    if not saved:
        return False
    try:
        return int(saved["inputs_done"]) == int(saved["total_inputs"]) > 0 and int(saved["count"]) == 0
    except (KeyError, TypeError, ValueError):
        return False


@dataclass
class _Progress:
    inputs_done: int = 0
    count: int = 0
    names_bytes: int = 0
    rejects_bytes: int = 0
    rejected: int = 0


class PreparedWriter:
    """Appends images (in input order) to a prepared-dataset directory, resumably.

    Use:
        writer = PreparedWriter(out, resolution=64, label_names=names, plan=plan, total_inputs=n, ...)
        state = writer.open()            # "fresh", "resumed" or "complete"
        for item in inputs[writer.inputs_done:]:
            writer.add(pixels, name, labels, split)  or  writer.reject(source, reason)
        manifest = writer.finish({...})
    Every add/reject counts one input. `close()` (or leaving a `with` block by an exception) saves a
    checkpoint so an interrupted run continues with `resume=True`.
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        *,
        resolution: int,
        plan: dict[str, Any],
        total_inputs: int,
        label_names: list[str] | None = None,
        levels: bool = False,
        resume: bool = False,
        force: bool = False,
        checkpoint_every: int = 512,
        checkpoint_seconds: float = 10.0,
        extras: dict[str, tuple[int, ...]] | None = None,
    ) -> None:
        self.out = Path(out)
        self.resolutions = level_resolutions(resolution, levels)
        self.label_names = list(label_names) if label_names else []
        self.extras = {name: tuple(int(d) for d in shape) for name, shape in (extras or {}).items()}
        self.plan = plan
        planned = {**plan, "resolutions": self.resolutions, "label_names": self.label_names}
        if self.extras:
            planned["extras"] = {name: list(shape) for name, shape in self.extras.items()}
        self.digest = plan_digest(planned)
        self.total_inputs = total_inputs
        self.resume = resume
        self.force = force
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.state = _Progress()
        # The state after the last whole input: what checkpoints record (see add(final=...)).
        self._boundary = _Progress()
        self._handles: dict[str, Any] = {}
        self._last_checkpoint = (0, time.monotonic())
        self._lock: FolderLock | None = None
        self._unlock: weakref.finalize | None = None

    # ----- directory state -------------------------------------------------------------------

    @property
    def inputs_done(self) -> int:
        return self.state.inputs_done

    @property
    def count(self) -> int:
        return self.state.count

    @property
    def rejected(self) -> int:
        return self.state.rejected

    def _digest_of(self, file: Path) -> str | None:
        return (self._read_json(file) or {}).get("plan_digest")

    def _read_json(self, file: Path) -> dict[str, Any] | None:
        try:
            payload = json.loads(read_regular_text(file, "Dataset file"))
        except (OSError, ValueError):
            return None
        return payload if isinstance(payload, dict) else None

    def open(self) -> str:
        """Check the output directory and start or continue writing. Returns fresh/resumed/complete.

        Takes the folder's lock (core.lock) first, so a second prepare into the same --out is refused at
        once, naming this one; the lock is held until close() or finish(), or an error here.
        """
        if self.resume and self.force:
            raise FaceganError(
                "--resume and --force contradict each other.",
                "Use --resume to continue an interrupted prepare, or --force to start over.",
            )
        out = self.out
        if out.is_symlink() and not out.exists():
            raise FaceganError(f"--out {out} is a broken symbolic link.", "Choose another --out.")
        if out.exists() and not out.is_dir():
            raise FaceganError(
                f"--out {out} is a file, not a directory.", "Choose a directory path for --out."
            )
        if is_locked(out):
            # Refused naming the holder (and released at once should the holder have just finished).
            FolderLock(out, LOCK_WHAT).acquire().release()
        # Decided once before the lock, so that a refusal leaves not even a lock file in a user's folder,
        # and again under the lock, since another prepare may have changed the folder in between.
        self._decide()
        make_out_dir(out)
        lock = FolderLock(out, LOCK_WHAT).acquire()
        self._lock = lock
        # A writer dropped without close() (a crashed notebook cell) must not keep the folder locked.
        self._unlock = weakref.finalize(self, lock.release)
        try:
            state = self._act(self._decide())
        except BaseException:
            self._release()
            raise
        if state == "complete":
            self._release()  # nothing to write
        return state

    def _decide(self) -> str:
        """What open() does with the folder: complete, resume, fresh or replace (delete our files, then
        fresh). Raises, changing nothing, when the folder may not be written or replaced."""
        out = self.out
        if not out.is_dir():
            return "fresh"
        marker = read_marker(out)
        if marker is not None and marker["kind"] != PREPARED_KIND:
            raise FaceganError(
                f"--out {out} is a facegan {marker['kind'].replace('-', ' ')} output, not a prepared "
                "dataset; refusing to write into it (even with --force).",
                "Choose another --out.",
            )
        ours = marker is not None
        manifest, progress = out / MANIFEST, out / PROGRESS
        if manifest.exists():
            if self.force:
                self._require_ours(ours, "a prepared dataset")
                return "replace"
            if self.resume and self._digest_of(manifest) == self.digest:
                return "complete"
            raise FaceganError(
                f"{out} already holds a prepared dataset"
                + (" made with other settings." if self.resume else "."),
                "Choose another --out, or pass --force to replace it.",
            )
        if progress.exists():
            if self.force:
                self._require_ours(ours, "an interrupted prepare")
                return "replace"
            saved = self._read_json(progress)
            if _nothing_usable(saved):
                if self.resume and ours:
                    self._require_ours(ours, "a failed prepare")
                    return "replace"  # nothing to continue: every input is redone (they may be fixed now)
                if not self.resume:
                    assert saved is not None
                    raise FaceganError(
                        f"--out {out} holds a failed prepare, not an interrupted one: the last run rejected "
                        f"all {saved['total_inputs']} inputs (see {out / 'rejects.tsv'}) and kept no image.",
                        "Fix the inputs or the options that rejected them, then re-run with --force to start "
                        "over, or choose another --out.",
                    )
            if not self.resume:
                raise FaceganError(
                    f"{out} holds an interrupted prepare (progress.json, no manifest.json).",
                    "Pass --resume to continue it with the same options, or --force to start over.",
                )
            if self._digest_of(progress) != self.digest:
                raise FaceganError(
                    f"The interrupted prepare in {out} used other settings or inputs than this command.",
                    "Re-run with the original options and --resume, or pass --force to start over.",
                )
            return "resume"
        if not any(entry.name not in (MARKER, LOCK_NAME) for entry in out.iterdir()):
            return "fresh"
        if ours:
            # Started (the marker comes first) but stopped before its first checkpoint.
            if self.force or self.resume:
                self._require_ours(ours, "a prepare that stopped before it recorded any progress")
                return "replace"
            raise FaceganError(
                f"--out {out} holds a prepare that stopped before it recorded any progress.",
                "Pass --force (or --resume) to start it over, or choose another --out.",
            )
        raise FaceganError(
            f"--out {out} is not empty and is not a facegan prepared dataset; refusing to write into it "
            "(even with --force).",
            "Choose a new or empty directory for --out.",
        )

    def _require_ours(self, ours: bool, what: str) -> None:
        """Raise unless every entry of --out is one facegan's record lists unchanged (core.ownership): only
        then may it be replaced, even with --force."""
        if not ours:
            raise FaceganError(
                f"--out {self.out} holds {what} but not the {MARKER} that facegan puts in every prepared "
                "dataset it creates (an older facegan wrote it, or something else did: a manifest.json or "
                "progress.json alone does not show that facegan wrote the folder); refusing to replace it "
                "even with --force, so none of its files is lost.",
                "If it is an old prepared dataset you no longer need, delete the folder yourself; otherwise "
                "choose another --out. It stays readable, and an interrupted one can still be finished with "
                "--resume.",
            )
        marker = read_marker(self.out) or {}
        foreign = foreign_entries(self.out) if isinstance(marker.get("files"), dict) else ["(no record of its files)"]
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise FaceganError(
                f"--out {self.out} holds {what}, but also entries facegan did not write there or that changed "
                f"since ({shown}); refusing to replace it even with --force, so none of them is lost.",
                f"Move those entries out of {self.out}, or choose another --out.",
            )

    def _act(self, action: str) -> str:
        if action == "complete":
            return "complete"
        if action == "resume":
            if read_marker(self.out) is None:
                # An older facegan's prepare whose progress.json matches this command exactly: facegan's own.
                write_marker(self.out, PREPARED_KIND)
            self._reopen()
            return "resumed"
        if action == "replace":
            if _nothing_usable(self._read_json(self.out / PROGRESS)) and not self.force:
                log(f"the last prepare into {self.out} rejected every input; starting over")
            remove_recorded(self.out)
        self._start_fresh()
        return "fresh"

    def _release(self) -> None:
        """Drop the folder's lock (once; the finalizer then has nothing left to do)."""
        if self._unlock is not None:
            self._unlock()
            self._unlock = None
        self._lock = None

    def _paths(self) -> dict[str, Path]:
        paths = {f"images-{r}": self.out / f"{images_file(r)}.partial" for r in self.resolutions}
        paths.update(
            labels=self.out / LABELS_PARTIAL,
            partition=self.out / PARTITION_PARTIAL,
            names=self.out / NAMES_PARTIAL,
            rejects=self.out / REJECTS_PARTIAL,
        )
        paths.update({f"extra-{name}": self.out / extra_partial(name) for name in self.extras})
        return paths

    def _expected_bytes(self) -> dict[str, int]:
        sizes = {f"images-{r}": self.state.count * r * r * 3 for r in self.resolutions}
        sizes.update(
            labels=self.state.count * len(self.label_names),
            partition=self.state.count,
            names=self.state.names_bytes,
            rejects=self.state.rejects_bytes,
        )
        sizes.update(
            {
                f"extra-{name}": self.state.count * 4 * int(np.prod(shape))
                for name, shape in self.extras.items()
            }
        )
        return sizes

    def _start_fresh(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_marker(self.out, PREPARED_KIND)  # before any content: --force may later replace this folder
        self.state = _Progress()
        self._boundary = _Progress()
        for key, path in self._paths().items():
            self._handles[key] = open(path, "wb")
        self.checkpoint()

    def _reopen(self) -> None:
        saved = json.loads(read_regular_text(self.out / PROGRESS, "The prepare progress file"))
        self.state = _Progress(**{k: int(saved[k]) for k in _Progress.__dataclass_fields__})
        self._boundary = replace(self.state)
        expected = self._expected_bytes()
        for key, path in self._paths().items():
            final = path.with_name(path.name[: -len(".partial")])
            if not path.exists() and key.startswith("images-") and final.exists():
                os.replace(final, path)  # a finish() cut between renaming images and the manifest
            if not path.exists() or path.stat().st_size < expected[key]:
                raise FaceganError(
                    f"The interrupted prepare in {self.out} is damaged: {path.name} is missing or shorter "
                    "than progress.json records.",
                    "Start over with --force.",
                )
            handle = open(path, "r+b")
            # Bytes after the last checkpoint belong to inputs that will be processed again.
            handle.truncate(expected[key])
            handle.seek(expected[key])
            self._handles[key] = handle

    # ----- appending ---------------------------------------------------------------------------

    def add(
        self,
        pixels: np.ndarray,
        name: str,
        labels: np.ndarray | None = None,
        split: int = 0,
        extras: dict[str, np.ndarray] | None = None,
        final: bool = True,
    ) -> None:
        """Append one top-resolution RGB image (res x res x 3 uint8) and its row data.

        `extras` gives the declared per-row arrays; `final=False` when more rows of the same input follow.
        """
        top = self.resolutions[0]
        if pixels.shape != (top, top, 3) or pixels.dtype != np.uint8:
            raise ValueError(f"expected a {top}x{top}x3 uint8 image, got {pixels.shape} {pixels.dtype}")
        values = {}
        for key, shape in self.extras.items():
            value = np.asarray((extras or {}).get(key, np.full(shape, np.nan)), dtype=np.float32)
            if value.shape != shape:
                raise ValueError(f"extra {key!r} of {name} has shape {value.shape}, expected {shape}")
            values[key] = value
        for r in self.resolutions:
            level = pixels if r == top else box_downsample(pixels, top // r)
            self._handles[f"images-{r}"].write(np.ascontiguousarray(level).tobytes())
        if self.label_names:
            if labels is None or len(labels) != len(self.label_names):
                raise ValueError(f"expected {len(self.label_names)} labels for {name}")
            self._handles["labels"].write(np.asarray(labels, dtype=np.int8).tobytes())
        self._handles["partition"].write(np.int8(split).tobytes())
        line = _line_bytes(_clean_field(name) + "\n")
        self._handles["names"].write(line)
        self.state.names_bytes += len(line)
        for key, value in values.items():
            self._handles[f"extra-{key}"].write(value.tobytes())
        self.state.count += 1
        self._input_done(final)

    def reject(self, source: str, reason: str, final: bool = True) -> None:
        """Record one unusable input (or, with final=False, one unusable part of it) for rejects.tsv."""
        line = _line_bytes(f"{_clean_field(source)}\t{_clean_field(reason)}\n")
        self._handles["rejects"].write(line)
        self.state.rejects_bytes += len(line)
        self.state.rejected += 1
        self._input_done(final)

    def _input_done(self, final: bool = True) -> None:
        if not final:
            return
        self.state.inputs_done += 1
        self._boundary = replace(self.state)
        done_since, since = self._last_checkpoint
        if (
            self.state.inputs_done - done_since >= self.checkpoint_every
            or time.monotonic() - since >= self.checkpoint_seconds
        ):
            self.checkpoint()

    def flush(self) -> None:
        """Push every buffered byte to disk."""
        for handle in self._handles.values():
            handle.flush()
            os.fsync(handle.fileno())

    def checkpoint(self) -> None:
        """Flush the partial files, then record their lengths; resume restarts from here."""
        self.flush()
        write_json(
            self.out / PROGRESS,
            {
                "format": FORMAT,
                "plan_digest": self.digest,
                "plan": self.plan,
                "total_inputs": self.total_inputs,
                **self._boundary.__dict__,
            },
        )
        # The partial arrays grow until finish(): recorded by length, not hashed (they can be gigabytes).
        record(self.out, written=[self.out / PROGRESS], appended=list(self._paths().values()), hashed=False)
        self._last_checkpoint = (self._boundary.inputs_done, time.monotonic())

    def close(self) -> None:
        """Save a checkpoint, close the files and release the lock (an interrupted run stays resumable)."""
        try:
            if self._handles:
                self.checkpoint()
                for handle in self._handles.values():
                    handle.close()
                self._handles.clear()
        finally:
            self._release()

    def __enter__(self) -> PreparedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- finishing ---------------------------------------------------------------------------

    def reject_lines(self) -> list[tuple[str, str]]:
        """The (source, reason) pairs recorded so far."""
        self.flush()
        path = self._paths()["rejects"]
        lines = _line_text(path.read_bytes()).splitlines() if path.exists() else []
        return [tuple(line.split("\t", 1)) for line in lines if "\t" in line]  # type: ignore[misc]

    def write_rejects(self) -> Path:
        """Write rejects.tsv (also when the prepare fails, so the user can read why)."""
        target = self.out / "rejects.tsv"
        with atomic_path(target) as tmp:
            tmp.write_bytes(_line_bytes("".join(f"{src}\t{why}\n" for src, why in self.reject_lines())))
        record(self.out, written=[target])
        return target

    def finish(self, manifest_fields: dict[str, Any]) -> dict[str, Any]:
        """Turn the partial files into the dataset and write manifest.json last. Returns the manifest."""
        if self.state.inputs_done != self.total_inputs:
            raise ValueError(f"finish() after {self.state.inputs_done} of {self.total_inputs} inputs")
        if self.state.count == 0:
            raise ValueError("finish() on a dataset without images")
        if self.state != self._boundary:
            raise ValueError("finish() in the middle of an input's rows")
        self.checkpoint()
        rejects = self.reject_lines()
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
        paths = self._paths()
        files: dict[str, Any] = {"images": {}}
        for r in self.resolutions:
            os.replace(paths[f"images-{r}"], self.out / images_file(r))
            files["images"][str(r)] = images_file(r)
        labels = None
        if self.label_names:
            labels = np.fromfile(paths["labels"], dtype=np.int8).reshape(self.state.count, -1)
            with atomic_path(self.out / "labels.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, labels)
            files["labels"] = "labels.npy"
        partition = np.fromfile(paths["partition"], dtype=np.int8)
        with atomic_path(self.out / "partition.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, partition)
        files["partition"] = "partition.npy"
        for key, shape in self.extras.items():
            values = np.fromfile(paths[f"extra-{key}"], dtype=np.float32).reshape(self.state.count, *shape)
            with atomic_path(self.out / f"{key}.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, values)
            files[key] = f"{key}.npy"
        with atomic_path(self.out / "names.txt") as tmp:
            tmp.write_bytes(paths["names"].read_bytes())
        files["names"] = "names.txt"
        self.write_rejects()
        files["rejects"] = "rejects.tsv"

        reasons = Counter(why.split(":", 1)[0] for _, why in rejects)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **manifest_fields,
            "count": self.state.count,
            "resolution": self.resolutions[0],
            "resolutions": self.resolutions,
            "channels": 3,
            "dtype": "uint8",
            "layout": "NHWC",
            "label_names": self.label_names,
            "splits": {name: int((partition == code).sum()) for name, code in SPLIT_CODES.items()},
            "inputs": self.total_inputs,
            "rejected": {"total": len(rejects), "by_reason": dict(sorted(reasons.items()))},
            "files": files,
            "fingerprint": content_fingerprint(
                self.out / images_file(self.resolutions[0]), labels, self.label_names
            ),
            "plan_digest": self.digest,
            "facegan_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_json(self.out / MANIFEST, manifest)
        # Only now is the dataset complete; the bookkeeping files can go.
        for key, path in paths.items():
            if not key.startswith("images-"):
                path.unlink(missing_ok=True)
        (self.out / PROGRESS).unlink(missing_ok=True)
        record(self.out, written=[self.out / MANIFEST, *(self.out / name for name in _file_names(files))])
        self._release()
        return manifest


def _file_names(files: dict[str, Any]) -> list[str]:
    """The file names a manifest's "files" lists (images per resolution, then the rest)."""
    return [name for value in files.values() for name in (value.values() if isinstance(value, dict) else [value])]


def content_fingerprint(images_path: Path, labels: np.ndarray | None, label_names: list[str]) -> str:
    """sha256 over the top-resolution image bytes, then the labels and their names."""
    digest = hashlib.sha256(b"facegan-prepared-v1\n")
    digest_file(images_path, digest)
    if labels is not None:
        digest.update(np.ascontiguousarray(labels, dtype=np.int8).tobytes())
        digest.update("\n".join(label_names).encode())
    return "sha256:" + digest.hexdigest()


class PreparedDataset:
    """Read access to a finished prepared dataset; images are memory-mapped, never copied."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._labels: np.ndarray | None = None
        self._partition: np.ndarray | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> PreparedDataset:
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.exists():
            if (path / PROGRESS).exists():
                raise FaceganError(
                    f"{path} is an unfinished prepared dataset (the prepare that wrote it was interrupted).",
                    "Finish it by re-running the same `facegan prepare ...` command with --resume.",
                )
            raise FaceganError(
                f"{path} is not a prepared dataset (no manifest.json).",
                "Create one with `facegan prepare celeba` or `facegan prepare synthetic`, or pass a folder "
                "or zip of images where the command accepts one.",
            )
        try:
            manifest = json.loads(read_regular_text(manifest_path, "The dataset manifest"))
        except json.JSONDecodeError as exc:
            raise FaceganError(
                f"{manifest_path} is not valid JSON ({exc}).", "Re-create the dataset with --force."
            ) from exc
        if manifest.get("format") != FORMAT:
            raise FaceganError(
                f"{manifest_path} is not a facegan prepared-dataset manifest.",
                "Pass the --out directory of a `facegan prepare` command.",
            )
        dataset = cls(path, manifest)
        for r in dataset.resolutions:
            file = path / images_file(r)
            expected = dataset.count * r * r * 3
            if not file.exists() or file.stat().st_size != expected:
                raise FaceganError(
                    f"{file} is missing or has the wrong size (expected {expected} bytes for "
                    f"{dataset.count} images of {r}x{r}).",
                    "The dataset is damaged; re-create it with `facegan prepare ... --force`.",
                )
        return dataset

    @property
    def count(self) -> int:
        return int(self.manifest["count"])

    @property
    def resolutions(self) -> list[int]:
        return [int(r) for r in self.manifest["resolutions"]]

    @property
    def resolution(self) -> int:
        return self.resolutions[0]

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest.get("label_names") or [])

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name))

    def images(self, res: int | None = None) -> np.memmap:
        """The N x res x res x 3 uint8 images of one resolution (default: the largest), read-only."""
        res = self.resolution if res is None else int(res)
        if res not in self.resolutions:
            raise FaceganError(
                f"{self.path} has no {res}x{res} images (it holds {', '.join(map(str, self.resolutions))}).",
                "Pick one of those resolutions, or prepare the dataset again with that --size (or --levels).",
            )
        return np.memmap(
            self.path / images_file(res), dtype=np.uint8, mode="r", shape=(self.count, res, res, 3)
        )

    @property
    def labels(self) -> np.ndarray | None:
        if self._labels is None and self.label_names and (self.path / "labels.npy").exists():
            self._labels = _load_npy(self.path / "labels.npy")
        return self._labels

    @property
    def partition(self) -> np.ndarray:
        if self._partition is None:
            file = self.path / "partition.npy"
            self._partition = _load_npy(file) if file.exists() else np.zeros(self.count, dtype=np.int8)
        return self._partition

    @property
    def names(self) -> list[str]:
        file = self.path / "names.txt"
        return _line_text(read_regular(file, "The names file")).splitlines() if file.exists() else []

    def extra(self, name: str) -> np.ndarray | None:
        """A per-row array the prepare declared (e.g. "quads"), or None when the dataset has none."""
        file = (self.manifest.get("files") or {}).get(name)
        return _load_npy(self.path / file) if file and (self.path / file).exists() else None

    def split_indices(self, split: str | None = "all") -> np.ndarray:
        """Row indices of a split (train, valid, test, all, stargan-train or stargan-test), in dataset order."""
        name = normalize_split(split, protocols=True)
        if name in PROTOCOL_SPLITS:
            return protocol_rows(self.names, name)
        if name == "all":
            return np.arange(self.count, dtype=np.int64)
        return np.flatnonzero(self.partition == SPLIT_CODES[name]).astype(np.int64)
