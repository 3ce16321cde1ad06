"""`facegan --help` printed from a snapshot of its own output, without importing the help renderer.

Typer draws help with rich: importing its renderer (rich.markdown, markdown_it, pygments, rich.traceback)
and laying out the table costs more than `import typer` itself, on every `facegan --help`. The root's help
is a function of facegan's code and of the terminal it is drawn for, nothing else, so the first
`facegan --help` in a given terminal records exactly what the renderer wrote, and the next ones write that
text back.

A recording is kept under everything the rendering reads: facegan's version and the size and mtime_ns of
every .py file of the package (any edit makes it stale), the Python version and platform, the files of the
installed typer and rich, the command path (the usage line names it), every environment variable rich's
Console or typer's help reads (width, colour, terminal forcing), the terminal sizes of the standard streams,
and whether stdout is a terminal and its encoding. FACEGAN_HOME/help.json holds the code's key and the last
few terminals' recordings (JSON only; nothing is unpickled). A missing, stale, unreadable or foreign-shaped
file is a miss, and an unwritable cache folder means no recording: the help is then rendered as always.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from facegan_cli import __version__
from facegan_cli.core.home import facegan_home

FORMAT = "facegan-help/1"
_PACKAGE = Path(__file__).resolve().parents[1]
_KEPT = 8  # recordings kept: a user's few terminals (widths, colour or not, piped or not)
# Every environment variable rich's Console (rich/console.py) or typer's help renderer (typer/rich_utils.py,
# typer/core.py) reads while drawing help.
_ENVIRONMENT = (
    "COLUMNS", "LINES", "JUPYTER_COLUMNS", "JUPYTER_LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE",
    "TTY_INTERACTIVE", "COLORTERM", "TERM", "DATABRICKS_RUNTIME_VERSION", "TERMINAL_WIDTH",
    "_TYPER_FORCE_DISABLE_TERMINAL", "GITHUB_ACTIONS", "PY_COLORS", "TYPER_USE_RICH",
)


def path() -> Path:
    return facegan_home() / "help.json"


def package_files(folder: Path) -> list[list[Any]]:
    """[relative path, size, mtime_ns] of every .py file below `folder`, in a stable order."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                stat = os.stat(os.path.join(root, name))
                found.append([os.path.relpath(os.path.join(root, name), folder), stat.st_size, stat.st_mtime_ns])
    return found


def _renderer_files() -> list[list[Any]]:
    """Size and mtime_ns of typer's and rich's package files that carry their version: an upgrade of either
    changes the key. Located without importing rich (the point of the snapshot)."""
    import importlib.util

    found = []
    for name in ("typer", "rich"):
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None:
            found.append([name, None])
            continue
        folder = os.path.dirname(origin)
        for file in sorted(os.listdir(folder)):
            if file.endswith(".py"):
                stat = os.stat(os.path.join(folder, file))
                found.append([name, file, stat.st_size, stat.st_mtime_ns])
    return found


def _terminal_size(fd: int) -> list[int] | None:
    try:
        return list(os.get_terminal_size(fd))
    except (OSError, ValueError):
        return None


def _isatty(stream: TextIO) -> bool | None:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return None


def code_key() -> dict[str, Any]:
    """What the help is drawn from: facegan's code and the renderer's (any change makes every recording stale)."""
    return {
        "version": __version__,
        "python": sys.version,
        "platform": sys.platform,
        "files": package_files(_PACKAGE),
        "renderer": _renderer_files(),
    }


def terminal_key(command_path: str, stream: TextIO) -> dict[str, Any]:
    """What the help is drawn for: the command path (the usage line names it) and the terminal."""
    return {
        "command": command_path,
        "environment": {name: os.environ.get(name) for name in _ENVIRONMENT},
        "terminal": [_terminal_size(fd) for fd in (0, 1, 2)],
        "isatty": _isatty(stream),
        "encoding": getattr(stream, "encoding", None),
    }


def _recordings(code: dict[str, Any]) -> list[list[Any]]:
    """[terminal key, text] pairs recorded for this code; none from a file of another shape or older code."""
    try:
        doc = json.loads(path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not (isinstance(doc, dict) and doc.get("format") == FORMAT and doc.get("code") == code):
        return []
    renders = doc.get("renders")
    if not isinstance(renders, list):
        return []
    return [r for r in renders if isinstance(r, list) and len(r) == 2 and isinstance(r[1], str) and r[1]]


def recorded(code: dict[str, Any], terminal: dict[str, Any]) -> str | None:
    """The help recorded for this code and terminal, or None."""
    return next((text for seen, text in _recordings(code) if seen == terminal), None)


def record(code: dict[str, Any], terminal: dict[str, Any], text: str) -> None:
    """Keep `text` for this code and terminal, with the last few other terminals' recordings. A cache folder
    that cannot be written just means no recording."""
    from facegan_cli.core.atomic import write_json  # only on a miss: tempfile and friends

    kept = [r for r in _recordings(code) if r[0] != terminal][-(_KEPT - 1):] + [[terminal, text]]
    with contextlib.suppress(OSError, ValueError):
        write_json(path(), {"format": FORMAT, "code": code, "renders": kept})


class _Tee:
    """A stand-in for a text stream that keeps a copy of what is written and is the stream in every other
    respect (isatty, encoding, fileno: rich decides colour and width from them)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def copying_stdout() -> Iterator[_Tee]:
    """sys.stdout replaced by a copying stand-in for the duration (rich's Console writes to sys.stdout as it
    finds it at print time)."""
    real = sys.stdout
    tee = _Tee(real)
    sys.stdout = tee  # type: ignore[assignment]
    try:
        yield tee
    finally:
        sys.stdout = real
