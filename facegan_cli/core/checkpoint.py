"""Checkpoint files: safetensors weights plus a pickle-free training-state file, written atomically.

A checkpoint of step S is two files in `checkpoints/`:
  ckpt-{S:09d}.state.safetensors  optimisers, RNG states, step, loop and trainer state (core.statefile:
                                  tensors + JSON, nothing that can run code; written first)
  ckpt-{S:09d}.safetensors        every module's weights as "{module}.{param}", and in the metadata the
                                  family and model configuration, so that the file alone rebuilds the model
The weights file is written last, so a checkpoint exists only once both are complete; a crash in between
leaves nothing that looks like a checkpoint. Checkpoints of facegan 0.1 kept their state in
`ckpt-{S:09d}.state.pt`; those are still read, with torch's restricted unpickler and an explicit
allow-list (core.statefile.load_legacy_state), never with a full unpickler.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from facegan_cli.core.atomic import atomic_path
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import NotRegularFile, not_regular, regular_path, special_kind
from facegan_cli.core.rundir import list_checkpoints as list_checkpoints  # where callers import it from
from facegan_cli.core.statefile import MalformedState, load_legacy_state, load_state, save_state

CHECKPOINT_DIR = "checkpoints"
STATE_SUFFIX = ".state.safetensors"
LEGACY_STATE_SUFFIX = ".state.pt"
# Every file name a checkpoints/ folder holds (what --force may replace).
FILE_NAME = re.compile(r"^ckpt-\d{9}(\.safetensors|\.state\.safetensors|\.state\.pt)$")


@dataclass
class Checkpoint:
    path: Path  # the .safetensors weights file
    step: int
    meta: dict[str, Any]
    modules: dict[str, dict[str, torch.Tensor]]

    @property
    def state_path(self) -> Path:
        return state_path_of(self.path)

    def load_state(self) -> dict[str, Any]:
        """The training state saved with these weights (optimisers, RNG, counters), on the CPU (optimisers move
        their tensors to their parameters when loaded); never unpickles objects."""
        path = self.state_path
        legacy = self.path.with_name(self.path.name.replace(".safetensors", LEGACY_STATE_SUFFIX))
        if not path.exists() and legacy.exists():
            path = legacy
        if not path.exists():
            raise FaceganError(
                f"Checkpoint {self.path} has no training state file {path.name}, so the run cannot be resumed "
                "from it.",
                "Resume from the run directory, which picks its newest complete checkpoint.",
            )
        try:
            state = load_legacy_state(path) if path == legacy else load_state(path)
        except FaceganError:
            raise  # a FIFO or device named like the state file: already one paragraph
        except (MalformedState, OSError) as exc:
            raise FaceganError(
                f"The training state {path} cannot be read ({exc}).",
                "It is damaged or was not written by facegan; resume from the run directory, which falls back "
                "to its newest complete checkpoint.",
            ) from exc
        except Exception as exc:  # the restricted unpickler's refusal of a forged or foreign state.pt
            # torch's own text goes on to suggest weights_only=False, which is exactly what must not happen.
            found = re.search(r"(Unsupported global: [^\n]*|GLOBAL [\w.]+)", str(exc))
            raise FaceganError(
                f"The training state {path} holds objects facegan never unpickles "
                f"({found.group(1) if found else type(exc).__name__}): it was not written by facegan, or was "
                "altered, and was refused without being run.",
                "Resume from a checkpoint facegan wrote.",
            ) from exc
        if not isinstance(state, dict):
            raise FaceganError(f"The training state {path} is not a facegan state.", "Resume from another checkpoint.")
        return state


def state_path_of(weights: Path) -> Path:
    return weights.with_name(weights.name.replace(".safetensors", STATE_SUFFIX))


def checkpoint_name(step: int) -> str:
    return f"ckpt-{step:09d}.safetensors"


def _flatten(modules: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    flat: dict[str, torch.Tensor] = {}
    for module_name, state in modules.items():
        for key, tensor in state.items():
            # clone() breaks storage sharing (tied or EMA-aliased tensors) that safetensors refuses.
            flat[f"{module_name}.{key}"] = tensor.detach().to("cpu").contiguous().clone()
    return flat


def _unflatten(flat: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        module_name, _, param = key.partition(".")
        modules.setdefault(module_name, {})[param] = tensor
    return modules


def _remove(weights: Path) -> None:
    weights.unlink(missing_ok=True)
    state_path_of(weights).unlink(missing_ok=True)
    weights.with_name(weights.name.replace(".safetensors", LEGACY_STATE_SUFFIX)).unlink(missing_ok=True)


def save_checkpoint(
    ckpt_dir: str | os.PathLike[str],
    step: int,
    modules: dict[str, dict[str, torch.Tensor]],
    meta: dict[str, Any],
    state: dict[str, Any] | None,
    keep: int = 3,
) -> Path:
    """Write checkpoint `step` atomically and delete all but the newest `keep` checkpoints."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    target = ckpt_dir / checkpoint_name(step)
    try:
        if state is not None:
            save_state(state_path_of(target), state)
        with atomic_path(target) as tmp:
            save_file(_flatten(modules), str(tmp), metadata={"facegan": json.dumps({**meta, "step": step})})
    except SafetensorError as exc:
        # safetensors reports a failed write (a full disk above all) as its own error type, not OSError:
        # turn it back into the OSError it wraps, so callers handle a full disk in one place.
        raise as_os_error(exc, target) from exc
    if keep > 0:
        for old in list_checkpoints(ckpt_dir)[:-keep]:
            _remove(old)
    return target


def as_os_error(exc: SafetensorError, target: Path) -> OSError:
    """The OSError a safetensors write error wraps ("IoError(Os { code: 28, ... })"); EIO when it names none."""
    found = re.search(r"code: (\d+)", str(exc))
    code = int(found.group(1)) if found else errno.EIO
    return OSError(code, os.strerror(code), str(target))


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Accept a run directory, its checkpoints/ folder or a .safetensors file; return the file."""
    path = Path(path)
    if path.is_file():
        return path
    kind = special_kind(path)
    if kind is not None and kind != "a directory":
        raise not_regular(path, "Checkpoint", kind)
    if not path.exists():
        raise FaceganError(
            f"Checkpoint {path} does not exist.",
            "Pass a run directory (written by `facegan train ...`), its checkpoints/ folder or a .safetensors file.",
        )
    for candidate in (path / CHECKPOINT_DIR, path):
        found = list_checkpoints(candidate)
        if found:
            return found[-1]
    raise FaceganError(
        f"{path} holds no complete checkpoint (no checkpoints/ckpt-*.safetensors).",
        "Train longer than one checkpoint interval, or point at another run directory.",
    )


def _read(file: Path) -> Checkpoint:
    try:
        # Opened once, checked to be a regular file (a FIFO named like a checkpoint would block for ever),
        # and read through that descriptor.
        with regular_path(file, "Checkpoint") as readable:
            with safe_open(readable, framework="pt") as handle:
                raw_meta = (handle.metadata() or {}).get("facegan")
            flat = load_file(readable)
    except NotRegularFile:
        raise
    except Exception as exc:  # safetensors raises several types for damaged files
        raise FaceganError(
            f"Checkpoint {file} cannot be read ({exc}).",
            "It may be truncated or not a facegan checkpoint; pass the run directory to use its newest complete "
            "checkpoint, or an older ckpt-*.safetensors file from the same folder.",
        ) from exc
    if raw_meta is None:
        raise FaceganError(
            f"{file} is a safetensors file but not a facegan checkpoint (no 'facegan' metadata).",
            "Pass a checkpoint written by `facegan train`.",
        )
    try:
        meta = json.loads(raw_meta)
    except ValueError as exc:
        raise FaceganError(f"{file} has damaged facegan metadata ({exc}).", "Pass another checkpoint.") from exc
    problem = metadata_problem(meta)
    if problem:
        raise FaceganError(
            f"Checkpoint {file} has invalid facegan metadata: {problem}.",
            "It was edited or written by another program; use a checkpoint written by `facegan train` (a run "
            "directory falls back to its newest valid one).",
        )
    bad = [key for key, tensor in flat.items() if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if bad:
        raise FaceganError(
            f"Checkpoint {file} holds NaN or infinite weights ({', '.join(bad[:3])}"
            f"{f' and {len(bad) - 3} more' if len(bad) > 3 else ''}), which would give meaningless images.",
            "Use an earlier checkpoint of the run (training refuses to save non-finite weights, so this file was "
            "damaged or edited).",
        )
    return Checkpoint(path=file, step=int(meta.get("step", 0)), meta=meta, modules=_unflatten(flat))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def metadata_problem(meta: Any) -> str:
    """What is wrong with a checkpoint's facegan metadata ("" when nothing): the fields facegan reads, with
    their types and ranges, so that a forged value is refused here rather than failing deep in a model."""
    if not isinstance(meta, dict):
        return f"it is a JSON {type(meta).__name__}, not an object"
    step = meta.get("step", 0)
    if not _is_int(step) or step < 0:
        return f"step is {step!r}, not a whole number of at least 0"
    for key in ("family", "generator"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            return f"{key} is {meta[key]!r}, not a name"
    model = meta.get("model")
    if model is not None and not isinstance(model, dict):
        return f"model is a JSON {type(model).__name__}, not an object of settings"
    for where, holder in (("value_range", meta), ("model.value_range", model or {})):
        value = holder.get("value_range")
        if value is None:
            continue
        if (not isinstance(value, list | tuple) or len(value) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
                or not value[0] < value[1]):
            return f"{where} is {value!r}, not two finite numbers [low, high] with low < high"
    for key in ("resolution", "z_dim"):
        value = (model or {}).get(key)
        if value is not None and (not _is_int(value) or value < (1 if key == "resolution" else 0)):
            return f"model.{key} is {value!r}, not a positive whole number"
    return ""


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """The checkpoint `path` names: a file as given, or a run's newest one that can be read.

    Given a run directory (or its checkpoints/ folder), a newest checkpoint that cannot be read (a file
    cut short by a full disk, say) is skipped for the newest one that can, with a warning.
    """
    given = Path(path)
    if given.is_file():
        return _read(given)
    newest = resolve_checkpoint(given)
    return newest_readable(newest.parent, lambda c: None)[0]


def newest_readable(
    ckpt_dir: Path, check: Any, warn: Any = None
) -> tuple[Checkpoint, Any]:
    """The newest checkpoint in `ckpt_dir` whose files load and pass `check(ckpt) -> extra`; returns both.

    Damaged checkpoints are skipped (each named through `warn`, default core.progress.warn); when none
    loads, the error names every file tried.
    """
    from facegan_cli.core.progress import warn as default_warn

    warn = warn or default_warn
    problems: list[str] = []
    for weights in reversed(list_checkpoints(ckpt_dir)):
        try:
            ckpt = _read(weights)
            extra = check(ckpt)
        except FaceganError as exc:
            problems.append(exc.message)
            warn(f"skipping damaged checkpoint {weights.name}: {exc.message}")
            continue
        if problems:
            warn(f"using the newest complete checkpoint, {weights.name} (step {ckpt.step})")
        return ckpt, extra
    raise FaceganError(
        f"No checkpoint in {ckpt_dir} can be read" + (f": {' '.join(problems)}" if problems else "."),
        "The run cannot continue from these files; start a new run with --out (or --force).",
    )


def newest_header(ckpt_dir: Path) -> tuple[Path, int, dict[str, Any]] | None:
    """(file, number of stored values, facegan metadata) of the newest checkpoint whose header reads, from
    the header alone (no tensor is loaded); None when none does. What a configuration may be checked
    against before any network is built."""
    for weights in reversed(list_checkpoints(ckpt_dir)):
        try:
            with regular_path(weights, "Checkpoint") as readable, safe_open(readable, framework="pt") as handle:
                raw = (handle.metadata() or {}).get("facegan")
                values = sum(math.prod(handle.get_slice(key).get_shape()) for key in handle.keys())  # noqa: SIM118
            meta = json.loads(raw) if raw else {}
        except Exception:  # damaged or not a file: the resume skips it with a warning of its own
            continue
        return weights, values, meta if isinstance(meta, dict) else {}
    return None
