"""The FID Inception network: layout, layer-by-layer agreement with pytorch-fid and torch-fidelity, weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from metrics_helpers import OFFICIAL_NAME, MetricsWorld, homes, world  # noqa: F401

from facegan_cli.core import weights as W
from facegan_cli.core.errors import FaceganError
from facegan_cli.features.inception import FIDInception, InceptionExtractor, build_inception, fuse_batchnorm
from facegan_cli.metrics.protocols import get_protocol


def test_state_dict_is_torchvisions_fid_layout() -> None:
    reference = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, init_weights=False)
    ours = FIDInception().state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert ours["fc.weight"].shape == (1008, 2048)


def test_every_tap_matches_pytorch_fid_network(homes: MetricsWorld) -> None:  # noqa: F811
    from pytorch_fid.inception import InceptionV3

    reference = InceptionV3([0, 1, 2, 3], resize_input=False, normalize_input=False).eval()
    ours = build_inception(homes.weights)
    # Fully convolutional: a smaller input than 299 checks every block at a fraction of the cost.
    x = torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        maps = reference(x)
        got = ours(x, ("64", "192", "768", "2048"))
    for tap, ref in zip(("64", "192", "768", "2048"), maps):
        expected = ref.mean(dim=(2, 3))
        # The same graph and weights: only float32 summation order differs.
        torch.testing.assert_close(got[tap], expected, rtol=1e-4, atol=1e-5)
    assert got["2048"].std() > 0.05  # recalibrated BatchNorm: informative features, not a constant


def test_logits_and_protocol_match_torch_fidelity_extractor(homes: MetricsWorld) -> None:  # noqa: F811
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased", "logits"], feature_extractor_weights_path=str(homes.weights)
    )
    images = np.stack(homes.faces[:1])  # 128x128 uint8: the protocol upsamples it to 299
    with torch.no_grad():
        ref = reference(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
    extractor = InceptionExtractor(
        W.resolve("fid-inception", homes.weights), get_protocol("torch-fidelity"), torch.device("cpu")
    )
    with torch.no_grad():
        got = extractor.model(extractor.network_input(images), ("2048", "logits_unbiased", "logits"))
    for tap, expected in zip(("2048", "logits_unbiased", "logits"), ref):
        scale = expected.abs().max()
        assert (got[tap] - expected).abs().max() / scale < 2e-5, tap
    assert not torch.equal(got["logits"], got["logits_unbiased"])  # the bias is really left out


def test_folding_batchnorm_changes_features_by_rounding_only(homes: MetricsWorld) -> None:  # noqa: F811
    plain = build_inception(homes.weights)
    fused = fuse_batchnorm(build_inception(homes.weights))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        a, b = plain(x, ("768",))["768"], fused(x, ("768",))["768"]
    assert (a - b).abs().max() / a.abs().max() < 1e-5


def test_unreadable_or_foreign_weights_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(FaceganError, match="not a readable PyTorch weights file"):
        build_inception(junk)
    other = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), other)
    with pytest.raises(FaceganError, match="does not fit the FID Inception network"):
        build_inception(other)


def test_explicit_weights_are_verified_only_under_the_official_name(world: MetricsWorld, tmp_path: Path) -> None:  # noqa: F811
    own = W.resolve("fid-inception", world.weights)
    assert not own.verified and own.sha256 == W.sha256_of(world.weights)
    impostor = tmp_path / OFFICIAL_NAME
    impostor.write_bytes(world.weights.read_bytes())
    with pytest.raises(FaceganError, match="SHA-256"):
        W.resolve("fid-inception", impostor)
    with pytest.raises(FaceganError, match="does not exist"):
        W.resolve("fid-inception", tmp_path / "missing.pth")


def test_torch_fidelity_copy_in_torch_hub_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "weights-inception-2015-12-05-6726825d.pth").write_bytes(b"x")
    assert W.locate(W.get("fid-inception")) == hub / "weights-inception-2015-12-05-6726825d.pth"
