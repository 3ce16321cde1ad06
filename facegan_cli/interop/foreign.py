"""Reading checkpoint files written by other projects, without ever running them.

Every foreign file is read once into memory (a regular file only: a FIFO is named, never waited on), hashed
(the SHA-256 recorded in the imported run), and handed to `torch.load(..., weights_only=True)` with no extra
allowed globals: a file that needs any class beyond tensors and containers (a pickled configuration object,
a planted payload) is refused by torch's restricted unpickler before anything in it runs, and facegan says
so without ever suggesting the unrestricted loader.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import read_regular


@dataclass
class ForeignFile:
    """One foreign checkpoint file: its path, SHA-256 and the tensors of its state dict (keys as stored)."""

    path: Path
    sha256: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def record(self) -> dict[str, Any]:
        """What the imported run's config.json says about this file."""
        return {"file": self.path.name, "path": str(self.path.resolve()), "sha256": self.sha256,
                "bytes": self.path.stat().st_size}


class PickledObjects(FaceganError):
    """The restricted unpickler refused the file: it holds objects beyond tensors and containers."""

    def __init__(self, message: str, fix: str, refused: str) -> None:
        super().__init__(message, fix)
        self.refused = refused


def refused_global(exc: BaseException) -> str:
    """The class the restricted unpickler refused, from torch's message ("" when it names none)."""
    found = re.search(r"(?:Unsupported global: GLOBAL|GLOBAL) ([\w.]+)", str(exc))
    return found.group(1) if found else ""


def read_foreign(path: Path, what: str, pickled_fix: str = "") -> ForeignFile:
    """`path` as a ForeignFile: hashed, loaded with weights_only=True, checked to be a flat state dict of
    tensors (a dict nested one level, e.g. {"state_dict": {...}}, is NOT unwrapped here: sources decide).

    FaceganError (one paragraph naming the file) for a file that is not a regular file, is truncated or not a
    torch file, or holds pickled objects (PickledObjects, with the class torch refused)."""
    data = read_regular(path, what)
    sha = hashlib.sha256(data).hexdigest()
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged or foreign files
        refused = refused_global(exc)
        if refused or "Unsupported global" in str(exc):
            raise PickledObjects(
                f"{path} holds pickled Python objects ({refused or 'a class beyond tensors'}) that facegan's "
                "weights-only reader refuses, so it was not loaded and nothing in it ran. facegan reads other "
                "projects' checkpoints as plain tensors only.",
                pickled_fix or "If the file comes from a source you trust, save its state dict of tensors in your own "
                "environment and import that file instead.",
                refused,
            ) from exc
        raise FaceganError(
            f"{path} cannot be read as a torch checkpoint ({_reason(exc)}): it is truncated, damaged or not a "
            ".pth/.ckpt file.",
            "Download the file again (compare its size with the published one) and import it again.",
        ) from exc
    return ForeignFile(path=path, sha256=sha, tensors=_tensors(loaded, path))


def _reason(exc: BaseException) -> str:
    """torch's reason, without its advice: its weights-only message goes on to suggest the unrestricted loader,
    which facegan never does; only the unpickler's own error line is kept from it."""
    text = str(exc)
    if "Weights only load failed" in text:
        found = re.search(r"(WeightsUnpickler error: [^\n]*)", text)
        detail = found.group(1).strip() if found else ""
        return detail[:200] if detail and not detail.endswith(":") else "not a pickle the restricted unpickler can read"
    return f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"


def _tensors(loaded: Any, path: Path) -> dict[str, torch.Tensor]:
    """The state dict's tensors; a container of other things is returned as is for the source to unwrap
    (kept under "" so the caller can see it); anything else is refused."""
    if isinstance(loaded, dict | OrderedDict):
        if loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
            return {str(k): v for k, v in loaded.items()}
        nested = {str(k): v for k, v in loaded.items() if isinstance(v, dict | OrderedDict)}
        if nested:
            raise NestedStateDict(path, sorted(nested))
    raise FaceganError(
        f"{path} is a torch file but not a state dict of tensors (it holds a {type(loaded).__name__}).",
        "Import the network's state dict file (what the project's own save function writes).",
    )


class NestedStateDict(FaceganError):
    """A dict whose values are dicts (a training-state bundle); the source may know which entry is the
    network."""

    def __init__(self, path: Path, keys: list[str]) -> None:
        super().__init__(
            f"{path} holds a bundle of state dicts ({', '.join(keys[:6])}), not one network's tensors.",
            "Import the file of one network, or the project's own format named in `facegan import --help`.",
        )
        self.keys = keys


def strip_module_prefix(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys saved from a DataParallel-wrapped network ("module.main.0.weight") without the wrapper."""
    if tensors and all(k.startswith("module.") for k in tensors):
        return {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def shape(tensors: dict[str, torch.Tensor], key: str, path: Path, expected_rank: int | None = None) -> tuple[int, ...]:
    """The shape of `key`, or a FaceganError naming the file when it is missing (not this architecture)."""
    if key not in tensors or (expected_rank is not None and tensors[key].dim() != expected_rank):
        raise FaceganError(
            f"{path} is not the network its name says: it has no {key}"
            f"{'' if key not in tensors else f' of rank {expected_rank}'} (its first keys: "
            f"{', '.join(list(tensors)[:4])}).",
            "Import the file the project saves for that network (see `facegan import --help`), or name the "
            "source with --family.",
        )
    return tuple(tensors[key].shape)
