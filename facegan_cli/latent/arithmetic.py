"""Latent vector arithmetic ("bald man - neutral man + neutral woman").

Seed 001 keeps every exemplar of group a: each z in a becomes z - mean(b) + mean(c), so each result
keeps its own pose and features. Radford et al. average group a first: mean(a) - mean(b) + mean(c),
and show variations of that one result by adding uniform noise of scale +-0.25 to it (`jitter`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.data.figure import check_figure_outputs, labelled_grid, write_figure
from facegan_cli.latent.latents import open_generator, resolve_latents, write_latents


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
        raise UsageProblem(f"--jitter {scale} is negative.", "Use a noise scale like --jitter 0.25.")
    if count < 1:
        raise UsageProblem(f"--variations {count} must be at least 1.", "Use e.g. --variations 8.")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    noise = torch.rand(z.shape[0], count, z.shape[1], generator=generator, dtype=torch.float32)
    return z.unsqueeze(1).cpu() + (noise * 2.0 - 1.0) * scale


def arithmetic_figure(
    ckpt: str | os.PathLike[str],
    a: Sequence[str],
    b: Sequence[str],
    c: Sequence[str],
    out: str | os.PathLike[str],
    *,
    latents: str | os.PathLike[str] | None = None,
    average_a: bool = False,
    jitter_scale: float = 0.0,
    variations: int = 8,
    seed: int = 0,
    save_latents_to: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    device: str = "auto",
    force: bool = False,
) -> dict[str, Any]:
    """`facegan latent arithmetic`: a figure of groups a, b, c (latent references, each with its mean), the
    results and (with `jitter_scale`) their noisy variations, written to `out`; the result document.
    `save_latents_to` gets the results' latents, then every variation, result by result."""
    groups = {"a": list(a), "b": list(b), "c": list(c)}
    check_figure_outputs(out, force, save_latents_to)
    generator, saved = open_generator(ckpt, latents, device)
    za, zb, zc = (resolve_latents(groups[g], generator.z_dim, saved, f"--{g}") for g in "abc")
    results = vector_arithmetic(za, zb, zc, average_a)

    # One batch through the generator: exemplars, group means, results, then variations.
    parts = [za, zb, zc, torch.stack([za.mean(0), zb.mean(0), zc.mean(0)]), results]
    varied = jitter(results, jitter_scale, variations, seed) if jitter_scale > 0 else None
    if varied is not None:
        parts.append(varied.reshape(-1, generator.z_dim))
    pixels = generator.pixels(torch.cat(parts), batch_size, "arithmetic")
    sizes = [len(za), len(zb), len(zc), 3, len(results)]
    ia, ib, ic, im, ir = np.split(pixels[: sum(sizes)], np.cumsum(sizes)[:-1])

    rows = [np.concatenate([ia, im[0:1]]) if average_a else ia, np.concatenate([ib, im[1:2]]),
            np.concatenate([ic, im[2:3]]), ir]
    captions = [groups["a"] + (["mean"] if average_a else []), groups["b"] + ["mean"], groups["c"] + ["mean"],
                ["result"] if average_a else [f"from {ref}" for ref in groups["a"]]]
    labels = ["a", "b", "c", "mean(a) - mean(b) + mean(c)" if average_a else "a - mean(b) + mean(c)"]
    if varied is not None:
        pv = pixels[sum(sizes) :].reshape(len(results), variations, *pixels.shape[1:])
        rows += list(pv)
        labels += [f"+/-{jitter_scale:g} noise"] * len(results)
        captions += [[""] * variations] * len(results)
    saved_z = results if varied is None else torch.cat([results, varied.reshape(-1, generator.z_dim)])
    files = [write_figure(labelled_grid(rows, row_labels=labels, captions=captions), out, force=force)]
    if save_latents_to is not None:
        files.append(write_latents(saved_z, save_latents_to, force))
    return {
        "checkpoint": generator.path, "mode": "average-a" if average_a else "per-exemplar", **groups,
        "results": len(results), "jitter": jitter_scale, "variations": variations if varied is not None else 0,
        "out": out, "files": files,
    }
