"""Run directories: config.json, run.json (status), metrics.jsonl, checkpoints/ and samples/.

A run directory is created with facegan's output marker (core.outputs) and is locked (core.lock) by
the process that trains in it, so two processes never write one run. Every file the run writes is
recorded in the marker when it is written (`record`), and `--force` replaces a directory only when it
is a facegan run whose every entry is recorded unchanged; anything else is refused, naming the entries.
`run.json` says whether the run is running, stopped (resumable), finished or failed; a run that says
"running" while no process holds its lock was left by a killed process, and `effective_status` says so.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from facegan_cli import __version__
from facegan_cli.core.atomic import clean_partials, write_json
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import NotRegularFile, read_regular_text, require_file, special_kind
from facegan_cli.core.lock import FolderLock, is_locked, read_holder
from facegan_cli.core.outputs import refuse_file_parent, refuse_unowned
from facegan_cli.core.ownership import record as record_entries
from facegan_cli.core.ownership import remove_recorded, write_marker
from facegan_cli.core.runschema import config_problem

RUN_KIND = "run"
_CHECKPOINT_NAME = re.compile(r"^ckpt-(\d{9})\.safetensors$")  # core.checkpoint writes them
BEST = "best"  # checkpoints/best: the generator of the best --eval evaluation so far
class RunDir:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock: FolderLock | None = None
        # Where a run keeps its parts (see the module docstring).
        self.config_path = self.path / "config.json"
        self.checkpoints = self.path / "checkpoints"
        self.best = self.checkpoints / BEST
        self.samples = self.path / "samples"
        self.metrics_path = self.path / "metrics.jsonl"
        self.tensorboard = self.path / "tensorboard"

    def _acquire(self) -> None:
        self.lock = FolderLock(self.path, "run directory").acquire()

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @staticmethod
    def check_new(path: str | os.PathLike[str], force: bool) -> None:
        """Refuse early (before data is loaded) an --out that `create` would refuse."""
        path = Path(path)
        if path.is_symlink():
            raise FaceganError(
                f"--out {path} is a symbolic link (to {os.path.realpath(path)}); a run is written only into a real "
                "directory.",
                "Pass the directory the link points at, or choose another --out.",
            )
        if path.exists() and not path.is_dir():
            raise FaceganError(
                f"--out {path} is an existing file, not a directory.", "Choose a directory name for --out."
            )
        refuse_file_parent(path)  # named now, before any data is read
        if path.is_dir() and any(path.iterdir()):
            if not force:
                raise FaceganError(
                    f"Run directory {path} already exists and is not empty.",
                    f"Continue it with --resume {path}, choose another --out, or pass --force to replace it.",
                )
            refuse_unowned(path, RUN_KIND)

    @classmethod
    def create(cls, path: str | os.PathLike[str], config: dict[str, Any], force: bool = False) -> RunDir:
        """Start a new run in `path` (locked until `release()`); an existing non-empty directory needs --force
        and must be a facegan run holding only what a run writes."""
        run = cls(path)
        cls.check_new(run.path, force)
        existing = run.path.is_dir() and any(run.path.iterdir())
        run._acquire()  # before looking inside: a live run is never replaced under its owner's feet
        try:
            if existing:
                refuse_unowned(run.path, RUN_KIND)
                remove_recorded(run.path)
            write_marker(run.path, RUN_KIND)
            run.checkpoints.mkdir(exist_ok=True)
            run.samples.mkdir(exist_ok=True)
            write_json(run.config_path, {"facegan_version": __version__, **config})
            run.record(run.checkpoints, run.samples, run.config_path)
            run.set_status("running")
        except BaseException:
            run.release()
            raise
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str], lock: bool = True) -> RunDir:
        """An existing run, to resume (locked, leftovers of a killed write removed) or to read (lock=False)."""
        run = cls(path)
        if special_kind(run.config_path) is not None:  # a FIFO config.json is named, never waited on
            require_file(run.config_path, "The run configuration", "Restore config.json as a plain file.")
        if not run.config_path.is_file():
            raise FaceganError(
                f"{run.path} is not a facegan run directory (no config.json).",
                "Pass the --out directory of an earlier `facegan train` run.",
            )
        if lock:
            run._acquire()
            for folder in (run.path, run.checkpoints, run.best, run.samples):
                clean_partials(folder)
        return run

    def record(self, *written: str | os.PathLike[str]) -> None:
        """Record in the run's marker the files just written (they become what `--force` may replace), with
        the logs appended to since (metrics.jsonl, TensorBoard events: their current prefix). Only the
        process holding the run's lock writes, so only it records."""
        if self.lock is None:
            return
        logs = [self.metrics_path]
        if self.tensorboard.is_dir():
            logs += [p for p in self.tensorboard.iterdir() if p.name.startswith("events.out.tfevents.")]
        record_entries(self.path, written=written, appended=logs)

    def config(self) -> dict[str, Any]:
        """config.json, checked against core.runschema (a FIFO, bad JSON or a field of the wrong type or
        range: one paragraph naming the file and the field)."""
        try:
            config = json.loads(read_regular_text(self.config_path, "The run configuration"))
        except (OSError, ValueError) as exc:
            raise FaceganError(
                f"{self.config_path} cannot be read ({exc}).", "Restore it, or start a new run with --out."
            ) from exc
        problem = config_problem(config)
        if problem and (not isinstance(config, dict) or "lacks" in problem):
            raise FaceganError(
                f"{self.config_path} is not a facegan run configuration ({problem}).",
                "Pass the --out directory of an earlier `facegan train` run.",
            )
        if problem:
            raise FaceganError(
                f"{self.config_path} holds an invalid setting: {problem}.",
                "Correct that field (or restore the file facegan wrote); settings that may change on resume are "
                "given as options instead, e.g. `--resume RUN --steps N`.",
            )
        return config

    def update_config(self, config: dict[str, Any]) -> None:
        """Rewrite config.json after a resume changed the run's settings, so it always says what ran."""
        write_json(self.config_path, {**config, "facegan_version": __version__})
        self.record(self.config_path)

    def set_status(self, status: str, **extra: Any) -> None:
        write_json(
            self.path / "run.json",
            {"status": status, "time": time.time(), "pid": os.getpid(), "host": socket.gethostname(), **extra},
        )
        self.record(self.path / "run.json")

    def status(self) -> dict[str, Any]:
        """run.json as written (see `effective_status` for what it means now)."""
        path = self.path / "run.json"
        try:
            # Through core.files: a FIFO run.json must not block `runs list` (it reads as no status).
            payload = json.loads(read_regular_text(path, "The run status")) if path.exists() else {}
        except (OSError, ValueError, NotRegularFile):
            return {}
        return payload if isinstance(payload, dict) else {}

    def effective_status(self) -> dict[str, Any]:
        """run.json, with "running" turned into "killed" when no live process holds the run's lock."""
        status = self.status()
        if status.get("status") == "running" and not is_locked(self.path):
            return {**status, "status": "killed", "stale": True}
        if status.get("status") == "running":
            return {**status, "holder": read_holder(self.path)}
        return status

    def metric_records(self) -> list[dict[str, Any]]:
        """The lines of metrics.jsonl, in order (a line cut by a crash, or not a JSON object, is skipped)."""
        if not self.metrics_path.is_file():
            return []
        records = []
        for line in self.metrics_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def truncate_metrics(self, after_step: int) -> None:
        """On resume, drop metric lines logged after the checkpoint we continue from."""
        if not self.metrics_path.exists():
            return
        kept = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= after_step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
        self.metrics_path.write_text("".join(f"{line}\n" for line in kept))
        self.record()  # the log is shorter now: its recorded prefix must be too


class MetricsLog:
    """Appends one JSON line per logged step to metrics.jsonl."""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "a", buffering=1)

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self._fh.close()


def list_checkpoints(ckpt_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints in `ckpt_dir`, oldest first (a listing needs no torch: `facegan runs list`)."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _CHECKPOINT_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def evaluation_lines(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines of metrics.jsonl an evaluation wrote (they carry `eval_n`; loss lines do not)."""
    return [record for record in records if "eval_n" in record]
