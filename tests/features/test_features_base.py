"""features.base: what any frozen extractor (the FID Inception, VGG19 next) gets from the base class.

A toy two-layer network with named taps, its weights saved as a plain state dict under a name of its own
(so it is used unverified and hashed, as a user's own file is), stands in for a real one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.weights import sha256_of
from facegan_cli.features.base import FrozenExtractor, TappedNetwork, load_frozen


class Toy(TappedNetwork):
    TAPS = ("conv1", "relu1", "pool")

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] = ("pool",)) -> dict[str, torch.Tensor]:
        last = self.deepest(taps)
        out = {"conv1": self.conv1(x)}
        if last >= 1:
            out["relu1"] = F.relu(out["conv1"])
        if last >= 2:
            out["pool"] = out["relu1"].mean(dim=(2, 3))
        return {t: out[t] for t in taps}


class ToyExtractor(FrozenExtractor):
    weights_key = "vgg19"  # any known key: a file under a name of its own is used unverified
    taps = {"conv1": 4, "relu1": 4, "pool": 4}
    builds = 0

    @property
    def input_name(self) -> str:
        return "unit-range"

    def build(self, path: Path) -> nn.Module:
        ToyExtractor.builds += 1
        return load_frozen(Toy, path, self.weights_file, "the toy network", "Pass the toy's weights.")

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255 if images.dtype == torch.uint8 else images
        return F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "toy-net.pth"
    torch.save(Toy().state_dict(), path)
    return path


def _images(n: int, side: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


@pytest.mark.unit
def test_network_is_frozen_built_once_and_passes_gradients_to_the_input(weights: Path) -> None:
    ToyExtractor.builds = 0
    extractor = ToyExtractor(weights)
    assert ToyExtractor.builds == 0  # nothing is read before the network is needed
    model = extractor.model
    assert extractor.model is model and ToyExtractor.builds == 1
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    image = torch.rand(1, 3, 8, 8, requires_grad=True)  # style transfer optimises an image through the net
    extractor(image, ("pool",))["pool"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


@pytest.mark.unit
def test_identity_names_the_normalisation_and_the_weights(weights: Path) -> None:
    extractor = ToyExtractor(weights)
    assert extractor.identity == ("unit-range", sha256_of(weights))
    assert not extractor.weights.verified  # a user's own file: hashed, reported, not checked


@pytest.mark.unit
def test_taps_are_checked_and_deduplicated(weights: Path) -> None:
    extractor = ToyExtractor(weights)
    assert extractor.check_taps(["pool", "conv1", "pool"]) == ["pool", "conv1"]
    with pytest.raises(FaceganError, match="Unknown feature layer"):
        extractor.check_taps(["fc7"])
    with pytest.raises(ValueError, match="unknown Toy taps"):
        extractor.model(torch.zeros(1, 3, 8, 8), ("fc7",))


@pytest.mark.unit
def test_mixed_sizes_are_normalised_per_size_and_keep_their_order(weights: Path) -> None:
    extractor = ToyExtractor(weights)
    small, large = _images(2, 12, 1), _images(1, 20, 2)
    batch = [small[0], large[0], small[1]]
    got = extractor.network_input(batch)
    one_by_one = torch.cat([extractor.network_input(image[None]) for image in batch])
    assert got.shape == (3, 3, 8, 8) and torch.equal(got, one_by_one)


@pytest.mark.unit
def test_features_of_batches_equal_the_network_on_each_batch(weights: Path) -> None:
    extractor = ToyExtractor(weights, batch_size=2)
    batches = [_images(2, 12, 3), _images(1, 12, 4)]
    found = extractor.features(iter(batches), ["pool", "relu1", "pool"])
    assert list(found) == ["pool", "relu1"] and found["pool"].shape == (3, 4) and found["pool"].dtype == np.float32
    with torch.no_grad():
        direct = torch.cat([extractor.model(extractor.network_input(b), ("pool",))["pool"] for b in batches])
    np.testing.assert_array_equal(found["pool"], direct.numpy())
    empty = extractor.features(iter([]), ["pool"])
    assert empty["pool"].shape == (0, 4)


@pytest.mark.unit
def test_weights_that_do_not_fit_are_a_clear_error(tmp_path: Path) -> None:
    other = tmp_path / "other.pth"
    torch.save(nn.Conv2d(3, 8, 3).state_dict(), other)
    with pytest.raises(FaceganError, match="does not fit the toy network"):
        ToyExtractor(other).features(iter([_images(1, 8, 0)]), ["pool"])
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(FaceganError, match="not a readable PyTorch weights file"):
        ToyExtractor(junk).features(iter([_images(1, 8, 0)]), ["pool"])
    with pytest.raises(FaceganError, match="batch-size"):
        ToyExtractor(junk, batch_size=0)
