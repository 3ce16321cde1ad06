"""Shared fixtures: a small synthetic CelebA tree and a prepared set of it, the shared real data, a CLI
runner, and torch on one thread."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import invoke_cli
from typer.testing import Result

from facegan_cli.prepare.synthetic import write_synthetic


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (scripts/test.sh runs two workers, one per core), each worker and every process it
    starts computes on one thread: two workers of two threads each on two cores spin-wait against each other
    and run several times slower than one thread each."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        os.environ["MKL_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CELEBAHQ_SAMPLE = SHARED_DATA / "celebahq-sample"
NON_FACES = SHARED_DATA / "non-faces"
SYNTHETIC_N = 30


@pytest.fixture(scope="session")
def synthetic_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-face synthetic CelebA tree (seed 0), shared by all tests: never modify it in place."""
    root = tmp_path_factory.mktemp("synthetic") / "celeba"
    write_synthetic(root, n=SYNTHETIC_N, seed=0, workers=1)
    return root


@pytest.fixture(scope="session")
def prepare_synthetic(synthetic_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`prepare_synthetic(recipe, out=None, **settings)`: the synthetic tree prepared with that recipe's crop
    and CELEBA_DEFAULTS updated by `settings` (only those: not the recipe's own defaults), one worker, into
    `out` (default: a new folder `ds`); returns the prepared folder."""
    from facegan_cli.prepare.celeba_crops import CELEBA_DEFAULTS, prepare_celeba
    from facegan_cli.prepare.recipes import load_recipe

    def prepare(recipe: str, out: Path | None = None, **settings: Any) -> Path:
        out = out or tmp_path_factory.mktemp("prepared") / "ds"
        prepare_celeba(synthetic_tree, out, {**CELEBA_DEFAULTS, **settings}, load_recipe(recipe), workers=1)
        return out

    return prepare


@pytest.fixture(scope="session")
def attrs16(prepare_synthetic: Callable[..., Path]) -> Path:
    """The synthetic faces as the celeba-128-attrs recipe crops them, at 16x16, with all 40 attributes (the
    attribute editors' and the classifier's training set); shared by all tests: never modify it in place."""
    from facegan_cli.prepare.recipes import load_recipe

    settings = {**load_recipe("celeba-128-attrs").settings, "size": 16, "attrs": "all"}
    return prepare_synthetic("celeba-128-attrs", **settings)


@pytest.fixture(scope="session")
def ccagan_run(attrs16: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CCA-GAN run (2 steps, widths 8) trained on attrs16's 5 default attributes: the checkpoint the
    `facegan edit` tests use; shared by all tests: never modify it in place."""

    out = tmp_path_factory.mktemp("edit") / "run"
    result = invoke_cli([
        "train", "ccagan", "--data", str(attrs16), "--out", str(out), "--steps", "2", "--split-protocol", "celeba",
        "--g-width", "8", "--d-width", "8", "--g-repeat", "1", "--batch", "4", "--n-critic", "1", "--device", "cpu",
        "--no-tensorboard", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def celebahq_sample() -> Path:
    """46 real aligned CelebA-HQ faces (1024x1024 JPEG) and labels.csv, read in place."""
    if not CELEBAHQ_SAMPLE.is_dir():
        pytest.skip(f"{CELEBAHQ_SAMPLE} is not available")
    return CELEBAHQ_SAMPLE


@pytest.fixture(scope="session")
def non_faces() -> Path:
    """15 animal photos, read in place."""
    if not NON_FACES.is_dir():
        pytest.skip(f"{NON_FACES} is not available")
    return NON_FACES


def _copy_tree(synthetic_tree: Path, images: str, root: Path) -> Path:
    for part in (images, "Anno", "Eval"):
        shutil.copytree(synthetic_tree / part, root / part)
    return root


@pytest.fixture
def tree_copy(synthetic_tree: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic tree (aligned images and annotations) that a test may damage."""
    return _copy_tree(synthetic_tree, "img_align_celeba", tmp_path / "celeba")


@pytest.fixture
def wild_copy(synthetic_tree: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic tree's in-the-wild images and annotations (tests may damage it)."""
    return _copy_tree(synthetic_tree, "img_celeba", tmp_path / "celeba")


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Invoke `facegan ...` in-process (cli_helpers.invoke_cli); returns click's Result."""
    return lambda *args: invoke_cli(args)


@pytest.fixture
def cli_json(cli: Callable[..., Result]) -> Callable[..., dict[str, Any]]:
    """Invoke a command with --json, assert it succeeded, and parse its one JSON document."""

    def invoke(*args: Any) -> dict[str, Any]:
        result = cli(*args, "--json", "--quiet")
        assert result.exit_code == 0, result.output + str(result.exception)
        return json.loads(result.stdout)

    return invoke


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread during a test (two shared cores: one thread per test process is faster than
    contending for both). A module asks for it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
