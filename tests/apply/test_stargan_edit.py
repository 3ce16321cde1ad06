"""`facegan edit`: --set / --flip edits and StarGAN grids from a tiny trained CCA-GAN checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke_cli
from PIL import Image

from facegan_cli.models.editing import fit_face, load_editor, parse_assignments
from facegan_cli.models.stargan import apply_edits, create_labels

ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def faces(synthetic_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two CelebA-shaped (178x218) synthetic photos and one image already 16x16."""
    folder = tmp_path_factory.mktemp("faces")
    for name in ("000001.jpg", "000002.jpg"):
        (folder / name).write_bytes((synthetic_tree / "img_align_celeba" / name).read_bytes())
    Image.fromarray(np.full((16, 16, 3), 90, dtype=np.uint8)).save(folder / "small.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_fit_face_resizes_short_side_and_centre_crops(faces: Path) -> None:
    pixels = fit_face(faces / "000001.jpg", 16)
    with Image.open(faces / "000001.jpg") as img:
        assert img.size == (178, 218)
        expected = np.asarray(img.convert("RGB").resize((16, 19), Image.LANCZOS))[2:18]  # 19 = int(16*218/178); top = round(1.5)
    assert pixels.shape == (16, 16, 3) and np.array_equal(pixels, expected)
    assert np.array_equal(fit_face(faces / "small.png", 16), np.full((16, 16, 3), 90, dtype=np.uint8))


def test_set_and_flip_edit_each_input(ccagan_run: Path, faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "edited"
    result = invoke_cli(["edit", "--ckpt", str(ccagan_run), "--input", str(faces), "--out", str(out), "--set",
                                 "Blond_Hair=1", "--flip", "Male", "--device", "cpu", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["family"] == "ccagan" and report["attrs"] == ATTRS and report["mode"] == "edit"
    assert [Path(e["output"]).name for e in report["edits"]] == ["000001.png", "000002.png", "small.png"]
    editor = load_editor(ccagan_run)
    x = editor.to_tensor(np.stack([fit_face(faces / n, 16) for n in ("000001.jpg", "000002.jpg", "small.png")]))
    c_org = editor.predict(x)
    target = apply_edits(c_org, ATTRS, {"Blond_Hair": 1}, ["Male"])
    expected = ((editor.translate(x, target) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    for i, entry in enumerate(report["edits"]):
        assert entry["source"] == dict(zip(ATTRS, c_org[i].int().tolist()))
        assert entry["target"]["Blond_Hair"] == 1 and entry["target"]["Black_Hair"] == 0
        assert entry["target"]["Brown_Hair"] == 0 and entry["target"]["Male"] == 1 - entry["source"]["Male"]
        assert entry["target"]["Young"] == entry["source"]["Young"]
        assert np.array_equal(_png(Path(entry["output"])), expected[i].numpy())
    again = invoke_cli(["edit", "--ckpt", str(ccagan_run), "--input", str(faces), "--out", str(out), "--flip", "Male",
                                "--device", "cpu", "--quiet"])
    assert again.exit_code == 1 and "--force" in again.stderr and "Traceback" not in again.output


def test_grid_without_edits_and_given_source(ccagan_run: Path, faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "grids"
    result = invoke_cli(["edit", "--ckpt", str(ccagan_run), "--input", str(faces / "000002.jpg"), "--out", str(out),
                                 "--source", "Black_Hair=1,Blond_Hair=0,Brown_Hair=0,Male=1,Young=0",
                                 "--device", "cpu", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)["edits"]
    assert entry["source"] == {"Black_Hair": 1, "Blond_Hair": 0, "Brown_Hair": 0, "Male": 1, "Young": 0}
    c = torch.tensor([[1.0, 0, 0, 1, 0]])
    assert entry["targets"] == [dict(zip(ATTRS, t[0].int().tolist())) for t in create_labels(c, ATTRS)]
    grid = _png(Path(entry["output"]))
    assert grid.shape == (16 + 4, 6 * 18 + 2, 3)  # one row: the input and 5 targets
    assert np.array_equal(grid[2:18, 2:18], fit_face(faces / "000002.jpg", 16))  # the input comes first
    assert not np.array_equal(grid[2:18, 20:36], grid[2:18, 38:54])  # black-hair and blond-hair targets differ


def test_edit_errors(ccagan_run: Path, faces: Path, tmp_path: Path) -> None:
    unknown = invoke_cli(["edit", "--ckpt", str(ccagan_run), "--input", str(faces), "--out", str(tmp_path / "a"),
                                  "--flip", "Smiling", "--device", "cpu"])
    assert unknown.exit_code == 1 and "Smiling" in unknown.stderr and "Black_Hair" in unknown.stderr
    bad = invoke_cli(["edit", "--ckpt", str(ccagan_run), "--input", str(faces), "--out", str(tmp_path / "b"),
                              "--set", "Male=yes", "--device", "cpu"])
    assert bad.exit_code == 1 and "NAME=0" in bad.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = invoke_cli(["edit", "--ckpt", str(ccagan_run), "--input", str(empty), "--out", str(tmp_path / "c"),
                                  "--device", "cpu"])
    assert nothing.exit_code == 1 and "No images" in nothing.stderr
    piped = invoke_cli(["edit", "--ckpt", str(ccagan_run), "--input", "-", "--out", str(tmp_path / "d"), "--flip",
                                "Young", "--device", "cpu", "--quiet"], input=f"{faces / '000001.jpg'}\n")
    assert piped.exit_code == 0, piped.output
    assert piped.stdout.split() == [str(tmp_path / "d" / "000001.png")] and (tmp_path / "d" / "000001.png").exists()
    assert parse_assignments(["Male=1,Young=0", "Blond_Hair=1"]) == {"Male": 1, "Young": 0, "Blond_Hair": 1}
