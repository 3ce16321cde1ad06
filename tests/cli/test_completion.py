"""Shell completion: `facegan --install-completion` installs it, and the completions name the commands and
options (completing a command name imports no torch)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _facegan(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), **env}
    return subprocess.run([sys.executable, "-m", "facegan_cli", *args], capture_output=True, text=True,
                          env=environment, cwd=home, timeout=120)


def test_install_completion_for_bash(tmp_path: Path) -> None:
    done = _facegan("--install-completion", "bash", home=tmp_path)
    assert done.returncode == 0, done.stderr
    script = tmp_path / ".bash_completions" / "facegan.sh"
    assert "_FACEGAN_COMPLETE=complete_bash" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()


@pytest.mark.parametrize(("words", "expected"), [
    ("facegan pre", "prepare"),
    ("facegan runs l", "list"),
    ("facegan prepare synthetic --st", "--style"),
])
def test_bash_completes_commands_and_options(tmp_path: Path, words: str, expected: str) -> None:
    done = _facegan(home=tmp_path, _FACEGAN_COMPLETE="complete_bash", COMP_WORDS=words,
                    COMP_CWORD=str(len(words.split()) - 1))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [expected]


def test_completing_a_command_name_imports_no_torch(tmp_path: Path) -> None:
    probe = ("import sys\nfrom facegan_cli.cli import app\ntry:\n    app(prog_name='facegan')\nexcept SystemExit:\n"
             "    pass\nprint('torch' in sys.modules, 'cv2' in sys.modules)")
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "_FACEGAN_COMPLETE": "complete_bash",
                   "COMP_WORDS": "facegan t", "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environment,
                          cwd=tmp_path, timeout=120)
    lines = done.stdout.split()
    assert set(lines[:-2]) == {"train", "translate", "transfer"} and lines[-2:] == ["False", "False"]


def test_completing_a_family_name_imports_no_torch_once_the_declarations_are_cached(tmp_path: Path) -> None:
    probe = ("import sys\nfrom facegan_cli.cli import app\ntry:\n    app(prog_name='facegan')\nexcept SystemExit:\n"
             "    pass\nprint('torch' in sys.modules)")
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "FACEGAN_HOME": str(tmp_path), "_FACEGAN_COMPLETE":
                   "complete_bash", "COMP_WORDS": "facegan train dc", "COMP_CWORD": "2"}
    seen = []
    for _ in range(2):  # the first call writes the declarations snapshot, the second reads it
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environment,
                              cwd=tmp_path, timeout=120)
        seen.append(done.stdout.split())
    assert seen == [["dcgan", "True"], ["dcgan", "False"]]
