"""Shared material of the metrics tests: a random-initialised FID Inception file and small image sets.

The real pt_inception weights are not on this machine (no network), so the tests build the same network
with seeded random weights, recalibrate its BatchNorm statistics on the real sample faces (so that the
features vary with the image, as real Inception features do), scale up the fc layer (so that the logits
give an Inception Score away from 1), and save the state dict exactly as pytorch-fid's file is saved.
facegan gets it through --inception-weights under a name of its own (used unverified); pytorch-fid finds
it under the official name in $TORCH_HOME/hub/checkpoints; torch-fidelity takes the path directly.

Everything here is built once per session (memoised on the session's base temp dir) and read in place
from ../shared/data, never copied into the repository.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cli_helpers import invoke_cli
from PIL import Image
from typer.testing import Result

from facegan_cli.core.checkpoint import save_checkpoint
from facegan_cli.features.inception import FIDInception
from facegan_cli.models import registry

OFFICIAL_NAME = "pt_inception-2015-12-05-6726825d.pth"
TEST_NAME = "random-fid-inception.pth"
SET_SIZE = 8  # images per parity set: each costs one 299x299 Inception pass per package
CALIBRATION_SIDE = 128  # BatchNorm is recalibrated on faces at this input size, to keep it cheap
POOL3_SCALE = 0.2
FC_SCALE = 40.0

_BUILT: dict[str, MetricsWorld] = {}


@dataclass(frozen=True)
class MetricsWorld:
    root: Path
    weights: Path  # under TEST_NAME, for facegan
    torch_home: Path  # holds hub/checkpoints/OFFICIAL_NAME, for pytorch-fid
    home: Path  # FACEGAN_HOME: the feature cache of the session
    set_a: Path  # SET_SIZE PNGs, 128x128
    set_b: Path  # SET_SIZE other PNGs (other faces, mirrored), 128x128
    faces: list[np.ndarray] = field(repr=False)  # the sample faces at 128x128, uint8


def load_faces(folder: Path, side: int = 128) -> list[np.ndarray]:
    """The sample faces, decoded at reduced size (JPEG draft mode) and resized to side x side."""
    faces = []
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as img:
            img.draft("RGB", (side * 2, side * 2))
            faces.append(np.asarray(img.convert("RGB").resize((side, side), Image.Resampling.LANCZOS)))
    return faces


def random_inception(faces: list[np.ndarray], seed: int = 0) -> FIDInception:
    """Seeded random weights, BatchNorm statistics measured on `faces`, fc scaled for a spread of logits."""
    torch.manual_seed(seed)
    model = FIDInception()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.6, 1.4)
                module.bias.normal_(0.0, 0.2)
                module.reset_running_stats()
                module.momentum = None  # a cumulative average: exactly the statistics of the batch
        x = torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float() / 127.5 - 1
        x = torch.nn.functional.interpolate(x, size=(CALIBRATION_SIDE, CALIBRATION_SIDE), mode="bilinear")
        model.train()
        model(x, ("logits",))
        model.eval()
        # Real pool3 features are around 0.3 (FIDs of tens to hundreds); scale the last block's output to
        # that. Then make the fc blind to the features' common mean, so that the logits differ from face to
        # face as a classifier's do (an Inception Score well above 1), and scale it to a spread of logits.
        for module in model.Mixed_7c.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.mul_(POOL3_SCALE)
                module.bias.mul_(POOL3_SCALE)
        mean = model(x, ("2048",))["2048"].mean(0)
        direction = mean / mean.norm()
        model.fc.weight.sub_(model.fc.weight @ direction[:, None] * direction[None]).mul_(FC_SCALE)
    return model


def _write_set(folder: Path, images: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return folder


def build_world(base: Path, faces_dir: Path) -> MetricsWorld:
    key = str(base)
    if key not in _BUILT:
        root = base / "metrics-world"
        faces = load_faces(faces_dir)
        model = random_inception(faces[:24])
        weights = root / TEST_NAME
        weights.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), weights)
        hub = root / "torch" / "hub" / "checkpoints"
        hub.mkdir(parents=True, exist_ok=True)
        (hub / OFFICIAL_NAME).write_bytes(weights.read_bytes())
        set_a = _write_set(root / "set_a", faces[:SET_SIZE])
        set_b = _write_set(root / "set_b", [f[:, ::-1] for f in faces[SET_SIZE : 2 * SET_SIZE]])
        _BUILT[key] = MetricsWorld(root, weights, root / "torch", root / "home", set_a, set_b, faces)
    return _BUILT[key]


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, celebahq_sample: Path) -> MetricsWorld:
    return build_world(tmp_path_factory.getbasetemp(), celebahq_sample)


@pytest.fixture
def homes(world: MetricsWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricsWorld]:
    """TORCH_HOME (pytorch-fid's weights) and FACEGAN_HOME (the shared feature cache) of the world."""
    monkeypatch.setenv("TORCH_HOME", str(world.torch_home))
    monkeypatch.setenv("FACEGAN_HOME", str(world.home))
    yield world


def metrics_args(world: MetricsWorld, *extra: object) -> list[str]:
    """The options every facegan metrics call of the tests carries."""
    return ["--inception-weights", str(world.weights), "--device", "cpu", "--workers", "1", *map(str, extra)]


def run_cli(*args: object) -> Result:
    return invoke_cli([str(a) for a in args])


def run_json(*args: object) -> dict[str, Any]:
    """A facegan command with --json --quiet that must succeed; its one JSON document."""
    result = run_cli(*args, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def clean_fid_extractor(layer: int = 3) -> Callable[[torch.Tensor], torch.Tensor]:
    """A clean-fid `custom_feat_extractor`: pytorch-fid's own FID Inception (from $TORCH_HOME) on clean-fid's
    299x299 float batches in [0, 255], normalised as clean-fid's TensorFlow graph does, (x - 128) / 128."""
    from pytorch_fid.inception import InceptionV3

    model = InceptionV3([layer], resize_input=False, normalize_input=False).eval()

    def extract(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model((batch - 128) / 128)[0].mean(dim=(2, 3))

    return extract


def make_generator(root: Path, seed: int = 1) -> Path:
    """A tiny DCGAN run directory (32x32 tanh images) with one checkpoint, as training writes it."""
    torch.manual_seed(seed)
    config = registry.resolve_config("dcgan", "heikka32", {"g_width": 8, "width": 8})
    modules = {
        "G": registry.build_generator("dcgan", config).state_dict(),
        "D": registry.build_discriminator("dcgan", config).state_dict(),
    }
    meta = {"family": "dcgan", "model": config, "generator": "G"}
    save_checkpoint(root / "checkpoints", 3, modules=modules, meta=meta, state={"step": 3})
    return root
