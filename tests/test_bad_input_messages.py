"""Messages of issue 10 item 16: each names the input and the real fix, in the words the user needs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result


def test_celeba_hq_names_the_in_the_wild_archive(cli: Callable[..., Result], tree_copy: Path, tmp_path: Path) -> None:
    # tree_copy has img_align_celeba/ but not img_celeba/, the in-the-wild folder celeba-hq reads.
    result = cli("prepare", "celeba-hq", "--src", tree_copy, "--out", tmp_path / "hq", "--size", 16,
                 "--transform-size", 16, "--workers", 1, "--quiet")
    assert result.exit_code == 1, result.output
    text = " ".join(result.stderr.split())
    assert "img_celeba" in text and "img_celeba.7z" in text
    assert "img_align_celeba.zip" not in text
    assert "Traceback" not in result.output
    assert not (tmp_path / "hq").exists()


def _flat(text: str) -> str:
    """Rendered --help without rich's panel borders and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─┃━]", " ", text).split())


def test_landmarks_help_shows_the_dlib_extra(cli: Callable[..., Result]) -> None:
    # rich markup used to swallow "[dlib]" and print "offline (extra )".
    result = cli("prepare", "faces", "--help")
    assert result.exit_code == 0, result.output
    text = _flat(result.stdout)
    assert "extra [dlib]" in text
    assert "(extra )" not in text
