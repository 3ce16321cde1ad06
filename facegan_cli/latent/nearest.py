"""The k nearest training images of generated samples: the memorisation check seed 001 argued for.

Images are compared in a feature space; "pixel" is the squared L2 distance between images resized to a
common size, reported as the mean over pixels and channels with values in [0, 1] (0 means identical);
"inception" is the mean squared difference of the FID Inception network's pool3 features (pytorch-fid's
protocol, the metrics' network and weights), which finds training images that look alike rather than
align pixel for pixel. A feature space is a factory in `SPACES` (size, device, **options) -> function
from a uint8 N x H x W x 3 batch on the device to N x F float features.

The training set is streamed in batches: for each batch, the distances to all queries come from one
matrix product (|q|^2 + |t|^2 - 2 q.t, as torch.cdist does), the k best candidates of that batch are
re-measured exactly, and a running top-k is kept, so memory stays at one batch whatever the set size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facegan_cli.core.device import parity_mode
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.progress import Progress
from facegan_cli.core.seeding import draw_latents
from facegan_cli.data.figure import check_figure_outputs, labelled_grid, write_figure
from facegan_cli.data.image_pool import open_real_images, square_resize
from facegan_cli.latent.latents import open_generator, resolve_latents
from facegan_cli.latent.names import SPACE_NAMES

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def pixel_space(size: int, device: torch.device) -> FeatureFn:
    """Pixels in [0, 1], resized (antialiased bilinear) to size x size where they differ, flattened."""

    def features(batch: torch.Tensor) -> torch.Tensor:
        x = batch.permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return x.flatten(1)

    return features


def inception_space(size: int, device: torch.device, weights: Path | None = None) -> FeatureFn:
    """pool3 features of the FID Inception network under pytorch-fid's protocol (the metrics' network and
    weights); `weights` as the metrics' --inception-weights."""
    # Imported here: the network's modules load only when this space is asked for.
    from facegan_cli.features.inception import InceptionExtractor
    from facegan_cli.metrics.protocols import get_protocol

    extractor = InceptionExtractor(weights, get_protocol("pytorch-fid"), device)
    return lambda batch: extractor(batch.permute(0, 3, 1, 2).contiguous(), ("2048",))["2048"]


SPACES: dict[str, Callable[..., FeatureFn]] = {"pixel": pixel_space, "inception": inception_space}
assert tuple(SPACES) == SPACE_NAMES, "latent/names.py must name every space"


@dataclass
class Neighbours:
    """For each query, the k training rows nearest to it, nearest first."""

    indices: np.ndarray  # Q x k int64 rows of the training set
    distances: np.ndarray  # Q x k float64, same order
    space: str
    searched: int  # training images compared


def feature_space(space: str, size: int, device: torch.device, **options: Any) -> FeatureFn:
    if space not in SPACES:
        raise FaceganError(f"--space {space!r} is not a feature space.", f"Use one of: {', '.join(SPACES)}.")
    return SPACES[space](size, device, **options)


def _exact(q: torch.Tensor, t: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between each query and its candidate rows of t: Q x kk."""
    cols = [((q - t[cand[:, j]]) ** 2).mean(1) for j in range(cand.shape[1])]
    return torch.stack(cols, dim=1)


def nearest_neighbours(
    queries: np.ndarray,
    training: Iterable[tuple[np.ndarray, np.ndarray]],
    k: int = 5,
    space: str = "pixel",
    size: int | None = None,
    device: torch.device | str = "cpu",
    total: int | None = None,
    space_options: dict[str, Any] | None = None,
) -> Neighbours:
    """The k nearest training rows for each query image (uint8 Q x H x W x 3).

    `training` yields (uint8 N_i x H x W x 3 images, their N_i row numbers) batches; the row numbers are
    what `Neighbours.indices` reports, so a reader may skip unusable rows. `size` is the common side
    length images are compared at (default: the queries' height). `space_options` go to the space's
    factory (e.g. {"weights": path} for "inception").
    """
    device = torch.device(device)
    if k < 1:
        raise UsageProblem(f"-k {k} must be at least 1.", "Use e.g. -k 5.")
    if queries.ndim != 4 or queries.shape[0] == 0:
        raise ValueError("queries must be a non-empty N x H x W x 3 uint8 array")
    if total is not None and total < k:
        raise FaceganError(
            f"-k {k} asks for more neighbours than the {total} training images.", f"Use -k {total} or less."
        )
    features = feature_space(space, int(size or queries.shape[1]), device, **(space_options or {}))
    best_d = torch.empty(queries.shape[0], 0, device=device)
    best_i = torch.empty(queries.shape[0], 0, dtype=torch.long, device=device)
    seen = 0
    # TF32 matmuls would blur the ranking of close neighbours; this is a measurement, keep float32 exact.
    with parity_mode(device), torch.no_grad(), Progress(total, "nearest neighbours", unit="img") as bar:
        q = features(torch.from_numpy(np.ascontiguousarray(queries)).to(device))
        q_sq = (q * q).sum(1, keepdim=True)
        for batch, rows in training:
            if batch.shape[0] == 0:
                continue
            t = features(torch.from_numpy(np.ascontiguousarray(batch)).to(device))
            row_ids = torch.as_tensor(np.asarray(rows, dtype=np.int64), device=device)
            approx = (q_sq + (t * t).sum(1)[None] - 2.0 * (q @ t.T)).clamp_(min=0)
            cand = approx.topk(min(k, t.shape[0]), dim=1, largest=False).indices
            exact = _exact(q, t, cand)
            merged_d = torch.cat([best_d, exact], dim=1)
            merged_i = torch.cat([best_i, row_ids[cand]], dim=1)
            keep = merged_d.topk(min(k, merged_d.shape[1]), dim=1, largest=False, sorted=True).indices
            best_d, best_i = merged_d.gather(1, keep), merged_i.gather(1, keep)
            seen += t.shape[0]
            bar.advance(t.shape[0])
    if seen == 0:
        raise FaceganError(
            "The training set holds no images to compare with.", "Pass a dataset with images to --data."
        )
    if seen < k:
        raise FaceganError(
            f"-k {k} asks for more neighbours than the {seen} training images hold.",
            f"Use -k {seen} or less.",
        )
    return Neighbours(
        indices=best_i.cpu().numpy().astype(np.int64),
        distances=best_d.double().cpu().numpy(),
        space=space,
        searched=seen,
    )


def nearest_figure(
    ckpt: str | os.PathLike[str], data: str | os.PathLike[str], out: str | os.PathLike[str], *, k: int = 5,
    n: int = 8, seed: int = 0, latents: str | os.PathLike[str] | None = None, indices: Sequence[str] | None = None,
    space: str = "pixel", inception_weights: Path | None = None, size: int | None = None, batch_size: int = 256,
    device: str = "auto", force: bool = False,
) -> dict[str, Any]:
    """`facegan latent nearest`: the k nearest training images (`data`) of generated samples, one figure row
    per sample, written to `out`; the result document. The samples are the latents `indices` names (latent
    references), else every row of `latents`, else `n` latents drawn with `seed`."""
    check_figure_outputs(out, force)
    if space not in SPACES:
        raise FaceganError(f"--space {space!r} is not a feature space.", f"Use one of: {', '.join(SPACES)}.")
    generator, saved = open_generator(ckpt, latents, device)
    if indices is not None:
        refs, z = list(indices), resolve_latents(list(indices), generator.z_dim, saved, "--indices")
    elif saved is not None:
        refs, z = [str(i) for i in range(saved.shape[0])], saved
    else:
        if n < 1:
            raise UsageProblem(f"--n {n} must be at least 1.", "Use e.g. --n 8.")
        refs, z = [f"{i}" for i in range(n)], draw_latents(n, generator.z_dim, seed)
    side = size or generator.resolution
    queries = generator.pixels(z, batch_size, "sampling")
    training = open_real_images(data, side)
    options = {"weights": inception_weights} if space == "inception" else {}
    found = nearest_neighbours(
        queries, training.batches(batch_size), k, space, side, generator.device, total=len(training),
        space_options=options,
    )
    rows, captions, report = [], [], []
    for q, ref in enumerate(refs):
        neighbours, _ = training.load(found.indices[q])
        # The sample shown at the comparison size, so that a figure row holds images of one size.
        rows.append(np.concatenate([square_resize(queries[q], side)[None], neighbours]))
        captions.append(["sample"] + [f"{d:.3g}" for d in found.distances[q]])
        report.append({"latent": ref, "neighbours": [
            {"index": int(i), "source": training.names[int(i)], "distance": float(d)}
            for i, d in zip(found.indices[q], found.distances[q])
        ]})
    write_figure(labelled_grid(rows, row_labels=[f"z {ref}" for ref in refs], captions=captions), out, force=force)
    return {
        "checkpoint": generator.path, "data": data, "seed": seed if indices is None and saved is None else None,
        "space": space, "size": side, "searched": found.searched, "k": k, "out": out, "queries": report,
    }
