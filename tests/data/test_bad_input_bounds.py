"""Issue 18, item 6: every size that comes from a user or a file is bounded, after resizing too, and a refusal
names what was too large and the option that raises the limit (`facegan --max-pixels`).

Each test reproduces a defect of the code before the fix (named in its docstring); none lets the large
allocation happen: each would fail (or take the machine's memory) at once on the old code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke_cli
from PIL import Image
from train_helpers import tiny_cycle_gan_run
from transfer_helpers import vgg_file_fixture  # noqa: F401
from typer.testing import Result

from facegan_cli.data.crops import resize_short_side
from facegan_cli.data.imageio import MAX_PIXELS_ENV, RejectedImage

pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: object) -> Result:
    return invoke_cli(args)


def plain(result: Result) -> str:
    return " ".join(result.stderr.split())


@pytest.fixture(autouse=True)
def default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)  # the default limit, 89,478,485 pixels


@pytest.fixture(scope="module")
def strip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 100000x10 PNG: one million pixels (under the file limit), a few KB on disk."""
    path = tmp_path_factory.mktemp("strip") / "strip.png"
    Image.fromarray(np.full((10, 100000, 3), 90, dtype=np.uint8)).save(path)
    assert path.stat().st_size < 20000
    return path


@pytest.fixture(scope="module")
def face(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("face") / "face.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def cycle_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cycle_gan_run(tmp_path_factory.mktemp("cg"))


def test_an_aspect_kept_resize_is_bounded_before_it_allocates() -> None:
    """Before: a 100000x10 image resized to short side 32 became 320000x32 whatever the limit said."""
    thin = Image.new("RGB", (100000, 10))
    with pytest.raises(RejectedImage) as info:
        resize_short_side(thin, 32)
    assert "320000x32" in info.value.reason and "--max-pixels" in info.value.reason
    assert resize_short_side(Image.new("RGB", (300, 100)), 32).size == (96, 32)  # ordinary shapes are resized


def test_a_long_thin_content_image_is_refused_naming_it(strip: Path, face: Path, tmp_path: Path) -> None:
    """Before: `transfer style --content strip.png --size 32` asked for about 2.6 GB of VGG features."""
    result = invoke("transfer", "style", "--content", strip, "--style", face, "--out", tmp_path / "o", "--size", 32,
                    "--steps", 0, "--device", "cpu")
    assert result.exit_code == 1, result.output
    assert "strip.png" in plain(result) and "320000x32" in plain(result) and "--max-pixels" in plain(result)
    assert not (tmp_path / "o").exists()


def test_a_long_thin_style_image_is_refused_naming_it(strip: Path, face: Path, tmp_path: Path,
                                                       vgg_file: Path) -> None:
    result = invoke("transfer", "style", "--content", face, "--style", strip, "--out", tmp_path / "o", "--size", 32,
                    "--steps", 0, "--device", "cpu", "--vgg-weights", vgg_file)
    assert result.exit_code == 1, result.output
    assert "strip.png" in plain(result) and "--max-pixels" in plain(result) and "internal error" not in result.output
    assert not (tmp_path / "o").exists()


def test_a_long_thin_translate_input_is_refused(strip: Path, cycle_run: Path, tmp_path: Path) -> None:
    """Before: translate resized the strip's short side to 16 (160000x16) before cropping."""
    result = invoke("translate", "--ckpt", cycle_run, strip, "--out", tmp_path / "o", "--device", "cpu")
    assert result.exit_code == 1, result.output
    assert "strip.png" in plain(result) and "--max-pixels" in plain(result)


@pytest.mark.parametrize(
    "args",
    [["transfer", "style", "--content", "FACE", "--style", "FACE", "--size", 20000, "--steps", 0, "--device", "cpu"],
     ["prepare", "synthetic", "--n", 1, "--size", 30000]],
)
def test_a_size_option_above_the_pixel_limit_is_refused_before_any_work(face: Path, tmp_path: Path, args) -> None:
    """Before: --size 20000 / 30000 went ahead and asked for gigabytes."""
    args = [face if a == "FACE" else a for a in args]
    result = invoke(*args, "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output  # a bad number: a usage error
    size = next(a for a in args if isinstance(a, int) and a >= 20000)
    assert f"--size {size}" in plain(result) and "--max-pixels" in plain(result)
    assert not (tmp_path / "o").exists()


def test_translate_size_above_the_pixel_limit_is_refused(face: Path, cycle_run: Path, tmp_path: Path) -> None:
    """Before: `translate --size 40000` went ahead."""
    result = invoke("translate", "--ckpt", cycle_run, face, "--size", 40000, "--out", tmp_path / "o", "--device", "cpu")
    assert result.exit_code == 2, result.output  # a bad number: a usage error
    assert "--size 40000" in plain(result) and "--max-pixels" in plain(result)
    raised = invoke("--max-pixels", 2_000_000_000, "translate", "--ckpt", cycle_run, tmp_path / "missing.png",
                    "--size", 40000, "--out", tmp_path / "o", "--device", "cpu")
    # The limit raised, --size passes; the missing input (read after it) stops the command before any work.
    assert raised.exit_code == 1 and "missing.png" in raised.stderr and "--size 40000" not in plain(raised)


def test_a_checkpoint_naming_a_huge_network_is_refused_before_it_is_built(cycle_run: Path, tmp_path: Path,
                                                                          face: Path) -> None:
    """Before: a checkpoint with ngf=100000 asked for hundreds of GB before its weights were compared."""
    from facegan_cli.core.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(cycle_run)
    meta = {**ckpt.meta, "model": {**ckpt.meta["model"], "ngf": 100000}}
    save_checkpoint(tmp_path / "forged" / "checkpoints", 3, ckpt.modules, meta, {"step": 3})
    result = invoke("translate", "--ckpt", tmp_path / "forged", face, "--out", tmp_path / "o", "--device", "cpu")
    assert result.exit_code == 1, result.output
    assert "do not fit" in plain(result) and "not built" in plain(result)


def test_a_long_thin_pair_is_a_reject_and_a_long_thin_features_input_one_paragraph(strip: Path, face: Path) -> None:
    """Before: the unbounded resize in `prepare pairs` and `transfer features` escaped as an exception."""
    from facegan_cli.core.errors import FaceganError
    from facegan_cli.prepare.pairs import _load
    from facegan_cli.transfer.lft import fit_input

    ok, reason = _load((str(strip), str(face), 16))
    assert not ok and "strip.png" in reason and "--max-pixels" in reason
    with pytest.raises(FaceganError) as info:
        fit_input(strip, 16)
    assert "strip.png" in info.value.paragraph() and "--max-pixels" in info.value.paragraph()
