"""Seed 001's visual Turing test: `facegan eval turing` (the sheet and its key) and `facegan eval score`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke_cli
from PIL import Image

from facegan_cli.core.checkpoint import save_checkpoint
from facegan_cli.evaluation.turing import score
from facegan_cli.models import registry


def invoke(*args: object) -> object:
    return invoke_cli([str(a) for a in args])


def ok(*args: object) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def image_folder(root: Path, count: int, size: tuple[int, int], seed: int, suffix: str = ".png") -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(
            root / f"img{i:02d}{suffix}"
        )
    return root


def decode(path: Path | str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path]:
    return image_folder(tmp_path / "real", 8, (16, 16), 0), image_folder(tmp_path / "fake", 7, (16, 16), 1)


def write_answers(path: Path, key: dict, flip: set[str], short: bool = False) -> Path:
    """Answer every image correctly except the numbers in `flip`."""
    lines = ["# rater answers"]
    for number, item in key["items"].items():
        label = item["label"]
        if number in flip:
            label = "fake" if label == "real" else "real"
        lines.append(f"{int(number)} {label[0].upper()}" if short else f"{number} {label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sheet_numbered_images_match_key(folders: tuple[Path, Path], tmp_path: Path) -> None:
    real, fake = folders
    out = tmp_path / "sheet"
    stdout = ok("eval", "turing", "--real", real, "--fake", fake, "--n", 5, "--out", out, "--seed", 3)
    key_path = tmp_path / "sheet.key.json"
    assert str(key_path) in stdout.split()
    # The raters' folder holds no key: its only .json is facegan's ownership marker, which names no label.
    assert [p.name for p in out.iterdir() if p.suffix == ".json"] == [".facegan-output.json"]
    marker = (out / ".facegan-output.json").read_text()
    assert "real" not in marker and "fake" not in marker
    numbered = sorted(p.name for p in out.iterdir() if p.name[0].isdigit())
    assert numbered == [f"{i:03d}.png" for i in range(1, 11)]
    assert (out / "sheet.png").exists()
    assert (out / "answers.txt").read_text().count("\n010") == 1

    key = json.loads(key_path.read_text())
    labels = [item["label"] for item in key["items"].values()]
    assert sorted(key["items"]) == [f"{i:03d}" for i in range(1, 11)]
    assert labels.count("real") == 5 and labels.count("fake") == 5
    sources = [item["source"] for item in key["items"].values()]
    assert len(set(sources)) == 10
    for number, item in key["items"].items():
        folder = real if item["label"] == "real" else fake
        assert Path(item["source"]).parent == folder
        np.testing.assert_array_equal(decode(out / f"{number}.png"), decode(item["source"]))
    assert labels != ["real"] * 5 + ["fake"] * 5  # shuffled

    again = tmp_path / "again"
    ok("eval", "turing", "--real", real, "--fake", fake, "--n", 5, "--out", again, "--seed", 3)
    assert json.loads((tmp_path / "again.key.json").read_text())["items"] == key["items"]
    other = tmp_path / "other"
    ok("eval", "turing", "--real", real, "--fake", fake, "--n", 5, "--out", other, "--seed", 4)
    assert json.loads((tmp_path / "other.key.json").read_text())["items"] != key["items"]


def test_sheet_refuses_key_inside_sheet_and_overwrites(folders: tuple[Path, Path], tmp_path: Path) -> None:
    real, fake = folders
    out = tmp_path / "sheet"
    result = invoke(
        "eval", "turing", "--real", real, "--fake", fake, "--n", 2, "--out", out, "--key", out / "key.json"
    )
    assert result.exit_code == 1 and "inside the sheet folder" in result.output
    ok("eval", "turing", "--real", real, "--fake", fake, "--n", 4, "--out", out)
    result = invoke("eval", "turing", "--real", real, "--fake", fake, "--n", 2, "--out", out)
    assert result.exit_code == 1 and "already exists" in result.output
    ok("eval", "turing", "--real", real, "--fake", fake, "--n", 2, "--out", out, "--force")
    assert len([p for p in out.iterdir() if p.name[0].isdigit()]) == 4  # no stale 005.png .. 008.png
    result = invoke("eval", "turing", "--real", real, "--fake", fake, "--n", 9, "--out", tmp_path / "big")
    assert result.exit_code == 1 and "--n" in result.output


def test_sheet_sizes_must_match_or_be_resized(tmp_path: Path) -> None:
    real = image_folder(tmp_path / "real", 3, (24, 20), 0, ".jpg")
    fake = image_folder(tmp_path / "fake", 3, (16, 16), 1)
    result = invoke("eval", "turing", "--real", real, "--fake", fake, "--n", 2, "--out", tmp_path / "s")
    assert result.exit_code == 1 and "--size" in result.output and "Traceback" not in result.output
    ok("eval", "turing", "--real", real, "--fake", fake, "--n", 2, "--out", tmp_path / "s", "--size", 16)
    assert {decode(p).shape for p in (tmp_path / "s").glob("0*.png")} == {(16, 16, 3)}


def test_sheet_from_checkpoint(tmp_path: Path) -> None:
    config = registry.resolve_config("dcgan", "heikka32", {"g_width": 8, "width": 8})
    modules = {"G": registry.build_generator("dcgan", config).state_dict()}
    save_checkpoint(
        tmp_path / "run" / "checkpoints",
        3,
        modules,
        {"family": "dcgan", "model": config, "generator": "G"},
        None,
    )
    real = image_folder(tmp_path / "real", 4, (32, 32), 0)
    payload = json.loads(
        ok(
            "eval",
            "turing",
            "--real",
            real,
            "--fake-ckpt",
            tmp_path / "run",
            "--n",
            3,
            "--out",
            tmp_path / "s",
            "--json",
        )
    )
    assert payload["images"] == 6 and payload["n_fake"] == 3
    key = json.loads(Path(payload["key"]).read_text())
    assert sum("#seed=0:" in item["source"] for item in key["items"].values()) == 3
    result = invoke("eval", "turing", "--real", real, "--n", 3, "--out", tmp_path / "t")
    assert result.exit_code == 1 and "--fake" in result.output


def test_score_accuracy_and_false_positive_rate(folders: tuple[Path, Path], tmp_path: Path) -> None:
    real, fake = folders
    ok("eval", "turing", "--real", real, "--fake", fake, "--n", 5, "--out", tmp_path / "sheet")
    key_path = tmp_path / "sheet.key.json"
    key = json.loads(key_path.read_text())
    fakes = [n for n, item in key["items"].items() if item["label"] == "fake"]
    reals = [n for n, item in key["items"].items() if item["label"] == "real"]
    # Rater 1: two fakes called real, one real called fake -> accuracy 7/10, FPR 2/5.
    a = write_answers(tmp_path / "a.txt", key, {fakes[0], fakes[1], reals[0]})
    # Rater 2 (short answers, unpadded numbers): one fake called real -> accuracy 9/10, FPR 1/5.
    b = write_answers(tmp_path / "b.txt", key, {fakes[2]}, short=True)
    payload = json.loads(ok("eval", "score", "--key", key_path, "--answers", a, "--answers", b, "--json"))
    first, second = payload["raters"]
    assert (first["accuracy"], first["false_positive_rate"], first["n"]) == (0.7, 0.4, 10)
    assert (second["accuracy"], second["false_positive_rate"]) == (0.9, 0.2)
    assert first["reals_called_fake"] == 1 and second["reals_called_fake"] == 0
    overall = payload["overall"]
    assert (overall["accuracy"], overall["false_positive_rate"], overall["n"]) == (0.8, 0.3, 20)
    table = ok("eval", "score", "--key", key_path, "--answers", a)
    assert "0.700" in table and "0.400" in table
    assert score(key_path, [a]).raters[0].correct == 7


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: lines[:3] + ["003 maybe"] + lines[4:], "line 4"),
        (lambda lines: lines + [lines[1]], "answered twice (first on line 2)"),
        (lambda lines: lines[:-1], "no answer for image(s) 10"),
        (lambda lines: lines + ["011 real"], "line 12: image 011 is not on the sheet"),
        (lambda lines: lines[:2] + ["002"] + lines[3:], "line 3: image 002 has no answer"),
    ],
)
def test_malformed_answers_name_file_and_line(
    folders: tuple[Path, Path], tmp_path: Path, edit, message: str
) -> None:
    real, fake = folders
    ok("eval", "turing", "--real", real, "--fake", fake, "--n", 5, "--out", tmp_path / "sheet")
    key_path = tmp_path / "sheet.key.json"
    good = write_answers(tmp_path / "good.txt", json.loads(key_path.read_text()), set())
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(edit(good.read_text().splitlines())) + "\n")
    result = invoke("eval", "score", "--key", key_path, "--answers", bad)
    assert result.exit_code == 1
    assert str(bad) in result.output and message in result.output
    assert "Traceback" not in result.output


def test_score_rejects_a_file_that_is_not_a_key(tmp_path: Path) -> None:
    (tmp_path / "k.json").write_text(json.dumps({"items": {}}))
    (tmp_path / "a.txt").write_text("001 real\n")
    result = invoke("eval", "score", "--key", tmp_path / "k.json", "--answers", tmp_path / "a.txt")
    assert result.exit_code == 1 and "not a facegan Turing-test answer key" in result.output
    for args in (["turing"], ["score"]):
        assert "Example:" in invoke("eval", *args, "--help").output


def test_sheet_with_real_faces_resized(celebahq_sample: Path, tmp_path: Path) -> None:
    fake = image_folder(tmp_path / "fake", 3, (32, 32), 5)
    out = tmp_path / "faces"
    ok("eval", "turing", "--real", celebahq_sample, "--fake", fake, "--n", 3, "--size", 32, "--out", out)
    key = json.loads((tmp_path / "faces.key.json").read_text())
    for number, item in key["items"].items():
        assert decode(out / f"{number}.png").shape == (32, 32, 3)
        if item["label"] == "real":
            assert Path(item["source"]).parent == celebahq_sample.absolute()
            assert Path(item["source"]).suffix.lower() == ".jpg"
