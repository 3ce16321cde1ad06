"""Exclusive locks on the folders facegan writes (runs, prepared datasets): one writer at a time.

A lock is an advisory `flock` on `FOLDER/.facegan.lock`, held for as long as the writing process lives.
The kernel drops it when the process ends, however it ends (SIGKILL and power loss included), so a
lock is never stale: a run whose run.json says "running" while nobody holds its lock was left by a
killed process. The holder writes who it is (pid, host, command, start time) into the file, so a
refused second writer can name it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from facegan_cli.core.atomic import default_mode
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.ownership import LOCK_NAME

try:
    import fcntl
except ImportError:  # Windows: no flock; facegan then runs without the concurrency guard
    fcntl = None  # type: ignore[assignment]


def _try_flock(fd: int, exclusive: bool = True) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def read_holder(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """What the lock file of `folder` says about its (last) holder; {} when it says nothing readable."""
    try:
        payload = json.loads((Path(folder) / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


def describe_holder(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("started", 0))))
    text = f"process {holder.get('pid', '?')} on {holder.get('host', '?')} (since {since}"
    if holder.get("command"):
        text += f", `{holder['command']}`"
    return text + ")"


def is_locked(folder: str | os.PathLike[str]) -> bool:
    """True while a live process holds `folder`'s lock (a shared probe: it never blocks a writer for long)."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        return not _try_flock(fd, exclusive=False)
    finally:
        os.close(fd)


class FolderLock:
    """The exclusive lock of one output folder; `acquire()` refuses at once when another process holds it."""

    def __init__(self, folder: str | os.PathLike[str], what: str = "output") -> None:
        self.folder = Path(folder)
        self.what = what
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    @property
    def shown(self) -> Path:
        """The output the lock guards, as messages name it."""
        return self.folder

    def _holder(self) -> dict[str, Any]:
        return read_holder(self.folder)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> FolderLock:
        if self._fd is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, default_mode())
        except OSError as exc:
            raise FaceganError(
                f"Cannot create the lock file {self.path} of the {self.what} ({exc.strerror or exc}).",
                "Check that the folder is writable and that .facegan.lock is a plain file.",
            ) from exc
        # A shared probe of another process may hold the lock for a moment: try a few times.
        for attempt in range(5):
            if _try_flock(fd):
                break
            time.sleep(0.05 * (attempt + 1))
        else:
            os.close(fd)
            raise FaceganError(
                f"The {self.what} {self.shown} is in use by {describe_holder(self._holder())}: two "
                "processes writing it at once would overwrite each other's files.",
                "Wait for that process to finish (or stop it), or choose another output.",
            )
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class OutputLock(FolderLock):
    """The lock of an output that appears under its name only when complete (a staged folder, a single
    file): `.NAME.facegan.lock` beside it, held while the output is made and removed when it is done, so
    two commands writing the same new output never both succeed."""

    def __init__(self, target: str | os.PathLike[str], what: str = "output") -> None:
        super().__init__(Path(target).parent, what)
        self.target = Path(target)

    @property
    def path(self) -> Path:
        return self.target.parent / f".{self.target.name}.facegan.lock"

    @property
    def shown(self) -> Path:
        return self.target

    def _holder(self) -> dict[str, Any]:
        try:
            payload = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return payload if isinstance(payload, dict) else {}

    def acquire(self) -> OutputLock:
        super().acquire()
        # The holder before us may have removed the file between our open and our flock: then we lock an
        # orphan inode that a third process would not see. Lock the file that is there now instead.
        assert self._fd is not None
        try:
            same = os.path.samestat(os.fstat(self._fd), os.lstat(self.path))
        except OSError:
            same = False
        if not same:
            super().release()
            return self.acquire()
        return self

    def release(self) -> None:
        if self._fd is not None:
            # Removed while still held, so nobody can lock the old inode after we let go.
            try:
                self.path.unlink()
            except OSError:
                pass
        super().release()
