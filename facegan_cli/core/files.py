"""Opening the files facegan reads (checkpoints, state files, run files, latents, statistics, weights, recipes,
dataset files) without ever blocking on something that is not a file.

A FIFO named like a checkpoint (or a symlink to /dev/zero, a socket) would make a plain `open()` wait for a
writer forever, or read without end. Every reader goes through this module instead: the path is opened
with O_NONBLOCK (which returns at once for a FIFO) and the type is checked with fstat on the open descriptor,
so nothing can swap the file between the check and the read. A library that insists on a path (safetensors,
numpy's .npz) is handed /proc/self/fd/N, which names the descriptor already checked; where /proc is absent,
the path itself, checked just before.

Images have their own reader with the same rule and their size limits (data.imageio); this module is the
one for everything else.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from facegan_cli.core.errors import FaceganError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def display_name(name: str | os.PathLike[str]) -> str:
    """A file name as text that can always be printed or put in JSON.

    Names that are not valid UTF-8 reach Python as str with lone surrogates (PEP 383), which fail when
    encoded; their undecodable bytes are shown as \\xNN escapes instead (b"caf\\xe9.jpg" -> "caf\\xe9.jpg"), and
    control characters as escapes too ("a\\x00b", "a\\nb").
    """
    text = os.fspath(name)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    # Control characters (a NUL or an escape sequence read from stdin, a newline in a name) are shown as
    # escapes, never sent to the terminal raw.
    return _CONTROL.sub(lambda m: _ESCAPES.get(m.group(), f"\\x{ord(m.group()):02x}"), text)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class NotRegularFile(FaceganError):
    """A path facegan was to read names a FIFO, device, socket or directory instead of a regular file."""


def kind_of_mode(mode: int) -> str:
    """'a FIFO (named pipe)', 'a directory', ... for a st_mode that is not a regular file's."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def special_kind(path: str | os.PathLike[str]) -> str | None:
    """What `path` is when it exists but is not a regular file (following links); None otherwise."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # ValueError: a NUL byte in the name, which no file can have
        return None
    return None if stat.S_ISREG(mode) else kind_of_mode(mode)


def not_regular(path: str | os.PathLike[str], what: str, kind: str) -> NotRegularFile:
    """The one-paragraph refusal of a `what` (e.g. "Checkpoint") that is `kind` instead of a file."""
    return NotRegularFile(
        f"{what} {os.fspath(path)} is {kind}, not a regular file; facegan reads only regular files (a FIFO or "
        "device could block it or never end).",
        "Replace it with the file itself, or pass the path of a regular file.",
    )


def require_file(path: str | os.PathLike[str], what: str, fix: str) -> Path:
    """`path` when it is an existing regular file; otherwise one paragraph that says what it is instead
    ("does not exist", or a FIFO, device or directory) with `fix`."""
    path = Path(path)
    kind = special_kind(path)
    if kind is not None:
        raise NotRegularFile(
            f"{what} {path} is {kind}, not a regular file; facegan reads only regular files.", fix
        )
    if not path.is_file():
        dangling = " (a symbolic link whose target does not exist)" if path.is_symlink() else ""
        raise FaceganError(f"{what} {path} does not exist{dangling}.", fix)
    return path


@contextlib.contextmanager
def regular_fd(path: str | os.PathLike[str], what: str) -> Iterator[int]:
    """A read-only descriptor of `path`, checked to be a regular file; never blocks.

    NotRegularFile for a FIFO, device, socket or directory; OSError (FileNotFoundError, PermissionError,
    ...) as open() gives it for the rest, so callers keep their own handling of a missing file.
    """
    try:
        fd = os.open(path, _FLAGS)
    except IsADirectoryError as exc:
        raise not_regular(path, what, "a directory") from exc
    except OSError as exc:
        kind = special_kind(path)  # a socket cannot be opened at all (ENXIO)
        if kind is not None:
            raise not_regular(path, what, kind) from exc
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular(path, what, kind_of_mode(mode))
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_regular(path: str | os.PathLike[str], what: str) -> Iterator[BinaryIO]:
    """A binary file object of `path`, checked to be a regular file (see `regular_fd`)."""
    with regular_fd(path, what) as fd, os.fdopen(os.dup(fd), "rb") as fh:
        yield fh


def read_regular(path: str | os.PathLike[str], what: str) -> bytes:
    """The bytes of a regular file (see `regular_fd` for what is refused)."""
    with open_regular(path, what) as fh:
        return fh.read()


def read_regular_text(path: str | os.PathLike[str], what: str, errors: str = "strict") -> str:
    """The UTF-8 text of a regular file (see `regular_fd` for what is refused)."""
    return read_regular(path, what).decode("utf-8", errors)


@contextlib.contextmanager
def regular_path(path: str | os.PathLike[str], what: str) -> Iterator[str]:
    """A path naming `path`'s checked regular file, for libraries that open files themselves.

    On Linux this is /proc/self/fd/N of the descriptor that was checked, so the file the library opens is
    the one checked, whatever happens to the name meanwhile.
    """
    with regular_fd(path, what) as fd:
        proc = f"/proc/self/fd/{fd}"
        yield proc if os.path.exists(proc) else os.fspath(path)
