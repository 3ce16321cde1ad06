"""Sliced Wasserstein distance between Laplacian pyramids (Karras et al. 2018, ProGAN).

As ProGAN's metric: for images of side S, pyramid levels S, S/2, ... down to 16; each level of each
image gives 128 random 7x7x3 neighbourhoods (centres uniform over the positions where the patch fits);
each set's descriptors of a level are normalised per colour channel by their mean and standard deviation
over all its descriptors; the distance between the two sets is the sliced Wasserstein distance over
4 repeats of 128 random unit directions (mean of the sorted projections' absolute differences), reported
x1e3 per level (the finest first) and averaged.

The pyramid is OpenCV's pyrDown/pyrUp (5x5 binomial filter, reflect-101 borders), as ProGAN's numpy
version. Everything runs in float32 on the device; randomness comes from seeded `np.random.RandomState`s,
so a run is reproducible and independent of the batch size. Both sets must have the same number of
images (ProGAN's assumption); the larger one is cut to the size of the smaller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import Progress

NHOOD = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
SMALLEST = 16

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64)
_GAUSS = (torch.outer(_BINOMIAL, _BINOMIAL) / 256.0).float()


def levels_for(size: int) -> list[int]:
    """The pyramid's level sizes for images of side `size`, finest first."""
    out = []
    while size >= SMALLEST:
        out.append(size)
        size //= 2
    return out


def _blur(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    c = x.shape[1]
    kernel = (_GAUSS * scale).to(x.device, x.dtype).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    return _blur(x)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, h * 2, w * 2)
    up[:, :, ::2, ::2] = x
    return _blur(up, 4.0)


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """float32 N x 3 x S x S -> [band-pass level S, ..., low-pass residual at the coarsest level]."""
    pyramid = [images]
    for _ in range(1, levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


def _patches(level: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
    """NHOODS_PER_IMAGE random 7x7 neighbourhoods of each image: (N * 128) x 3 x 7 x 7."""
    n, _, h, w = level.shape
    half = NHOOD // 2
    count = n * NHOODS_PER_IMAGE
    # (y, x) pairs image after image from one stream: the draws do not depend on how images are batched.
    centres = torch.from_numpy(rng.randint(half, [h - half, w - half], size=(count, 2))).to(level.device)
    ys, xs = centres[:, 0], centres[:, 1]
    offsets = torch.arange(-half, half + 1, device=level.device)
    img = torch.arange(count, device=level.device) // NHOODS_PER_IMAGE
    rows = (ys[:, None] + offsets[None])[:, :, None]  # count x 7 x 1
    cols = (xs[:, None] + offsets[None])[:, None, :]  # count x 1 x 7
    # level[img, :, rows, cols] -> count x 7 x 7 x 3
    picked = level.permute(0, 2, 3, 1)[img[:, None, None], rows, cols]
    return picked.permute(0, 3, 1, 2).contiguous()


class DescriptorSet:
    """The neighbourhood descriptors of one image set, level by level."""

    def __init__(self, size: int, seed: int) -> None:
        self.levels = levels_for(size)
        if not self.levels:
            raise FaceganError(
                f"SWD needs images of at least {SMALLEST}x{SMALLEST}; these are {size}x{size}.",
                "Use larger images.",
            )
        self.size = size
        # One stream per level, so that a level's patches do not depend on the other levels or the batching.
        streams = np.random.SeedSequence(seed).spawn(len(self.levels))
        self.rngs = [np.random.RandomState(stream.generate_state(1)[0]) for stream in streams]
        self.parts: list[list[torch.Tensor]] = [[] for _ in self.levels]
        self.count = 0

    def skip(self, images: int) -> None:
        """Draw and drop the patch positions of `images` images: the next image added gets the patches it
        would get after them (a rank's share begins after the images of the ranks before it)."""
        half = NHOOD // 2
        for side, rng in zip(self.levels, self.rngs, strict=True):
            left = images * NHOODS_PER_IMAGE
            while left > 0:  # in slices: the positions of tens of thousands of images need not sit in memory
                count = min(left, 1 << 20)
                rng.randint(half, [side - half, side - half], size=(count, 2))
                left -= count

    def gather(self, rows_of_all: Callable[[np.ndarray], np.ndarray]) -> None:
        """Replace this share's descriptors by every share's, in order (`rows_of_all`: the ranks' rows)."""
        for i, parts in enumerate(self.parts):
            local = torch.cat(parts).numpy() if parts else np.zeros((0, 3, NHOOD, NHOOD), np.float32)
            self.parts[i] = [torch.from_numpy(rows_of_all(local))]
        self.count = self.parts[0][0].shape[0] // NHOODS_PER_IMAGE

    def add(self, images: np.ndarray, device: torch.device) -> None:
        """Add a uint8 N x S x S x 3 batch."""
        if images.shape[1:3] != (self.size, self.size):
            raise FaceganError(
                f"SWD compares images of one size; got {images.shape[2]}x{images.shape[1]} after {self.size}x{self.size}.",
                "Give both sets at the same resolution.",
            )
        x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float()
        for i, level in enumerate(laplacian_pyramid(x, len(self.levels))):
            self.parts[i].append(_patches(level, self.rngs[i]).cpu())
        self.count += len(images)

    def finalize(self, images: int, device: torch.device) -> list[torch.Tensor]:
        """Per level: the descriptors of the first `images` images, normalised per channel, flattened."""
        out = []
        for parts in self.parts:
            desc = torch.cat(parts)[: images * NHOODS_PER_IMAGE].to(device)
            desc = desc - desc.mean(dim=(0, 2, 3), keepdim=True)
            desc = desc / desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
            out.append(desc.reshape(desc.shape[0], -1))
        return out


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, rng: np.random.RandomState) -> float:
    """Mean over DIR_REPEATS x DIRS_PER_REPEAT random directions of the 1-D Wasserstein-1 distance."""
    results = []
    for _ in range(DIR_REPEATS):
        dirs = rng.randn(a.shape[1], DIRS_PER_REPEAT)
        dirs /= np.sqrt(np.sum(np.square(dirs), axis=0, keepdims=True))
        d = torch.from_numpy(dirs.astype(np.float32)).to(a.device)
        proj_a, _ = torch.sort(a @ d, dim=0)
        proj_b, _ = torch.sort(b @ d, dim=0)
        results.append(float((proj_a - proj_b).abs().mean()))
    return float(np.mean(results))


def swd(
    real: Iterable[np.ndarray],
    fake: Iterable[np.ndarray],
    size: int,
    seed: int = 0,
    device: torch.device | str = "cpu",
    skip: tuple[int, int] = (0, 0),
    gather: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, object]:
    """SWD x1e3 per level and their average between two streams of uint8 N x S x S x 3 batches.

    Under torchrun each rank streams its share of both sets: `skip` says how many images of each set come
    before its share, and `gather` joins the ranks' descriptors (in rank order) before they are compared,
    so every rank computes the number one process would.
    """
    device = torch.device(device)
    sets = []
    for offset, stream in enumerate((real, fake)):
        descriptors = DescriptorSet(size, seed + offset)
        descriptors.skip(skip[offset])
        for batch in stream:
            descriptors.add(batch, device)
        if gather is not None:
            descriptors.gather(gather)
        sets.append(descriptors)
    images = min(s.count for s in sets)
    if images < 1:
        raise FaceganError("SWD got an empty image set.", "Give images in both inputs.")
    real_desc, fake_desc = (s.finalize(images, device) for s in sets)
    rng = np.random.RandomState(seed + 2)
    per_level = []
    with Progress(len(real_desc), "swd: sliced distances", unit="level") as bar:
        for a, b in zip(real_desc, fake_desc):
            per_level.append(sliced_wasserstein(a, b, rng) * 1e3)
            bar.advance()
    return {
        "levels": sets[0].levels,
        "per_level": per_level,
        "average": float(np.mean(per_level)),
        "images": images,
    }
