"""Training state (optimisers, RNG states, counters, trainer state) in a file that cannot run code.

A state is a tree of dicts, lists, tuples, numbers, strings, tensors and numpy arrays. It is stored as
one safetensors file: the tensors (and numpy arrays, as their raw bytes) as named tensors, and the tree
itself as JSON in the file's metadata, where a tensor stands as {"__tensor__": name}. Reading it back
parses JSON and tensor buffers only, so a forged file can at worst be refused as malformed, never
execute anything (unlike a pickle, which `torch.load(weights_only=False)` would run).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from facegan_cli.core.atomic import atomic_path
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import regular_fd, regular_path

_META_KEY = "facegan-state"
_FORMAT = 1
_TAGS = ("__tensor__", "__ndarray__", "__tuple__", "__dict__")


class MalformedState(ValueError):
    """The file is not a state this module wrote (or was damaged)."""


def _encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        # clone(): safetensors refuses views and shared storage; contiguous CPU copies are always accepted.
        tensors[name] = value.detach().to("cpu").contiguous().clone()
        return {"__tensor__": name}
    if isinstance(value, np.ndarray):
        name = f"t{len(tensors)}"
        raw = np.ascontiguousarray(value)
        tensors[name] = torch.from_numpy(raw.view(np.uint8).reshape(-1).copy())
        return {"__ndarray__": name, "dtype": raw.dtype.str, "shape": list(raw.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and k not in _TAGS for k in value):
            return {k: _encode(v, tensors) for k, v in value.items()}
        return {"__dict__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    raise TypeError(f"cannot store a {type(value).__name__} in a training state file")


def _decode(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if not isinstance(node, dict):
        raise MalformedState(f"unexpected JSON value of type {type(node).__name__}")
    tag = next((t for t in _TAGS if t in node), None)
    if tag is None:
        return {k: _decode(v, tensors) for k, v in node.items()}
    if tag == "__tuple__":
        if not isinstance(node[tag], list):
            raise MalformedState("a tuple that is not a list")
        return tuple(_decode(v, tensors) for v in node[tag])
    if tag == "__dict__":
        pairs = node[tag]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise MalformedState("a dict that is not a list of pairs")
        out = {}
        for k, v in pairs:
            key = _decode(k, tensors)
            if not isinstance(key, str | int | float | bool | tuple) and key is not None:
                raise MalformedState("an unhashable dict key")
            out[key] = _decode(v, tensors)
        return out
    name = node[tag]
    if not isinstance(name, str) or name not in tensors:
        raise MalformedState(f"a reference to a missing tensor {name!r}")
    if tag == "__tensor__":
        return tensors[name]
    try:
        dtype = np.dtype(str(node["dtype"]))
        shape = tuple(int(s) for s in node["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedState(f"a malformed array description ({exc})") from exc
    if dtype.hasobject:
        raise MalformedState("an object array")  # object arrays would need pickle: never
    raw = tensors[name].numpy()
    if raw.dtype != np.uint8 or raw.size != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise MalformedState("an array whose bytes do not match its shape")
    return raw.view(dtype).reshape(shape).copy()


def save_state(path: str | os.PathLike[str], state: Any) -> None:
    """Write `state` atomically to `path` (a .safetensors file)."""
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, tensors)
    meta = {_META_KEY: json.dumps({"format": _FORMAT, "tree": tree})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_state(path: str | os.PathLike[str]) -> Any:
    """Read a state written by `save_state`; MalformedState (or OSError) for anything else."""
    path = Path(path)
    try:
        # A FIFO named like a state file is refused (NotRegularFile) instead of blocking the resume.
        with regular_path(path, "Training state") as readable, safe_open(readable, framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (OSError, FaceganError):
        raise
    except Exception as exc:  # safetensors raises its own error types for damaged headers
        raise MalformedState(f"not a readable safetensors file ({exc})") from exc
    if _META_KEY not in meta:
        raise MalformedState("no facegan training state in its metadata")
    try:
        payload = json.loads(meta[_META_KEY])
    except ValueError as exc:
        raise MalformedState(f"its state is not valid JSON ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT or "tree" not in payload:
        raise MalformedState("an unknown state format")
    return _decode(payload["tree"], tensors)


# Globals a state.pt of facegan <= 0.1 may name (numpy's RNG state); everything else is refused.
def _legacy_safe_globals() -> list[Any]:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray  # type: ignore[no-redef]
    found: list[Any] = [np.ndarray, np.dtype, multiarray._reconstruct]
    for name in ("UInt32DType", "Float64DType", "Int64DType"):
        dtype_class = getattr(np.dtypes, name, None) if hasattr(np, "dtypes") else None
        if dtype_class is not None:
            found.append(dtype_class)
    return found


def refused_load_reason(exc: BaseException) -> str:
    """Why torch.load(weights_only=True) refused a file, in a few words for a message. torch's own text
    advises re-running with weights_only=False (running whatever the pickle holds) and allow-listing the
    object's class: facegan never does either, so that text must never reach the user."""
    text = str(exc)
    found = re.search(r"Unsupported global: (?:GLOBAL )?([\w.]+)", text)
    if found:
        return f"it holds a Python object ({found.group(1)}), not only tensors, and facegan never unpickles objects"
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text:
        return "its content is not tensors that can be read without running pickled code"
    first = text.strip().splitlines()[0] if text.strip() else ""
    if "weights_only" in first or "pickle" in first.lower():
        first = ""
    return f"{type(exc).__name__}{': ' + first.rstrip('.') if first else ''}"


def load_legacy_state(path: str | os.PathLike[str]) -> Any:
    """Read a `state.pt` written by facegan 0.1 with torch's restricted unpickler and an explicit allow-list
    (tensors, plain containers, numpy arrays): an object outside it is refused, never constructed."""
    with regular_fd(path, "Training state") as fd, os.fdopen(os.dup(fd), "rb") as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.serialization.safe_globals(_legacy_safe_globals()):
            return torch.load(fh, map_location="cpu", weights_only=True)
