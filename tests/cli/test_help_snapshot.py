"""The root's --help snapshot (cli/help_snapshot.py): a later `facegan --help` writes back, byte for byte, what
the renderer wrote for the same code and terminal, without importing the renderer; another terminal, other
code, or a corrupt, foreign or unwritable cache is a miss and renders as always."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from facegan_cli.cli import help_snapshot

ROOT = Path(__file__).resolve().parents[2]
# `facegan ARGS` in a fresh interpreter; its last line of stderr says whether typer's rich renderer was imported.
_PROBE = """
import sys
from facegan_cli.cli import app
try:
    app(args=sys.argv[1:], prog_name="facegan")
except SystemExit as exc:
    code = exc.code or 0
else:
    code = 0
sys.stdout.flush()
print(code, "typer.rich_utils" in sys.modules, file=sys.stderr)
"""


def _help(home: Path, *args: str, **env: str) -> tuple[str, bool]:
    """stdout of `facegan ARGS` (default --help) with cache folder `home`, and whether the renderer was imported."""
    environment = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "TERMINAL_WIDTH")}
    environment.update({"PYTHONPATH": str(ROOT), "COLUMNS": "100", "FACEGAN_HOME": str(home), **env})
    done = subprocess.run([sys.executable, "-c", _PROBE, *(args or ("--help",))], capture_output=True, text=True,
                          cwd=ROOT, env=environment, timeout=120)
    code, rendered = done.stderr.strip().splitlines()[-1].split()
    assert code in ("0", "2"), done.stderr
    return done.stdout, rendered == "True"


def test_a_second_help_writes_back_the_first_rendering_without_the_renderer(tmp_path: Path) -> None:
    first, rendered_first = _help(tmp_path)
    second, rendered_second = _help(tmp_path)
    assert rendered_first and not rendered_second
    assert second == first and "Usage: facegan" in first and "translate" in first
    # A cache folder that cannot be made: rendered, the same, no error.
    unwritable, rendered = _help(Path(os.devnull) / "facegan")
    assert rendered and unwritable == first


@pytest.mark.parametrize("env", [{"COLUMNS": "60"}, {"FORCE_COLOR": "1"}, {"NO_COLOR": "1", "FORCE_COLOR": "1"}],
                         ids=["narrower", "colour", "no-colour"])
def test_another_terminal_is_rendered_for_itself(tmp_path: Path, env: dict[str, str]) -> None:
    plain, _ = _help(tmp_path)
    fresh, _ = _help(tmp_path / "fresh", **env)  # what an empty cache renders for that terminal
    other, rendered = _help(tmp_path, **env)
    assert rendered and other == fresh != plain
    again, rendered = _help(tmp_path, **env)
    assert not rendered and again == fresh
    back, rendered = _help(tmp_path)  # the first terminal's recording is kept beside it
    assert not rendered and back == plain


def test_no_arguments_and_the_short_option_show_the_same_help(tmp_path: Path) -> None:
    long, _ = _help(tmp_path)
    short, rendered = _help(tmp_path, "-h")
    assert not rendered and short == long


def _code(**change: Any) -> dict[str, Any]:
    return {**help_snapshot.code_key(), **change}


TERMINAL = {"command": "facegan", "environment": {}, "terminal": [None, None, None], "isatty": False,
            "encoding": "utf-8"}


@pytest.mark.unit
def test_recordings_are_kept_per_code_and_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path))
    code = _code()
    help_snapshot.record(code, TERMINAL, "help text\n")
    assert help_snapshot.recorded(code, TERMINAL) == "help text\n"
    assert help_snapshot.recorded(code, {**TERMINAL, "command": "python -m facegan_cli"}) is None
    # Any edit of a package file changes the code's key: every recording is stale.
    edited = _code(files=[*code["files"][:-1], [code["files"][-1][0], code["files"][-1][1] + 1, 0]])
    assert help_snapshot.recorded(edited, TERMINAL) is None
    # The last few terminals are kept, the oldest dropped.
    for width in range(20):
        help_snapshot.record(code, {**TERMINAL, "terminal": [[width, 24], None, None]}, f"{width}\n")
    assert help_snapshot.recorded(code, TERMINAL) is None
    assert help_snapshot.recorded(code, {**TERMINAL, "terminal": [[19, 24], None, None]}) == "19\n"
    assert len(json.loads(help_snapshot.path().read_text())["renders"]) == 8


@pytest.mark.unit
@pytest.mark.parametrize("content", ["not json", "[]", json.dumps({"format": "other"}),
                                     json.dumps({"format": help_snapshot.FORMAT, "code": {}, "renders": "x"})])
def test_a_corrupt_or_foreign_file_is_a_miss(content: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path))
    help_snapshot.path().write_text(content)
    assert help_snapshot.recorded(_code(), TERMINAL) is None
    help_snapshot.record(_code(), TERMINAL, "help\n")  # replaced by a good one
    assert help_snapshot.recorded(_code(), TERMINAL) == "help\n"


@pytest.mark.unit
def test_a_recording_of_another_shape_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path))
    doc = {"format": help_snapshot.FORMAT, "code": _code(), "renders": [[TERMINAL, 3], [TERMINAL], "x"]}
    help_snapshot.path().write_text(json.dumps(doc))
    assert help_snapshot.recorded(_code(), TERMINAL) is None
