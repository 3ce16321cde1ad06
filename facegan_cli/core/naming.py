"""File names for outputs written one per input (translate, edit, transfer style / features, prepare pairs).

The name of an output comes from its input's name, and inputs can be called anything: two inputs
`a/face.png` and `b/face.png`, an input called `grid.png` next to the contact sheet `grid.png`, names that
differ only in case (one file on macOS and Windows), `.facegan-output.json.png`, a name with a newline.
`output_names` gives every input a name that collides with no other output (compared case-insensitively and
Unicode-normalised, as the most forgiving file systems compare them), with no name the command writes
itself, and with none of facegan's own bookkeeping files; the same inputs in the same order always get the
same names, and the result document records which input became which file.

Rules: the stem of the input's file name, with control characters replaced by `_`, a leading `.` replaced
by `_` (facegan's bookkeeping files are hidden dot-files, and an output should not hide from `ls`), cut to
fit a 255-byte file name; then `suffix`. An input whose name is taken (by an earlier input, by a reserved
name, or by an input that keeps its own name) gets `-2`, `-3`, ... before the suffix: the first free one.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import PurePath

# facegan's own files in an output folder (the marker, the lock, the files record): no output may be named
# like one, whatever its input was called.
from facegan_cli.core.ownership import BOOKKEEPING

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME_MAX = 255  # bytes of one file name on every common file system


def _key(name: str) -> str:
    """What two names that one file system might treat as the same file have in common."""
    return unicodedata.normalize("NFC", name).casefold()


def _stem(name: str) -> str:
    stem = _CONTROL.sub("_", PurePath(name).stem) or "_"
    return "_" + stem[1:] if stem.startswith(".") else stem


def _fit(stem: str, tail: str) -> str:
    """stem + tail, the stem shortened (at a character boundary) until the name fits _NAME_MAX bytes."""
    room = _NAME_MAX - len(tail.encode("utf-8", "surrogateescape"))
    encoded = stem.encode("utf-8", "surrogateescape")
    if len(encoded) > room:
        stem = encoded[:room].decode("utf-8", "ignore")
    return stem + tail


def output_names(
    inputs: Sequence[str | os.PathLike[str]], suffix: str = ".png", reserved: Iterable[str] = ()
) -> list[str]:
    """One output file name per input (see the module's rules), none equal to another, to a `reserved` name
    (the files the command writes besides: `grid.png`, `result.json`, ...) or to facegan's bookkeeping."""
    taken = {_key(name) for name in (*BOOKKEEPING, *reserved)}
    natural = [_fit(_stem(PurePath(item).name), suffix) for item in inputs]
    # An input keeps its own name when no other input and no reserved name claims it; the first of several
    # inputs with one name keeps it too; every name kept is claimed before any other is numbered.
    first: dict[str, int] = {}
    for index, name in enumerate(natural):
        if _key(name) not in taken:
            first.setdefault(_key(name), index)
    taken |= set(first)
    names: list[str] = []
    for index, name in enumerate(natural):
        if first.get(_key(name)) == index:
            names.append(name)
            continue
        stem = name[: -len(suffix)] if suffix and name.endswith(suffix) else name
        number = 2
        while _key(candidate := _fit(stem, f"-{number}{suffix}")) in taken:
            number += 1
        taken.add(_key(candidate))
        names.append(candidate)
    return names
