"""Frozen feature extractors: a pretrained network with named taps, used as a fixed measuring device.

A `TappedNetwork` is a module whose `forward(x, taps)` returns {tap name: tensor} for the taps asked for,
in one pass that stops after the deepest of them (`TAPS` lists them in network order).

A `FrozenExtractor` puts such a network on a device, frozen:

- weights: resolved through `core.weights` (the official file from facegan's cache or torch hub, or a
  download, SHA-256 verified), or the user's own file (`weights=`: verified under the official name, used as
  given and hashed under any other); read without running pickle code and loaded into a network built on
  the meta device (no random initialisation of what is replaced at once), with one clear error per way a
  file can be wrong (`load_frozen`);
- frozen: eval mode and `requires_grad` off on every parameter. Gradients may still flow to the *input*
  (style transfer optimises an image through VGG19); batch extraction (`features`) runs under
  inference_mode;
- `normalize`: the hook that turns images (N x 3 x H x W on the device) into the network's input: for the
  FID Inception, the resize and scaling of one reference protocol; for VGG19, ImageNet's mean and std;
- device and precision: channels_last where the backend gains from it, float32 with TF32 off (the numbers
  of the reference implementations) unless `fast`;
- `identity`: what the features depend on besides the pixels (input normalisation and weights SHA-256),
  the key of the feature cache.

A subclass names its weights (`weights_key`, a key of `core.weights.KNOWN`), its taps and their sizes
(`taps`), builds the network (`build`) and says how inputs are normalised (`normalize`, `input_name`).
Options that change the network's output (VGG19's max or average pooling, say) belong in `input_name` so
that `identity` tells such features apart.
"""

from __future__ import annotations

import abc
import contextlib
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import nn

from facegan_cli.core import weights as W
from facegan_cli.core.device import Precision, configure_backends, parity_mode
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.files import open_regular
from facegan_cli.core.statefile import refused_load_reason

# A batch of host images: one uint8 N x H x W x 3 array, or a list of H x W x 3 arrays of any sizes.
Batch = np.ndarray | list[np.ndarray]
N = TypeVar("N", bound=nn.Module)


class TappedNetwork(nn.Module):
    """A network whose `forward(x, taps)` returns {tap: N x ... tensor} for the requested taps."""

    TAPS: ClassVar[tuple[str, ...]] = ()  # in network order: the pass stops after the deepest one asked for

    def deepest(self, taps: Sequence[str]) -> int:
        """Index in TAPS of the deepest tap of `taps`; ValueError for an unknown tap (or none)."""
        unknown = set(taps) - set(self.TAPS)
        if unknown or not taps:
            raise ValueError(f"unknown {type(self).__name__} taps {sorted(unknown)}; known: {self.TAPS}")
        return max(self.TAPS.index(t) for t in taps)


def read_state_dict(
    path: str | os.PathLike[str], expected: W.WeightsFile | None, fix: str = ""
) -> dict[str, torch.Tensor]:
    """Read a weights file: a plain state dict (torch.save), or one nested under 'state_dict'. The messages
    name the `expected` official file, or give `fix` (a file of another project's, with no official copy)."""
    path = Path(path)
    if expected is not None:
        fix = f"Pass {expected.filename} as downloaded from {expected.url}."
    try:
        with warnings.catch_warnings(), open_regular(path, "Weights file") as fh:  # a FIFO is refused, not waited on
            # torch warns about pickle protocols its restricted unpickler may not know: noise for the user,
            # whose file is either read as tensors or refused below.
            warnings.simplefilter("ignore")
            state = torch.load(fh, map_location="cpu", weights_only=True)
    except FaceganError:
        raise
    except Exception as exc:  # pickle, zip and torch errors all mean the same to the user
        # Never torch's own text: it advises weights_only=False, i.e. running the file's code.
        raise FaceganError(
            f"{path} is not a readable PyTorch weights file ({refused_load_reason(exc)}); it was "
            "refused without running anything in it.",
            fix,
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FaceganError(f"{path} does not hold a state dict of tensors.", fix)
    return state


def freeze(network: N) -> N:
    """Eval mode, and no parameter asks for a gradient."""
    return network.eval().requires_grad_(False)


def load_frozen(
    factory: Callable[[], N], path: str | os.PathLike[str], expected: W.WeightsFile, what: str, fix: str,
    skip: Sequence[str] = (),
) -> N:
    """The network `factory()` builds, holding the weights of `path` (strictly: every key, every shape),
    frozen, on the CPU. Keys starting with a prefix in `skip` are dropped first (heads the graph lacks)."""
    state = read_state_dict(path, expected)
    state = {k: v for k, v in state.items() if not k.startswith(tuple(skip))}
    with torch.device("meta"):  # no random initialisation of parameters that are replaced at once
        network = factory()
    try:
        network.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise FaceganError(f"{path} does not fit {what} ({first}).", fix) from exc
    return freeze(network)


class FrozenExtractor(abc.ABC):
    """A frozen network with named taps on a device: `extractor(images, taps)` -> {tap: features}."""

    weights_key: ClassVar[str]  # a key of core.weights.KNOWN
    taps: ClassVar[Mapping[str, int]]  # tap name -> feature size (channels, for feature maps)

    def __init__(
        self,
        weights: W.Resolved | str | os.PathLike[str] | None = None,
        device: torch.device | str = "cpu",
        batch_size: int = 50,
        fast: bool = False,
        channels_last: bool = True,
    ) -> None:
        if batch_size < 1:
            raise UsageProblem(f"--batch-size {batch_size} must be at least 1.", "Use e.g. --batch-size 50.")
        if not isinstance(weights, W.Resolved):
            weights = W.resolve(self.weights_key, None if weights is None else Path(weights))
        self.weights = weights
        self.device = torch.device(device)
        self.batch_size, self.fast = batch_size, fast
        self.precision = Precision(self.device, channels_last=channels_last)
        self._model: nn.Module | None = None

    # What a subclass provides.

    @abc.abstractmethod
    def build(self, path: Path) -> nn.Module:
        """The frozen network (a TappedNetwork) holding the weights in `path`, on the CPU."""

    @abc.abstractmethod
    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images N x 3 x H x W on the device (uint8 from `network_input`) -> the network's input."""

    @property
    @abc.abstractmethod
    def input_name(self) -> str:
        """Names `normalize` (and any option that changes the features), for `identity`."""

    @property
    def label(self) -> str:
        """Shown on progress bars."""
        return f"{self.weights_key} {self.input_name}"

    # What every extractor has.

    @property
    def weights_file(self) -> W.WeightsFile:
        """The official file the weights stand for (its name and URL go into error messages)."""
        return W.get(self.weights_key)

    @property
    def identity(self) -> tuple[str, str]:
        """What the features depend on besides the pixels: (input normalisation, weights SHA-256)."""
        return self.input_name, self.weights.sha256

    @property
    def model(self) -> nn.Module:
        """The network on the device, built on first use: a run served from a cache never loads it."""
        if self._model is None:
            self._model = self.precision.module(self.build(self.weights.path))
        return self._model

    def check_taps(self, taps: Sequence[str]) -> list[str]:
        """`taps` without repeats, in order; a FaceganError names an unknown one."""
        taps = list(dict.fromkeys(taps))
        unknown = [t for t in taps if t not in self.taps]
        if unknown or not taps:
            raise FaceganError(f"Unknown feature layer(s) {unknown}.", f"Use one of: {', '.join(self.taps)}.")
        return taps

    def __call__(self, images: torch.Tensor, taps: Sequence[str], **hooks: Any) -> dict[str, torch.Tensor]:
        """The taps of images already on the device (N x 3 x H x W, as `normalize` takes them); `hooks` go to the
        network's forward (VGG's `at_tap`)."""
        return self.model(self.precision.tensor(self.normalize(images)), taps, **hooks)

    def _normalized(self, stacked: np.ndarray) -> torch.Tensor:
        # Contiguous NCHW before normalising (and resizing), as the references have it, so the same kernels run.
        return self.normalize(torch.from_numpy(stacked).to(self.device).permute(0, 3, 1, 2).contiguous())

    def network_input(self, batch: Batch) -> torch.Tensor:
        """Host uint8 images (one array, or a list of any sizes) -> the network's input on the device."""
        if isinstance(batch, np.ndarray) or len({image.shape for image in batch}) == 1:
            return self.precision.tensor(self._normalized(np.asarray(batch)))
        # Mixed sizes: each size is normalised as one group, then the rows go back to their order.
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(batch):
            groups.setdefault(image.shape, []).append(i)
        out: torch.Tensor | None = None
        for rows in groups.values():
            part = self._normalized(np.stack([batch[i] for i in rows]))
            if out is None:
                out = torch.empty((len(batch), *part.shape[1:]), dtype=part.dtype, device=self.device)
            out.index_copy_(0, torch.as_tensor(rows, device=self.device), part)
        assert out is not None
        return self.precision.tensor(out)

    @contextlib.contextmanager
    def extracting(self) -> Iterator[None]:
        """Inference mode at the extractor's precision: TF32 off (float32-faithful) unless `fast`."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # one input shape throughout: let cuDNN pick its fastest
        if self.fast:
            configure_backends(self.device, parity=False)  # TF32 allowed: faster, no longer bit-faithful
        context = contextlib.nullcontext() if self.fast else parity_mode(self.device)
        with context, torch.inference_mode():
            yield

    def features(self, batches: Iterable[Batch], taps: Sequence[str]) -> dict[str, np.ndarray]:
        """Every tap of every image of `batches` (host uint8 batches), in order, as host float32 arrays
        (empty arrays when there were no images)."""
        taps = self.check_taps(taps)
        parts: dict[str, list[torch.Tensor]] = {t: [] for t in taps}
        pending: dict[str, torch.Tensor] | None = None
        with self.extracting():
            for batch in batches:
                out = self.model(self.network_input(batch), taps)
                # Copy the previous batch back only now, so the device already works on this one.
                if pending is not None:
                    for t in taps:
                        parts[t].append(pending[t].cpu())
                pending = out
            if pending is not None:
                for t in taps:
                    parts[t].append(pending[t].cpu())
        return {t: torch.cat(parts[t]).numpy() if parts[t] else np.zeros((0, self.taps[t]), np.float32) for t in taps}
