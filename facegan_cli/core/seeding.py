"""Seeding and capture/restore of every random number generator a run touches, and seeded latent draws."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def draw_latents(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """n x z_dim standard-normal latents on the CPU, identical for the same (n, z_dim, seed) everywhere.

    Drawn with their own torch.Generator, so `--seed 0` gives the same latents (and hence the same images)
    on every device and does not disturb the global RNG.
    """
    if n < 0:
        raise FaceganError(f"Cannot draw {n} latents.", "Ask for a positive number, e.g. --n 64.")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(n, z_dim, generator=generator, dtype=torch.float32)
