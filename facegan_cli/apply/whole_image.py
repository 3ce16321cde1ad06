"""Whole images through an image-to-image network (`translate`, `transfer fast`): any aspect ratio, any size.

A fully convolutional network with k stride-2 layers takes sides that are multiples of 2**k (its
`multiple`). `apply_padded` pads the bottom and right sides up to the multiple (reflect; replicate where the
image is too small to reflect) and crops the output back to the input's shape, so no pixel is lost and an
input already of a right size runs exactly as before.

`apply_tiled` runs an image larger than memory in overlapping tiles (`--tile N`): tile corners sit on
multiples of the network's multiple, so every tile sees the same sampling grid as the whole image would; each
tile's output is weighted by a window that is 1 inside and ramps down (raised cosine) across the overlap
with its neighbours, accumulated in float32 and divided by the summed weights, so there is no seam: a
border pixel is mostly taken from the tile in which it lies deepest. Only the input, the two accumulators
and one batch of tiles are in memory at once, whatever the image's size.

Per-image statistics (instance norm, as CycleGAN's and the fast style networks have; batch norm in training
mode) would make each tile normalise by its own content, and tiles would then differ in tone. For these,
the statistics every such layer sees are gathered once from the whole image, downscaled so its area is at
most `stats_area` (default: four tiles), and frozen for the tiles (`NormStatistics`). The tiles then agree
with each other exactly as a network without such statistics does; the result equals an untiled pass
whose norms used the reduced image's statistics, which is close to, not the same as, the full-size
untiled pass. Networks without per-image statistics (batch norm in eval mode, no norm) tile exactly up to
what lies beyond the overlap in their receptive field.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facegan_cli.core.errors import UsageProblem
from facegan_cli.data.crops import resize_short_side
from facegan_cli.data.imageio import open_rgb

Net = Callable[[torch.Tensor], torch.Tensor]  # N x C x H x W -> N x C' x H x W (sides multiples of the multiple)


def padded_side(length: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that holds `length`."""
    return -(-length // multiple) * multiple


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """N x C x H x W padded on the bottom and right to sides that are multiples of `multiple`: reflected
    (no new edge for the network to answer to), or repeated where a side is too short to reflect."""
    h, w = x.shape[-2:]
    ph, pw = padded_side(h, multiple) - h, padded_side(w, multiple) - w
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def apply_padded(net: Net, x: torch.Tensor, multiple: int) -> torch.Tensor:
    """net(x) for any H x W: padded to the multiple, the output cropped back to H x W."""
    h, w = x.shape[-2:]
    return net(pad_to_multiple(x, multiple))[..., :h, :w]


def default_overlap(tile: int, multiple: int) -> int:
    """A quarter of the tile, down to the network's multiple (at least one multiple)."""
    return max(multiple, tile // 4 // multiple * multiple)


def check_tiling(tile: int, overlap: int, multiple: int) -> None:
    """A usage error (exit 2) for a tile or overlap the network cannot use, before any work."""
    if multiple <= 0:
        raise UsageProblem(f"--tile {tile}: this network takes only its training size, so it cannot run in tiles.",
                           "Leave --tile out.")
    if tile <= 0 or tile % multiple:
        raise UsageProblem(f"--tile {tile} is not a positive multiple of {multiple}, the side multiple this network "
                           "takes.", f"Use e.g. --tile {max(1, round(512 / multiple)) * multiple}.")
    if overlap < 0 or overlap % multiple:
        raise UsageProblem(f"--overlap {overlap} is not a multiple of {multiple} (tiles must start on the network's "
                           "sampling grid).", f"Use e.g. --overlap {default_overlap(tile, multiple)}.")
    if tile < 2 * overlap:
        raise UsageProblem(f"--tile {tile} is smaller than twice the overlap ({overlap}): a pixel would be blended "
                           "from more than two tiles per side.",
                           f"Use a larger --tile (at least {2 * overlap}) or a smaller --overlap.")


def resolve_tiling(tile: int | None, overlap: int | None, multiple: int) -> int | None:
    """The overlap `tile` runs with (given, or a quarter tile), after the checks; None without a tile."""
    if tile is None:
        if overlap is not None:
            raise UsageProblem(f"--overlap {overlap} is given without --tile.", "Add --tile N, or leave --overlap out.")
        return None
    if overlap is None:
        overlap = default_overlap(tile, multiple) if multiple > 0 else 0
    check_tiling(tile, overlap, multiple)
    return overlap


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles of side `tile` start along a side of `length` (a multiple of the net's multiple, as are
    tile and overlap), neighbours sharing at least `overlap`; one tile of the whole side if it is shorter."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def ramp_weights(length: int, start: int, size: int, overlap: int) -> torch.Tensor:
    """1-D weights of a tile covering [start, start + size) of `length`: a raised-cosine ramp over `overlap`
    on each side that has a neighbour, 1 elsewhere (image edges are not ramped: no neighbour blends there)."""
    weights = torch.ones(size)
    if overlap <= 0:
        return weights
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(overlap) + 0.5) / overlap)  # > 0, rising to ~1
    if start > 0:
        weights[:overlap] = ramp
    if start + size < length:
        weights[size - overlap :] = torch.minimum(weights[size - overlap :], ramp.flip(0))
    return weights


def apply_tiled(
    net: Net, x: torch.Tensor, multiple: int, tile: int, overlap: int | None = None, batch: int = 1,
    device: torch.device | str = "cpu", stats_area: int | None = None, freeze_statistics: bool = True,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """net over a 1 x C x H x W image (kept where it is, e.g. the CPU) in tiles of `tile` run `batch` at a
    time on `device`; returns the 1 x C' x H x W float32 output on x's device and what was done (tiles,
    overlap, and the size the frozen norm statistics came from, or None when the net has none).
    freeze_statistics False: each tile's norms use the tile's own statistics (the naive way, for comparison)."""
    overlap = default_overlap(tile, multiple) if overlap is None else overlap
    check_tiling(tile, overlap, multiple)
    h, w = x.shape[-2:]
    image = pad_to_multiple(x.float(), multiple)
    height, width = image.shape[-2:]
    th, tw = min(tile, height), min(tile, width)
    stats = NormStatistics.gather(net, image, stats_area or 4 * tile * tile, multiple, device) \
        if freeze_statistics else NormStatistics({}, None)
    boxes = [(top, left) for top in tile_starts(height, th, overlap) for left in tile_starts(width, tw, overlap)]
    total: torch.Tensor | None = None
    weight_sum = torch.zeros(1, 1, height, width)
    for first in range(0, len(boxes), batch):
        part = boxes[first : first + batch]
        tiles = torch.cat([image[..., t : t + th, s : s + tw] for t, s in part]).to(device)
        with stats.frozen():
            made = net(tiles).float().to(weight_sum.device)
        if total is None:
            total = torch.zeros(1, made.shape[1], height, width)
        for (top, left), out in zip(part, made):
            window = ramp_weights(height, top, th, overlap)[:, None] * ramp_weights(width, left, tw, overlap)[None]
            total[0, :, top : top + th, left : left + tw] += out * window
            weight_sum[0, 0, top : top + th, left : left + tw] += window
    assert total is not None  # at least one tile
    result = (total / weight_sum)[..., :h, :w].to(x.device)
    return result, {"tile": tile, "overlap": overlap, "tiles": len(boxes), "norm_statistics_from": stats.source}


_NORMS = (nn.modules.instancenorm._InstanceNorm, nn.modules.batchnorm._BatchNorm)


def _per_image(module: nn.Module) -> bool:
    """Does this norm layer normalise by the statistics of its input (not by stored running ones)?"""
    if not isinstance(module, _NORMS):
        return False
    return bool(module.training or not module.track_running_stats)


class NormStatistics:
    """The per-channel mean and variance each per-image norm layer of a network saw in one pass (in call
    order, per layer), replayed in place of the statistics of whatever later passes see (`frozen`)."""

    def __init__(self, seen: dict[int, list[tuple[torch.Tensor, torch.Tensor]]], source: str | None) -> None:
        self.seen = seen
        self.source = source  # "W x H" of the image they came from; None when the net has no such layer

    @classmethod
    def gather(cls, net: Net, image: torch.Tensor, max_area: int, multiple: int,
               device: torch.device | str) -> NormStatistics:
        """Run `net` once on `image` (1 x C x H x W), downscaled (antialiased) to at most `max_area` pixels,
        recording what every per-image norm layer normalises by."""
        h, w = image.shape[-2:]
        if not _has_per_image_norms(net, image, multiple, device):
            return cls({}, None)  # nothing to freeze: spare the pass its time and memory
        scale = min(1.0, math.sqrt(max_area / (h * w)))
        small = image
        if scale < 1.0:
            size = (max(multiple, round(h * scale)), max(multiple, round(w * scale)))
            small = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
        seen: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}

        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if _per_image(module):
                x = inputs[0].float()
                var, mean = torch.var_mean(x, dim=(0, *range(2, x.dim())), unbiased=False)
                seen.setdefault(id(module), []).append((mean, var))

        with _global_forward_hook(record):
            net(pad_to_multiple(small, multiple).to(device))
        source = f"{small.shape[-1]}x{small.shape[-2]}" if seen else None
        return cls(seen, source)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Within: every per-image norm layer's n-th call normalises by the n-th statistics gathered."""
        if not self.seen:
            yield
            return
        calls: dict[int, int] = {}

        def replay(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor | None:
            if not _per_image(module) or id(module) not in self.seen:
                return None
            n = calls.get(id(module), 0)
            calls[id(module)] = n + 1
            mean, var = self.seen[id(module)][min(n, len(self.seen[id(module)]) - 1)]
            x = inputs[0]
            shape = (1, -1, *([1] * (x.dim() - 2)))
            y = (x - mean.to(x).view(shape)) * torch.rsqrt(var.to(x).view(shape) + module.eps)
            if module.affine:
                y = y * module.weight.to(x).view(shape) + module.bias.to(x).view(shape)
            return y

        with _global_forward_hook(replay):
            yield


def _has_per_image_norms(net: Net, image: torch.Tensor, multiple: int, device: torch.device | str) -> bool:
    """Does `net` call a per-image norm layer? One pass on the image shrunk to a small square tells."""
    side = max(16, 2 * multiple)
    probe = F.interpolate(image, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    found: list[bool] = []

    def spot(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        found.append(_per_image(module))

    with _global_forward_hook(spot):
        net(probe.to(device))
    return any(found)


@contextlib.contextmanager
def _global_forward_hook(hook: Callable[..., Any]) -> Iterator[None]:
    # A global hook sees the norm layers of whatever `net` calls (a translator's method, not a module).
    handle = nn.modules.module.register_module_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def read_scaled(path: Any, short_side: int | None, resample: int) -> np.ndarray:
    """An image file as H x W x 3 uint8, its short side scaled to `short_side` (aspect kept) when given;
    data.imageio.RejectedImage for an unusable file (the caller names it in its own words)."""
    image = open_rgb(path)
    if short_side is not None:
        image = resize_short_side(image, short_side, resample)
    return np.asarray(image, dtype=np.uint8)


def shape_groups(arrays: Sequence[np.ndarray]) -> dict[tuple[int, ...], list[int]]:
    """The indices of `arrays` by shape, in order: images of one shape run through a network together."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, array in enumerate(arrays):
        groups.setdefault(tuple(array.shape), []).append(i)
    return groups
