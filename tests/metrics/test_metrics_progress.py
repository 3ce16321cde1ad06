"""Long metrics show progress on stderr, with --json too (stdout keeps its one document), not with --quiet;
a bar opened inside another joins its display (an evaluation inside the training bar)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from metrics_helpers import make_generator
from rich.console import Console
from train_helpers import write_image_folder

from facegan_cli.core import progress

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr as a terminal would have it: what the bars draw lands in the returned buffer."""
    screen = io.StringIO()
    monkeypatch.setattr(progress, "bars_enabled", lambda: not progress.is_quiet())
    monkeypatch.setattr(progress, "_stderr_console", lambda: Console(file=screen, force_terminal=True, width=160))
    return screen


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_generator(tmp_path_factory.mktemp("gen") / "run")


@pytest.mark.parametrize("args,bars", [
    (["msssim", "--ckpt", "{gen}", "--pairs", "40", "--batch-size", "16"], ["ms-ssim (generating)"]),
    (["msssim", "{folder}", "--pairs", "40", "--batch-size", "8"], ["ms-ssim folder"]),
    (["swd", "{folder}", "--ckpt", "{gen}", "--n", "12"], ["swd folder", "swd (generating)", "swd: sliced distances"]),
])
def test_long_metrics_show_bars_with_json_not_with_quiet(
    args: list[str], bars: list[str], gen: Path, tmp_path: Path, terminal: io.StringIO, cli: Callable[..., Any]
) -> None:
    folder = write_image_folder(tmp_path / "folder", n=12, size=32)
    argv = ["metrics", *[a.format(gen=gen, folder=folder) for a in args], "--device", "cpu", "--workers", "1"]
    result = cli(*argv, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["value"] >= 0  # stdout: the one document, untouched by the bars
    drawn = terminal.getvalue()
    for bar in bars:
        assert bar in drawn, drawn[-2000:]
    terminal.seek(0)
    terminal.truncate()
    assert cli(*argv, "--json", "--quiet").exit_code == 0
    assert terminal.getvalue() == ""


def test_a_bar_inside_a_bar_joins_its_display(terminal: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    progress.set_quiet(False)
    started = []
    original = progress._RichProgress.start
    monkeypatch.setattr(progress._RichProgress, "start", lambda self: (started.append(self), original(self)))
    with progress.Progress(3, "train", "step") as outer:
        with progress.Progress(5, "evaluate", "img") as inner:
            inner.advance(5)
            assert [t.description for t in started[0].tasks] == ["train", "evaluate"]
        outer.advance(3)
        assert [t.description for t in started[0].tasks] == ["train"]  # the nested line went away
    assert len(started) == 1  # one live display on the terminal, never two
    with progress.Progress(1, "after", "it"):
        pass
    assert len(started) == 2  # the display was given back: the next bar starts its own
