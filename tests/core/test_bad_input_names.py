"""Output names never collide (issue 18 item 3): whatever the inputs are called (the same name in two
folders, names differing only in case or extension, `grid.png` next to the contact sheet, facegan's own
bookkeeping names), every command that writes one output per input writes one distinct file per input,
and its result document names that file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke_cli
from PIL import Image
from transfer_helpers import vgg_file_fixture, write_pairs  # noqa: F401 (fixture)
from typer.testing import Result

from facegan_cli.core.naming import BOOKKEEPING, output_names

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the naming rule -------------------------------------------------------------------------------------

def _distinct(names: list[str]) -> bool:
    return len({name.casefold() for name in names}) == len(names)


@pytest.mark.unit
def test_same_name_in_two_folders_gets_distinct_outputs() -> None:
    names = output_names([Path("a/face.png"), Path("b/face.png"), Path("c/face-2.png")])
    # face-2 belongs to the input called face-2: the second face is numbered past it.
    assert names == ["face.png", "face-3.png", "face-2.png"]


@pytest.mark.unit
def test_reserved_and_bookkeeping_names_are_never_given() -> None:
    inputs = ["grid.png", "GRID.jpg", ".facegan-output.json.png", ".facegan-output.json", ".facegan.lock",
              ".facegan-files.json", "x.png"]
    names = output_names(inputs, reserved=("grid.png",))
    assert _distinct(names) and "grid.png" not in [n.casefold() for n in names]
    assert not any(n.startswith(".") for n in names) and not set(names) & set(BOOKKEEPING)
    assert names[-1] == "x.png"  # a name nobody else claims is kept as it is


@pytest.mark.unit
def test_case_extension_control_characters_and_length() -> None:
    names = output_names(["Face.png", "face.jpg", "FACE.webp", "line\nbreak.png", "x" * 300 + ".png"], suffix="-grid.png")
    assert names[:3] == ["Face-grid.png", "face-2-grid.png", "FACE-3-grid.png"]
    assert names[3] == "line_break-grid.png"
    assert len(names[4].encode()) <= 255 and names[4].endswith("-grid.png")
    assert output_names(["Face.png", "face.jpg"]) == output_names(["Face.png", "face.jpg"])  # deterministic


# --- every command that writes one output per input --------------------------------------------------------

def _picture(path: Path, value: int, side: int = 24) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    pixels = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def clashing(tmp_path: Path) -> list[Path]:
    """Inputs whose plain names collide: face.png twice, Face.png and face.jpg, grid.png, the marker's name."""
    root = tmp_path / "in"
    names = ["a/face.png", "b/face.png", "b/Face.png", "c/face.jpg", "c/grid.png", "c/.facegan-output.json.png",
             "c/.facegan.lock.png"]
    return [_picture(root / name, k) for k, name in enumerate(names)]


def _check_outputs(out: Path, records: list[dict], inputs: list[Path], extra: set[str] = frozenset()) -> None:
    assert [Path(r["input"]) for r in records] == inputs
    names = [Path(r["output"]).name for r in records]
    assert _distinct(names) and not set(names) & extra
    assert all(Path(r["output"]).parent == out for r in records)
    assert all(Path(r["output"]).is_file() for r in records)
    marker = json.loads((out / ".facegan-output.json").read_text())  # still facegan's marker, not a PNG
    assert isinstance(marker, dict) and "kind" in marker


def _stdin_cli(*args: object, stdin: str) -> Result:

    return invoke_cli([str(a) for a in args], input=stdin)


@pytest.fixture(scope="module")
def cycle_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facegan_cli.prepare import synthetic

    root = tmp_path_factory.mktemp("names-cg")
    synthetic.write_synthetic(root / "synth", n=20, size=16, style="painting")
    result = invoke_cli([
        "train", "cycle-gan", "--data", str(root / "synth"), "--out", str(root / "run"), "--steps", "1",
        "--preset", "thesis64", "--resolution", "16", "--ngf", "4", "--ndf", "4", "--n-blocks", "1",
        "--n-layers-d", "2", "--device", "cpu", "--no-tensorboard", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.mark.parametrize("grid", [False, True])
def test_translate_writes_one_file_per_clashing_input(cli_json: Callable[..., dict], cycle_run: Path,
                                                      clashing: list[Path], tmp_path: Path, grid: bool) -> None:
    out = tmp_path / "out"
    doc = cli_json("translate", *clashing, "--ckpt", cycle_run, "--out", out, "--device", "cpu",
                   *(["--grid"] if grid else []))
    _check_outputs(out, doc["outputs"], clashing)


def test_edit_writes_one_file_per_clashing_input(ccagan_run: Path, clashing: list[Path], tmp_path: Path) -> None:
    for mode in (["--flip", "Male"], []):  # an edit per input, and a grid per input
        out = tmp_path / f"out{len(mode)}"
        result = _stdin_cli("edit", "--ckpt", ccagan_run, "--input", "-", "--out", out, *mode, "--device", "cpu",
                            "--json", "--quiet", stdin="".join(f"{p}\n" for p in clashing))
        assert result.exit_code == 0, result.output
        _check_outputs(out, json.loads(result.stdout)["edits"], clashing)


def test_transfer_style_writes_one_file_per_clashing_input(cli_json: Callable[..., dict], vgg_file: Path,
                                                           clashing: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _stdin_cli("transfer", "style", "--content", "-", "--style", clashing[0], "--out", out, "--size", 16,
                        "--steps", 1, "--save-every", 1, "--optimizer", "adam", "--vgg-weights", vgg_file,
                        "--device", "cpu", "--json", "--quiet", stdin="".join(f"{p}\n" for p in clashing))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    _check_outputs(out, doc["images"], clashing, {"result.json"})
    # The --save-every images follow the outputs' names: one per input and step.
    steps = sorted(p.name for p in (out / "steps").iterdir())
    assert steps == sorted(Path(r["output"]).name.replace(".png", "-00001.png") for r in doc["images"])


@pytest.fixture(scope="module")
def translator_run(celebahq_sample: Path, vgg_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facegan_cli.prepare.pairs import prepare_pairs

    root = tmp_path_factory.mktemp("names-lft")
    a, b = write_pairs(celebahq_sample, root, 4, 32)
    prepare_pairs(a, b, root / "pairs", test=1, workers=1)
    result = invoke_cli([
        "train", "feature-translator", "--translator", "dense", "--resolution", "32", "--batch", "2",
        "--sample-steps", "1", "--vgg-weights", str(vgg_file), "--device", "cpu", "--no-tensorboard",
        "--data", str(root / "pairs"), "--out", str(root / "run"), "--steps", "1", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "run"


def test_transfer_features_grid_never_replaces_an_input_called_grid(cli_json: Callable[..., dict],
                                                                    translator_run: Path, vgg_file: Path,
                                                                    clashing: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    doc = cli_json("transfer", "features", *clashing, "--ckpt", translator_run, "--out", out, "--steps", 0,
                   "--grid", "--vgg-weights", vgg_file, "--device", "cpu")
    _check_outputs(out, doc["images"], clashing, {"grid.png", "result.json"})
    # grid.png is the contact sheet (2 columns of 32 px cells and a row per input), not a translation.
    with Image.open(out / "grid.png") as sheet:
        assert sheet.size[1] > 32 * len(clashing) and doc["grid"] == str(out / "grid.png")
    # The case: one input called grid.png; its translation used to be overwritten by the sheet.
    alone = tmp_path / "alone"
    doc = cli_json("transfer", "features", clashing[4], "--ckpt", translator_run, "--out", alone, "--steps", 0,
                   "--grid", "--vgg-weights", vgg_file, "--device", "cpu")
    assert clashing[4].name == "grid.png" and doc["images"][0]["output"] != doc["grid"]
    with Image.open(doc["images"][0]["output"]) as translation:
        assert translation.size == (32, 32)


@pytest.mark.unit
def test_prepare_pairs_gives_clashing_pair_names_one_file_each(tmp_path: Path) -> None:
    from facegan_cli.prepare.pairs import prepare_pairs

    names = ["Face", "face", ".facegan-output.json", "x"]  # case-only twins, a hidden name, a plain one
    for side in ("a", "b"):
        for k, name in enumerate(names):
            _picture(tmp_path / side / f"{name}.png", k + (10 if side == "b" else 0), side=16)
    doc = prepare_pairs(tmp_path / "a", tmp_path / "b", tmp_path / "pairs", test=0, workers=1)
    written = sorted(p.name for p in (tmp_path / "pairs" / "trainA").iterdir())
    assert doc["pairs"] == 4 and len(written) == 4 and _distinct(written)
    assert not any(name.startswith(".") for name in written) and "x.png" in written
    # Both domains use the same name for a pair, so it is still a pair.
    assert written == sorted(p.name for p in (tmp_path / "pairs" / "trainB").iterdir())
    assert sorted(f"{n}.png" for n in doc["names"]["train"]) == written
