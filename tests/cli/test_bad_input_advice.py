"""Messages that misled (issue 18 item 9): each says what is really wrong and never advises something unsafe."""

from __future__ import annotations

import fractions
import json
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from train_helpers import make_run
from transfer_helpers import vgg_file_fixture  # noqa: F401 (fixture)
from typer.testing import Result

from facegan_cli.core import weights as W
from facegan_cli.core.errors import FaceganError
from facegan_cli.features.base import read_state_dict

pytestmark = pytest.mark.usefixtures("one_thread")
STYLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "styles"


def test_explain_net_names_a_generator(cli: Callable[..., Result], tmp_path: Path) -> None:
    # Used to say G's weights "do not fit ... edited or written by another program": they are fine.
    run = make_run(tmp_path / "gan")
    face = tmp_path / "face.png"
    Image.fromarray(np.full((16, 16, 3), 100, dtype=np.uint8)).save(face)
    result = cli("explain", "--ckpt", run, "--net", "G", "--input", face, "--out", tmp_path / "x.png", "--device", "cpu")
    assert result.exit_code == 2, result.output
    text = " ".join(result.stderr.split())
    assert "not a discriminator" in text and "another program" not in text and "'D'" in text
    assert not (tmp_path / "x.png").exists()


@pytest.fixture
def refused_files(tmp_path: Path) -> list[Path]:
    """A torch file with a Python object in it, a plain pickle, and bytes that are neither."""
    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(2), "f": fractions.Fraction(1, 2)}, evil)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"f": fractions.Fraction(1, 2)}, protocol=4))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"garbage")
    return [evil, plain, junk]


def test_refused_weights_never_advise_weights_only_false(refused_files: list[Path]) -> None:
    for path in refused_files:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(FaceganError) as info:
                read_state_dict(path, W.KNOWN["vgg19"])
        text = info.value.paragraph()
        assert "weights_only" not in text and "trust" not in text and path.name in text, text
        assert not caught, [str(w.message) for w in caught]  # torch's pickle-protocol UserWarning
    assert "fractions.Fraction" in pytest.raises(FaceganError, read_state_dict, refused_files[0],
                                                  W.KNOWN["vgg19"]).value.paragraph()


def test_refused_vgg_weights_on_the_command_line(cli: Callable[..., Result], refused_files: list[Path],
                                                 tmp_path: Path) -> None:
    udnie = STYLES / "udnie.jpg"
    result = cli("transfer", "style", "--content", udnie, "--style", udnie, "--out", tmp_path / "o",
                 "--vgg-weights", refused_files[0], "--device", "cpu", "--size", 16)
    assert result.exit_code == 1, result.output
    assert "weights_only" not in result.output and "fractions.Fraction" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


@pytest.mark.parametrize("weights", ["nan,1,1,1,1", "inf,1,1,1,1", "1,-1,1,1,1"])
def test_style_layer_weights_must_be_finite_and_not_negative(cli: Callable[..., Result], vgg_file: Path,
                                                             tmp_path: Path, weights: str) -> None:
    # Used to be accepted; the first loss was NaN and the NaN stop blamed the learning rate.
    result = cli("train", "feature-translator", "--data", tmp_path / "no-pairs", "--out", tmp_path / "r",
                 "--style-layer-weights", weights, "--vgg-weights", vgg_file, "--device", "cpu", "--json")
    assert result.exit_code == 2, result.output
    assert "--style-layer-weights" in result.stderr and "learning rate" not in result.output
    assert json.loads(result.stdout)["error"]["exit_status"] == 2
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("blend", "words"), [("0,0", "must not all be zero"), ("1,1,1", "3 weights for 2")])
def test_style_blend_says_what_is_wrong(cli: Callable[..., Result], blend: str, words: str, tmp_path: Path) -> None:
    udnie = STYLES / "udnie.jpg"
    result = cli("transfer", "style", "--content", udnie, "--style", udnie, "--style", udnie, "--style-blend", blend,
                 "--out", tmp_path / "o", "--vgg-weights", tmp_path / "never-read.pth", "--device", "cpu")
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.stderr.split()) and not (tmp_path / "o").exists()


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "checkpoints" / f"ckpt-{step:09d}.safetensors"))


def test_cycle_gan_resumes_from_moved_data_named_with_data(cli: Callable[..., Result], tmp_path: Path) -> None:
    # README and --help say moved data can be named on resume; `--resume RUN --data NEWROOT` was refused.
    from facegan_cli.prepare import synthetic

    data = tmp_path / "synth"
    synthetic.write_synthetic(data, n=20, size=16, style="painting")
    tiny = ["--preset", "thesis64", "--resolution", 16, "--ngf", 4, "--ndf", 4, "--n-blocks", 1, "--n-layers-d", 2,
            "--device", "cpu", "--no-tensorboard", "--quiet"]
    straight = tmp_path / "straight"
    assert cli("train", "cycle-gan", "--data", data, "--out", straight, "--steps", 4, *tiny).exit_code == 0
    split = tmp_path / "split"
    assert cli("train", "cycle-gan", "--data", data, "--out", split, "--steps", 2, "--ckpt-every", 2,
               *tiny).exit_code == 0
    moved = tmp_path / "elsewhere" / "synth"
    moved.parent.mkdir()
    data.rename(moved)
    lost = cli("train", "cycle-gan", "--resume", split, "--steps", 4, "--device", "cpu", "--quiet")
    assert lost.exit_code == 1 and "trainA" in lost.stderr
    found = cli("train", "cycle-gan", "--resume", split, "--steps", 4, "--data", moved, "--device", "cpu", "--quiet")
    assert found.exit_code == 0, found.output
    a, b = _weights(straight, 4), _weights(split, 4)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-exact after the move
    config = json.loads((split / "config.json").read_text())
    assert config["data"]["A"]["path"] == str(moved / "trainA") and config["data"]["B"]["path"] == str(moved / "trainB")
    # Another dataset under the same layout is refused by its fingerprint, as for the single-stream families.
    other = tmp_path / "other"
    synthetic.write_synthetic(other, n=20, size=16, style="painting", seed=5)
    refused = cli("train", "cycle-gan", "--resume", split, "--steps", 5, "--data", other, "--device", "cpu", "--quiet")
    assert refused.exit_code == 1 and "fingerprint" in refused.stderr
    both = cli("train", "cycle-gan", "--resume", split, "--steps", 5, "--data", moved, "--data-a", moved / "trainA",
               "--device", "cpu", "--quiet")
    assert both.exit_code == 2 and "--data-a" in both.stderr


def test_eval_translation_reports_used_images_and_needs_no_strict_to_refuse_a_truth(
        cli: Callable[..., Result], tmp_path: Path) -> None:
    from facegan_cli.prepare import synthetic

    data = tmp_path / "synth"
    synthetic.write_synthetic(data, n=40, size=16, style="painting")  # 2 + 2 held out
    run = tmp_path / "run"
    assert cli("train", "cycle-gan", "--data", data, "--out", run, "--steps", 1, "--preset", "thesis64",
               "--resolution", 16, "--ngf", 4, "--ndf", 4, "--n-blocks", 1, "--n-layers-d", 2, "--device", "cpu",
               "--no-tensorboard", "--quiet").exit_code == 0
    args = ["eval", "translation", "--ckpt", run, "--data", data, "--no-inception", "--device", "cpu"]
    result = cli(*args, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    described = json.loads(result.stdout)["data"]
    assert described and all(d["used"] == d["n"] > 0 for d in described.values()), described  # used to say 0
    # A damaged true translation stops the evaluation (every one is needed), and the message says so: this
    # command was not given --strict, so "(--strict stops ...)" misled.
    victim = sorted((data / "truth" / "testA").iterdir())[0]
    victim.write_bytes(b"\x89PNG damaged")
    broken = cli(*args)
    assert broken.exit_code == 1, broken.output
    text = " ".join(broken.stderr.split())
    assert victim.name in text and "--strict" not in text and "true translation" in text
