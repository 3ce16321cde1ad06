"""A JSON snapshot of what the family commands show, so describing them imports no torch.

A family declares itself beside its networks (models/FAMILY.py) and its trainer (train/FAMILY_trainer.py), so
reading the declarations imports torch. `facegan train --help`, `train FAMILY --help`, `models list`,
`models summary --help` and the completion of family names only show what the declarations say: the
first of them in a fresh process imports the real modules, renders from them and writes this snapshot
(the commands' help, every option as data, the family listing) to FACEGAN_HOME/declarations.json; the next
ones read it instead. Running a command (no --help) always builds it from the real modules.

The snapshot is keyed by facegan's version and the size and mtime_ns of every .py file of the package
and of every package announced under the "facegan.families" entry points, so any edit (or an installed
or removed plugin) makes it stale. A stale, unreadable or foreign-shaped file is a miss (JSON only,
nothing is unpickled); an unwritable cache folder means no snapshot. A process that had imported the
registry before (a test or a script that registers a family) always uses the live registry and writes no
snapshot: what it sees may not be what discovery finds.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from facegan_cli import __version__
from facegan_cli.cli.common import FaceganCommand
from facegan_cli.cli.help_snapshot import package_files
from facegan_cli.core.atomic import write_json
from facegan_cli.core.home import facegan_home
from facegan_cli.core.options import Opt

FORMAT = "facegan-declarations/1"
_REGISTRY = "facegan_cli.models.registry"
_TYPES: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str, "Path": Path}
_PACKAGE = Path(__file__).resolve().parents[1]


def path() -> Path:
    return facegan_home() / "declarations.json"


def registry_is_live() -> bool:
    """True where this process imported the registry already: its families may differ from discovery's."""
    return _REGISTRY in sys.modules


def _plugins() -> list[list[Any]]:
    """Each "facegan.families" entry point, its distribution and the files of its top-level package."""
    found = []
    for entry in sorted(importlib.metadata.entry_points(group="facegan.families"), key=lambda e: (e.name, e.value)):
        dist = entry.dist
        top = entry.value.split(":")[0].split(".")[0]
        spec = importlib.util.find_spec(top)  # a top-level name: located, not imported
        origin = Path(spec.origin).parent if spec is not None and spec.origin else None
        files = package_files(origin) if origin is not None and spec.submodule_search_locations else []
        if origin is not None and not files and spec.origin:
            stat = os.stat(spec.origin)
            files = [[spec.origin, stat.st_size, stat.st_mtime_ns]]
        found.append([entry.name, entry.value, dist.name if dist else "", dist.version if dist else "", files])
    return found


def key() -> dict[str, Any]:
    """What the snapshot was made from: any change to it makes the snapshot stale."""
    return {"version": __version__, "files": package_files(_PACKAGE), "plugins": _plugins()}


# --- options as JSON ---------------------------------------------------------------------------------------


def _value(value: Any) -> Any:
    if value is ...:
        return {"required": True}
    return {"path": str(value)} if isinstance(value, Path) else value


def _unvalue(value: Any) -> Any:
    if isinstance(value, dict):
        return ... if value.get("required") else Path(value["path"])
    return value


def encode_opt(opt: Opt) -> dict[str, Any]:
    """An option as JSON: everything its help shows and its value checks but `check` (a function; the
    command that runs is built from the real declarations, which have it)."""
    names = [name for name, kind in _TYPES.items() if kind is opt.type]
    if not names or opt.default is not ... and not isinstance(opt.default, (bool, int, float, str, Path, type(None))):
        raise ValueError(f"option {opt.name}: its type or default has no JSON form")
    type_name = names[0]
    return {"name": opt.name, "flags": list(opt.flags), "type": type_name,
            "default": _value(opt.default), "help": opt.help,
            "choices": list(opt.choices) if opt.choices is not None else None, "min": opt.min,
            "positive": opt.positive, "non_negative": opt.non_negative, "hidden": opt.hidden}


def decode_opt(doc: dict[str, Any]) -> Opt:
    return Opt(doc["name"], tuple(doc["flags"]), _TYPES[doc["type"]], _unvalue(doc["default"]), doc["help"],
               choices=tuple(doc["choices"]) if doc["choices"] is not None else None, min=doc["min"],
               positive=doc["positive"], non_negative=doc["non_negative"], hidden=doc["hidden"])


# --- commands described by the snapshot -----------------------------------------------------------------------


def _asks_for_help(args: Sequence[str], parent: Any) -> bool:
    names = parent.help_option_names if parent is not None else ["--help"]
    given = args[: list(args).index("--")] if "--" in args else args  # after `--` it is a value
    return any(token in names for token in given)


def described(load: Callable[[], Any]) -> type[FaceganCommand]:
    """The class of a command built from the snapshot's options: it shows its help and completes its options
    from them, and hands any other use (a run, a usage error) to the command `load()` builds from the real
    declarations, which parses the same command line itself."""

    class Described(FaceganCommand):
        def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
            if extra.get("resilient_parsing") or _asks_for_help(args, parent):
                return super().make_context(info_name, args, parent=parent, **extra)
            return load().make_context(info_name, args, parent=parent, **extra)

    return Described


# --- the snapshot -------------------------------------------------------------------------------------------


def read() -> dict[str, Any] | None:
    """The snapshot's parts ("train", "models") where it is current; None for a miss of any kind."""
    if registry_is_live():
        return None
    try:
        doc = json.loads(path().read_text(encoding="utf-8"))
        if not (isinstance(doc, dict) and doc.get("format") == FORMAT and doc.get("key") == key()):
            return None
        parts = doc["parts"]
        return parts if isinstance(parts, dict) and {"train", "models"} <= parts.keys() else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def build(part: str, described: Callable[[Any], Any], live: Callable[[], Any]) -> Any:
    """A command group made by `described(snapshot part)` where the snapshot is current, else by `live()` from
    the registry (and the snapshot written for next time, where this process discovered the families)."""
    fresh = not registry_is_live()
    snapshot = read() if fresh else None
    if snapshot is not None:
        try:
            return described(snapshot[part])
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # a part of another shape under a matching key: a miss like any other
    made = live()
    if fresh:
        store()
    return made


def make() -> dict[str, Any]:
    """The parts of the snapshot, from the live registry (which this imports, torch with it)."""
    from facegan_cli.cli import models, train  # imported on use: they import this module

    return {"train": train.declared(), "models": models.declared()}


def store() -> None:
    """Write the snapshot for the next process. A cache folder that cannot be written, or a declaration
    JSON cannot hold (a plugin's option of another type), just means no snapshot."""
    try:
        write_json(path(), {"format": FORMAT, "key": key(), "parts": make()})
    except (OSError, ValueError, TypeError):
        pass
