"""Run directories: config.json, run.json (status), metrics.jsonl, checkpoints/ and samples/.

A run directory is never overwritten without --force. `run.json` says whether the run is running,
stopped (resumable), finished or failed, so a half-finished run never looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from facegan_cli import __version__
from facegan_cli.core.atomic import write_json
from facegan_cli.core.errors import FaceganError


class RunDir:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @classmethod
    def create(cls, path: str | os.PathLike[str], config: dict[str, Any], force: bool = False) -> RunDir:
        """Start a new run in `path`, refusing to touch an existing non-empty directory without force."""
        run = cls(path)
        if run.path.exists() and any(run.path.iterdir()):
            if not force:
                raise FaceganError(
                    f"Run directory {run.path} already exists and is not empty.",
                    f"Continue it with --resume {run.path}, choose another --out, or pass --force to replace it.",
                )
            if not (run.path / "config.json").exists():
                raise FaceganError(
                    f"{run.path} is not empty and is not a facegan run directory; refusing to delete it even "
                    "with --force.",
                    "Choose another --out.",
                )
            shutil.rmtree(run.path)
        run.path.mkdir(parents=True, exist_ok=True)
        run.checkpoints.mkdir(exist_ok=True)
        run.samples.mkdir(exist_ok=True)
        write_json(run.config_path, {"facegan_version": __version__, **config})
        run.set_status("running")
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunDir:
        run = cls(path)
        if not run.config_path.exists():
            raise FaceganError(
                f"{run.path} is not a facegan run directory (no config.json).",
                "Pass the --out directory of an earlier `facegan train` run.",
            )
        return run

    def config(self) -> dict[str, Any]:
        return json.loads(self.config_path.read_text())

    def update_config(self, config: dict[str, Any]) -> None:
        """Rewrite config.json after a resume changed the run's length, so it always says what ran."""
        write_json(self.config_path, {**config, "facegan_version": __version__})

    def set_status(self, status: str, **extra: Any) -> None:
        write_json(self.path / "run.json", {"status": status, "time": time.time(), **extra})

    def status(self) -> dict[str, Any]:
        path = self.path / "run.json"
        return json.loads(path.read_text()) if path.exists() else {}

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


class MetricsLog:
    """Appends one JSON line per logged step to metrics.jsonl."""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "a", buffering=1)

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self._fh.close()
