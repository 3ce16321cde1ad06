"""Messages of issue 10 item 16: each names the input and the real fix, in the words the user needs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import Result

from facegan_cli.core.errors import FaceganError
from facegan_cli.metrics.kid import kernel_inception_distance


def test_celeba_hq_names_the_in_the_wild_archive(
    cli: Callable[..., Result], tree_copy: Path, tmp_path: Path
) -> None:
    # tree_copy has img_align_celeba/ but not img_celeba/, the in-the-wild folder celeba-hq reads.
    result = cli(
        "prepare",
        "celeba-hq",
        "--src",
        tree_copy,
        "--out",
        tmp_path / "hq",
        "--size",
        16,
        "--transform-size",
        16,
        "--workers",
        1,
        "--quiet",
    )
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


@pytest.mark.parametrize("size", [0, 1, -5])
def test_kid_subset_size_below_two_names_the_option(size: int) -> None:
    # Used to say "KID needs at least 2 samples in each set; got 20 and 20" for --subset-size 0.
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 8)), rng.normal(size=(20, 8))
    with pytest.raises(FaceganError) as info:
        kernel_inception_distance(a, b, subsets=2, subset_size=size)
    text = info.value.paragraph()
    assert "--subset-size" in text and f"{size}" in text and "got 20 and 20" not in text


def test_kid_cli_refuses_subset_size_zero_before_any_work(cli: Callable[..., Result], tmp_path: Path) -> None:
    # Checked before the inputs are read: nothing here exists, and no feature is computed.
    result = cli("metrics", "kid", tmp_path / "a", tmp_path / "b", "--subset-size", 0, "--device", "cpu")
    assert result.exit_code == 2, result.output  # a bad option value: a usage error (issue 18)
    assert "--subset-size 0" in result.stderr and "got 20" not in result.stderr
    assert "Traceback" not in result.output
