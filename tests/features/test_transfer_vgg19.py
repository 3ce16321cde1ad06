"""features.vgg19: torchvision's VGG19 `features` with named taps, max or average pooling, ImageNet
normalisation, and its weights through core.weights (official file verified, a user's file hashed)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
import torch
import torchvision
from transfer_helpers import OFFICIAL_NAME, vgg_file_fixture  # noqa: F401 (fixture)

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.weights import sha256_of
from facegan_cli.features.vgg19 import (
    FEATURES_PARAMETERS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TAP_CHANNELS,
    TAP_INDEX,
    VGG19,
    VGG19Extractor,
    layer_tap,
)


def _torchvision_features(state: dict[str, torch.Tensor], pool: str) -> torch.nn.Sequential:
    with torch.device("meta"):
        net = torchvision.models.vgg19(weights=None)
    features = net.features
    features.load_state_dict({k[len("features."):]: v for k, v in state.items()}, assign=True)
    if pool == "avg":
        for i, layer in enumerate(features):
            if isinstance(layer, torch.nn.MaxPool2d):
                features[i] = torch.nn.AvgPool2d(2, 2)
    return features.eval()


def test_layout_and_parameters_are_torchvision_vgg19() -> None:
    with torch.device("meta"):
        ours, theirs = VGG19(), torchvision.models.vgg19(weights=None).features
    count = sum(p.numel() for p in ours.parameters())
    assert count == FEATURES_PARAMETERS == sum(p.numel() for p in theirs.parameters()) == 20_024_384
    assert [k for k in ours.state_dict()] == [f"features.{k}" for k in theirs.state_dict()]
    # The spec's indices (conv/relu): 1_1 0/1, 2_1 5/6, 3_1 10/11, 3_2 12/13, 4_1 19/20, 4_2 21/22, 5_1 28/29.
    for name, (conv, relu) in {"1_1": (0, 1), "2_1": (5, 6), "3_1": (10, 11), "3_2": (12, 13),
                               "4_1": (19, 20), "4_2": (21, 22), "5_1": (28, 29)}.items():
        assert TAP_INDEX[f"conv{name}"] == conv and TAP_INDEX[f"relu{name}"] == relu
    assert [TAP_INDEX[f"pool{b}"] for b in range(1, 6)] == [4, 9, 18, 27, 36]
    assert TAP_CHANNELS["conv3_2"] == 256 and TAP_CHANNELS["relu5_1"] == 512
    assert layer_tap("conv3_2") == "relu3_2" and layer_tap("conv3_2", "pre_relu") == "conv3_2"
    assert layer_tap("pool2", "pre_relu") == "pool2"
    with pytest.raises(ValueError):
        layer_tap("conv6_1")


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_taps_equal_torchvision_features(vgg_file: Path, pool: str) -> None:
    state = torch.load(vgg_file, weights_only=True)
    reference = _torchvision_features(state, pool)
    extractor = VGG19Extractor(vgg_file, "cpu", pool=pool)
    x = torch.rand(2, 3, 40, 36, generator=torch.Generator().manual_seed(0))
    taps = ["conv1_1", "relu2_2", "conv3_2", "relu5_1", "pool4"]
    with torch.no_grad():
        got = extractor(x, taps)
        normalized = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        for tap in taps:
            want = reference[: TAP_INDEX[tap] + 1](normalized)
            assert got[tap].shape == want.shape
            # channels_last vs NCHW kernels: float32 rounding, relative to the map's scale
            torch.testing.assert_close(got[tap], want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))
    # At 64x64 the blocks are 64, 32, 16, 8, 4 px (spec section 1).
    with torch.no_grad():
        sides = [extractor(torch.rand(1, 3, 64, 64), [f"relu{b}_1"])[f"relu{b}_1"].shape[-1] for b in range(1, 6)]
    assert sides == [64, 32, 16, 8, 4]
    assert extractor.input_name == f"imagenet-{pool}pool"


def test_average_pooling_changes_the_features(vgg_file: Path) -> None:
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        by_max = VGG19Extractor(vgg_file, pool="max")(x, ["relu3_1"])["relu3_1"]
        by_avg = VGG19Extractor(vgg_file, pool="avg")(x, ["relu3_1"])["relu3_1"]
    assert not torch.allclose(by_max, by_avg)


def test_uint8_input_is_scaled_and_conv_taps_stay_pre_relu(vgg_file: Path) -> None:
    extractor = VGG19Extractor(vgg_file)
    pixels = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = extractor(pixels, ["conv1_2", "relu1_2"])
        b = extractor(pixels.float() / 255, ["conv1_2"])
    torch.testing.assert_close(a["conv1_2"], b["conv1_2"])
    assert (a["conv1_2"] < 0).any()  # the ReLU after it did not overwrite the tapped tensor
    torch.testing.assert_close(a["relu1_2"], a["conv1_2"].clamp(min=0))


def test_gradients_reach_the_image_and_not_the_weights(vgg_file: Path) -> None:
    extractor = VGG19Extractor(vgg_file, pool="avg")
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    extractor(image, ["relu2_1"])["relu2_1"].square().sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in extractor.model.parameters())


def test_weights_user_file_official_name_and_missing(vgg_file: Path, tmp_path: Path, monkeypatch) -> None:
    own = VGG19Extractor(vgg_file)
    assert not own.weights.verified and own.weights.sha256 == sha256_of(vgg_file)
    # A file under the official name claims to be torchvision's and is verified: random weights are refused.
    fake = tmp_path / OFFICIAL_NAME
    fake.write_bytes(vgg_file.read_bytes())
    with pytest.raises(FaceganError, match="is not vgg19-dcbb9e9d.pth: its SHA-256 starts"):
        VGG19Extractor(fake)
    # The same in the cache.
    home = tmp_path / "home"
    (home / "weights").mkdir(parents=True)
    (home / "weights" / OFFICIAL_NAME).write_bytes(vgg_file.read_bytes())
    monkeypatch.setenv("FACEGAN_HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(FaceganError, match="SHA-256"):
        VGG19Extractor()
    # No file and no network: the file name, the URL and the import line; never other weights.
    (home / "weights" / OFFICIAL_NAME).unlink()

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", offline)  # every opener, urlopen's included
    with pytest.raises(FaceganError) as missing:
        VGG19Extractor()
    text = str(missing.value.message) + " " + str(missing.value.fix)
    assert OFFICIAL_NAME in text and "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in text
    assert "facegan weights import vgg19" in text


def test_files_that_do_not_fit(vgg_file: Path, tmp_path: Path) -> None:
    # torchvision's full file also holds the classifier: its keys are skipped.
    state = torch.load(vgg_file, weights_only=True)
    full = tmp_path / "with-classifier.pth"
    torch.save({**state, "classifier.0.weight": torch.zeros(2, 2), "classifier.0.bias": torch.zeros(2)}, full)
    with torch.no_grad():
        torch.testing.assert_close(VGG19Extractor(full)(torch.rand(1, 3, 8, 8), ["relu1_1"])["relu1_1"].shape[1], 64)
    # VGG16's features (13 convolutions) do not fit: one clear error, naming the file.
    vgg16 = tmp_path / "vgg16.pth"
    with torch.device("meta"):
        shapes = torchvision.models.vgg16(weights=None).features.state_dict()
    torch.save({f"features.{k}": torch.zeros(v.shape) for k, v in shapes.items()}, vgg16)
    with pytest.raises(FaceganError, match="does not fit VGG19's convolutional layers"):
        _ = VGG19Extractor(vgg16).model
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a weights file")
    with pytest.raises(FaceganError, match="not a readable PyTorch weights file"):
        _ = VGG19Extractor(junk).model
    with pytest.raises(FaceganError, match="pool"):
        VGG19Extractor(vgg_file, pool="median")

