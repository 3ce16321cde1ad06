"""Training images held once on the compute device as uint8, batched and augmented there.

The reference loops decode JPEG/PNG for every image of every epoch in DataLoader workers; here the
prepared uint8 array is copied to the device once (or pinned in host memory when it does not fit) and
each batch is an index_select, a float conversion and optional flips on the device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from facegan_cli.core.progress import log


def _fits_on_device(nbytes: int, device: torch.device, budget_fraction: float) -> bool:
    if device.type != "cuda":
        return True  # cpu/mps: the array lives in (unified) host memory either way
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= free * budget_fraction


class DeviceImages:
    """N x 3 x H x W uint8 images and batch access in a model's value range.

    `value_range` is (-1, 1) for tanh generators (x / 127.5 - 1, as Normalize(0.5, 0.5) does) or
    (0, 1) for sigmoid generators (x / 255).
    """

    def __init__(
        self,
        images_nhwc: np.ndarray,
        device: torch.device,
        value_range: tuple[float, float],
        resolution: int | None = None,
        budget_fraction: float = 0.5,
        labels: np.ndarray | None = None,
    ) -> None:
        host = torch.from_numpy(np.ascontiguousarray(images_nhwc)).permute(0, 3, 1, 2)
        if resolution is not None and host.shape[-1] != resolution:
            host = resize_uint8(host, resolution)
        self.count = host.shape[0]
        self.resolution = host.shape[-1]
        self.device = device
        self.value_range = value_range
        self.on_device = _fits_on_device(host.numel(), device, budget_fraction)
        if self.on_device:
            self.images = host.to(device).contiguous()
        else:
            log(f"dataset ({host.numel() / 2**30:.1f} GiB) does not fit on {device}; streaming from pinned memory")
            self.images = host.contiguous().pin_memory()
        lo, hi = value_range
        self._scale = (hi - lo) / 255.0
        self._shift = lo
        # Per-row labels (N x A), kept on the device as float32 beside the images they belong to.
        self.labels: torch.Tensor | None = None
        if labels is not None:
            if labels.shape[0] != self.count:
                raise ValueError(f"{labels.shape[0]} label rows for {self.count} images")
            self.labels = torch.from_numpy(np.asarray(labels, dtype=np.float32).reshape(self.count, -1)).to(device)

    def batch(self, indices: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
        """Float images for `indices` (a 1-D index tensor); `flip` is a bool mask of horizontal flips."""
        if self.on_device:
            pixels = self.images.index_select(0, indices.to(self.device))
        else:
            pixels = self.images.index_select(0, indices.cpu()).pin_memory().to(self.device, non_blocking=True)
        images = pixels.float().mul_(self._scale).add_(self._shift)
        if flip is not None:
            flip = flip.to(self.device).view(-1, 1, 1, 1)
            images = torch.where(flip, images.flip(-1), images)
        return images


    def batch_with_labels(
        self, indices: torch.Tensor, flip: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`batch(indices, flip)` and the label rows of the same indices (None when no labels were given)."""
        images = self.batch(indices, flip)
        if self.labels is None:
            return images, None
        return images, self.labels.index_select(0, indices.to(self.labels.device))


def resize_uint8(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Resize N x 3 x H x W uint8 images with antialiasing (area-like when shrinking), rounded back to uint8."""
    out = []
    for start in range(0, images.shape[0], 1024):
        chunk = images[start : start + 1024].float()
        chunk = F.interpolate(chunk, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
        out.append(chunk.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


class EpochOrder:
    """Which dataset rows each step trains on: a fresh permutation per epoch, derived from (seed, epoch).

    Deriving the order from the step alone (rather than from a generator's running state) is what makes a
    resumed run see exactly the batches the uninterrupted run would have seen. Incomplete last batches
    are dropped so BatchNorm always sees full batches.
    """

    def __init__(self, count: int, batch_size: int, seed: int) -> None:
        if batch_size > count:
            raise ValueError(f"batch size {batch_size} is larger than the dataset ({count} images)")
        self.count = count
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = count // batch_size
        self._epoch = -1
        self._perm: torch.Tensor | None = None

    def indices(self, step: int) -> torch.Tensor:
        epoch, offset = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.count, generator=gen)
            self._epoch = epoch
        assert self._perm is not None
        return self._perm[offset * self.batch_size : (offset + 1) * self.batch_size]

    def flips(self, step: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 7_000_003 + step)
        return torch.rand(self.batch_size, generator=gen) < 0.5


class ImageStream:
    """Which dataset rows, and which flips, the training images are when steps differ in size (ProGAN).

    The stream is the concatenation of one permutation per epoch, each derived from (seed, epoch) with a
    flip bit per position; a batch is the slice [images_seen, images_seen + n) of it. Since it is indexed
    by images seen rather than by step, a run resumed at any point sees exactly the images the
    uninterrupted run saw, whatever the batch sizes before it, and batches run on across epoch ends
    (nothing is dropped: ProGAN has no BatchNorm that would mind a mixed batch).
    """

    def __init__(self, count: int, seed: int) -> None:
        if count < 1:
            raise ValueError("an image stream needs at least one image")
        self.count = count
        self.seed = seed
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _epoch(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if epoch not in self._cache:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.count, generator=gen)
            flips = torch.rand(self.count, generator=gen) < 0.5
            # Two epochs at most are in use at once (a batch across an epoch end).
            for old in [e for e in self._cache if e < epoch - 1]:
                del self._cache[old]
            self._cache[epoch] = (perm, flips)
        return self._cache[epoch]

    def _slice(self, start: int, n: int, part: int) -> torch.Tensor:
        pieces = []
        position, end = start, start + n
        while position < end:
            epoch, offset = divmod(position, self.count)
            take = min(end - position, self.count - offset)
            pieces.append(self._epoch(epoch)[part][offset : offset + take])
            position += take
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]

    def indices(self, start: int, n: int) -> torch.Tensor:
        """Dataset rows of stream positions [start, start + n)."""
        return self._slice(start, n, 0)

    def flips(self, start: int, n: int) -> torch.Tensor:
        """Horizontal-flip mask of stream positions [start, start + n)."""
        return self._slice(start, n, 1)
