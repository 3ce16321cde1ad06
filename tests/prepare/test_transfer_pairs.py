"""`facegan prepare pairs`: two folders matched by file name into junyanz's layout, with held-out pairs,
unmatched files listed, unusable pairs skipped (or --strict), and outputs that never replace the user's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan_cli.prepare.pairs import held_out_count, match_names


def _folder(root: Path, names: list[str], suffix: str, seed: int, size: tuple[int, int] = (40, 30)) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / f"{name}{suffix}")
    return root


def test_pairs_are_matched_by_name_and_split(cli_json, tmp_path: Path) -> None:
    names = [f"{i:03d}" for i in range(10)]
    a = _folder(tmp_path / "a", [*names, "only-a"], ".jpg", 0)
    b = _folder(tmp_path / "b", [*names, "only-b"], ".png", 1, size=(50, 40))
    out = tmp_path / "pairs"
    doc = cli_json("prepare", "pairs", "--a", a, "--b", b, "--out", out, "--size", 16, "--test", 3, "--workers", 1)
    assert doc["pairs"] == 10 and doc["train"] == 7 and doc["test"] == 3 and doc["rejected"] == 0
    assert doc["unmatched"] == {"a": ["only-a.jpg"], "b": ["only-b.png"]}
    for split, (fa, fb) in {"train": ("trainA", "trainB"), "test": ("testA", "testB")}.items():
        got_a = sorted(p.stem for p in (out / fa).iterdir())
        got_b = sorted(p.stem for p in (out / fb).iterdir())
        assert got_a == got_b == sorted(doc["names"][split])
        assert all(Image.open(p).size == (16, 16) for p in (out / fa).iterdir())
    assert sorted(doc["names"]["train"] + doc["names"]["test"]) == names
    assert json.loads((out / "pairs.json").read_text())["names"] == doc["names"]
    # The same seed draws the same held-out pairs; --force replaces the folder this command wrote.
    again = cli_json("prepare", "pairs", "--a", a, "--b", b, "--out", out, "--size", 16, "--test", 3, "--force")
    assert again["names"] == doc["names"]
    # Without --size the pixels are kept: each side at its own size.
    native = cli_json("prepare", "pairs", "--a", a, "--b", b, "--out", tmp_path / "native", "--test", 0)
    assert native["test"] == 0 and not (tmp_path / "native" / "testA").exists()
    assert Image.open(tmp_path / "native" / "trainA" / "000.png").size == (40, 30)
    assert Image.open(tmp_path / "native" / "trainB" / "000.png").size == (50, 40)


def test_unusable_pairs_are_skipped_or_stop_with_strict(cli, cli_json, tmp_path: Path) -> None:
    names = [f"{i:03d}" for i in range(5)]
    a = _folder(tmp_path / "a", names, ".png", 0)
    b = _folder(tmp_path / "b", names, ".png", 1)
    (b / "002.png").write_bytes((b / "002.png").read_bytes()[:100])  # truncated
    doc = cli_json("prepare", "pairs", "--a", a, "--b", b, "--out", tmp_path / "p", "--workers", 1)
    assert doc["pairs"] == 4 and doc["rejected"] == 1
    assert "002.png" in (tmp_path / "p" / "rejects.tsv").read_text()
    assert "002" not in doc["names"]["train"] + doc["names"]["test"]
    strict = cli("prepare", "pairs", "--a", a, "--b", b, "--out", tmp_path / "s", "--strict", "--workers", 1)
    assert strict.exit_code == 1 and "002" in strict.stderr and not (tmp_path / "s").exists()


def test_bad_inputs_and_outputs(cli, tmp_path: Path) -> None:
    a = _folder(tmp_path / "a", ["x", "y"], ".png", 0)
    b = _folder(tmp_path / "b", ["p", "q"], ".png", 1)
    none = cli("prepare", "pairs", "--a", a, "--b", b, "--out", tmp_path / "o")
    assert none.exit_code == 1 and "same name" in none.stderr
    missing = cli("prepare", "pairs", "--a", tmp_path / "nope", "--b", b, "--out", tmp_path / "o")
    assert missing.exit_code == 1 and "not a folder" in missing.stderr
    inside = cli("prepare", "pairs", "--a", a, "--b", a, "--out", a / "pairs")
    assert inside.exit_code == 1 and "inside" in inside.stderr
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    same = _folder(tmp_path / "c", ["x", "y"], ".jpg", 2)
    refused = cli("prepare", "pairs", "--a", a, "--b", same, "--out", mine, "--force")
    assert refused.exit_code == 1 and (mine / "notes.txt").read_text() == "keep"
    (a / "x.jpg").write_bytes((a / "x.png").read_bytes())
    clash = cli("prepare", "pairs", "--a", a, "--b", same, "--out", tmp_path / "o")
    assert clash.exit_code == 1 and "only in their extension" in clash.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("pairs", "test", "expected"), [(300, None, 30), (10, None, 1), (2, None, 1), (1, None, 0),
                                                        (10, 4, 4)])
def test_test_count(pairs: int, test: int | None, expected: int) -> None:
    assert held_out_count(pairs, test) == expected


def test_match_names() -> None:
    both, only_a, only_b = match_names({"1": Path("1.jpg"), "2": Path("2.jpg")}, {"2": Path("2.png"), "3": Path("3.png")})
    assert (both, only_a, only_b) == (["2"], ["1"], ["3"])
