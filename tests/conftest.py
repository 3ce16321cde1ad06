"""Shared fixtures: a small synthetic CelebA tree and a prepared set of it, the shared real data, a CLI
runner, and torch on one thread."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner, Result

from facegan_cli.prepare.synthetic import write_synthetic

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
def attrs16(synthetic_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic faces as the celeba-128-attrs recipe crops them, at 16x16, with all 40 attributes (the
    attribute editors' and the classifier's training set); shared by all tests: never modify it in place."""
    from facegan_cli.prepare.celeba_crops import CELEBA_DEFAULTS, prepare_celeba
    from facegan_cli.prepare.recipes import load_recipe

    out = tmp_path_factory.mktemp("attrs16") / "attrs16"
    recipe = load_recipe("celeba-128-attrs")
    settings = {**CELEBA_DEFAULTS, **recipe.settings, "size": 16, "attrs": "all"}
    prepare_celeba(synthetic_tree, out, settings, recipe, workers=1)
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


@pytest.fixture
def tree_copy(synthetic_tree: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic tree (aligned images and annotations) that a test may damage."""
    root = tmp_path / "celeba"
    for part in ("img_align_celeba", "Anno", "Eval"):
        shutil.copytree(synthetic_tree / part, root / part)
    return root


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Invoke `facegan ...` in-process; returns click's Result (stdout and stderr kept apart)."""
    # Imported here, not at module level: a broken command module must not stop every test's collection.
    from facegan_cli.cli import app

    runner = CliRunner()

    def invoke(*args: Any) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return invoke


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
