"""The family contract (tests/family_contract.py) over every registered family, and a family that breaks it.

The families are collected from the registry when this module is collected, so a family added under
facegan_cli/models/ or by a "facegan.families" plugin is checked without an edit here; a test module that
registers a family of its own calls `check_family_contract` itself (tests/models/test_two_stream_family.py).
A family whose tiny run reads more than an image folder per data option names those inputs below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cli_helpers import invoke_cli
from family_contract import check_family_contract, option_args
from train_helpers import write_image_folder
from transfer_helpers import STYLES, vgg16_file_fixture, vgg_file_fixture  # noqa: F401 (fixtures)

from facegan_cli.models import registry
from facegan_cli.train.spec import command_options, training_spec

pytestmark = pytest.mark.usefixtures("one_thread")

Get = Callable[[str], Any]  # a fixture's value by name
# The inputs of a family's tiny run that are not image folders, by option name (fixtures, made when needed).
TRAIN_INPUTS: dict[str, Callable[[Get], dict[str, Any]]] = {
    **{name: (lambda get: {"data": get("attrs16")}) for name in ("stargan", "ccagan", "stargan-sagan",
                                                                  "attr-classifier")},
    "cycle-gan-vae": lambda get: {"vae": get("vae_run")},
    "feature-translator": lambda get: {"vgg_weights": get("vgg_file")},
    "fast-style": lambda get: {"vgg_weights": get("vgg16_file"), "style_image": STYLES / "candy.jpg"},
}
# What a kind's command reads besides the run and a folder of images, by kind.
COMMAND_INPUTS: dict[str, Callable[[Get], list[Any]]] = {
    "feature-translator": lambda get: ["--vgg-weights", get("vgg_file")],  # the VGG19 the run trained on
    "classifier": lambda get: ["--ckpt", get("ccagan_run"), "--data", get("attrs16"), "--split", "all", "--limit", 2,
                               "--targets", _unshared_target(get("attrs16")), "--batch-size", 2, "--no-cache",
                               "--inception-weights", get("inception_file")],
}


def _unshared_target(data: Path, name: str = "Male") -> str:
    """NAME=v for a v that at most one of the first two faces has: the edit success rate is measured, and FID
    (seconds of a 2048 x 2048 eigendecomposition, which the contract does not need) is left out."""
    from facegan_cli.data.sources import open_image_set

    images = open_image_set(data, split="all")
    _, rows = images.load_with_indices(np.arange(1))
    first = int(images.labels[rows][0, images.label_names.index(name)])
    return f"{name}={1 - first}"


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-step VAE run of the vae family's tiny settings: cycle-gan-vae's --vae."""

    root = tmp_path_factory.mktemp("contract-vae")
    spec = training_spec("vae")
    assert spec is not None and spec.tiny is not None
    data = [write_image_folder(root / name, n=8, size=32, seed=i) for i, name in enumerate(("A", "B"))]
    args = option_args(command_options(registry.get_family("vae"), spec), spec.tiny)
    result = invoke_cli(["train", "vae", *args, "--data-a", str(data[0]), "--data-b", str(data[1]),
                                      "--out", str(root / "run"), "--steps", "1", "--device", "cpu", "--quiet",
                                      "--no-tensorboard"])
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-initialised FID Inception in pytorch-fid's file format (what `eval attributes` reads)."""
    from facegan_cli.features.inception import FIDInception

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("contract-inception") / "random-fid-inception.pth"
    torch.save(FIDInception().state_dict(), path)
    return path


@pytest.mark.parametrize("family", sorted(registry.families()))
def test_family_meets_the_contract(family: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    kind = registry.families()[family].kind
    data = TRAIN_INPUTS[family](request.getfixturevalue) if family in TRAIN_INPUTS else {}
    extra = COMMAND_INPUTS[kind](request.getfixturevalue) if kind in COMMAND_INPUTS else []
    check_family_contract(family, tmp_path, data, extra)


# --- the contract catches a family that breaks it -----------------------------------------------------------------


def contract_failure(family: registry.Family, work: Path) -> str:
    """The contract's failure message for `family`, registered only for the check (it must fail, naming itself)."""
    registry.register(family)
    try:
        with pytest.raises(AssertionError) as failed:
            check_family_contract(family.name, work)
    finally:
        registry.unregister(family.name)
    message = str(failed.value)
    assert message.startswith(f"{family.name} fails the family contract"), message
    return message


def test_a_family_whose_resume_drops_state_fails_naming_it(tmp_path: Path) -> None:
    """A copy of cycle-gan whose checkpoints leave out its history buffers (extra_state): it trains, loads and
    translates, but a resumed run starts with empty pools, so the contract's resume check fails, naming it."""
    from facegan_cli.train.cyclegan_trainer import TRAINING, CycleGANTrainer

    class PoolsDropped(CycleGANTrainer):
        def extra_state(self) -> dict[str, Any]:
            return {}

    name = "cycle-gan-pools-dropped"
    broken = dataclasses.replace(registry.get_family("cycle-gan"), name=name,
                                 training=dataclasses.replace(TRAINING, trainer=PoolsDropped))
    message = contract_failure(broken, tmp_path)
    assert "- resume: " in message and "not bit-exact" in message
    # Only resume fails: the counts, the step, loading and `facegan translate` pass.
    assert message.count("\n- ") == 1, message


def test_a_family_without_declarations_fails_naming_what_is_missing(tmp_path: Path) -> None:
    name = "dcgan-undeclared"
    spec = training_spec("dcgan")
    assert spec is not None
    message = contract_failure(dataclasses.replace(registry.get_family("dcgan"), name=name, reference_counts={},
                                          training=dataclasses.replace(spec, tiny=None)), tmp_path)
    assert "declares no reference parameter counts" in message and "declares no tiny run" in message


def test_a_count_off_its_reference_fails_naming_the_family_and_network(tmp_path: Path) -> None:
    name = "dcgan-miscounted"
    spec = training_spec("dcgan")
    assert spec is not None
    wrong = {"radford64": registry.Reference({"generator": 3_576_704, "discriminator": 2_765_569}),
             "heikka32 wide": registry.Reference({"critic": 1}, preset="heikka32")}
    message = contract_failure(dataclasses.replace(registry.get_family("dcgan"), name=name, reference_counts=wrong,
                                          training=dataclasses.replace(spec, tiny=None)), tmp_path)
    assert "radford64: discriminator has 2,765,568 parameters, the reference 2,765,569" in message
    assert "heikka32 wide: no network 'critic' (it builds generator, discriminator)" in message
