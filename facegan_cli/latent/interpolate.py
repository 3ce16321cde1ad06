"""Paths between two latents: linear (seed 001) and spherical (White, "Sampling generative networks").

Gaussian latents concentrate near a sphere of radius sqrt(z_dim), and a straight line between two of
them dips towards the origin where the generator saw few training latents; slerp walks along the great
circle instead. Both are computed in float64 so the endpoints come back bit for bit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import torch

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.data.figure import check_figure_outputs, labelled_grid, write_figure
from facegan_cli.latent.latents import open_generator, resolve_latents, write_latents

METHODS = ("lerp", "slerp")

# Below this sine of the angle the great circle is numerically undefined and slerp equals lerp to far
# better than float32 precision (sin(t*w)/sin(w) -> t as w -> 0).
_PARALLEL_SIN = 1e-6


def _as_f64(
    a: torch.Tensor, b: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(
            f"endpoints must be 1-d vectors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return a.double(), b.double(), t.double().reshape(-1, 1)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 - t) a + t b for each t: len(t) x dim, in a's dtype."""
    a64, b64, t64 = _as_f64(a, b, t)
    return ((1.0 - t64) * a64 + t64 * b64).to(a.dtype)


def _perpendicular(u: torch.Tensor) -> torch.Tensor:
    """A unit vector orthogonal to unit vector u: the coordinate axis least aligned with u, made orthogonal."""
    axis = torch.zeros_like(u)
    axis[int(torch.argmin(u.abs()))] = 1.0
    v = axis - (axis @ u) * u
    return v / v.norm()


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation sin((1-t)w)/sin(w) a + sin(tw)/sin(w) b, w the angle between a and b.

    Endpoints of equal norm keep that norm along the whole path and the angle from a grows linearly in
    t. Near-parallel endpoints fall back to lerp (the limit of the formula); exactly opposite endpoints,
    for which every great circle is as short, turn through a fixed perpendicular direction.
    """
    a64, b64, t64 = _as_f64(a, b, t)
    na, nb = a64.norm(), b64.norm()
    if na == 0 or nb == 0:
        raise FaceganError(
            "slerp needs non-zero endpoints, but one latent is the zero vector (it has no direction).",
            "Use --method lerp for it, or pick another latent.",
        )
    ua, ub = a64 / na, b64 / nb
    omega = torch.arccos(torch.clamp(ua @ ub, -1.0, 1.0))
    sin_omega = torch.sin(omega)
    if sin_omega < _PARALLEL_SIN and ua @ ub > 0:
        out = (1.0 - t64) * a64 + t64 * b64
    elif sin_omega < _PARALLEL_SIN:
        v = _perpendicular(ua)
        radius = (1.0 - t64) * na + t64 * nb
        out = radius * (torch.cos(math.pi * t64) * ua + torch.sin(math.pi * t64) * v)
    else:
        out = (torch.sin((1.0 - t64) * omega) * a64 + torch.sin(t64 * omega) * b64) / sin_omega
    # sin(0) and sin(w)/sin(w) are exact, but pin the endpoints anyway so callers can rely on them.
    flat = t64.reshape(-1)
    out[flat == 0] = a64
    out[flat == 1] = b64
    return out.to(a.dtype)


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, method: str = "lerp") -> torch.Tensor:
    """`steps` latents from a to b inclusive (t = 0, 1/(steps-1), ..., 1): steps x dim."""
    if steps < 2:
        raise UsageProblem(
            f"--steps {steps} is too few: a path needs both endpoints.", "Use --steps 2 or more."
        )
    if method not in METHODS:
        raise FaceganError(f"--method {method!r} is not an interpolation method.", "Use lerp or slerp.")
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    return (lerp if method == "lerp" else slerp)(a, b, t)


def interpolation_figure(
    ckpt: str | os.PathLike[str],
    pairs: Sequence[tuple[str, str]],
    out: str | os.PathLike[str],
    *,
    latents: str | os.PathLike[str] | None = None,
    steps: int = 10,
    method: str = "lerp",
    save_latents_to: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    device: str = "auto",
    force: bool = False,
) -> dict[str, Any]:
    """`facegan latent interpolate`: a figure with one row of `steps` images per pair of latent references
    (latent.latents), written to `out`; the result document."""
    check_figure_outputs(out, force, save_latents_to)
    generator, saved = open_generator(ckpt, latents, device)
    paths = [interpolate(*resolve_latents([a, b], generator.z_dim, saved, "--pairs"), steps, method) for a, b in pairs]
    z = torch.cat(paths)
    pixels = generator.pixels(z, batch_size, "interpolating")
    rows = [pixels[i * steps : (i + 1) * steps] for i in range(len(pairs))]
    figure = labelled_grid(rows, row_labels=[f"{a} -> {b}" for a, b in pairs])
    files = [write_figure(figure, out, force=force)]
    if save_latents_to is not None:
        files.append(write_latents(z, save_latents_to, force))
    return {
        "checkpoint": generator.path, "method": method, "steps": steps, "pairs": [list(pair) for pair in pairs],
        "out": out, "files": files,
    }
