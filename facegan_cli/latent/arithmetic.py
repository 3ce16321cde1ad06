"""Latent vector arithmetic ("bald man - neutral man + neutral woman").

Seed 001 keeps every exemplar of group a: each z in a becomes z - mean(b) + mean(c), so each result
keeps its own pose and features. Radford et al. average group a first: mean(a) - mean(b) + mean(c),
and show variations of that one result by adding uniform noise of scale +-0.25 to it (`jitter`).
"""

from __future__ import annotations

import torch

from facegan_cli.core.errors import FaceganError


def _check_group(name: str, z: torch.Tensor) -> None:
    if z.dim() != 2 or z.shape[0] == 0:
        raise FaceganError(
            f"Group --{name} is empty.", f"Give --{name} at least one index, e.g. --{name} 3,17,22."
        )


def vector_arithmetic(
    a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, average_a: bool = False
) -> torch.Tensor:
    """len(a) x dim results (seed 001) or, with `average_a`, the single 1 x dim result (Radford)."""
    for name, group in (("a", a), ("b", b), ("c", c)):
        _check_group(name, group)
    if not a.shape[1] == b.shape[1] == c.shape[1]:
        raise ValueError("the three groups must hold latents of one dimension")
    # float64 means so that the result does not depend on the order of summation.
    offset = c.double().mean(0) - b.double().mean(0)
    base = a.double().mean(0, keepdim=True) if average_a else a.double()
    return (base + offset).to(a.dtype)


def jitter(z: torch.Tensor, scale: float, count: int, seed: int) -> torch.Tensor:
    """`count` noisy copies of each row: len(z) x count x dim, noise uniform in [-scale, scale].

    The noise comes from its own CPU generator so the same seed gives the same variations everywhere.
    """
    if scale < 0:
        raise FaceganError(f"--jitter {scale} is negative.", "Use a noise scale like --jitter 0.25.")
    if count < 1:
        raise FaceganError(f"--variations {count} must be at least 1.", "Use e.g. --variations 8.")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    noise = torch.rand(z.shape[0], count, z.shape[1], generator=generator, dtype=torch.float32)
    return z.unsqueeze(1).cpu() + (noise * 2.0 - 1.0) * scale
