"""Checkpoint files: safetensors weights plus a small torch state file, written atomically.

A checkpoint of step S is two files in `checkpoints/`:
  ckpt-{S:09d}.state.pt        optimisers, RNG states, step, loop and recipe state (written first)
  ckpt-{S:09d}.safetensors     every module's weights as "{module}.{param}", and in the metadata the
                               family and model configuration, so that the file alone rebuilds the model
The safetensors file is written last, so a checkpoint exists only once both are complete; a crash in
between leaves nothing that looks like a checkpoint.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, safe_open, save_file

from facegan_cli.core.atomic import atomic_path
from facegan_cli.core.errors import FaceganError

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^ckpt-(\d{9})\.safetensors$")


@dataclass
class Checkpoint:
    path: Path  # the .safetensors file
    step: int
    meta: dict[str, Any]
    modules: dict[str, dict[str, torch.Tensor]]

    @property
    def state_path(self) -> Path:
        return self.path.with_name(self.path.name.replace(".safetensors", ".state.pt"))

    def load_state(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        if not self.state_path.exists():
            raise FaceganError(
                f"Checkpoint {self.path} has no training state file {self.state_path.name}, so the run "
                "cannot be resumed from it.",
                "Resume from the run directory, which picks its newest complete checkpoint.",
            )
        return torch.load(self.state_path, map_location=map_location, weights_only=False)


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
    if state is not None:
        state_target = target.with_name(target.name.replace(".safetensors", ".state.pt"))
        with atomic_path(state_target) as tmp:
            torch.save(state, tmp)
    with atomic_path(target) as tmp:
        save_file(_flatten(modules), str(tmp), metadata={"facegan": json.dumps({**meta, "step": step})})
    if keep > 0:
        for old in list_checkpoints(ckpt_dir)[:-keep]:
            old.unlink(missing_ok=True)
            old.with_name(old.name.replace(".safetensors", ".state.pt")).unlink(missing_ok=True)
    return target


def list_checkpoints(ckpt_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints in `ckpt_dir`, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Accept a run directory, its checkpoints/ folder or a .safetensors file; return the file."""
    path = Path(path)
    if path.is_file():
        return path
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


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    file = resolve_checkpoint(path)
    try:
        with safe_open(str(file), framework="pt") as handle:
            raw_meta = (handle.metadata() or {}).get("facegan")
        flat = load_file(str(file))
    except Exception as exc:  # safetensors raises several types for damaged files
        raise FaceganError(
            f"Checkpoint {file} cannot be read ({exc}).",
            "It may be truncated or not a facegan checkpoint; use an older one from the same folder.",
        ) from exc
    if raw_meta is None:
        raise FaceganError(
            f"{file} is a safetensors file but not a facegan checkpoint (no 'facegan' metadata).",
            "Pass a checkpoint written by `facegan train`.",
        )
    meta = json.loads(raw_meta)
    return Checkpoint(path=file, step=int(meta.get("step", 0)), meta=meta, modules=_unflatten(flat))
