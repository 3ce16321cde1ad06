"""The fast-style family against pytorch/examples' fast_neural_style (tests/references/fast_style_reference.py):
TransformerNet's count and forward pass, one training step's losses, their saved files (with and without the
legacy InstanceNorm keys) stylising a real face through `facegan transfer fast`, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke_cli
from PIL import Image
from references import fast_style_reference as ref
from train_helpers import make_run
from transfer_helpers import STYLES, random_reference_net, vgg16_file_fixture  # noqa: F401 (fixture)

from facegan_cli.core.device import Precision
from facegan_cli.core.weights import sha256_of
from facegan_cli.models.fast_style import (
    PARAMETERS,
    PRESETS,
    TransformerNet,
    from_examples_state_dict,
)
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.fast_style_trainer import FastStyleTrainer
from facegan_cli.train.trainer import TrainContext

pytestmark = pytest.mark.usefixtures("one_thread")
FACES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "celebahq-sample"





def _ours(theirs: ref.TransformerNet) -> TransformerNet:
    net = TransformerNet()
    state, inferred = from_examples_state_dict(theirs.state_dict())
    net.load_state_dict(state, strict=True)
    assert inferred["legacy_keys_dropped"] == [] and inferred["parameters"] == PARAMETERS
    return net.eval()


@pytest.mark.unit
def test_transformer_net_has_their_parameter_count_and_forward_pass() -> None:
    theirs = random_reference_net()
    assert sum(p.numel() for p in TransformerNet().parameters()) == PARAMETERS == 1_679_235
    assert sum(p.numel() for p in theirs.parameters()) == PARAMETERS
    ours = _ours(theirs)
    x = torch.rand(2, 3, 36, 28, generator=torch.Generator().manual_seed(1)) * 255
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def _face(side: int, n: int = 2) -> torch.Tensor:
    """The first n sample faces, side x side, 0-255 floats N x 3 x H x W."""
    files = sorted(FACES.glob("*.jpg"))[:n]
    if len(files) < n:
        pytest.skip(f"{FACES} is not available")
    arrays = [np.asarray(Image.open(p).convert("RGB").resize((side, side), Image.Resampling.LANCZOS)) for p in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()


def test_one_training_step_has_their_losses(vgg16_file: Path) -> None:
    """Their train loop's content and style losses of two steps (the second after one Adam update) on two real
    faces at 32 px with candy at 48 px, equal to the trainer's to 1e-5 relative (the first). (The weights themselves are not
    compared: Adam's first step moves every weight by about lr whatever its gradient's size, so a gradient
    that is float noise on both sides flips a weight by 2e-3; the second step's losses show the update.)"""
    style_file = STYLES / "candy.jpg"
    config = resolve_config("fast-style", "examples", {"style_size": 48, "resolution": 32, "batch": 2})
    config.update(style_image=str(style_file), style_sha256=sha256_of(style_file), vgg_weights=str(vgg16_file),
                  vgg_sha256="", heldout=None)
    trainer = FastStyleTrainer(config)
    trainer.setup(TrainContext(torch.device("cpu"), Precision(torch.device("cpu"), channels_last=True)))
    theirs = random_reference_net(3).train()
    trainer.modules["T"].load_state_dict(from_examples_state_dict(theirs.state_dict())[0])
    vgg = ref.Vgg16(torch.load(vgg16_file, map_location="cpu", weights_only=True))
    style = torch.from_numpy(np.asarray(Image.open(style_file).convert("RGB").resize((48, 48), Image.Resampling.LANCZOS))
                             .copy()).permute(2, 0, 1)[None].float()
    optimizer = torch.optim.Adam(theirs.parameters(), 1e-3)
    x = _face(32)
    for step in range(2):
        content, style_loss = ref.train_step(theirs, optimizer, vgg, x, ref.style_grams(vgg, style, 2))
        logged = trainer.train_step({"images": x.clone()}, step)
        # After one update, weights whose gradient was float noise moved by +-lr on either side (Adam's first
        # step is about lr whatever the gradient's size), so the second step's losses agree less closely.
        tolerance = 1e-5 if step == 0 else 1e-3
        assert float(logged["content"]) == pytest.approx(content, rel=tolerance), step
        assert float(logged["style"]) == pytest.approx(style_loss, rel=tolerance), step
        assert content > 0 and style_loss > 0


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy-keys"])
@pytest.mark.parametrize("suffix", [".pth", ".model"])
def test_their_saved_file_stylises_a_real_face_to_their_pixels(tmp_path: Path, legacy: bool, suffix: str) -> None:
    """A file saved as their train saves it (torch.save(state_dict)), or as their released models are (with
    InstanceNorm running_mean/var), becomes a run; `transfer fast` on a real face (178 x 218, as CelebA's
    aligned crops: not a multiple of 4) writes their stylize's pixels within one level."""
    theirs = random_reference_net(7)
    saved = tmp_path / f"style{suffix}"
    torch.save(ref.legacy_state_dict(theirs) if legacy else theirs.state_dict(), saved)
    files = sorted(FACES.glob("*.jpg"))
    if not files:
        pytest.skip(f"{FACES} is not available")
    face = tmp_path / "faces" / "face.png"
    face.parent.mkdir()
    Image.open(files[0]).convert("RGB").resize((178, 218), Image.Resampling.LANCZOS).save(face)

    imported = invoke_cli(["import", saved, "--out", tmp_path / "run", "--json"])
    assert imported.exit_code == 0, imported.output
    doc = json.loads(imported.stdout)
    assert doc["family"] == "fast-style" and doc["project"].startswith("pytorch/examples")
    assert len(doc["inferred"]["legacy_keys_dropped"]) == (30 if legacy else 0)  # 15 InstanceNorms
    result = invoke_cli(["transfer", "fast", face.parent, "--ckpt", tmp_path / "run", "--out", tmp_path / "out",
                         "--device", "cpu", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)["outputs"][0]["output"]
    ours = np.asarray(Image.open(written))
    expected = ref.stylize(ref.load_model(saved), face)
    assert ours.shape == expected.shape
    assert int(np.abs(ours.astype(int) - expected.astype(int)).max()) <= 1
    assert float(expected.std()) > 10 and 0.01 < float((expected == 255).mean() + (expected == 0).mean()) < 0.5


# --- bad input ---------------------------------------------------------------------------------------------------


def _one_paragraph(result: object, *words: str) -> str:
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    message = " ".join(result.stderr.split())  # type: ignore[attr-defined]
    assert "Traceback" not in result.output, result.output  # type: ignore[attr-defined]
    for word in words:
        assert word in message, message
    return message


def test_bad_inputs_are_one_paragraph_and_leave_nothing(tmp_path: Path, vgg16_file: Path) -> None:
    faces = tmp_path / "faces"
    faces.mkdir()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(faces / "a.png")
    not_image = tmp_path / "style.jpg"
    not_image.write_text("not a picture")
    out = tmp_path / "run"
    result = invoke_cli(["train", "fast-style", "--data", faces, "--style-image", not_image, "--vgg-weights",
                         vgg16_file, "--out", out, "--steps", 1, "--device", "cpu", "--quiet", "--no-tensorboard"])
    _one_paragraph(result, "style.jpg")
    assert not out.exists()

    dcgan = make_run(tmp_path / "dcgan")
    result = invoke_cli(["transfer", "fast", faces, "--ckpt", dcgan, "--out", tmp_path / "o1", "--device", "cpu"])
    _one_paragraph(result, "dcgan", "facegan sample")
    assert not (tmp_path / "o1").exists()

    theirs = random_reference_net().state_dict()
    for name, state in (("missing", {k: v for k, v in theirs.items() if not k.startswith("res5.")}),
                        ("extra", {**theirs, "conv4.conv2d.weight": torch.zeros(3)})):
        path = tmp_path / f"{name}.pth"
        torch.save(state, path)
        result = invoke_cli(["import", path, "--out", tmp_path / f"run-{name}"])
        message = _one_paragraph(result, path.name)
        assert "missing" in message or "does not have" in message
        assert not (tmp_path / f"run-{name}").exists()

    run = tmp_path / "good"
    torch.save(theirs, tmp_path / "good.pth")
    assert invoke_cli(["import", tmp_path / "good.pth", "--out", run]).exit_code == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke_cli(["transfer", "fast", empty, "--ckpt", run, "--out", tmp_path / "o2", "--device", "cpu"])
    _one_paragraph(result, "empty")
    assert not (tmp_path / "o2").exists()


@pytest.mark.unit
def test_presets_say_their_reference() -> None:
    assert PRESETS["examples"] == {"content_layer": "relu2_2", "style_layers": ["relu1_2", "relu2_2", "relu3_3",
                                   "relu4_3"], "batch": 4, "lr": 1e-3, "content_weight": 1e5, "resolution": 256,
                                   "style_weight": 1e10, "n_epochs": 2, "style_size": None}
