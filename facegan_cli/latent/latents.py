"""Latent vectors: z.npy files, and references to single latents by index or seed.

Seeded draws are `core.seeding.draw_latents` (on the CPU with their own torch.Generator). A seed
reference `s42` means the latent `facegan sample --seed 42 --n 1` draws (the first row of
`draw_latents(n, z_dim, 42)`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from facegan_cli.core.atomic import atomic_path
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import open_regular, require_file
from facegan_cli.core.outputs import new_file
from facegan_cli.core.seeding import draw_latents
from facegan_cli.models.loading import LoadedGenerator, load_generator

_REF = re.compile(r"^(?P<seed>s)?(?P<value>\d+)$", re.IGNORECASE)


def save_latents(z: torch.Tensor, path: str | os.PathLike[str]) -> Path:
    """Write latents as an N x z_dim float32 .npy file, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, z.detach().cpu().float().numpy())
    return path


def write_latents(z: torch.Tensor, path: str | os.PathLike[str], force: bool = False) -> Path:
    """`save_latents` as a command's --save-latents output: never over a file facegan did not write, and
    recorded as facegan's (core.outputs.new_file)."""
    with new_file(path, force, "latents", "--save-latents") as tmp:
        save_latents(z, tmp)
    return Path(path)


def load_latents(path: str | os.PathLike[str], z_dim: int | None = None) -> torch.Tensor:
    """Read an N x z_dim .npy file (N x z_dim x 1 x 1 is accepted too) as a float32 CPU tensor."""
    path = require_file(path, "Latents file", "Write one with `facegan sample ... --save-latents z.npy` and pass that path.")
    try:
        with open_regular(path, "Latents file") as fh:  # never blocks on a FIFO named z.npy
            array = np.load(fh, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FaceganError(
            f"{path} is not a readable .npy array ({exc}).",
            "Pass a z.npy written by `facegan sample --save-latents`.",
        ) from exc
    if array.ndim == 4 and array.shape[2:] == (1, 1):
        array = array[:, :, 0, 0]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise FaceganError(
            f"{path} holds a {array.dtype} array of shape {array.shape}, not N x z_dim floating-point latents.",
            "Pass a z.npy written by `facegan sample --save-latents`.",
        )
    if z_dim is not None and array.shape[1] != z_dim:
        raise FaceganError(
            f"{path} holds {array.shape[1]}-d latents but the generator takes {z_dim}-d vectors.",
            "Use latents saved for this checkpoint's family and preset.",
        )
    if not np.isfinite(array).all():
        raise FaceganError(f"{path} contains NaN or infinite values.", "Regenerate it with `facegan sample`.")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def resolve_latent(ref: str | int, z_dim: int, saved: torch.Tensor | None, option: str) -> torch.Tensor:
    """One latent from a reference: `17` is row 17 of the saved latents (or seed 17 when there are none),
    `s17` is always seed 17."""
    match = _REF.match(str(ref).strip())
    if match is None:
        raise FaceganError(
            f"{option}: {ref!r} is neither an index nor a seed.",
            "Write an index into --latents like 17, or a seed like s17.",
        )
    value = int(match.group("value"))
    if match.group("seed") or saved is None:
        return draw_latents(1, z_dim, value)[0]
    if value >= saved.shape[0]:
        raise FaceganError(
            f"{option}: index {value} is past the end of the latents file, which holds {saved.shape[0]} rows "
            f"(indices 0..{saved.shape[0] - 1}).",
            "Use an index that exists, or a seed like s17.",
        )
    return saved[value].clone()


def resolve_latents(
    refs: list[str] | list[int], z_dim: int, saved: torch.Tensor | None, option: str = "--latents"
) -> torch.Tensor:
    """Stack the latents of several references (see `resolve_latent`) into a len(refs) x z_dim tensor."""
    if not refs:
        raise FaceganError(f"{option} names no latents.", f"Give at least one index or seed to {option}.")
    return torch.stack([resolve_latent(ref, z_dim, saved, option) for ref in refs])


def parse_refs(text: str, option: str) -> list[str]:
    """'3,17,s22' -> ['3', '17', 's22']: latent references as a command line writes them."""
    refs = [part.strip() for part in text.split(",") if part.strip()]
    if not refs:
        raise FaceganError(f"{option} is empty.", f"Write it like {option} 3,17,22 (indices) or s1,s2 (seeds).")
    return refs


def parse_pairs(values: list[str]) -> list[tuple[str, str]]:
    """['0:5,3:9', 's1:s2'] -> [('0', '5'), ('3', '9'), ('s1', 's2')]: --pairs, comma-separated or repeated."""
    pairs = []
    for text in values:
        for item in (part.strip() for part in text.split(",")):
            ends = item.split(":")
            if len(ends) != 2 or not all(end.strip() for end in ends):
                raise FaceganError(
                    f"--pairs item {item!r} is not START:END.", "Write pairs like --pairs 0:5,3:9 or --pairs s1:s2."
                )
            pairs.append((ends[0].strip(), ends[1].strip()))
    if not pairs:
        raise FaceganError("--pairs names no pair.", "Write pairs like --pairs 0:5,3:9.")
    return pairs


def open_generator(
    ckpt: str | os.PathLike[str], latents: str | os.PathLike[str] | None = None, device: str = "auto"
) -> tuple[LoadedGenerator, torch.Tensor | None]:
    """A generator checkpoint on `device`, and the latents file its references index into (if any)."""
    generator = load_generator(ckpt, resolve_device(device))
    return generator, load_latents(latents, generator.z_dim) if latents is not None else None
